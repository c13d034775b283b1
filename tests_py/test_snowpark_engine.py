"""The Python models' engine paths under a Snowpark local testing session, through the frame
adapter (marketing_signals.frames), against the same paths on DuckDB with the same input.

Snowpark's local testing session (``Session.builder.config("local_testing", True)``) runs
DataFrame code in process. It lacks two things the Snowflake path uses, stood in here:

* ``HASH`` is not implemented: a stand-in (the first 8 bytes of MD5, signed) is registered with
  ``snowflake.snowpark.mock.patch``. It decides bucket membership and, above fit_sample, the
  fit sample; both engines here fit on everyone (900 customers < fit_sample), so which hash
  is used changes nothing compared.
* ``applyInPandas`` calls the function once on all rows; frames.SnowparkFrames.partitioned
  runs it per hash bucket with DataFrame filters instead (the code path under test is the
  per-bucket scoring function; the dispatch itself is Snowflake's).

Tolerance: every string, integer, boolean and timestamp column equal; floats of scored rows
within 1e-12 absolute (FLOAT_ATOL of test_cohort_incremental_scoring); fitted models (model and
quality JSON) equal with numbers within 1e-9 relative (measured: survival's Cox fit differs in
the 13th digit, the other methods are bit-identical); model_version equal but for its digest of
the model JSON; the wall-clock columns (fitted_at, fit_seconds) are not compared.
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

pytest.importorskip("snowflake.snowpark", reason="snowflake-snowpark-python is a dev dependency (make venv)")

from snowflake.snowpark import Session  # noqa: E402
from snowflake.snowpark import functions as F  # noqa: E402
from snowflake.snowpark.mock import patch  # noqa: E402
from snowflake.snowpark.mock._snowflake_data_type import ColumnEmulator, ColumnType  # noqa: E402
from snowflake.snowpark.types import LongType  # noqa: E402

from marketing_signals import frames as FR  # noqa: E402
from marketing_signals.cohorts import bridge  # noqa: E402
from test_cohort_incremental_scoring import (FIT_OPTIONS, METHODS, SETTINGS, T1, assert_same_rows,  # noqa: E402
                                             build_features, inputs, referral_edges, registry, run,
                                             synthetic_events, window_buckets)

pytestmark = pytest.mark.snowflake
WALL_CLOCK = ("fitted_at", "fit_seconds")
FLOAT_RTOL = 1e-9


@patch(F.hash)
def _hash_stand_in(*columns: ColumnEmulator) -> ColumnEmulator:
    """Local-testing stand-in for Snowflake HASH(...) (not implemented by Snowpark's mock)."""
    parts = zip(*[c.tolist() for c in columns])
    vals = [int.from_bytes(hashlib.md5("\x1f".join(map(str, p)).encode()).digest()[:8], "big", signed=True)
            for p in parts]
    return ColumnEmulator(data=vals, sf_type=ColumnType(LongType(), False))


@pytest.fixture(scope="module")
def snowpark():
    session = Session.builder.config("local_testing", True).create()
    yield session
    session.close()


def to_snowpark(session, con, table: str):
    """A DuckDB table as a Snowpark DataFrame, as Snowflake would hold it (upper-case columns)."""
    df = con.sql(f"select * from {table}").df()
    return FR.for_session(session).output(df)


def snowpark_inputs(session, con) -> bridge.Inputs:
    t = {name: to_snowpark(session, con, name) for name in
         ("cohort_signal_buckets", "cohort_window_buckets", "cohort_run_context", "registry", "cohort_sufficiency",
          "events", "graph_edges")}
    return bridge.Inputs(session, buckets=t["cohort_signal_buckets"], window_buckets=t["cohort_window_buckets"],
                         context=t["cohort_run_context"], methods=t["registry"], sufficiency=t["cohort_sufficiency"],
                         sequences=t["events"], edges=t["graph_edges"])


def lower(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns=str.lower)


def test_frame_adapter_round_trip_and_partitions(snowpark):
    pdf = pd.DataFrame({"customer_key": [f"c{i}" for i in range(50)], "x": np.arange(50.0)})
    sp = FR.for_session(snowpark)
    df = sp.output(pdf)
    assert df.columns == ["CUSTOMER_KEY", "X"]
    assert sp.pandas(df).equals(pdf)
    assert sp.count_distinct(df, "customer_key") == 50
    schema = pa.schema([("customer_key", pa.string()), ("n", pa.int64())])
    out = sp.pandas(sp.partitioned(df, "customer_key", 4, lambda t: pd.DataFrame(
        {"customer_key": t.column("customer_key").to_pylist(), "n": [t.num_rows] * t.num_rows}), schema))
    assert sorted(out["customer_key"]) == sorted(pdf["customer_key"])    # every row once
    sizes = out.groupby("n").size()
    assert (sizes % sizes.index == 0).all()                               # fn saw whole buckets
    assert out["n"].nunique() > 1                                         # more than one bucket


N_CUSTOMERS = 240  # Snowpark's local engine aggregates group by group in Python: keep it small


@pytest.fixture(scope="module")
def warehouse():
    """The tiny DuckDB warehouse of test_cohort_incremental_scoring at 240 customers, one fit
    per method (fits_<method>)."""
    import duckdb
    con = duckdb.connect()
    ev = synthetic_events(N_CUSTOMERS, seed=5, as_of=T1)
    tables = {"events": ev, "graph_edges": referral_edges(sorted(ev["customer_key"].unique()), seed=6, as_of=T1),
              "cohort_window_buckets": window_buckets(), "registry": registry()}
    for name, df in tables.items():
        con.register("df", df)
        run(con, f"create table {name} as select * from df")
        con.unregister("df")
    build_features(con, T1)
    fitted = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bridge, "METHOD_OPTIONS", FIT_OPTIONS)
        for m in METHODS:
            con.register("fit_df", bridge.fit_table(m, inputs(con), SETTINGS, None))
            run(con, f"create table fits_{m} as select * from fit_df")
            con.unregister("fit_df")
            if run(con, f"select count(*) from fits_{m} where status = 'fitted'")[0][0]:
                fitted.append(m)
    yield con, fitted
    con.close()


@pytest.fixture(scope="module")
def both_engines(warehouse, snowpark):
    """Per method: (DuckDB fits, Snowpark fits, DuckDB assignments, Snowpark assignments)."""
    con, fitted = warehouse
    sp_inputs = snowpark_inputs(snowpark, con)
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bridge, "METHOD_OPTIONS", FIT_OPTIONS)
        for m in METHODS:
            t0 = time.perf_counter()
            duck_fits = bridge.fit_table(m, inputs(con), SETTINGS, None).to_pandas()
            sp_fits_df = bridge.fit_table(m, sp_inputs, SETTINGS, None)
            sp_fits = FR.for_session(snowpark).pandas(sp_fits_df)
            duck_rows = bridge.score_reader(m, inputs(con), f"fits_{m}", SETTINGS).read_all().to_pandas()
            sp_rows = FR.for_session(snowpark).pandas(
                bridge.score_reader(m, sp_inputs, to_snowpark(snowpark, con, f"fits_{m}"), SETTINGS))
            out[m] = (duck_fits, sp_fits, duck_rows, sp_rows)
            print(f"{m}: both engines in {time.perf_counter() - t0:.1f}s")
    return out, fitted


@pytest.mark.parametrize("method", METHODS)
def test_cohort_fit_is_the_same_on_snowpark(both_engines, method):
    out, _ = both_engines
    duck, sp, _, _ = out[method]
    cols = [c for c in duck.columns if c not in WALL_CLOCK]
    duck = duck[cols].sort_values("window_id").reset_index(drop=True)
    sp = sp[cols].sort_values("window_id").reset_index(drop=True)
    assert len(duck) == len(sp) > 0
    assert (duck["status"] == sp["status"]).all(), sp[["window_id", "status", "reason"]]
    for col in ("n_fit", "reason"):
        same = (duck[col] == sp[col]) | (duck[col].isna() & sp[col].isna())
        assert same.all(), f"{method} {col}: {duck.loc[~same, col].tolist()[:2]} vs {sp.loc[~same, col].tolist()[:2]}"
    # model_version ends in a digest of the model JSON: equal where the model is bit-identical
    def undigested(v: pd.Series) -> list:
        return [None if pd.isna(x) else x.rsplit("/", 1)[0] for x in v]
    assert undigested(duck["model_version"]) == undigested(sp["model_version"])
    for col in ("model_json", "quality_json"):
        for a, b in zip(duck[col], sp[col]):
            assert (pd.isna(a) and pd.isna(b)) or same_json(json.loads(a), json.loads(b)), f"{method} {col}"


def same_json(a, b, rel: float = FLOAT_RTOL) -> bool:
    """Equal JSON, numbers within `rel` (relative; absolute below 1)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_json(a[k], b[k], rel) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same_json(u, v, rel) for u, v in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(b, (int, float)) and abs(a - b) <= rel * max(1.0, abs(a), abs(b))
    return a == b


@pytest.mark.parametrize("method", METHODS)
def test_cohort_scoring_is_the_same_on_snowpark(both_engines, method):
    out, fitted = both_engines
    _, _, duck, sp = out[method]
    if method in fitted:
        assert len(duck) > 0
    key = ["customer_key", "window_id"]
    duck = duck.sort_values(key).reset_index(drop=True)
    sp = sp[duck.columns].sort_values(key).reset_index(drop=True)
    sp["as_of"] = pd.to_datetime(sp["as_of"]).astype(duck["as_of"].dtype)
    assert_same_rows(sp, duck, f"{method} on Snowpark")

