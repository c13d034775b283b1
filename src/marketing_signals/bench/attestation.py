"""Attestation benchmark: the attestation stage exactly as the two dbt Python models run it, on synthetic
candidate records at scale, against the floor "one grouped scan of raw events by customer and signal
type" measured in the same run (capture.FLOOR_SQL).

setup       = candidate records (--records-per-customer per customer, JSON columns built by DuckDB
              json_object as the attestation_candidates model does) and, unless generated demo data is
              there, an events table of ~50 events per customer for the floor (not timed);
ledger      = dbt_bridge.ledger_append (anti-join + ordering in DuckDB, content hashes, hash chain) with
              the returned record-batch stream materialised by DuckDB as dbt-duckdb does;
checkpoints = dbt_bridge.checkpoints_append (link checks, Merkle root, WORM Parquet file, Ed25519 signature);
verify      = verify_duckdb with the public key only (every content hash recomputed, WORM compared);
attestation = the three together.

Each step is its own child process: its wall time and peak RSS (the largest process of its tree, hashing
workers included, as os.wait4 reports it).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from marketing_signals.bench.capture import FLOOR_SQL
from marketing_signals.bench.harness import Measurement, measure, report

EVENTS_PER_CUSTOMER = 50
SIGNAL_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase", "email_open",
                "email_click", "push_open", "search", "review", "return", "support_ticket")
BENCH_SIGNING_SEED = hashlib.sha256(b"marketing_signals attestation bench key").hexdigest()

CANDIDATES_SQL = """
SET TimeZone = 'UTC';
CREATE OR REPLACE TABLE attestation_candidates AS
WITH base AS (
    SELECT i, i // {rpc} AS customer, hash(i, {seed}) AS h1, hash(i + 1, {seed} + 7) AS h2
    FROM range({n}) t(i)
), vals AS (
    SELECT *,
        round((h1 % 1000000) / 1000000.0, 6) AS score,
        (h2 % 400)::INTEGER AS recency, 1 + (h2 // 400 % 59)::INTEGER AS freq,
        round(((h1 // 1000000) % 100000) / 100.0, 2) AS monetary,
        1 + (h1 // 7 % 29)::INTEGER AS ra, 30 + (h2 // 13 % 30)::INTEGER AS rb,
        (h1 // 3 % 4)::INTEGER AS kind, (h2 // 5 % 5)::INTEGER AS dec, (h2 // 11 % 3)::INTEGER AS ret
    FROM base
)
SELECT
    'att-{seed:04d}-' || lpad(i::VARCHAR, 10, '0') AS attestation_id,
    (['cohort_assignment', 'membership_change', 'suppression', 'consent_check'])[kind + 1] AS record_kind,
    (['include', 'exclude', 'suppress', 'allow', 'hold'])[dec + 1] AS decision,
    (['insert', 'update', 'delete', NULL])[(h1 // 17 % 4)::INTEGER + 1] AS op,
    sha256('subscriber:' || customer::VARCHAR) AS subject_digest,
    CASE WHEN h2 % 20 = 0 THEN NULL ELSE 'S' || lpad(customer::VARCHAR, 8, '0') END AS subscriber_id,
    (['rfm', 'kmeans', 'gmm', 'hdbscan', 'lda', 'leiden', 'survival', 'intent', 'word2vec', NULL])
        [(h1 // 19 % 10)::INTEGER + 1] AS method_id,
    'w2026-10' AS window_id,
    'c' || lpad((customer % 40)::VARCHAR, 2, '0') AS cohort_id,
    CASE WHEN h2 % 10 = 0 THEN NULL ELSE score END AS confidence,
    TIMESTAMP '2026-10-01' + to_microseconds((h1 // 23 % 86400000000)::BIGINT) AS decided_at,
    'R' || lpad(ra::VARCHAR, 2, '0') || '|R' || lpad(rb::VARCHAR, 2, '0') AS rule_ids,
    json_object('score', score, 'features', json_object('recency_days', recency, 'frequency', freq,
                'monetary', monetary), 'rules', json_array('R' || lpad(ra::VARCHAR, 2, '0'),
                'R' || lpad(rb::VARCHAR, 2, '0')),
                'explanation', 'Placed in cohort c' || lpad((customer % 40)::VARCHAR, 2, '0') || ' over the '
                    || 'w2026-10 window (confidence ' || score::VARCHAR || '); the main signals are listed in '
                    || 'rationale.top_signals',
                'top_signals', json_array(
                    json_object('signal', 'purchase', 'weight', round(((h1 // 29) % 1000) / 1000.0, 3), 'count', freq),
                    json_object('signal', 'email_click', 'weight', round(((h2 // 31) % 1000) / 1000.0, 3),
                                'count', recency % 17),
                    json_object('signal', 'page_view', 'weight', round(((h1 // 37) % 1000) / 1000.0, 3),
                                'count', recency),
                    json_object('signal', 'add_to_cart', 'weight', round(((h2 // 41) % 1000) / 1000.0, 3),
                                'count', freq % 7)))::VARCHAR AS rationale_json,
    json_object('automated', true, 'legal_or_similar_effect', kind % 2 = 1, 'human_review', 'on_request',
                'contest_channel', 'privacy@example.com')::VARCHAR AS art22_json,
    json_object('ccpa_admt', true, 'opt_out_honoured', true,
                'pre_use_notice', 'notice-v' || (dec % 3)::VARCHAR)::VARCHAR AS admt_json,
    json_object('source', 'raw/events', 'run_id', 'bench-{seed}', 'pipeline', 'dbt',
                'rows_in', {n})::VARCHAR AS custody_json,
    json_object('engine', 'marketing_signals', 'version', '0.2.0', 'host_role', 'dbt-python-model')::VARCHAR
        AS attestor_json,
    (['P3Y', 'P6Y', 'P10Y'])[ret + 1] AS retention_class,
    (DATE '2026-10-01' + to_years(([3, 6, 10])[ret + 1]))::DATE AS retention_until
FROM vals;
"""

EVENTS_SQL = """
COPY (
    SELECT 'e' || i::VARCHAR AS event_id, (hash(i, {seed}) % {customers})::BIGINT AS customer_id,
           (['{types}'])[(hash(i, {seed} + 1) % {ntypes})::INTEGER + 1] AS signal_type,
           TIMESTAMP '2026-01-01' + to_seconds((hash(i, {seed} + 2) % 23000000)::BIGINT) AS occurred_at
    FROM range({n}) t(i)
) TO '{out}' (FORMAT parquet, ROW_GROUP_SIZE 1000000);
"""


# ----------------------------------------------------------------------------- the steps (child processes)
def dbt_settings() -> dict:
    """The DuckDB settings profiles.yml gives dbt's connection (same env vars, same defaults)."""
    return {"memory_limit": os.environ.get("MARKETING_SIGNALS_DUCKDB_MEMORY_LIMIT", "4GB"),
            "threads": int(os.environ.get("MARKETING_SIGNALS_THREADS", "2")),
            "preserve_insertion_order": False}  # (TimeZone: the ledger holds naive UTC TIMESTAMPs)


def _step(name: str, db: str, worm: str) -> None:
    import duckdb

    from marketing_signals.attestation import dbt_bridge
    from marketing_signals.attestation.keys import ENV_SIGNING_KEY
    from marketing_signals.attestation.verify import verify_duckdb

    t = time.perf_counter()
    if name == "ledger":
        con = duckdb.connect(db, config=dbt_settings())
        reader = dbt_bridge.ledger_append(con, con.table("attestation_candidates"), existing=None)
        con.register("__dbt_python_model_df_attestation_ledger", reader)  # what dbt-duckdb's materialize does
        con.execute("create table attestation_ledger as select * from __dbt_python_model_df_attestation_ledger")
        n = con.execute("select count(*) from attestation_ledger").fetchall()[0][0]
        con.close()
        print(f"ledger: {n} records chained in {time.perf_counter() - t:.1f}s")
    elif name == "checkpoints":
        con = duckdb.connect(db, config=dbt_settings())
        cps = dbt_bridge.checkpoints_append(con, con.table("attestation_ledger"), existing=None, worm_dir=worm,
                                            environ={ENV_SIGNING_KEY: BENCH_SIGNING_SEED})
        con.register("__dbt_python_model_df_attestation_checkpoints", cps)
        con.execute("create table attestation_checkpoints as "
                    "select * from __dbt_python_model_df_attestation_checkpoints")
        con.close()
        print(f"checkpoints: {len(cps)} sealed in {time.perf_counter() - t:.1f}s")
    elif name == "verify":
        r = verify_duckdb(db, "main", worm_dir=worm)
        print(f"verify: {r.summary()} in {time.perf_counter() - t:.1f}s")
        if not r.ok:
            raise SystemExit(1)
    else:
        raise SystemExit(f"unknown step {name}")


# ----------------------------------------------------------------------------- the benchmark
def run(customers: int, seed: int, data_dir: Path | None, project_dir: Path, work_dir: Path,
        records_per_customer: int = 62) -> dict:
    import duckdb

    work = work_dir / "attestation"
    db, worm = work / "attestation.duckdb", work / "worm"
    if worm.exists():
        for p in worm.rglob("*"):
            if p.is_file():
                os.chmod(p, 0o644)  # WORM files are read-only
        shutil.rmtree(worm)
    work.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    n = customers * records_per_customer

    # ---------------------------------------------------------------- setup (not timed)
    data_dir = data_dir or project_dir / "data" / "bench" / str(customers)
    events = data_dir / "raw" / "events"
    if events.is_dir() and any(events.glob("*.parquet")):
        events_glob = str((events / "*.parquet").resolve())
        print(f"floor over the generated events in {events}")
    else:
        out = work / "events.parquet"
        print(f"writing {customers * EVENTS_PER_CUSTOMER:,} synthetic events for the floor (not timed) ...", flush=True)
        duckdb.connect().execute(EVENTS_SQL.format(
            seed=seed, customers=customers, n=customers * EVENTS_PER_CUSTOMER, out=out,
            types="', '".join(SIGNAL_TYPES), ntypes=len(SIGNAL_TYPES)))
        events_glob = str(out)
    t = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute("drop table if exists attestation_ledger; drop table if exists attestation_checkpoints")
    meta = {"n": n, "rpc": records_per_customer, "seed": seed, "sql": hashlib.sha256(CANDIDATES_SQL.encode()).hexdigest()}
    have = con.execute("select count(*) from information_schema.tables where table_name = 'bench_meta'").fetchall()[0][0]
    same = have and con.execute("select meta from bench_meta").fetchall()[0][0] == json.dumps(meta)
    if same:
        print(f"reusing the {n:,} candidate records in {db}")
    else:
        print(f"writing {n:,} candidate records ({records_per_customer} per customer) into DuckDB (not timed) ...",
              flush=True)
        con.execute(CANDIDATES_SQL.format(n=n, rpc=records_per_customer, seed=seed))
        con.execute("create or replace table bench_meta as select ? as meta", [json.dumps(meta)])
    con.execute("checkpoint")
    avg = con.execute("select avg(length(rationale_json) + length(art22_json) + length(admt_json) "
                      "+ length(custody_json) + length(attestor_json)) from attestation_candidates").fetchall()[0][0]
    con.close()
    print(f"  {time.perf_counter() - t:.1f}s; {avg:.0f} bytes of JSON per record on average")

    floor_db = work / "floor.duckdb"
    floor_script = "import duckdb,sys; con=duckdb.connect(sys.argv[1]); con.execute(sys.argv[2])"
    print("measuring the floor: one grouped scan of events by customer and signal type ...", flush=True)
    floor = measure("floor: grouped scan (customer, type)",
                    [python, "-c", floor_script, str(floor_db), FLOOR_SQL.format(glob=events_glob)])

    # ---------------------------------------------------------------- the stage, as dbt runs it
    steps: list[Measurement] = []
    for name, what in (("ledger", "ledger_append: anti-join + order (DuckDB), hash + chain, materialise"),
                       ("checkpoints", "checkpoints_append: links, Merkle, WORM write, Ed25519 sign"),
                       ("verify", "verify_duckdb: every hash recomputed, Merkle, WORM compared, signature")):
        print(f"measuring {name}: {what} ...", flush=True)
        m = measure(f"attestation: {name}",
                    [python, "-m", "marketing_signals.bench.attestation", name, str(db), str(worm)],
                    detail=what)
        m.detail = f"{what}; {n / m.wall_s:,.0f} records/s"
        steps.append(m)
    total = Measurement("attestation: ledger + checkpoints", steps[0].wall_s + steps[1].wall_s,
                        max(s.peak_rss_mib for s in steps[:2]), "what a dbt build adds (verify runs on demand)")
    total_all = Measurement("attestation: all three", sum(s.wall_s for s in steps),
                            max(s.peak_rss_mib for s in steps), f"{n / sum(s.wall_s for s in steps):,.0f} records/s")

    con = duckdb.connect(str(db), read_only=True)
    cps = con.execute("select count(*), sum(record_count) from attestation_checkpoints").fetchall()[0]
    con.close()
    worm_bytes = sum(p.stat().st_size for p in (worm / "batches").glob("*.parquet"))
    from marketing_signals.attestation.canonical import hash_workers
    from marketing_signals.attestation.dbt_bridge import batch_rows
    extra = {"records": n, "records_per_customer": records_per_customer, "checkpoints": cps[0],
             "sealed_records": int(cps[1] or 0), "worm_bytes": worm_bytes, "hash_workers": hash_workers(),
             "batch_rows": batch_rows(), "cpu_count": os.cpu_count(), "json_bytes_per_record": round(avg),
             "db_bytes": db.stat().st_size, "duckdb_settings": dbt_settings()}
    print(f"{n:,} records; {cps[0]} checkpoint(s); WORM {worm_bytes / 2**20:,.0f} MiB; "
          f"database {db.stat().st_size / 2**20:,.0f} MiB; hashing workers {hash_workers()}")
    return report("attestation", customers, [floor, *steps, total, total_all], baseline=floor.name,
                  extra=extra, out_dir=project_dir / "bench_results")


if __name__ == "__main__":
    _step(*sys.argv[1:4])
