"""Cohort benchmark: the whole cohort stage (features, 4 SQL + 9 Python methods over 6 windows,
unions, coverage, quality) against the floor "one grouped scan of raw events by customer and
signal type" measured in the same run on the same data.

setup    = seeds + capture (not timed: the capture benchmark covers it);
features = the one event scan (cohort_signal_buckets) and the small tables built from it;
python   = the 9 Python methods: fit on a sample, score every customer in batches — run as its
           own dbt command so its peak RSS is the Python models' own;
rest     = SQL methods, unions, coverage and quality;
cohorts  = features + python + rest (the cohort stage).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from marketing_signals.bench.capture import FLOOR_SQL, ensure_data
from marketing_signals.bench.harness import Measurement, measure, report

FEATURES = ["models/features"]
PYTHON = ["python_models/cohorts", "--exclude", "cohort_quality"]
REST = ["models/cohorts", "cohort_quality"]


def run(customers: int, seed: int, data_dir: Path | None, project_dir: Path, work_dir: Path,
        double: bool = True) -> dict:
    data_dir = ensure_data(customers, seed, data_dir or project_dir / "data" / "bench" / str(customers))
    events_glob = str((data_dir / "raw" / "events" / "*.parquet").resolve())
    work_dir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    dbt = str(Path(sys.executable).with_name("dbt"))

    floor_db = work_dir / "floor.duckdb"
    floor_db.unlink(missing_ok=True)
    floor_script = "import duckdb,sys; con=duckdb.connect(sys.argv[1]); con.execute(sys.argv[2])"
    print("measuring the floor: one grouped scan of raw events by customer and signal type ...")
    floor = measure("floor: grouped scan (customer, type)",
                    [python, "-c", floor_script, str(floor_db), FLOOR_SQL.format(glob=events_glob)])

    db = work_dir / "cohorts.duckdb"
    db.unlink(missing_ok=True)
    env = os.environ | {
        "DBT_PROFILES_DIR": str(project_dir),
        "MARKETING_SIGNALS_RAW_DIR": str((data_dir / "raw").resolve()),
        "MARKETING_SIGNALS_DUCKDB_PATH": str(db.resolve()),
        "MARKETING_SIGNALS_TRUTH_DIR": str((data_dir / "truth").resolve()),
    }
    target = work_dir / "target"
    common = ["--project-dir", str(project_dir), "--target-path", str(target), "--log-path", str(work_dir / "logs")]
    print("setup (not timed): seeds and capture ...")
    measure("setup", [dbt, "seed", *common], env=env)
    measure("setup", [dbt, "run", "--select", "models/staging", "models/capture", *common], env=env)

    steps = []
    for name, select in (("features", FEATURES), ("python methods", PYTHON), ("sql methods + outputs", REST)):
        print(f"measuring {name}: dbt run --select {' '.join(select)} ...")
        m = measure(f"cohorts: {name}", [dbt, "run", "--select", *select, *common], env=env)
        per_model = _per_model(target)
        m.detail = "slowest: " + ", ".join(f"{k} {v:.1f}s" for k, v in
                                           sorted(per_model.items(), key=lambda kv: -kv[1])[:5])
        steps.append(m)
    total = Measurement("cohorts: whole stage", sum(s.wall_s for s in steps), max(s.peak_rss_mib for s in steps),
                        "sum of the three dbt commands; peak RSS is the largest of the three")
    doubled = _python_at_double_size(db, work_dir, env, common, dbt) if double else None

    import duckdb

    from marketing_signals.summary import relation_name
    con = duckdb.connect(str(db), read_only=True)
    coverage = con.execute(f"select status, count(*) from {relation_name(con, 'cohort_coverage')} group by 1").fetchall()
    rows = con.execute(f"select count(*) from {relation_name(con, 'cohort_assignments')}").fetchone()[0]
    not_computed = con.execute(
        f"select method_id, window_id, reason from {relation_name(con, 'cohort_coverage')} "
        f"where status <> 'assigned' order by 1, 2").fetchall()
    con.close()
    print(f"cohort_assignments rows {rows:,}; coverage {dict(coverage)}")
    for m, w, r in not_computed:
        print(f"  not computed: {m} × {w}: {r}")
    rows_out = [floor, *steps, total] + ([doubled] if doubled else [])
    result = report("cohorts", customers, rows_out, baseline=floor.name,
                    extra={"assignment_rows": rows, "coverage": dict(coverage),
                           "not_computed": [list(x) for x in not_computed],
                           "goal": "cohort stage <= 4.0 x floor; peak RSS <= 6 GB"},
                    out_dir=project_dir / "bench_results")
    print(f"goal: cohort stage <= 4.0 x floor -> {total.wall_s / floor.wall_s:.2f}x; "
          f"peak RSS {total.peak_rss_mib / 1024:.2f} GiB (python methods {steps[1].peak_rss_mib / 1024:.2f} GiB)")
    if doubled:
        print(f"python methods at twice the customers: peak RSS {doubled.peak_rss_mib / 1024:.2f} GiB, "
              f"{doubled.peak_rss_mib / steps[1].peak_rss_mib:.2f}x the single size (goal within 1.2x)")
    return result


def _python_at_double_size(db: Path, work_dir: Path, env: dict, common: list, dbt: str) -> Measurement:
    """The Python methods (refit and rescore) on twice the customers: a copy of the database
    whose bucket table holds every customer twice (the copy's keys get a suffix)."""
    import shutil

    import duckdb

    from marketing_signals.summary import relation_name
    copy = work_dir / "cohorts_x2.duckdb"
    shutil.copy(db, copy)
    con = duckdb.connect(str(copy))
    buckets = relation_name(con, "cohort_signal_buckets")
    con.execute(f"insert into {buckets} select customer_key || '~2' as customer_key, * exclude (customer_key) "
                f"from {buckets}")
    n = con.execute(f"select count(distinct customer_key) from {buckets}").fetchone()[0]
    con.close()
    print(f"measuring python methods at twice the customers ({n:,}) ...")
    m = measure("python methods at 2x customers", [dbt, "run", "--full-refresh", "--select", *PYTHON, *common],
                env=env | {"MARKETING_SIGNALS_DUCKDB_PATH": str(copy.resolve())},
                detail=f"{n:,} customers: the bucket table duplicated under new keys; fits redone (full refresh)")
    copy.unlink(missing_ok=True)
    return m


def _per_model(target: Path) -> dict:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results}


SCALING_SCRIPT = """
import sys, duckdb
from marketing_signals.cohorts import bridge
from marketing_signals.summary import relation_name
db, method = sys.argv[1], sys.argv[2]
con = duckdb.connect(db)
con.execute("SET memory_limit = '4GB'")
rel = lambda name: con.table(relation_name(con, name).replace('"', ''))
inputs = bridge.Inputs(con, buckets=rel('cohort_signal_buckets'), window_buckets=rel('cohort_window_buckets'),
                       context=rel('cohort_run_context'), methods=rel('registry_cohort_methods'),
                       sufficiency=rel('cohort_sufficiency'))
settings = bridge.Settings()
fits = bridge.fit_table(method, inputs, settings)
con.register('scaling_fits', fits)
reader = bridge.score_reader(method, inputs, con.table('scaling_fits'), settings)
con.register('scaling_scores', reader)
con.execute('create or replace table scaling_out as select * from scaling_scores')
print(con.execute('select count(*) from scaling_out').fetchone()[0], 'rows')
"""


def run_python_scaling(db: Path, work_dir: Path, methods=("kmeans", "intent"), customers: int = 0) -> dict:
    """Peak RSS of one Python method's fit + batched scoring (streamed into DuckDB, as in dbt)
    on the built database and on a copy whose bucket table holds every customer twice."""
    import shutil

    import duckdb

    from marketing_signals.summary import relation_name
    python = sys.executable
    copy = work_dir / "cohorts_x2.duckdb"
    shutil.copy(db, copy)
    con = duckdb.connect(str(copy))
    buckets = relation_name(con, "cohort_signal_buckets")
    con.execute(f"insert into {buckets} select customer_key || '~2' as customer_key, * exclude (customer_key) "
                f"from {buckets}")
    con.close()
    rows = []
    for method in methods:
        for label, path in (("1x", db), ("2x", copy)):
            print(f"measuring {method} fit + score at {label} customers ...")
            rows.append(measure(f"{method} fit+score {label}", [python, "-c", SCALING_SCRIPT, str(path), method]))
    copy.unlink(missing_ok=True)
    result = report("cohorts-python-scaling", customers, rows, baseline=rows[0].name,
                    extra={"goal": "peak RSS at 2x customers within 1.2x of 1x"}, out_dir=Path("bench_results"))
    for i in range(0, len(rows), 2):
        print(f"{rows[i].name.split()[0]}: peak RSS 2x / 1x = {rows[i + 1].peak_rss_mib / rows[i].peak_rss_mib:.2f}")
    return result
