"""Every dbt Python model file, run on both engines with the same input: on DuckDB (the
connection and relations dbt-duckdb hands it) and on a Snowpark local testing session (the
same tables as Snowpark DataFrames with upper-case columns, as Snowflake holds them), through
the frame adapter. The results must agree.

The input is the small DuckDB build conftest.snowflake_stand_in (streams and root causes on,
kmeans as the Python cohort method; shared with test_snowflake_fakesnow). Each model file is
called the way dbt calls it -- model(dbt, session) -- with a stand-in `dbt` object that
resolves ref() / source() / config.get() from that build's manifest, as a first build
(is_incremental False): every model on DuckDB first, then, with the stream and root-cause
engine caches cleared (so nothing computed on DuckDB is reused), every model on Snowpark. The
other eight Python cohort methods' fit and score paths are compared on their own test
warehouse in test_snowpark_engine.py.

Tolerance: strings, integers, booleans and dates equal; floats within 1e-9 relative (absolute
below 1); wall-clock columns (when a row was computed, how long it took) and the checkpoint
signature, which covers its own sealing time, are not compared.
"""
from __future__ import annotations

import importlib.util
import json
import os

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

pytest.importorskip("snowflake.snowpark", reason="snowflake-snowpark-python is a dev dependency (make venv)")

from snowflake.snowpark import Session  # noqa: E402

from conftest import REPO  # noqa: E402
from marketing_signals import frames as FR  # noqa: E402
from test_snowpark_engine import _hash_stand_in  # noqa: E402,F401  (registers the HASH stand-in)

pytestmark = [pytest.mark.dbt, pytest.mark.snowflake]

WALL_CLOCK = {"fitted_at", "fit_seconds", "computed_at", "sealed_at", "signature", "checkpoint_hash",
              "created_at", "scored_at", "attested_at", "ranked_at"}
FLOAT_RTOL = 1e-9


@pytest.fixture(scope="module")
def manifest(snowflake_stand_in) -> dict:
    return json.loads((snowflake_stand_in.root / "target" / "manifest.json").read_text())


# the other Python cohort methods: fit and score compared in test_snowpark_engine.py
OTHER_METHODS = tuple(f"cohort_{p}{m}" for m in ("hierarchical", "dbscan", "gaussian_mixture", "lda_topics", "word2vec",
                                                 "graph_clustering", "survival", "intent") for p in ("", "fit_"))


MODEL_FILES = sorted(p.stem for p in (REPO / "python_models").rglob("*.py") if p.stem not in OTHER_METHODS)


def python_models(manifest) -> list[dict]:
    return sorted((n for n in manifest["nodes"].values()
                   if n["resource_type"] == "model" and n["language"] == "python" and n["name"] not in OTHER_METHODS),
                  key=lambda n: n["name"])


class _Config:
    def __init__(self, config: dict):
        self._config = config

    def __call__(self, **kwargs):
        return ""

    def get(self, key, default=None):
        return self._config.get(key, default)


class FakeDbt:
    """What a Python model sees of `dbt` on a first build: ref, source, config, is_incremental."""

    def __init__(self, node: dict, manifest: dict, resolve):
        self._node, self._manifest, self._resolve = node, manifest, resolve
        self.config = _Config(node["config"])
        self.is_incremental = False
        self.this = None

    def ref(self, name: str):
        return self._resolve(name)

    def source(self, source_name: str, table_name: str):
        src = next(s for s in self._manifest["sources"].values()
                   if s["source_name"] == source_name and s["name"] == table_name)
        return self._resolve(src["relation_name"], source=True)


def load_model(node: dict):
    path = REPO / node["original_file_path"]
    spec = importlib.util.spec_from_file_location(f"dbt_model_{node['name']}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.model


def _frame(out) -> pd.DataFrame:
    if isinstance(out, pa.RecordBatchReader):
        out = out.read_all()
    if isinstance(out, pa.Table):
        out = out.to_pandas()
    if FR.is_snowpark(out):
        out = FR.SnowparkFrames(None).pandas(out)
    return out.rename(columns=str.lower)


@pytest.fixture(scope="module")
def results(snowflake_stand_in, manifest, tmp_path_factory):
    """name -> (DuckDB result, Snowpark result) for every Python model."""
    from marketing_signals.rca import dbt_bridge as rca_bridge
    from marketing_signals.streams import dbt_bridge as streams_bridge

    con = duckdb.connect(str(snowflake_stand_in.db_path), read_only=True)
    session = Session.builder.config("local_testing", True).create()
    relations = {n["name"]: n["relation_name"] for n in manifest["nodes"].values()
                 if n["resource_type"] in ("model", "seed", "snapshot")}
    snow: dict[str, object] = {}

    def duck_ref(name, source=False):
        return con.sql(f"select * from {name if source else relations[name]}")

    def snow_ref(name, source=False):
        if name not in snow:
            snow[name] = FR.result(session, duck_ref(name, source).df())
        return snow[name]

    duck, out = {}, {}
    env = {"MARKETING_SIGNALS_WORM_DIR": str(tmp_path_factory.mktemp("worm"))}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        nodes = python_models(manifest)
        for node in nodes:
            duck[node["name"]] = _frame(load_model(node)(FakeDbt(node, manifest, duck_ref), con))
        streams_bridge._CACHE.clear()
        rca_bridge._CACHE.clear()
        for node in nodes:
            sp = _frame(load_model(node)(FakeDbt(node, manifest, snow_ref), session))
            out[node["name"]] = (duck[node["name"]], sp)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        con.close()
        session.close()
    return out


def test_every_python_model_ran_on_both_engines(manifest, results):
    names = [n["name"] for n in python_models(manifest)]
    assert names == MODEL_FILES and len(names) == 17 and set(results) == set(names)
    empty = sorted(n for n, (duck, _) in results.items() if duck.empty)
    # a first build has no calibration history (membership snapshots come from earlier refreshes)
    assert empty == ["cohort_calibration", "cohort_calibration_points"], empty


def _comparable(df: pd.DataFrame) -> pd.DataFrame:
    df = df[[c for c in df.columns if c not in WALL_CLOCK]].copy()
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            df[c] = pd.to_datetime(s).dt.tz_localize(None) if getattr(s.dt, "tz", None) else pd.to_datetime(s)
        elif s.dtype == object and s.map(lambda v: hasattr(v, "isoformat")).any():
            df[c] = pd.to_datetime(s)
    keys = [c for c in df.columns if not pd.api.types.is_float_dtype(df[c])]
    return df.sort_values(keys, kind="stable").reset_index(drop=True) if keys else df


@pytest.mark.parametrize("name", MODEL_FILES)
def test_python_model_is_the_same_on_snowpark(results, name):
    duck, sp = results[name]
    if name == "cohort_quality":  # planted-truth metrics read local files: DuckDB only (docs/snowflake.md)
        duck = duck[duck["source"] == "fit"]
    duck, sp = _comparable(duck), _comparable(sp)
    assert list(sp.columns) == list(duck.columns)
    assert len(sp) == len(duck), f"{name}: {len(sp)} rows on Snowpark, {len(duck)} on DuckDB"
    for c in duck.columns:
        a, b = duck[c], sp[c]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            x, y = pd.to_numeric(a).to_numpy(float), pd.to_numeric(b).to_numpy(float)
            assert np.array_equal(np.isnan(x), np.isnan(y)), f"{name}.{c}: null pattern differs"
            ok = ~np.isnan(x)
            same = (x[ok] == y[ok]) | (np.abs(x[ok] - y[ok]) <= FLOAT_RTOL * np.maximum(1.0, np.abs(x[ok])))
            assert same.all(), f"{name}.{c}: {int((~same).sum())} values differ, e.g. {x[ok][~same][:2]} vs {y[ok][~same][:2]}"
        else:
            same = (a.astype(object).where(a.notna(), None).tolist() == b.astype(object).where(b.notna(), None).tolist())
            if not same:
                bad = [(u, v) for u, v in zip(a, b) if not (u == v or (pd.isna(u) and pd.isna(v)))]
                assert not bad, f"{name}.{c}: {len(bad)} values differ, e.g. {bad[:2]}"
