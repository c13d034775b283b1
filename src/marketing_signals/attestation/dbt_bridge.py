"""Glue for the dbt Python models `attestation_ledger` and `attestation_checkpoints` (dbt-duckdb).

Both models are incremental appends: each call returns only the new rows. `ledger_append` chains the
candidates that are not in the ledger yet (by attestation_id, so a re-run appends nothing twice) onto the
ledger's last record; `checkpoints_append` seals every batch after the last checkpoint. `session` is the
DuckDB connection dbt hands to the model; relations may be DuckDB relations, pandas frames or Arrow
tables, or (for `existing`) the model's own `dbt.this`.

Memory is bounded by a batch of rows, not by the run: the anti-join against the ledger and the ordering
happen in DuckDB, and rows stream through the hashing / sealing as Arrow record batches of
$MARKETING_SIGNALS_ATTESTATION_BATCH_ROWS rows (default 200000).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from .. import frames as FR
from .checkpoint import empty_checkpoints, last_checkpoint, seal, seal_stream
from .keys import load_signer
from .canonical import submit_content_digests
from .ledger import _anchor, _validate_candidates, batch_id_for, link_rows, prepare_rows
from .schema import CANDIDATE_COLUMNS, CHECKPOINT_COLUMNS, LEDGER_SCHEMA, REQUIRED_CANDIDATE_COLUMNS

DEFAULT_WORM_DIR = "data/worm"
ENV_WORM_DIR = "MARKETING_SIGNALS_WORM_DIR"
ENV_BATCH_ROWS = "MARKETING_SIGNALS_ATTESTATION_BATCH_ROWS"
DEFAULT_BATCH_ROWS = 200_000
_CANDIDATES_VIEW = "__marketing_signals_attestation_candidates"


def batch_rows(environ: dict | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = env.get(ENV_BATCH_ROWS)
    if raw in (None, ""):
        return DEFAULT_BATCH_ROWS
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_BATCH_ROWS} must be a positive integer, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"{ENV_BATCH_ROWS} must be a positive integer, got {raw!r}")
    return n


def _frame(relation: Any) -> pd.DataFrame:
    if isinstance(relation, pd.DataFrame):
        return relation
    if hasattr(relation, "df"):
        return relation.df()
    raise TypeError(f"expected a DuckDB relation or a pandas DataFrame, got {type(relation).__name__}")


def _name(existing: Any) -> str:
    return str(existing)  # dbt.this renders as "database"."schema"."identifier"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source_sql(cur, candidates: Any) -> str:
    """SQL (on the cursor `cur`) that selects the candidates."""
    if isinstance(candidates, (pd.DataFrame, pa.Table)):
        cur.register(_CANDIDATES_VIEW, candidates)
        return _q(_CANDIDATES_VIEW)
    if isinstance(candidates, str):
        return candidates
    if hasattr(candidates, "sql_query"):  # a DuckDB relation (dbt.ref): its SQL runs on any cursor of the db
        sql = candidates.sql_query()
        try:
            cur.execute(f"select * from ({sql}) limit 0").fetchall()
            return f"({sql})"
        except Exception:  # noqa: BLE001 - e.g. a relation over objects registered on its own connection
            cur.register(_CANDIDATES_VIEW, candidates.to_arrow_table())
            return _q(_CANDIDATES_VIEW)
    raise TypeError(f"expected a DuckDB relation, a table name, a pandas DataFrame or an Arrow table, "
                    f"got {type(candidates).__name__}")


def _empty_reader() -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(LEDGER_SCHEMA, iter(()))


def ledger_append(session, candidates: Any, existing: Any = None) -> pa.RecordBatchReader:
    """The next ledger batch as a stream of Arrow record batches (LEDGER_SCHEMA): the candidates not yet
    attested, ordered in DuckDB by (decided_at, record_kind, attestation_id) and chained onto the ledger's
    last record a batch of rows at a time, all under one batch_id: row for row the same as `chain` on
    all of them at once. Nothing new -> an empty reader with the schema.

    The rows are read through a separate cursor of `session`, so dbt can consume the reader with
    statements of its own on `session` (register + create table as select)."""
    rows_per_batch = batch_rows()
    if FR.is_snowpark(session):
        return _ledger_append_snowpark(session, candidates, existing, rows_per_batch)
    cur = session.cursor()
    try:
        src = _source_sql(cur, candidates)
        probe = cur.execute(f"select * from {src} limit 0")
        cols = [d[0] for d in probe.description]
        probe.fetchall()  # DuckDB refuses new work on a cursor with an unfinished result
        _validate_candidates(pd.DataFrame(columns=cols))
        last_seq, last_hash = 0, None
        if existing is not None:
            tail = cur.execute(f"select sequence_no, record_hash from {_name(existing)} "
                               "order by sequence_no desc limit 1").fetchall()
            if tail:
                last_seq, last_hash = int(tail[0][0]), str(tail[0][1])
        select = ", ".join(_q(c) for c in CANDIDATE_COLUMNS)
        new = f"select {select} from {src} as c"
        if last_hash is not None:
            new += (f" where not exists (select 1 from {_name(existing)} as e "
                    "where e.attestation_id = c.attestation_id)")
        nulls = ", ".join(f"count(*) - count({_q(c)})" for c in REQUIRED_CANDIDATE_COLUMNS)
        stats = cur.execute(f"select count(*), count(distinct attestation_id), {nulls} from ({new})").fetchall()[0]
        total = int(stats[0])
        bad = [f"{c} ({k} rows)" for c, k in zip(REQUIRED_CANDIDATE_COLUMNS, stats[2:]) if k]
        if bad:
            raise ValueError(f"attestation candidates: null values in required columns: {', '.join(bad)}")
        if int(stats[1]) != total:  # attestation_id is not null here (checked above)
            dup = cur.execute(f"select attestation_id from ({new}) group by 1 having count(*) > 1 "
                              "order by 1").fetchall()
            raise ValueError(f"attestation candidates: duplicate attestation_id ({len(dup)} values), "
                             f"e.g. {', '.join(repr(d[0]) for d in dup[:5])}")
    except BaseException:
        cur.close()
        raise
    if total == 0:
        cur.close()
        return _empty_reader()
    query = f"{new} order by decided_at, record_kind, attestation_id"
    return pa.RecordBatchReader.from_batches(
        LEDGER_SCHEMA, _chained(cur, query, rows_per_batch, last_seq, last_hash, total))


def _ledger_append_snowpark(session, candidates, existing, rows_per_batch: int):
    """Snowflake (Snowpark): the same batch as a Snowpark DataFrame. The chain is sequential by
    nature, so the new candidates (one run's decisions) are read to the procedure's node in
    chain order and hashed there a batch of rows at a time; the anti-join runs in Snowflake."""
    from snowflake.snowpark import functions as F

    fr = FR.for_session(session)
    cand = session.table(candidates) if isinstance(candidates, str) else candidates
    _validate_candidates(pd.DataFrame(columns=[c.strip('"').lower() for c in cand.columns]))
    last_seq, last_hash = 0, None
    if existing is not None:
        ex = session.table(str(existing)) if not FR.is_snowpark(existing) else existing
        tail = fr.pandas(ex.sort(F.col("SEQUENCE_NO").desc()).limit(1).select("SEQUENCE_NO", "RECORD_HASH"))
        if len(tail):
            last_seq, last_hash = int(tail["sequence_no"].iloc[0]), str(tail["record_hash"].iloc[0])
    new = cand.select(*[F.col(c.upper()) for c in CANDIDATE_COLUMNS])
    if last_hash is not None:
        new = new.join(ex.select(F.col("ATTESTATION_ID").alias("_SEEN")),
                       F.col("ATTESTATION_ID") == F.col("_SEEN"), how="leftanti")
    rows = fr.pandas(new)
    bad = [f"{c} ({int(k)} rows)" for c in REQUIRED_CANDIDATE_COLUMNS if (k := rows[c].isna().sum())]
    if bad:
        raise ValueError(f"attestation candidates: null values in required columns: {', '.join(bad)}")
    dup = rows["attestation_id"][rows["attestation_id"].duplicated()].drop_duplicates().sort_values()
    if len(dup):
        raise ValueError(f"attestation candidates: duplicate attestation_id ({len(dup)} values), "
                         f"e.g. {', '.join(repr(d) for d in dup[:5])}")
    if rows.empty:
        return fr.output(pa.Table.from_batches([], schema=LEDGER_SCHEMA))
    rows = rows.sort_values(["decided_at", "record_kind", "attestation_id"], kind="stable")
    table = pa.Table.from_pandas(rows, preserve_index=False)
    batches = table.to_batches(rows_per_batch)
    return fr.output(pa.Table.from_batches(
        list(_chain_batches(batches, rows_per_batch, last_seq, last_hash, len(rows))), schema=LEDGER_SCHEMA))


def _chained(cur, query: str, rows_per_batch: int, last_seq: int, last_hash: str | None,
             total: int) -> Iterator[pa.RecordBatch]:
    """The candidates of `query` (read through `cur`, which is closed at the end) chained."""
    try:
        yield from _chain_batches(cur.sql(query).to_arrow_reader(rows_per_batch), rows_per_batch, last_seq,
                                  last_hash, total)
    finally:
        cur.close()


def _chain_batches(reader, rows_per_batch: int, last_seq: int, last_hash: str | None,
                   total: int) -> Iterator[pa.RecordBatch]:
    """Pipelined: while the hashing workers hash batch k+1 (its sequence numbers and batch id are known
    from the row counts alone), batch k is chained and handed to the engine."""
    batch_id = batch_id_for(last_seq + 1)
    prev = _anchor(last_seq, last_hash)
    next_seq = last_seq + 1
    done = 0
    last_key = None
    pending = None  # (prepared rows, digest getter)

    def finish(job) -> pa.Table:
        nonlocal prev, done
        rows, digests = job
        out = link_rows(rows, digests(), prev)
        prev = out.column("record_hash")[out.num_rows - 1].as_py()
        done += out.num_rows
        return out

    for rb in _rebatch(reader, rows_per_batch):
        rows = prepare_rows(pa.Table.from_batches([rb]), first_sequence_no=next_seq, batch_id=batch_id)
        n = rows.num_rows
        first_key = (rows.column("decided_at")[0].value, rows.column("record_kind")[0].as_py(),
                     rows.column("attestation_id")[0].as_py())
        if last_key is not None and not last_key < first_key:  # DuckDB's order must be chain()'s
            raise RuntimeError(f"candidates not in (decided_at, record_kind, attestation_id) order across "
                               f"batches: {last_key!r} then {first_key!r}")
        last_key = (rows.column("decided_at")[n - 1].value, rows.column("record_kind")[n - 1].as_py(),
                    rows.column("attestation_id")[n - 1].as_py())
        next_seq += n
        job = (rows, submit_content_digests(rows))
        if pending is not None:
            yield from finish(pending).to_batches()
        pending = job
    if pending is not None:
        yield from finish(pending).to_batches()
    if done != total:
        raise RuntimeError(f"attestation ledger: chained {done} rows, expected {total}")


def _rebatch(reader, rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches of exactly `rows` rows (the last may be shorter) from any stream of batches."""
    buf: list[pa.RecordBatch] = []
    have = 0
    for rb in reader:
        if rb.num_rows == 0:
            continue
        buf.append(rb)
        have += rb.num_rows
        while have >= rows:
            t = pa.Table.from_batches(buf)
            yield t.slice(0, rows).combine_chunks().to_batches()[0]
            rest = t.slice(rows)
            buf = rest.combine_chunks().to_batches() if rest.num_rows else []
            have = rest.num_rows
    if have:
        t = pa.Table.from_batches(buf).combine_chunks()
        yield t.to_batches()[0]


def checkpoints_append(session, ledger: Any, existing: Any = None, worm_dir: str | os.PathLike | None = None,
                       *, environ: dict | None = None, recheck_content: bool = False,
                       _previous: dict | None = None) -> pd.DataFrame:
    """Checkpoints for every ledger batch after the last sealed one (WORM files written, rows signed).
    A DuckDB relation is read in sequence_no order as a stream of record batches (see `seal_stream`)."""
    env = os.environ if environ is None else environ
    worm_dir = worm_dir or env.get(ENV_WORM_DIR) or DEFAULT_WORM_DIR
    previous = None
    snowpark = FR.is_snowpark(session)
    if existing is not None and snowpark:
        from snowflake.snowpark import functions as F
        ex = session.table(str(existing)) if not FR.is_snowpark(existing) else existing
        prev = FR.for_session(session).pandas(ex.sort(F.col("CHECKPOINT_NO").desc()).limit(1))
        previous = last_checkpoint(prev[CHECKPOINT_COLUMNS]) if len(prev) else None
    elif existing is not None:
        prev = session.execute(f"select * from {_name(existing)} order by checkpoint_no desc limit 1").df()
        previous = last_checkpoint(prev[CHECKPOINT_COLUMNS]) if len(prev) else None
    previous = previous if _previous is None else _previous
    after = int(previous["last_sequence_no"]) if previous else 0
    if snowpark:  # the batches to seal (one run's rows) are read to the procedure's node
        from snowflake.snowpark import functions as F
        rel = session.table(ledger) if isinstance(ledger, str) else ledger
        ledger = FR.for_session(session).pandas(rel.filter(F.col("SEQUENCE_NO") > F.lit(after)))
        out = checkpoints_append(None, ledger, None, worm_dir, environ=environ, recheck_content=recheck_content,
                                 _previous=previous)
        return FR.for_session(session).output(out)
    if isinstance(ledger, pd.DataFrame):
        rows = ledger[pd.to_numeric(ledger["sequence_no"]) > after].sort_values("sequence_no")
        if len(rows) == 0:
            return empty_checkpoints()
        signer = load_signer(worm_dir, environ=env)
        return seal(rows, previous_checkpoint=previous, worm_dir=worm_dir, signer=signer,
                    recheck_content=recheck_content)
    rel = ledger.filter(f"sequence_no > {after}")
    if rel.aggregate("count(*)").fetchall()[0][0] == 0:
        return empty_checkpoints()
    signer = load_signer(worm_dir, environ=env)
    reader = rel.order("sequence_no").to_arrow_reader(batch_rows(env))
    return seal_stream(reader, previous_checkpoint=previous, worm_dir=worm_dir, signer=signer,
                       recheck_content=recheck_content)
