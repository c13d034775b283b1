"""Capture benchmark, against the floor "one grouped scan of raw events by customer and signal
type" measured in the same run on the same data.

capture  = `dbt run --full-refresh` of everything up to signals_staged (manifest, rule checks,
           duplicate resolution, quarantine, identity resolution), the first load of all events;
read     = the floor's query again, but through signals_staged (validated, deduplicated,
           identity-resolved): what any consumer of the accepted signals pays per full scan;
bound    = a lower bound for any exact capture: every row validated and duplicate event ids
           found in ONE fused aggregation, nothing written (what capture could cost at best).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from marketing_signals.bench.harness import Measurement, measure, report

FLOOR_SQL = """
SET TimeZone = 'UTC';
SET preserve_insertion_order = false;
CREATE OR REPLACE TABLE floor_customer_signal_counts AS
SELECT customer_id, signal_type, count(*) AS events
FROM read_parquet('{glob}')
GROUP BY customer_id, signal_type;
"""


def ensure_data(customers: int, seed: int, data_dir: Path) -> Path:
    """Generated data for this size, reused when a manifest with the same size and seed exists."""
    manifest = data_dir / "manifest.json"
    if manifest.exists():
        meta = json.loads(manifest.read_text())
        if meta.get("customers") == customers and meta.get("seed") == seed:
            print(f"reusing generated data in {data_dir}")
            return data_dir
    print(f"generating {customers:,} customers into {data_dir} (not timed)")
    from marketing_signals.demo.generator import generate
    generate(out_dir=data_dir, customers=customers, seed=seed)
    return data_dir


def run(customers: int, seed: int, data_dir: Path | None, project_dir: Path, work_dir: Path) -> dict:
    data_dir = ensure_data(customers, seed, data_dir or project_dir / "data" / "bench" / str(customers))
    events_glob = str((data_dir / "raw" / "events" / "*.parquet").resolve())
    work_dir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    dbt = str(Path(sys.executable).with_name("dbt"))

    floor_db = work_dir / "floor.duckdb"
    floor_db.unlink(missing_ok=True)
    floor_script = ("import duckdb,sys; con=duckdb.connect(sys.argv[1]); con.execute(sys.argv[2])")
    print("measuring the floor: one grouped scan of raw events by customer and signal type ...")
    floor = measure("floor: grouped scan (customer, type)",
                    [python, "-c", floor_script, str(floor_db), FLOOR_SQL.format(glob=events_glob)])

    capture_db = work_dir / "capture.duckdb"
    capture_db.unlink(missing_ok=True)
    env = os.environ | {
        "DBT_PROFILES_DIR": str(project_dir),
        "MARKETING_SIGNALS_RAW_DIR": str((data_dir / "raw").resolve()),
        "MARKETING_SIGNALS_DUCKDB_PATH": str(capture_db.resolve()),
    }
    target = work_dir / "target"
    common = ["--project-dir", str(project_dir), "--target-path", str(target), "--log-path", str(work_dir / "logs")]
    print("loading registries (not timed) ...")
    measure("setup", [dbt, "seed", "--select", "registry_signal_types", "registry_quarantine_reasons", *common],
            env=env)
    print("measuring capture: dbt run --full-refresh --select +signals_staged +signals_quarantine ...")
    capture = measure("capture: dbt run (whole command)",
                      [dbt, "run", "--full-refresh", "--select", "+signals_staged", "+signals_quarantine", *common],
                      env=env)
    results = json.loads((target / "run_results.json").read_text())["results"]
    per_model = {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results}
    capture_models = Measurement(
        "capture: models only", sum(per_model.values()), capture.peak_rss_mib,
        "sum of dbt's per-model execution times (no dbt start-up): "
        + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(per_model.items(), key=lambda kv: -kv[1])[:4]))

    import duckdb

    from marketing_signals.summary import relation_name
    con = duckdb.connect(str(capture_db), read_only=True)
    staged = relation_name(con, "signals_staged")
    checked = relation_name(con, "int_signal_capture__checked")
    con.close()
    bound_sql = ("SET TimeZone = 'UTC'; SET preserve_insertion_order = false; "
                 "CREATE OR REPLACE TABLE bound_keys AS SELECT event_key FROM "
                 f"(SELECT event_key, count(*) AS n, max(rule_reason) AS r FROM {checked} GROUP BY event_key) "
                 "WHERE n > 1 OR r IS NOT NULL")
    print("measuring the lower bound: validate every row + find duplicate keys in one aggregation ...")
    bound = measure("bound: fused validate + dedup scan", [python, "-c", floor_script, str(capture_db), bound_sql])
    read_sql = (FLOOR_SQL.replace("read_parquet('{glob}')", staged)
                .replace("customer_id", "customer_key").replace("floor_customer_signal_counts", "read_counts"))
    print("measuring a full read: the floor's grouped scan through signals_staged ...")
    read = measure("read: grouped scan of signals_staged", [python, "-c", floor_script, str(capture_db), read_sql],
                   env=env | {"MARKETING_SIGNALS_RAW_DIR": ""})

    con = duckdb.connect(str(capture_db), read_only=True)
    counts = {
        "accepted": con.execute(f"select count(*) from {staged}").fetchone()[0],
        "quarantined": con.execute(f"select count(*) from {relation_name(con, 'signals_quarantine')}").fetchone()[0],
    }
    con.close()
    raw_rows = duckdb.connect().execute(f"select count(*) from read_parquet('{events_glob}')").fetchone()[0]
    print(f"raw rows {raw_rows:,}; accepted {counts.get('accepted', 0):,}; quarantined {counts.get('quarantined', 0):,}")
    result = report("capture", customers, [floor, capture, capture_models, bound, read], baseline=floor.name,
                    extra={"raw_rows": raw_rows, "dispositions": counts, "goal": "capture <= 2.0 x floor"},
                    out_dir=project_dir / "bench_results")
    ratio = capture.wall_s / floor.wall_s
    print(f"goal: capture <= 2.0 x floor -> whole dbt command {ratio:.2f}x, "
          f"models only {capture_models.wall_s / floor.wall_s:.2f}x; a full read of signals_staged "
          f"{read.wall_s / floor.wall_s:.2f}x the same scan of raw; lower bound for any exact capture "
          f"{bound.wall_s / floor.wall_s:.2f}x")
    shutil.rmtree(work_dir / "logs", ignore_errors=True)
    return result
