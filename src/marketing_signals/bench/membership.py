"""Membership refresh benchmark: a full `dbt build` of capture → cohorts → membership, then one
hour of new events (0.1% of the events by default) appended as a new Parquet file, then the
incremental `dbt build` that re-features and re-scores only the changed customers. The baseline
is the full build measured in the same run; the goal is incremental ≤ 10% of it and ≤ 60 s.

The raw folder is a scratch copy made of symlinks to the generated files plus the appended
file, so the generated data is never modified. --methods limits the cohort methods (var
marketing_signals__cohort_methods) for both builds alike.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from marketing_signals.bench.capture import ensure_data
from marketing_signals.bench.harness import measure, report


def _scratch_raw(data_dir: Path, work_dir: Path) -> Path:
    raw = work_dir / "raw"
    if raw.exists():
        for p in sorted(raw.rglob("*"), reverse=True):
            p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
    for table_dir in (data_dir / "raw").iterdir():
        (raw / table_dir.name).mkdir(parents=True, exist_ok=True)
        for f in table_dir.glob("*.parquet"):
            (raw / table_dir.name / f.name).symlink_to(f.resolve())
    return raw


def append_hour(raw: Path, share: float, seed: int) -> int:
    """Append `share` of the event count as events in the hour after the newest event, received
    after the current watermark, for existing customers (sampled from the last 90 days' rows)."""
    glob = str(raw / "events" / "*.parquet")
    con = duckdb.connect()
    # the newest *valid* event time: generated data carries injected future-dated defect rows,
    # and events an hour after those would all be quarantined as occurred_in_future
    total, newest, watermark = con.execute(
        f"select count(*), max(occurred_at) filter (where occurred_at <= received_at), max(received_at) "
        f"from read_parquet('{glob}')").fetchone()
    n = max(1, int(total * share))
    # filter first, then sample (a SAMPLE clause would apply before the WHERE)
    rows = con.execute(
        f"select * from (select * from read_parquet('{glob}') where occurred_at > ? - interval 90 day) "
        f"using sample reservoir({n} rows) repeatable ({seed})", [newest]).df()
    con.close()
    rng = np.random.default_rng(seed)
    rows["event_id"] = [f"bench_append_{seed}_{i:09d}" for i in range(len(rows))]
    rows["occurred_at"] = newest + pd.to_timedelta(rng.uniform(1, 3600, len(rows)), unit="s")
    rows["received_at"] = watermark + pd.to_timedelta(rng.uniform(1, 3600, len(rows)), unit="s")
    rows.to_parquet(raw / "events" / f"append-{seed}.parquet", index=False)
    return len(rows)


def run(customers: int, seed: int, data_dir: Path | None, project_dir: Path, work_dir: Path,
        methods: list[str] | None = None, share: float = 0.001) -> dict:
    data_dir = ensure_data(customers, seed, data_dir or project_dir / "data" / "bench" / str(customers))
    work_dir = work_dir / "membership"
    work_dir.mkdir(parents=True, exist_ok=True)
    raw = _scratch_raw(data_dir, work_dir)
    dbt = str(Path(sys.executable).with_name("dbt"))
    db = work_dir / "membership.duckdb"
    db.unlink(missing_ok=True)
    env = os.environ | {
        "DBT_PROFILES_DIR": str(project_dir),
        "MARKETING_SIGNALS_RAW_DIR": str(raw.resolve()),
        "MARKETING_SIGNALS_DUCKDB_PATH": str(db.resolve()),
        "MARKETING_SIGNALS_TRUTH_DIR": "",
    }
    target = work_dir / "target"
    common = ["--project-dir", str(project_dir), "--target-path", str(target), "--log-path", str(work_dir / "logs")]
    if methods:
        common += ["--vars", json.dumps({"marketing_signals__cohort_methods": methods})]

    print("full build (baseline): dbt build ...", flush=True)
    full = measure("full build", [dbt, "build", *common], env=env)
    full.detail = _slowest(target)
    appended = append_hour(raw, share, seed)
    print(f"appended {appended:,} events (one hour); incremental dbt build ...", flush=True)
    incremental = measure("incremental refresh", [dbt, "build", *common], env=env)
    incremental.detail = _slowest(target)

    from marketing_signals.summary import relation_name
    con = duckdb.connect(str(db), read_only=True)
    log = con.execute(f"select mode, customers_in_scope, membership_changes, transitions "
                      f"from {relation_name(con, 'cohort_refresh_log')} order by completed_at").fetchall()
    con.close()
    mode, in_scope, changes, transitions = log[-1]
    ratio = incremental.wall_s / full.wall_s
    print(f"incremental: mode {mode}, {in_scope:,} customers re-scored, {changes:,} membership changes, "
          f"{transitions:,} transitions; {ratio:.1%} of the full build "
          f"(goal ≤ 10% and ≤ 60 s: {'met' if ratio <= 0.10 and incremental.wall_s <= 60 else 'NOT met'})")
    return report("membership", customers, [full, incremental], baseline="full build",
                  extra={"appended_events": appended, "methods": methods or "all", "refresh_mode": mode,
                         "customers_in_scope": in_scope, "membership_changes": changes,
                         "transitions": transitions, "incremental_share_of_full": ratio})


def _slowest(target: Path) -> str:
    """Time by resource type (models vs data tests, from run_results.json) and the slowest nodes."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    by_kind: dict[str, float] = {}
    for r in results:
        kind = r["unique_id"].split(".")[0]
        by_kind[kind] = by_kind.get(kind, 0.0) + r["execution_time"]
    slowest = sorted(results, key=lambda r: -r["execution_time"])[:6]
    return ("node time by kind: " + ", ".join(f"{k} {v:.0f}s" for k, v in sorted(by_kind.items()))
            + "; slowest: " + ", ".join(f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.1f}s" for r in slowest))
