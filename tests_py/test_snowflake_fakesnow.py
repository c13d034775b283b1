"""The Snowflake path on fakesnow (`make test-snowflake`): dbt-snowflake builds every SQL model
and runs every data test and unit test of the package against fakesnow (DuckDB behind the
Snowflake connector), and every compiled model (and test) parses as Snowflake SQL (sqlglot).

Python models do not run on fakesnow: dbt-snowflake runs them as Snowpark stored procedures,
which need a real Snowflake (their Snowflake execution is covered by the Snowpark tests).
Python model outputs stand in from the DuckDB build: the same generated demo is first built on
DuckDB (the Python models and everything upstream, no tests), every Python model's table is
copied into the fakesnow database (Snowflake column types, upper-case names; see
marketing_signals.snowflake.fakesnow_dbt.load_python_outputs), and the fakesnow build excludes
the Python models, so the SQL models and tests downstream of them read those tables. The tests
defined on Python models run on fakesnow too, against the copied tables. A second fakesnow run
re-builds every incremental SQL model on the built database, so their is_incremental() SQL
(and dbt-snowflake's append / merge / delete+insert) runs and is parsed too.

Streams and root causes are on (the generated demo has stream_metrics). A 700-customer, 240-day demo
(conftest.snowflake_stand_in, shared with test_snowpark_models) keeps the module at a few
minutes on two cores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO, STAND_IN_VARS

pytestmark = [pytest.mark.snowflake, pytest.mark.dbt]

DATABASE = "MARKETING_SIGNALS"   # profiles.yml, target fakesnow
FAKESNOW_VARS = STAND_IN_VARS | {
    "marketing_signals__raw_parquet_dir": "",             # no DuckDB Parquet views: raw tables are loaded
    "marketing_signals__source_database": DATABASE,
    "marketing_signals__source_schema": "RAW",            # where fakesnow_dbt --load-raw puts them
}
# everything but the Python models themselves: `--indirect-selection empty` keeps the tests
# on Python models (and tests declared in python_models/*.yml) in the build
FAKESNOW_SELECTION = ["--indirect-selection", "empty", "--exclude", "resource_type:model,path:python_models"]
# the second run: every incremental SQL model again on the built database (is_incremental()
# true: dbt-snowflake's append / merge / delete+insert), with its tests
INCREMENTAL_SELECTION = ["--select", "config.materialized:incremental,resource_type:model", "--exclude", "path:python_models"]


@pytest.fixture(scope="module")
def fakesnow_build(snowflake_stand_in, tmp_path_factory) -> dict[str, Path]:
    """Target paths (manifest.json, run_results.json, compiled/) of the fakesnow build ("full")
    and of the incremental re-run after it ("incremental")."""
    # 1. DuckDB: the Python models and what they read (seeds, SQL models), no tests (conftest)
    duck, demo_raw = snowflake_stand_in, snowflake_stand_in.raw_dir
    root = tmp_path_factory.mktemp("sf_build")

    # 2. fakesnow: raw tables and the Python model tables loaded, then dbt-snowflake builds the
    #    rest; 3. the incremental models once more
    env = os.environ | {"DBT_PROFILES_DIR": str(REPO), "MARKETING_SIGNALS_WORM_DIR": str(root / "fakesnow" / "worm")}
    runs = {"full": (["--load-raw", str(demo_raw), "--python-outputs", str(duck.db_path),
                      "--python-manifest", str(duck.root / "target" / "manifest.json")], FAKESNOW_SELECTION),
            "incremental": ([], INCREMENTAL_SELECTION)}
    targets = {}
    for run, (loads, selection) in runs.items():
        target = root / "fakesnow" / f"target_{run}"
        cmd = [sys.executable, "-m", "marketing_signals.snowflake.fakesnow_dbt", "--db-path", str(root / "fakesnow" / "db"),
               *loads, "--", "build", "--target", "fakesnow", "--project-dir", str(REPO),
               "--target-path", str(target), "--log-path", str(root / "fakesnow" / f"logs_{run}"),
               "--vars", json.dumps(FAKESNOW_VARS), *selection]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
        (root / "fakesnow" / f"{run}.log").write_text(proc.stdout + proc.stderr)
        if not (target / "run_results.json").exists():
            pytest.fail(f"the fakesnow {run} build did not run ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
        targets[run] = target
    return targets


def _manifest(target: Path) -> dict:
    return json.loads((target / "manifest.json").read_text())


def _failures(target: Path) -> tuple[list[dict], dict[str, str]]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    print(f"fakesnow {target.name}:", dict(Counter(f"{r['unique_id'].split('.')[0]} {r['status']}" for r in results)))
    return results, {r["unique_id"]: f"{r['status']}: {(r.get('message') or '').strip()[:300]}"
                     for r in results if r["status"] not in ("success", "pass", "no-op")}


def test_fakesnow_build_passes(fakesnow_build):
    """Every SQL model, seed, data test and unit test ran on fakesnow and passed."""
    target = fakesnow_build["full"]
    results, bad = _failures(target)
    assert not bad, f"{len(bad)} of {len(results)} nodes failed on fakesnow:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(bad.items()))
    manifest = _manifest(target)
    expected = {uid for uid, node in manifest["nodes"].items()
                if node["resource_type"] in ("seed", "test")
                or (node["resource_type"] == "model" and node.get("language") == "sql")}
    expected |= set(manifest.get("unit_tests", {}))
    ran = {r["unique_id"] for r in results}
    assert not expected - ran, f"not run on fakesnow: {sorted(expected - ran)}"
    python_models = {uid for uid, node in manifest["nodes"].items()
                     if node["resource_type"] == "model" and node.get("language") == "python"}
    assert python_models and not python_models & ran, "Python models must stand in from DuckDB, not run"


def test_fakesnow_incremental_rerun_passes(fakesnow_build):
    """A second run of every incremental SQL model (their is_incremental() branch) and its tests."""
    results, bad = _failures(fakesnow_build["incremental"])
    models = [r for r in results if r["unique_id"].startswith("model.")]
    assert len(models) >= 5, f"only {len(models)} incremental models re-ran"
    assert not bad, f"{len(bad)} of {len(results)} nodes failed on the incremental re-run:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(bad.items()))


def test_compiled_models_parse_as_snowflake_sql(fakesnow_build):
    """sqlglot (read="snowflake") parses every compiled SQL model of the fakesnow build as one
    query, and the incremental branch of each incremental model."""
    from marketing_signals.snowflake.sqlglot_check import compiled_sql_models, unparsable_models

    models = compiled_sql_models(fakesnow_build["full"])
    assert len(models) > 50, f"only {len(models)} SQL models in the manifest"
    failures = unparsable_models(fakesnow_build["full"])
    rerun = {name for name, path in compiled_sql_models(fakesnow_build["incremental"]).items() if path is not None}
    assert rerun, "the incremental re-run compiled no model"
    failures |= {f"{name} (incremental)": why for name, why in unparsable_models(fakesnow_build["incremental"]).items()
                 if name in rerun}
    assert not failures, (f"{len(failures)} compiled SQL models do not parse as Snowflake SQL (of {len(models)}):\n"
                          + "\n".join(f"{name}: {why}" for name, why in failures.items()))


def test_compiled_tests_parse_as_snowflake_sql(fakesnow_build):
    """The same for every data test and unit test the fakesnow build compiled."""
    from marketing_signals.snowflake.sqlglot_check import compiled_sql_models, unparsable_models

    tests = compiled_sql_models(fakesnow_build["full"], ("test", "unit_test"))
    failures = unparsable_models(fakesnow_build["full"], ("test", "unit_test"))
    assert not failures, (f"{len(failures)} of {len(tests)} compiled tests do not parse as Snowflake SQL:\n"
                          + "\n".join(f"{name}: {why}" for name, why in failures.items()))
