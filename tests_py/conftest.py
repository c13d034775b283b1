"""Shared fixtures: real `dbt` invocations against DuckDB on small generated data.

Each dbt project run gets its own DuckDB file and target path under pytest's tmp dir, so tests
never touch the demo database and can run after `make demo` or on a fresh clone.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
DBT = str(Path(sys.executable).with_name("dbt"))
SHARED_DATASETS = REPO.parent / "shared" / "datasets"
# Session fixtures that several modules share: their modules run on one pytest-xdist worker.
SHARED_BUILDS = ("refresh_project", "built_project", "small_demo", "snowflake_stand_in")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """With `--dist loadgroup` (make test), every test goes to the group of its module, or of
    the shared session build its module uses, so a module's fixtures are built once, on one
    worker. Runs before pytest-xdist reads the groups (pytest 9.2 breaks that: pinned 9.1)."""
    by_module: dict[Path, set[str]] = {}
    for item in items:
        by_module.setdefault(item.path, set()).update(set(getattr(item, "fixturenames", ())) & set(SHARED_BUILDS))
    for item in items:
        shared = sorted(by_module[item.path])
        item.add_marker(pytest.mark.xdist_group(shared[0] if shared else item.path.stem))


@dataclass
class DbtProject:
    """One DuckDB database + raw data folder + target path, driven through the dbt CLI."""
    root: Path
    raw_dir: Path
    db_path: Path
    vars: str | None = None
    truth_dir: Path | None = None

    def env(self) -> dict:
        return os.environ | {
            "DBT_PROFILES_DIR": str(REPO),
            "MARKETING_SIGNALS_RAW_DIR": str(self.raw_dir),
            "MARKETING_SIGNALS_DUCKDB_PATH": str(self.db_path),
            "MARKETING_SIGNALS_TRUTH_DIR": str(self.truth_dir or ""),
            "MARKETING_SIGNALS_WORM_DIR": str(self.worm_dir),
        }

    @property
    def worm_dir(self) -> Path:
        """Write-once attestation batches and the (demo) signing key of this project."""
        return self.root / "worm"

    def dbt(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [DBT, *args, "--project-dir", str(REPO), "--target-path", str(self.root / "target"),
               "--log-path", str(self.root / "logs")]
        if self.vars:
            cmd += ["--vars", self.vars]
        proc = subprocess.run(cmd, env=self.env(), capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"dbt {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
        return proc

    def query(self, sql: str, params: list | None = None):
        con = duckdb.connect(str(self.db_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def relation(self, name: str) -> str:
        from marketing_signals.summary import relation_name
        con = duckdb.connect(str(self.db_path), read_only=True)
        try:
            return relation_name(con, name)
        finally:
            con.close()

    def copy(self, dest: Path) -> "DbtProject":
        """A second project sharing the raw data, starting from a copy of this database."""
        dest.mkdir(parents=True, exist_ok=True)
        db = dest / "copy.duckdb"
        shutil.copy(self.db_path, db)
        if self.worm_dir.exists():
            shutil.copytree(self.worm_dir, dest / "worm")
        return DbtProject(dest, self.raw_dir, db, self.vars, self.truth_dir)


def generate_demo(out: Path, customers: int, seed: int = 7, **kwargs) -> Path:
    from marketing_signals.demo.generator import generate
    generate(out_dir=out, customers=customers, seed=seed, **kwargs)
    return out


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """Generated demo data at a size where every defect category still has rows."""
    out = tmp_path_factory.mktemp("demo_small")
    return generate_demo(out, customers=4000, defect_rate=0.002)


# capture (with its seeds, unit and data tests) and nothing after it: the later stages are
# built and tested by test_cohorts_dbt (up to membership), refresh_project (membership to
# attestation) and test_streams_dbt (streams and root causes)
CAPTURE_ONLY = ("--exclude", "path:models/features", "path:models/cohorts", "path:models/membership",
                "path:models/compliance", "path:models/emission", "path:models/attestation", "path:models/streams", "path:models/rca",
                "path:python_models")


@pytest.fixture(scope="session")
def built_project(small_demo, tmp_path_factory) -> DbtProject:
    """`dbt build` of the capture stage (seeds, models, unit and data tests) on the small demo,
    once per session, for the capture tests."""
    root = tmp_path_factory.mktemp("build")
    project = DbtProject(root, small_demo / "raw", root / "marketing_signals.duckdb",
                         vars='{"marketing_signals__coverage_severity": "error", "marketing_signals__streams_enabled": false}')
    project.dbt("build", *CAPTURE_ONLY)
    return project


# selectors for the stage after membership (compliance decisions, emission, attestation), for
# builds that test earlier stages only
EMISSION_STAGE = ["path:models/emission", "path:models/attestation", "path:python_models/attestation",
                  "compliance_evaluations", "compliance_violations"]

# a few SQL methods and Python methods that re-score only changed customers (CI time budget);
# between them they feed all 8 subscribers
REFRESH_METHODS = ["rfm", "funnel", "journey", "persona", "kmeans"]


def refresh_vars(methods=REFRESH_METHODS, **extra) -> str:
    import json
    return json.dumps({"marketing_signals__cohort_methods": methods,
                       "marketing_signals__cohort_fit_sample": 4000,
                       "marketing_signals__streams_enabled": False} | extra)


@pytest.fixture(scope="session")
def refresh_project(tmp_path_factory) -> DbtProject:
    """3,000 generated customers, five methods, one `dbt build`: the membership, emission and
    attestation tests share it (each test leaves it valid for the others)."""
    data = generate_demo(tmp_path_factory.mktemp("refresh_demo"), customers=3000, seed=5)
    root = tmp_path_factory.mktemp("refresh_build")
    project = DbtProject(root, data / "raw", root / "refresh.duckdb", vars=refresh_vars())
    project.dbt("build")
    return project


# The Snowflake-path tests (test_snowflake_fakesnow, test_snowpark_models) share one DuckDB
# build of a small demo: the Python models and everything upstream, no tests. DoWhy for a few
# hypotheses, few refuter draws, one ETS fit per stream: cheap settings, same code paths.
SNOWFLAKE_DEMO = {"customers": 700, "seed": 42, "days": 240}  # 240 days: Snowpark's local engine is slow
STAND_IN_VARS = {"marketing_signals__rca_identify_min_posterior": 0.95, "marketing_signals__rca_identify_max": 8,
                 "marketing_signals__rca_refuter_simulations": 5, "marketing_signals__forecast_fit_sample": 1,
                 "marketing_signals__cohort_methods": ["rfm", "funnel", "journey", "persona", "kmeans"]}


@pytest.fixture(scope="session")
def snowflake_stand_in(tmp_path_factory) -> DbtProject:
    import json
    demo = generate_demo(tmp_path_factory.mktemp("sf_demo"), **SNOWFLAKE_DEMO)
    root = tmp_path_factory.mktemp("sf_stand_in")
    project = DbtProject(root, demo / "raw", root / "stand_in.duckdb", vars=json.dumps(STAND_IN_VARS),
                         truth_dir=demo / "truth")
    project.dbt("build", "--select", "+path:python_models", "--exclude-resource-type", "test", "unit_test")
    return project
