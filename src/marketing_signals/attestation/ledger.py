"""Append-only hash chain of attestation records (table `attestation_ledger`).

`chain(candidates, last_sequence_no=..., last_record_hash=...)` turns one run's candidate records into
one batch of ledger rows: sorted deterministically by (decided_at, record_kind, attestation_id), numbered
on from the ledger's last sequence_no, batch_id = "b" + first sequence_no (12 digits), and hashed:
content_hash over the canonical content (bulk, column-wise), then the sequential link
record_hash = sha256(prev_hash || content_hash) starting from the ledger's last record_hash (or the
genesis "0" * 64). See canonical.py for exactly what is hashed.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .canonical import chain_blob, hex_array, submit_content_digests
from .frames import to_arrow, to_frame
from .schema import (
    CANDIDATE_COLUMNS,
    CANDIDATE_SCHEMA,
    GENESIS_HASH,
    LEDGER_COLUMNS,
    LEDGER_SCHEMA,
    REQUIRED_CANDIDATE_COLUMNS,
)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def batch_id_for(first_sequence_no: int) -> str:
    return f"b{first_sequence_no:012d}"


def empty_ledger() -> pd.DataFrame:
    return to_frame(LEDGER_SCHEMA.empty_table())


def _validate_candidates(candidates: pd.DataFrame) -> None:
    if not isinstance(candidates, pd.DataFrame):
        raise TypeError(f"candidates must be a pandas DataFrame, got {type(candidates).__name__}")
    cols = list(candidates.columns)
    missing = [c for c in CANDIDATE_COLUMNS if c not in cols]
    extra = [c for c in cols if c not in CANDIDATE_COLUMNS]
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected columns: {', '.join(map(str, extra))} "
                        "(sequence_no, batch_id and the hashes are assigned by the engine)")
    if dupes:
        problems.append(f"duplicate columns: {', '.join(dupes)}")
    if problems:
        raise ValueError("attestation candidates: " + "; ".join(problems))


def _anchor(last_sequence_no: int, last_record_hash: str | None) -> str:
    if isinstance(last_sequence_no, bool) or not isinstance(last_sequence_no, (int, np.integer)):
        raise TypeError(f"last_sequence_no must be an int, got {last_sequence_no!r}")
    if last_sequence_no < 0:
        raise ValueError(f"last_sequence_no must be >= 0, got {last_sequence_no}")
    if last_record_hash is None:
        if last_sequence_no:
            raise ValueError(f"last_record_hash is required to continue after sequence_no {last_sequence_no}")
        return GENESIS_HASH
    if not _HEX64.match(str(last_record_hash)):
        raise ValueError(f"last_record_hash must be 64 lower-case hex digits, got {last_record_hash!r}")
    if last_sequence_no == 0 and last_record_hash != GENESIS_HASH:
        raise ValueError("an empty ledger (last_sequence_no=0) continues from the genesis hash only")
    return str(last_record_hash)


def chain(candidates: pd.DataFrame, *, last_sequence_no: int = 0,
          last_record_hash: str | None = None, batch_id: str | None = None) -> pd.DataFrame:
    """One batch of ledger rows (LEDGER_COLUMNS, Arrow dtypes) chained onto the given ledger tail.

    `batch_id` overrides the default "b" + first sequence_no: a caller that chains one run's candidates
    in several pieces (each continuing from the previous piece's tail) passes the first piece's id to
    all of them, so the pieces form one batch, row for row identical to chaining everything at once."""
    _validate_candidates(candidates)
    return to_frame(chain_table(to_arrow(candidates, CANDIDATE_SCHEMA), last_sequence_no=last_sequence_no,
                                last_record_hash=last_record_hash, batch_id=batch_id))


def chain_table(table: pa.Table, *, last_sequence_no: int = 0, last_record_hash: str | None = None,
                batch_id: str | None = None) -> pa.Table:
    """`chain` on an Arrow table of CANDIDATE_COLUMNS (already typed as CANDIDATE_SCHEMA): the ledger
    rows as an Arrow table with LEDGER_SCHEMA."""
    prev = _anchor(last_sequence_no, last_record_hash)
    rows = prepare_rows(table, first_sequence_no=int(last_sequence_no) + 1, batch_id=batch_id)
    if rows.num_rows == 0:
        return LEDGER_SCHEMA.empty_table()
    return link_rows(rows, submit_content_digests(rows)(), prev)


def prepare_rows(table: pa.Table, *, first_sequence_no: int, batch_id: str | None = None) -> pa.Table:
    """Validated candidates, sorted by (decided_at, record_kind, attestation_id), numbered from
    first_sequence_no and stamped with the batch id: everything content_hash covers (no hashes yet)."""
    if batch_id is not None and not re.match(r"^[A-Za-z0-9_-]{1,64}$", str(batch_id)):
        raise ValueError(f"batch_id {batch_id!r} is not a safe identifier")
    if table.num_rows == 0:
        return table
    table = to_arrow(table, CANDIDATE_SCHEMA)

    nulls = {c: table.column(c).null_count for c in REQUIRED_CANDIDATE_COLUMNS}
    bad = [f"{c} ({n} rows)" for c, n in nulls.items() if n]
    if bad:
        raise ValueError(f"attestation candidates: null values in required columns: {', '.join(bad)}")
    ids = table.column("attestation_id")
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        dup = [v["values"] for v in counts.to_pylist() if v["counts"] > 1]
        raise ValueError(f"attestation candidates: duplicate attestation_id ({len(dup)} values), "
                         f"e.g. {', '.join(map(repr, dup[:5]))}")

    order = pc.sort_indices(table, sort_keys=[("decided_at", "ascending"), ("record_kind", "ascending"),
                                              ("attestation_id", "ascending")])
    table = table.take(order)
    n = table.num_rows
    first = int(first_sequence_no)
    seq = pa.array(np.arange(first, first + n, dtype=np.int64))
    batch = pa.repeat(pa.scalar(batch_id or batch_id_for(first), pa.string()), n)
    return table.append_column("sequence_no", seq).append_column("batch_id", batch)


def link_rows(rows: pa.Table, content: bytes, prev: str) -> pa.Table:
    """The ledger rows: `prepare_rows` output plus its content digests, chained from `prev`."""
    records = chain_blob(content, prev)
    arrays = {
        "content_hash": hex_array(content),
        "prev_hash": hex_array(bytes.fromhex(prev) + records[:-32]),
        "record_hash": hex_array(records),
    }
    return pa.Table.from_arrays(
        [arrays[c] if c in arrays else rows.column(c) for c in LEDGER_COLUMNS], schema=LEDGER_SCHEMA)


def ledger_tail(ledger: pd.DataFrame) -> tuple[int, str | None]:
    """(last_sequence_no, last_record_hash) of an existing ledger frame, (0, None) when empty: the
    arguments to pass to the next `chain` call."""
    if ledger is None or len(ledger) == 0:
        return 0, None
    seq = pd.to_numeric(ledger["sequence_no"]).to_numpy()
    i = int(np.argmax(seq))
    return int(seq[i]), str(ledger["record_hash"].iloc[i])
