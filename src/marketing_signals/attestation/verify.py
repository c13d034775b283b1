"""Independent verification of the attestation ledger with nothing but the public key.

Checks, and reports the first break by sequence_no (with attestation_id / batch_id):
* records: sequence_no is 1..n without gaps or duplicates; attestation_id is unique; content_hash
  recomputes from the canonical content; prev_hash equals the previous record's record_hash (genesis
  "0" * 64 for record 1); record_hash = sha256(prev_hash || content_hash);
* coverage: every record is covered by exactly one checkpoint (an unsealed tail is an error);
* checkpoints: numbered 1..m; prev_checkpoint_hash chains; first/last/count agree with each other, with
  the previous checkpoint and with the table's rows of that batch; the Merkle root and last_record_hash
  recompute from the table; checkpoint_hash recomputes; the Ed25519 signature is valid under the GIVEN
  public key (a key or fingerprint stored in the tables is never trusted) and key_fingerprint is that key's;
* WORM: the batch file exists, hashes to worm_sha256, and holds exactly the table's rows of that batch
  (same sequence numbers and stored hashes, same canonical content); no batch file in the WORM folder is
  left without a checkpoint (that is how a truncated tail of whole sealed batches shows).

A table's physical row order carries no meaning: rows are taken in sequence_no order. An attacker who edits
a record and rebuilds the chain after it is caught by the signed Merkle root / last_record_hash and the
WORM copy; one who also re-signs needs the private key.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .canonical import content_digests, content_hash, hex_array, hex_blob, submit_content_digests
from .checkpoint import checkpoint_payload
from .frames import to_arrow
from .keys import fingerprint, load_public_key, verify_signature
from .merkle import MerkleBuilder, merkle_root
from .schema import CHECKPOINT_COLUMNS, CHECKPOINT_SCHEMA, GENESIS_HASH, LEDGER_SCHEMA
from .worm import BATCHES_DIR, file_sha256, resolve_uri

MAX_ERRORS = 50
LEDGER_TABLE = "attestation_ledger"
CHECKPOINT_TABLE = "attestation_checkpoints"


class VerifyUsageError(RuntimeError):
    """The inputs to verify are missing (database, tables, key), as opposed to failing verification."""


@dataclass
class VerifyResult:
    ok: bool
    first_error: str | None
    errors: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        s = self.stats
        head = (f"records={s.get('records', 0)} batches={s.get('batches', 0)} "
                f"checkpoints={s.get('checkpoints', 0)}")
        if self.ok:
            return f"{head}: OK, ledger verifies"
        return f"{head}: FAILED ({len(self.errors)} error(s) shown); first: {self.first_error}"


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[float, int, str]] = []

    def add(self, pos: float, msg: str) -> None:
        if len(self.items) < 10 * MAX_ERRORS:
            self.items.append((pos, len(self.items), msg))

    def result(self, stats: dict[str, int]) -> VerifyResult:
        msgs = [m for _, _, m in sorted(self.items)][:MAX_ERRORS]
        return VerifyResult(ok=not msgs, first_error=msgs[0] if msgs else None, errors=msgs, stats=stats)


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Sorted ints -> [(first, last)] runs of consecutive values."""
    out: list[tuple[int, int]] = []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def _hex_pair_hash(prev: Any, content: Any) -> str | None:
    try:
        return hashlib.sha256(bytes.fromhex(prev) + bytes.fromhex(content)).hexdigest()
    except (TypeError, ValueError):
        return None


def verify(ledger: pd.DataFrame | pa.Table, checkpoints: pd.DataFrame | pa.Table, worm_dir: str | os.PathLike,
           public_key: Any) -> VerifyResult:
    """Verify the two tables and the WORM files under `public_key` (key object, PEM text or path)."""
    key = load_public_key(public_key)
    key_fp = fingerprint(key)
    errs = _Errors()
    stats = {"records": int(len(ledger)), "batches": 0, "checkpoints": int(len(checkpoints))}
    try:
        table = to_arrow(ledger, LEDGER_SCHEMA)
    except (ValueError, TypeError) as e:
        errs.add(0, f"ledger table unreadable: {e}")
        return errs.result(stats)
    try:
        cps = to_arrow(checkpoints, CHECKPOINT_SCHEMA)
    except (ValueError, TypeError) as e:
        errs.add(0, f"checkpoint table unreadable: {e}")
        return errs.result(stats)
    stats["batches"] = len(set(table.column("batch_id").to_pylist()))

    # ---------------------------------------------------------------- records, in sequence_no order
    if table.column("sequence_no").null_count:
        errs.add(0, f"{table.column('sequence_no').null_count} record(s) without sequence_no")
        table = table.filter(table.column("sequence_no").is_valid())
    table = table.take(pa.array(np.argsort(table.column("sequence_no").to_numpy(), kind="stable")))
    seq = table.column("sequence_no").to_numpy().astype(np.int64)
    ids = table.column("attestation_id").to_pylist()
    batch_ids = table.column("batch_id").to_pylist()
    stored_content = table.column("content_hash").to_pylist()
    prev = table.column("prev_hash").to_pylist()
    rh = table.column("record_hash").to_pylist()
    n = len(seq)

    dup_at = np.flatnonzero(seq[1:] == seq[:-1])
    for s in sorted({int(seq[i]) for i in dup_at}):
        who = [ids[i] for i in np.flatnonzero(seq == s)[:4]]
        errs.add(s, f"record {s}: duplicate sequence_no (attestation_ids {', '.join(map(str, who))})")
    uniq = np.unique(seq)
    if n:
        if uniq[0] < 1:
            errs.add(int(uniq[0]), f"record {int(uniq[0])} ({ids[0]}): sequence_no must start at 1")
        elif uniq[0] > 1:
            errs.add(1, f"records 1..{int(uniq[0]) - 1} missing: ledger starts at sequence_no {int(uniq[0])} "
                        f"(attestation_id {ids[0]})")
        for i in np.flatnonzero(np.diff(uniq) > 1):
            a, b = int(uniq[i]) + 1, int(uniq[i + 1]) - 1
            j = int(np.searchsorted(seq, uniq[i + 1]))
            errs.add(a, f"records {a}..{b} missing: sequence gap before sequence_no {b + 1} "
                        f"(attestation_id {ids[j]})")
    seen_ids: dict[Any, int] = {}
    for i, a in enumerate(ids):
        if a in seen_ids:
            errs.add(int(seq[i]), f"record {int(seq[i])}: attestation_id {a} already used by record "
                                  f"{seen_ids[a]}")
        else:
            seen_ids[a] = int(seq[i])

    try:
        recomputed: list[str | None] = [d.hex() for d in content_digests(table)]
    except (ValueError, TypeError, KeyError):
        recomputed = []
        for i, rec in enumerate(table.to_pylist()):
            try:
                recomputed.append(content_hash(rec))
            except (ValueError, TypeError, KeyError) as e:
                recomputed.append(None)
                errs.add(int(seq[i]), f"record {int(seq[i])} ({ids[i]}): content cannot be canonicalised: {e}")
    for i in range(n):
        s = int(seq[i])
        if recomputed[i] is not None and recomputed[i] != stored_content[i]:
            errs.add(s, f"record {s} ({ids[i]}): content_hash does not match the record's content")
        if _hex_pair_hash(prev[i], stored_content[i]) != rh[i]:
            errs.add(s, f"record {s} ({ids[i]}): record_hash != sha256(prev_hash || content_hash)")
        if i == 0:
            if s == 1 and prev[i] != GENESIS_HASH:
                errs.add(s, f"record 1 ({ids[i]}): prev_hash is not the genesis hash")
        elif prev[i] != rh[i - 1]:
            errs.add(s, f"record {s} ({ids[i]}): prev_hash does not match record_hash of sequence_no "
                        f"{int(seq[i - 1])}")

    # ---------------------------------------------------------------- checkpoints
    cps = cps.take(pa.array(np.argsort(cps.column("checkpoint_no").fill_null(0).to_numpy(), kind="stable")))
    rows_by_batch: dict[Any, list[int]] = {}
    for i, b in enumerate(batch_ids):
        rows_by_batch.setdefault(b, []).append(i)
    index_of_seq = {int(s): i for i, s in enumerate(seq)}
    cover = np.zeros(len(uniq), dtype=np.int64)
    prev_cp_hash, prev_last = GENESIS_HASH, 0
    for j, cp in enumerate(cps.to_pylist()):
        no, batch = cp["checkpoint_no"], cp["batch_id"]
        first, last, count = cp["first_sequence_no"], cp["last_sequence_no"], cp["record_count"]
        # a batch-level finding sorts at the batch's end, after any precise record finding inside it
        pos = float(last) + 0.5 if last is not None else float(first) + 0.5 if first is not None else float("inf")
        label = f"checkpoint {no} (batch {batch})"
        nulls = [c for c in CHECKPOINT_COLUMNS if cp[c] is None]
        if nulls:
            errs.add(pos, f"{label}: null {', '.join(nulls)}")
            continue
        if no != j + 1:
            errs.add(pos, f"{label}: checkpoint numbering broken, expected checkpoint_no {j + 1}")
        payload = checkpoint_payload(cp)
        if hashlib.sha256(payload).hexdigest() != cp["checkpoint_hash"]:
            errs.add(pos, f"{label}: checkpoint_hash does not recompute from its fields")
        if not verify_signature(key, payload, cp["signature"]):
            errs.add(pos, f"{label}: signature is not valid under the given public key")
        if cp["key_fingerprint"] != key_fp:
            errs.add(pos, f"{label}: key_fingerprint {cp['key_fingerprint'][:16]}... is not the given public "
                          f"key's ({key_fp[:16]}...)")
        if cp["prev_checkpoint_hash"] != prev_cp_hash:
            errs.add(pos, f"{label}: prev_checkpoint_hash does not match checkpoint {j}'s checkpoint_hash")
        if first != prev_last + 1:
            errs.add(pos, f"{label}: first_sequence_no {first}, expected {prev_last + 1}")
        if last - first + 1 != count:
            errs.add(pos, f"{label}: record_count {count} != last - first + 1 = {last - first + 1}")
        lo, hi = np.searchsorted(uniq, first, "left"), np.searchsorted(uniq, last, "right")
        cover[lo:hi] += 1

        rows = rows_by_batch.get(batch, [])
        bseq = [int(seq[i]) for i in rows]
        if bseq != list(range(first, last + 1)):
            got = f"{bseq[0]}..{bseq[-1]} ({len(bseq)} rows)" if bseq else "no rows"
            errs.add(pos, f"{label}: table holds {got} for the batch, checkpoint seals {first}..{last} "
                          f"({count} records)")
        batch_rh = [rh[i] for i in rows]
        if merkle_root([h if isinstance(h, str) and len(h) == 64 else "00" * 32 for h in batch_rh]) \
                != cp["merkle_root"]:
            errs.add(pos, f"{label}: merkle_root does not recompute from the table's record hashes")
        li = index_of_seq.get(int(last))
        if li is None or rh[li] != cp["last_record_hash"]:
            errs.add(pos, f"{label}: last_record_hash does not match record {last}")

        try:
            path = resolve_uri(worm_dir, cp["worm_uri"])
        except ValueError as e:
            errs.add(pos, f"{label}: {e}")
            path = None
        if path is not None and not path.is_file():
            errs.add(pos, f"{label}: WORM file {cp['worm_uri']} is missing")
        elif path is not None:
            data = path.read_bytes()  # hashed and parsed from the same bytes
            digest = hashlib.sha256(data).hexdigest()
            if digest != cp["worm_sha256"]:
                errs.add(pos, f"{label}: WORM file {cp['worm_uri']} does not hash to worm_sha256")
            try:
                reason = _worm_differs(_parse_worm(digest, data), table.take(pa.array(rows, type=pa.int64())),
                                       [recomputed[i] for i in rows])
            except Exception as e:  # noqa: BLE001 - a damaged file is a finding, not a crash
                reason = f"unreadable ({type(e).__name__}: {e})"
            if reason:
                errs.add(pos, f"{label}: WORM file {cp['worm_uri']} differs from the table: {reason}")
        prev_cp_hash, prev_last = cp["checkpoint_hash"], last

    # ---------------------------------------------------------------- WORM files nobody references
    # A truncated ledger (newest batches and their checkpoints deleted) leaves its write-once files behind.
    referenced = {str(u) for u in cps.column("worm_uri").to_pylist()}
    batches_dir = Path(worm_dir) / BATCHES_DIR
    if batches_dir.is_dir():
        for f in sorted(batches_dir.glob("*.parquet")):
            if f"{BATCHES_DIR}/{f.name}" in referenced:
                continue
            try:
                first = pq.read_table(f, columns=["sequence_no"]).column("sequence_no")
                at = float(pc.min(first).as_py())
            except Exception:  # noqa: BLE001 - still an orphan, position unknown
                at = float("inf")
            errs.add(at, f"WORM file {BATCHES_DIR}/{f.name} is not referenced by any checkpoint "
                         "(checkpoint dropped or ledger truncated?)")

    # ---------------------------------------------------------------- coverage
    for a, b in _runs([int(s) for s, c in zip(uniq, cover) if c == 0]):
        errs.add(a, f"records {a}..{b} not sealed by a checkpoint")
    for a, b in _runs([int(s) for s, c in zip(uniq, cover) if c > 1]):
        errs.add(a, f"records {a}..{b} covered by more than one checkpoint")
    return errs.result(stats)


_WORM_CACHE: dict[str, pa.Table] = {}


def _parse_worm(digest: str, data: bytes) -> pa.Table:
    """The typed rows of a WORM file, cached by the sha256 of its bytes (content-addressed, so a cached
    table is exactly what those bytes hold); repeated verifications skip re-parsing unchanged files."""
    hit = _WORM_CACHE.get(digest)
    if hit is None:
        hit = to_arrow(pq.read_table(pa.BufferReader(data)), LEDGER_SCHEMA)
        if len(_WORM_CACHE) >= 64:
            _WORM_CACHE.pop(next(iter(_WORM_CACHE)))
        _WORM_CACHE[digest] = hit
    return hit


def _worm_differs(file_table: pa.Table, rows: pa.Table, row_content: list[str | None]) -> str | None:
    ft = to_arrow(file_table, LEDGER_SCHEMA)
    if ft.num_rows != rows.num_rows:
        return f"{ft.num_rows} rows in the file, {rows.num_rows} in the table"
    for c in ("sequence_no", "content_hash", "prev_hash", "record_hash"):
        if ft.column(c).to_pylist() != rows.column(c).to_pylist():
            return f"{c} values differ"
    if ft.equals(rows):  # identical typed values: identical canonical content
        return None
    file_content = [d.hex() for d in content_digests(ft)]
    for i, (x, y) in enumerate(zip(file_content, row_content)):
        if x != y:
            return f"content of sequence_no {ft.column('sequence_no')[i].as_py()} differs"
    return None


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _WormComparison:
    """Streams one checkpoint's WORM file against the table's rows of its batch (in sequence order), with
    the findings `_worm_differs` gives for whole tables."""

    def __init__(self, path: Path) -> None:
        self._file = pq.ParquetFile(path)
        self.file_rows = self._file.metadata.num_rows
        self._batches = self._file.iter_batches(batch_size=65_536)
        self._buf: pa.Table | None = None
        self.table_rows = 0
        self.columns_differ: set[str] = set()
        self.content_differs_at: int | None = None
        self.error: str | None = None

    def _take(self, k: int) -> pa.Table:
        parts, have = [], 0
        if self._buf is not None and self._buf.num_rows:
            parts.append(self._buf)
            have = self._buf.num_rows
        while have < k:
            rb = next(self._batches, None)
            if rb is None:
                break
            parts.append(pa.Table.from_batches([rb]))
            have += rb.num_rows
        data = pa.concat_tables(parts) if parts else None
        if data is None:
            return LEDGER_SCHEMA.empty_table()
        self._buf = data.slice(k)
        return data.slice(0, k)

    def feed(self, rows: pa.Table, row_content: list[str | None]) -> None:
        start = self.table_rows
        self.table_rows += rows.num_rows
        if self.error is not None or start >= self.file_rows:
            return
        try:
            k = min(rows.num_rows, self.file_rows - start)
            rows, row_content = rows.slice(0, k), row_content[:k]
            ft = to_arrow(self._take(k), LEDGER_SCHEMA)
            if ft.num_rows != k:
                self.error = f"{self.file_rows} rows announced, {start + ft.num_rows} readable"
                return
            for c in ("sequence_no", "content_hash", "prev_hash", "record_hash"):
                if c not in self.columns_differ and not ft.column(c).equals(rows.column(c)):
                    self.columns_differ.add(c)
            if self.content_differs_at is None and not ft.equals(rows):
                file_content = [d.hex() for d in content_digests(ft)]
                for i, (x, y) in enumerate(zip(file_content, row_content)):
                    if x != y:
                        self.content_differs_at = ft.column("sequence_no")[i].as_py()
                        break
        except Exception as e:  # noqa: BLE001 - a damaged file is a finding, not a crash
            self.error = f"unreadable ({type(e).__name__}: {e})"

    def reason(self) -> str | None:
        if self.error is not None:
            return self.error
        if self.file_rows != self.table_rows:
            return f"{self.file_rows} rows in the file, {self.table_rows} in the table"
        for c in ("sequence_no", "content_hash", "prev_hash", "record_hash"):
            if c in self.columns_differ:
                return f"{c} values differ"
        if self.content_differs_at is not None:
            return f"content of sequence_no {self.content_differs_at} differs"
        return None


STREAM_ROWS = 200_000


def verify_stream(con, ledger_sql: str, checkpoints: pd.DataFrame | pa.Table, worm_dir: str | os.PathLike,
                  public_key: Any, *, rows: int = STREAM_ROWS) -> VerifyResult:
    """`verify` for a ledger that does not fit in memory: `ledger_sql` (a table name or a parenthesised
    query on the DuckDB connection `con`) is checked with a few aggregate queries plus one pass over its
    rows in sequence_no order, `rows` at a time; every WORM file is streamed against the table's rows of
    its batch. Same checks and findings as `verify`."""
    key = load_public_key(public_key)
    key_fp = fingerprint(key)
    errs = _Errors()
    L = ledger_sql
    n = con.execute(f"select count(*) from {L}").fetchall()[0][0]
    stats = {"records": int(n), "batches": 0, "checkpoints": int(len(checkpoints))}
    try:
        cps = to_arrow(checkpoints, CHECKPOINT_SCHEMA)
    except (ValueError, TypeError) as e:
        errs.add(0, f"checkpoint table unreadable: {e}")
        return errs.result(stats)
    distinct_batches, null_batches, null_seq = con.execute(
        f"select count(distinct batch_id), count(*) - count(batch_id), count(*) - count(sequence_no) "
        f"from {L}").fetchall()[0]
    stats["batches"] = int(distinct_batches) + (1 if null_batches else 0)
    if null_seq:
        errs.add(0, f"{null_seq} record(s) without sequence_no")
    base = f"(select * from {L} where sequence_no is not null)"

    # ---------------------------------------------------------------- records: aggregate facts
    for s, who in con.execute(f"select sequence_no, list(attestation_id)[1:4] from {base} group by 1 "
                              "having count(*) > 1 order by 1").fetchall():
        errs.add(int(s), f"record {int(s)}: duplicate sequence_no (attestation_ids {', '.join(map(str, who))})")
    uniq = con.execute(f"select distinct sequence_no from {base} order by 1").fetchnumpy()["sequence_no"]
    uniq = np.asarray(uniq, dtype=np.int64)

    def first_id(s: int) -> Any:
        r = con.execute(f"select attestation_id from {base} where sequence_no = ? limit 1", [s]).fetchall()
        return r[0][0] if r else None

    if len(uniq):
        if uniq[0] < 1:
            errs.add(int(uniq[0]), f"record {int(uniq[0])} ({first_id(int(uniq[0]))}): sequence_no must start at 1")
        elif uniq[0] > 1:
            errs.add(1, f"records 1..{int(uniq[0]) - 1} missing: ledger starts at sequence_no {int(uniq[0])} "
                        f"(attestation_id {first_id(int(uniq[0]))})")
        for i in np.flatnonzero(np.diff(uniq) > 1)[:10 * MAX_ERRORS]:
            a, b = int(uniq[i]) + 1, int(uniq[i + 1]) - 1
            errs.add(a, f"records {a}..{b} missing: sequence gap before sequence_no {b + 1} "
                        f"(attestation_id {first_id(b + 1)})")
    for a, seqs in con.execute(f"select attestation_id, list(sequence_no order by sequence_no) from {base} "
                               "group by 1 having count(*) > 1 order by 2 limit 500").fetchall():
        for s in seqs[1:]:
            errs.add(int(s), f"record {int(s)}: attestation_id {a} already used by record {int(seqs[0])}")
    by_batch = {b: (int(c), int(lo), int(hi), int(d)) for b, c, lo, hi, d in con.execute(
        f"select batch_id, count(*), min(sequence_no), max(sequence_no), count(distinct sequence_no) "
        f"from {base} group by 1").fetchall()}

    # ---------------------------------------------------------------- checkpoints, part 1: what to collect
    cps = cps.take(pa.array(np.argsort(cps.column("checkpoint_no").fill_null(0).to_numpy(), kind="stable")))
    cp_rows = cps.to_pylist()
    wanted_last = {int(cp["last_sequence_no"]) for cp in cp_rows if cp["last_sequence_no"] is not None}
    last_rh: dict[int, Any] = {}
    trees: dict[Any, Any] = {}
    comparisons: dict[int, _WormComparison] = {}
    file_findings: dict[int, str] = {}
    by_batch_cps: dict[Any, list[int]] = {}
    for j, cp in enumerate(cp_rows):
        if any(cp[c] is None for c in CHECKPOINT_COLUMNS):
            continue
        trees.setdefault(cp["batch_id"], MerkleBuilder())
        try:
            path = resolve_uri(worm_dir, cp["worm_uri"])
        except ValueError as e:
            file_findings[j] = str(e)
            continue
        if not path.is_file():
            file_findings[j] = f"WORM file {cp['worm_uri']} is missing"
            continue
        if file_sha256(path) != cp["worm_sha256"]:
            file_findings[j] = f"WORM file {cp['worm_uri']} does not hash to worm_sha256"
        try:
            comparisons[j] = _WormComparison(path)
            by_batch_cps.setdefault(cp["batch_id"], []).append(j)
        except Exception as e:  # noqa: BLE001
            file_findings[j] = (file_findings.get(j, "") + "\n" if j in file_findings else "") + \
                f"WORM file {cp['worm_uri']} differs from the table: unreadable ({type(e).__name__}: {e})"

    # ---------------------------------------------------------------- records: one ordered pass
    zero = "00" * 32
    prev_rh: Any = None
    first_row = True
    cur = con.cursor()

    def chunks():
        """(typed rows, content digest getter) with the hashing of the next chunk already started."""
        reader = cur.sql(f"select * from {base} order by sequence_no").to_arrow_reader(rows)
        pending = None
        for rb in reader:
            if rb.num_rows == 0:
                continue
            table = to_arrow(pa.Table.from_batches([rb]), LEDGER_SCHEMA)
            try:
                job = (table, submit_content_digests(table))
            except (ValueError, TypeError, KeyError):
                job = (table, None)
            if pending is not None:
                yield pending
            pending = job
        if pending is not None:
            yield pending

    def fast_ok(table: pa.Table, recomputed_blob: bytes) -> bool:
        """True when the chunk has no record-level finding at all (vectorised); else the per-row pass
        below produces the findings."""
        stored, prev_c, rh_c = (table.column(c) for c in ("content_hash", "prev_hash", "record_hash"))
        if stored.null_count or prev_c.null_count or rh_c.null_count:
            return False
        if not pc.all(pc.equal(hex_array(recomputed_blob), stored)).as_py():
            return False
        try:
            content, prev = hex_blob(stored), hex_blob(prev_c)
        except ValueError:
            return False
        sha = hashlib.sha256
        expected = b"".join([sha(prev[i:i + 32] + content[i:i + 32]).digest() for i in range(0, len(prev), 32)])
        if not pc.all(pc.equal(hex_array(expected), rh_c)).as_py():
            return False
        k = table.num_rows
        if k > 1 and not pc.all(pc.equal(prev_c.slice(1), rh_c.slice(0, k - 1))).as_py():
            return False
        s0, p0 = int(table.column("sequence_no")[0].as_py()), prev_c[0].as_py()
        if prev_rh is None:
            return s0 != 1 or p0 == GENESIS_HASH
        return p0 == prev_rh[0]

    try:
        for table, getter in chunks():
            k = table.num_rows
            seq = table.column("sequence_no").to_numpy().astype(np.int64)
            recomputed_blob = None
            if getter is not None:
                try:
                    recomputed_blob = getter()
                except (ValueError, TypeError, KeyError):
                    recomputed_blob = None
            rh_col = table.column("record_hash")
            if recomputed_blob is not None and fast_ok(table, recomputed_blob):
                recomputed = hex_array(recomputed_blob).to_pylist()
                prev_rh = (rh_col[k - 1].as_py(), int(seq[-1]))
                if first_row:
                    first_row = False
                for s_ in wanted_last:
                    lo, hi = np.searchsorted(seq, s_, "left"), np.searchsorted(seq, s_, "right")
                    if hi > lo:
                        last_rh[s_] = rh_col[int(hi) - 1].as_py()
            else:
                ids = table.column("attestation_id").to_pylist()
                stored = table.column("content_hash").to_pylist()
                prev = table.column("prev_hash").to_pylist()
                rh = rh_col.to_pylist()
                if recomputed_blob is not None:
                    recomputed: list[str | None] = hex_array(recomputed_blob).to_pylist()
                else:
                    recomputed = []
                    for i, rec in enumerate(table.to_pylist()):
                        try:
                            recomputed.append(content_hash(rec))
                        except (ValueError, TypeError, KeyError) as e:
                            recomputed.append(None)
                            errs.add(int(seq[i]), f"record {int(seq[i])} ({ids[i]}): content cannot be "
                                                  f"canonicalised: {e}")
                for i in range(k):
                    s = int(seq[i])
                    if recomputed[i] is not None and recomputed[i] != stored[i]:
                        errs.add(s, f"record {s} ({ids[i]}): content_hash does not match the record's content")
                    if _hex_pair_hash(prev[i], stored[i]) != rh[i]:
                        errs.add(s, f"record {s} ({ids[i]}): record_hash != sha256(prev_hash || content_hash)")
                    if first_row:
                        first_row = False
                        if s == 1 and prev[i] != GENESIS_HASH:
                            errs.add(s, f"record 1 ({ids[i]}): prev_hash is not the genesis hash")
                    elif prev[i] != prev_rh[0]:
                        errs.add(s, f"record {s} ({ids[i]}): prev_hash does not match record_hash of sequence_no "
                                    f"{prev_rh[1]}")
                    prev_rh = (rh[i], s)
                    if s in wanted_last:
                        last_rh[s] = rh[i]
            # per batch: Merkle leaves and the WORM comparison, in sequence order
            bcol = table.column("batch_id")
            if bcol.null_count == 0 and pc.count_distinct(bcol).as_py() == 1:
                groups: dict[Any, Any] = {bcol[0].as_py(): None}
            else:
                groups = {}
                for i, b in enumerate(bcol.to_pylist()):
                    groups.setdefault(b, []).append(i)
            for b, idx in groups.items():
                tree = trees.get(b)
                js = by_batch_cps.get(b, [])
                if tree is None and not js:
                    continue
                part = table if idx is None else table.take(pa.array(idx, type=pa.int64()))
                if tree is not None:
                    part_rh = part.column("record_hash")
                    try:
                        tree.add_digests(hex_blob(part_rh))
                    except ValueError:
                        tree.add([h if isinstance(h, str) and len(h) == 64 else zero for h in part_rh.to_pylist()])
                part_content = recomputed if idx is None else [recomputed[i] for i in idx]
                for j in js:
                    comparisons[j].feed(part, part_content)
    finally:
        cur.close()

    # ---------------------------------------------------------------- checkpoints, part 2
    cover = np.zeros(len(uniq), dtype=np.int64)
    prev_cp_hash, prev_last = GENESIS_HASH, 0
    for j, cp in enumerate(cp_rows):
        no, batch = cp["checkpoint_no"], cp["batch_id"]
        first, last, count = cp["first_sequence_no"], cp["last_sequence_no"], cp["record_count"]
        pos = float(last) + 0.5 if last is not None else float(first) + 0.5 if first is not None else float("inf")
        label = f"checkpoint {no} (batch {batch})"
        nulls = [c for c in CHECKPOINT_COLUMNS if cp[c] is None]
        if nulls:
            errs.add(pos, f"{label}: null {', '.join(nulls)}")
            continue
        if no != j + 1:
            errs.add(pos, f"{label}: checkpoint numbering broken, expected checkpoint_no {j + 1}")
        payload = checkpoint_payload(cp)
        if hashlib.sha256(payload).hexdigest() != cp["checkpoint_hash"]:
            errs.add(pos, f"{label}: checkpoint_hash does not recompute from its fields")
        if not verify_signature(key, payload, cp["signature"]):
            errs.add(pos, f"{label}: signature is not valid under the given public key")
        if cp["key_fingerprint"] != key_fp:
            errs.add(pos, f"{label}: key_fingerprint {cp['key_fingerprint'][:16]}... is not the given public "
                          f"key's ({key_fp[:16]}...)")
        if cp["prev_checkpoint_hash"] != prev_cp_hash:
            errs.add(pos, f"{label}: prev_checkpoint_hash does not match checkpoint {j}'s checkpoint_hash")
        if first != prev_last + 1:
            errs.add(pos, f"{label}: first_sequence_no {first}, expected {prev_last + 1}")
        if last - first + 1 != count:
            errs.add(pos, f"{label}: record_count {count} != last - first + 1 = {last - first + 1}")
        lo, hi = np.searchsorted(uniq, first, "left"), np.searchsorted(uniq, last, "right")
        cover[lo:hi] += 1

        got = by_batch.get(batch)
        if got is None or not (got[1] == first and got[2] == last and got[0] == last - first + 1 == got[3]):
            desc = f"{got[1]}..{got[2]} ({got[0]} rows)" if got else "no rows"
            errs.add(pos, f"{label}: table holds {desc} for the batch, checkpoint seals {first}..{last} "
                          f"({count} records)")
        if trees[batch].root() != cp["merkle_root"]:
            errs.add(pos, f"{label}: merkle_root does not recompute from the table's record hashes")
        if last_rh.get(int(last)) != cp["last_record_hash"]:
            errs.add(pos, f"{label}: last_record_hash does not match record {last}")
        for finding in file_findings.get(j, "").split("\n"):
            if finding:
                errs.add(pos, f"{label}: {finding}")
        if j in comparisons:
            reason = comparisons[j].reason()
            if reason:
                errs.add(pos, f"{label}: WORM file {cp['worm_uri']} differs from the table: {reason}")
        prev_cp_hash, prev_last = cp["checkpoint_hash"], last

    referenced = {str(u) for u in cps.column("worm_uri").to_pylist()}
    batches_dir = Path(worm_dir) / BATCHES_DIR
    if batches_dir.is_dir():
        for f in sorted(batches_dir.glob("*.parquet")):
            if f"{BATCHES_DIR}/{f.name}" in referenced:
                continue
            try:
                at = float(pc.min(pq.read_table(f, columns=["sequence_no"]).column("sequence_no")).as_py())
            except Exception:  # noqa: BLE001
                at = float("inf")
            errs.add(at, f"WORM file {BATCHES_DIR}/{f.name} is not referenced by any checkpoint "
                         "(checkpoint dropped or ledger truncated?)")
    for a, b in _runs([int(s) for s, c in zip(uniq, cover) if c == 0]):
        errs.add(a, f"records {a}..{b} not sealed by a checkpoint")
    for a, b in _runs([int(s) for s, c in zip(uniq, cover) if c > 1]):
        errs.add(a, f"records {a}..{b} covered by more than one checkpoint")
    return errs.result(stats)


def verify_duckdb(database_path: str | os.PathLike, schema: str = "main_attestation", *,
                  worm_dir: str | os.PathLike = "data/worm",
                  public_key_path: str | os.PathLike | None = None, public_key: Any = None) -> VerifyResult:
    """Read attestation_ledger / attestation_checkpoints read-only from a DuckDB file and verify them.
    The key is `public_key` (key object or PEM text) or else the file `public_key_path` (default
    <worm_dir>/public_key.pem). Missing database, tables or key raise VerifyUsageError."""
    import duckdb

    from .keys import AttestationKeyError

    db = Path(database_path)
    if not db.is_file():
        raise VerifyUsageError(f"DuckDB file not found: {db}")
    try:
        key = load_public_key(public_key if public_key is not None
                              else public_key_path or Path(worm_dir) / "public_key.pem")
    except AttestationKeyError as e:
        raise VerifyUsageError(str(e)) from e
    # the build's own memory cap (profiles.yml): the ordered pass spills to disk beyond it
    config = {"memory_limit": os.environ.get("MARKETING_SIGNALS_DUCKDB_MEMORY_LIMIT", "4GB")}
    con = duckdb.connect(str(db), read_only=True, config=config)
    try:
        found = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ? and table_name in (?, ?)",
            [schema, LEDGER_TABLE, CHECKPOINT_TABLE]).fetchall()}
        missing = [t for t in (LEDGER_TABLE, CHECKPOINT_TABLE) if t not in found]
        if missing:
            raise VerifyUsageError(f"{db}: schema {schema!r} has no table {', '.join(missing)}")
        q = _quote_ident(schema)
        checkpoints = con.sql(f"select * from {q}.{CHECKPOINT_TABLE} order by checkpoint_no").to_arrow_table()
        # streamed: memory is bounded by a batch of rows, whatever the ledger's size
        return verify_stream(con, f"{q}.{LEDGER_TABLE}", checkpoints, worm_dir, key)
    finally:
        con.close()
