"""Incremental refresh of the Python cohort score tables, at engine level (no dbt).

A small DuckDB holds the tables the cohort_<method> models read, built here the way the dbt
models build them: synthetic persona events -> cohort_signal_buckets (per customer × type ×
channel × source × category × time bucket, buckets cut at the window and anchor edges),
cohort_window_buckets, cohort_run_context, the real registry seed, cohort_sufficiency, graph
edges and event sequences. Every method is fitted once (bridge.fit_table); then

* scoring any subset of customers (the scope path, a semi-join in the bucket read) reproduces
  their rows of a full scoring, and so does full scoring in many small batches: a customer's
  rows do not depend on the other customers of its batch (this fails e.g. if features were
  standardised per batch, or if LDA's E-step stopped on the batch's slowest customer);
* new events, an identity merge, a new customer and a moved as_of, refreshed through
  bridge.incremental_reader (delete + append, as the dbt model does), leave each score table
  equal, row for row, to a full rebuild -- while the changed_customers methods read and
  rescore only the customers in scope;
* 'unchanged' changes nothing, and a refit, a sufficiency change or plan mode 'full' rescore
  everyone.

Float columns (confidence, score) are compared to 1e-12: OpenBLAS rounds the last row of an
odd-sized matrix product differently (measured: up to 2e-15 in kmeans / hierarchical / dbscan
confidence), which no batching in the bridge can control; everything else is compared exactly.
"""
from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from marketing_signals.cohorts import bridge
from marketing_signals.demo import profiles as P

REPO = Path(__file__).resolve().parents[1]
METHODS = bridge.PYTHON_METHODS
WINDOWS = {"28d": 672, "lifetime": None}          # two of the registry's windows keep fits cheap
ANCHORS = (0, 168, 336, 2160)                      # as_of and the backtest anchors (intent, survival)
N_CUSTOMERS = 900
T1 = datetime(2024, 6, 1, 0, 0, 0)
T2 = T1 + timedelta(hours=3)                       # some events age across the window and anchor edges
FLOAT_ATOL = 1e-12
# Test-size fit options (cost only: fixed k, small stability checks); scoring is unchanged.
FIT_OPTIONS = {
    "kmeans": {"k": 6, "n_init": 2, "stability_rows": 400}, "hierarchical": {"k": 6},
    "gaussian_mixture": {"k": 6, "kmeans_n_init": 2, "max_iter": 100, "stability_rows": 400},
    "word2vec": {"k": 6, "stability_rows": 400},
    "lda_topics": {"num_topics": 6, "stability_rows": 300, "stability_eval_rows": 300},
}
FLOATS = ("confidence", "score")
SETTINGS = bridge.Settings(fit_sample=50_000, score_batch=100_000, seed=42)


# ----------------------------------------------------------------------------- the tiny warehouse
def run(con, sql: str, params=None) -> list:
    """Execute and drain (DuckDB refuses new work while a result is unfetched)."""
    return con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()


def bucket_grid():
    """(bucket, hours_from, hours_to) as macros/cohorts/cohort_time_buckets.sql builds them."""
    edges = sorted({a for a in ANCHORS if a > 0} | {a + h for a in ANCHORS for h in WINDOWS.values() if h})
    grid, lower = [], 0
    for i, e in enumerate(edges):
        grid.append((i, lower, e))
        lower = e
    grid.append((len(edges), lower, None))
    return grid


def window_buckets() -> pd.DataFrame:
    rows = []
    for w, hours in WINDOWS.items():
        for a in ANCHORS:
            anchor = "as_of" if a == 0 else f"as_of_minus_{a}h"
            for b, lo, hi in bucket_grid():
                if lo >= a and (hours is None or (hi is not None and hi <= a + hours)):
                    rows.append((w, anchor, a, b, lo, hi))
    return pd.DataFrame(rows, columns=["window_id", "anchor_id", "anchor_offset_hours", "time_bucket",
                                       "hours_ago_from", "hours_ago_to"]).astype({"hours_ago_to": "Int64"})


def synthetic_events(n: int, seed: int, as_of: datetime, days: int = 420, key_offset: int = 0) -> pd.DataFrame:
    """Persona-driven events (the demo generator's tables), uniform over the last `days`."""
    rng = np.random.default_rng(seed)
    persona = rng.choice(P.N_PERSONAS, size=n, p=P.PERSONA_SHARE / P.PERSONA_SHARE.sum())
    n_ev = rng.integers(8, 70, size=n)
    cust = np.repeat(np.arange(n), n_ev)
    pers = persona[cust]
    m = cust.size
    etype = np.minimum((rng.random(m)[:, None] > np.cumsum(P.PERSONA_MIX, axis=1)[pers]).sum(1), P.N_TYPES - 1)
    oc = P.OPTION_CUM[etype, pers]
    u = rng.random(m)
    opt = (u >= oc[:, 0]).astype(np.int64) + (u >= oc[:, 1])
    fav = np.minimum((rng.random(n)[:, None] > np.cumsum(P.PERSONA_CATEGORY, axis=1)[persona]).sum(1),
                     P.N_CATEGORIES - 1)
    cat = np.where(rng.random(m) < 0.5, fav[cust], rng.integers(0, P.N_CATEGORIES, m))
    hours_ago = rng.random(m) ** 1.5 * days * 24
    is_purchase = np.asarray(P.SIGNAL_TYPES)[etype] == "purchase"
    return pd.DataFrame({
        "customer_key": [f"c{key_offset + i:05d}" for i in cust],
        "signal_type": np.asarray(P.SIGNAL_TYPES, dtype=object)[etype],
        "channel": np.asarray(P.CHANNELS, dtype=object)[P.OPTION_CHANNEL[etype, opt]],
        "source_system": np.asarray(P.SOURCES, dtype=object)[P.OPTION_SOURCE[etype, opt]],
        "category": np.where(P.IS_COMMERCE[etype], np.asarray(P.CATEGORIES, dtype=object)[cat], None),
        "occurred_at": pd.Timestamp(as_of) - pd.to_timedelta(hours_ago, unit="h"),
        "amount": np.where(is_purchase, np.round(rng.gamma(2.0, 35.0, m), 2), np.nan),
    })


def referral_edges(keys: list[str], seed: int, as_of: datetime) -> pd.DataFrame:
    """Planted referral groups of 6-12 customers (dense inside, a little noise across)."""
    rng = np.random.default_rng(seed)
    rows, i = [], 0
    while i < len(keys) - 6:
        size = int(rng.integers(6, 13))
        group = keys[i:i + size]
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                if rng.random() < 0.6:
                    rows.append((group[a], group[b], as_of - timedelta(hours=float(rng.random() * 24 * 300))))
        i += size
    for _ in range(len(keys) // 10):
        a, b = rng.choice(len(keys), 2, replace=False)
        rows.append((keys[a], keys[b], as_of - timedelta(hours=float(rng.random() * 24 * 300))))
    return pd.DataFrame(rows, columns=["src_customer_key", "dst_customer_key", "occurred_at"])


def registry() -> pd.DataFrame:
    """The real seed (so its refresh_scope values are what the engine sees), with min_customers
    lowered to this test's size."""
    with open(REPO / "seeds" / "registry_cohort_methods.csv", newline="") as f:
        df = pd.DataFrame(list(csv.DictReader(f)))
    for c in ("min_customers", "min_events_per_customer", "min_distinct_signal_types", "refit_cadence_days"):
        df[c] = df[c].astype(int)
    df["min_customers"] = 60
    return df


def build_features(con, as_of: datetime) -> None:
    """cohort_signal_buckets, cohort_run_context and cohort_sufficiency from `events` at as_of
    (the SQL of models/features, reduced to what the engine reads)."""
    ts = f"timestamp '{as_of:%Y-%m-%d %H:%M:%S}'"
    cases = " ".join(f"when occurred_at > {ts} - interval {hi} hour then {b}"
                     for b, _, hi in bucket_grid() if hi is not None)
    last = bucket_grid()[-1][0]
    run(con, f"""
        create or replace table cohort_signal_buckets as
        select customer_key, signal_type, channel, source_system, category,
               cast(case {cases} else {last} end as integer) as time_bucket,
               cast(count(*) as bigint) as event_count,
               cast(sum(cast(amount as decimal(18, 2))) as double) as amount_sum,
               min(occurred_at) as first_occurred_at, max(occurred_at) as last_occurred_at
        from events where occurred_at <= {ts}
        group by 1, 2, 3, 4, 5, 6""")
    run(con, f"create or replace table cohort_run_context as select {ts} as as_of")
    run(con, """
        create or replace table cohort_sufficiency as
        with cw as (
            select b.customer_key, w.window_id, sum(b.event_count) as events,
                   count(distinct b.signal_type) as types
            from cohort_signal_buckets b
            join cohort_window_buckets w on w.time_bucket = b.time_bucket and w.anchor_id = 'as_of'
            group by 1, 2),
        eligible as (
            select r.method_id, cw.window_id, count(*) as n
            from registry r join cw on cw.events >= r.min_events_per_customer
                                   and cw.types >= r.min_distinct_signal_types
            group by 1, 2)
        select r.method_id, w.window_id, coalesce(e.n, 0) as eligible_customers,
               case when coalesce(e.n, 0) >= r.min_customers then 'sufficient' else 'insufficient' end as status,
               case when coalesce(e.n, 0) < r.min_customers then 'insufficient_data: test' end as reason
        from registry r cross join (select distinct window_id from cohort_window_buckets) w
        left join eligible e on e.method_id = r.method_id and e.window_id = w.window_id""")


def inputs(con) -> bridge.Inputs:
    return bridge.Inputs(con, buckets="cohort_signal_buckets", window_buckets="cohort_window_buckets",
                         context="cohort_run_context", methods="registry", sufficiency="cohort_sufficiency",
                         sequences="events", edges="graph_edges")


@pytest.fixture(scope="module")
def warehouse():
    """(connection, fitted methods): features at T1 and one fit per method × window."""
    con = duckdb.connect()
    ev = synthetic_events(N_CUSTOMERS, seed=5, as_of=T1)
    con.register("ev_df", ev)
    run(con, "create table events as select * from ev_df")
    con.unregister("ev_df")
    edges = referral_edges(sorted(ev["customer_key"].unique()), seed=6, as_of=T1)
    con.register("edges_df", edges)
    run(con, "create table graph_edges as select * from edges_df")
    con.unregister("edges_df")
    con.register("wb_df", window_buckets())
    run(con, "create table cohort_window_buckets as select * from wb_df")
    con.unregister("wb_df")
    con.register("reg_df", registry())
    run(con, "create table registry as select * from reg_df")
    con.unregister("reg_df")
    build_features(con, T1)
    inp = inputs(con)
    fitted = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bridge, "METHOD_OPTIONS", FIT_OPTIONS)
        fits_by_method = {m: bridge.fit_table(m, inp, SETTINGS, None) for m in METHODS}
    for m, fits in fits_by_method.items():
        con.register("fit_df", fits)
        run(con, f"create table fits_{m} as select * from fit_df")
        con.unregister("fit_df")
        if con.execute(f"select count(*) from fits_{m} where status = 'fitted'").fetchall()[0][0]:
            fitted.append(m)
    yield con, fitted
    con.close()


def scored(con, method: str, settings=SETTINGS, scope=None) -> pd.DataFrame:
    reader = bridge.score_reader(method, inputs(con), f"fits_{method}", settings, scope=scope)
    return _frame(reader.read_all())


def _frame(tbl: pa.Table) -> pd.DataFrame:
    return tbl.to_pandas().sort_values(["customer_key", "window_id"]).reset_index(drop=True)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame, what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} rows, expected {len(want)}"
    exact = [c for c in want.columns if c not in FLOATS]
    diff = ~((got[exact] == want[exact]) | (got[exact].isna() & want[exact].isna())).all(axis=1)
    assert not diff.any(), f"{what}: rows differ:\n{got[diff].head(3).T}\nexpected\n{want[diff].head(3).T}"
    for c in FLOATS:
        a, b = got[c].to_numpy(float), want[c].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{what}: {c} null pattern differs"
        ok = ~np.isnan(a)
        worst = float(np.abs(a[ok] - b[ok]).max()) if ok.any() else 0.0
        assert worst <= FLOAT_ATOL, f"{what}: {c} differs by up to {worst:.3g}"


# ----------------------------------------------------------------------------- registry
def test_registry_refresh_scope_follows_scoring_locality():
    reg = registry().set_index("method_id")
    assert set(reg["refresh_scope"]) <= set(bridge.REFRESH_SCOPES)
    changed = set(reg.index[reg["refresh_scope"] == "changed_customers"])
    assert changed == set(bridge.LOCAL_SCORING)
    assert (reg.loc[reg["method_family"] == "sql", "refresh_scope"] == "all_customers").all()
    assert reg.loc["intent", "refresh_scope"] == reg.loc["survival", "refresh_scope"] == "all_customers"


def test_changed_customers_is_ignored_where_scores_are_not_local(warehouse):
    con, _ = warehouse
    inp = inputs(con)
    inp.methods.loc["intent", "refresh_scope"] = "changed_customers"
    assert bridge.refresh_scope("intent", inp) == "all_customers"
    assert bridge.refresh_scope("kmeans", inp) == "changed_customers"


# ----------------------------------------------------------------------------- batch independence
def test_every_method_fits_on_the_test_data(warehouse):
    _, fitted = warehouse
    # graph_clustering, intent and survival need their particular inputs; all of them fit here,
    # so the tests below cover every method
    assert set(fitted) == set(METHODS), f"not fitted: {set(METHODS) - set(fitted)}"


@pytest.mark.parametrize("method", METHODS)
def test_subsets_and_small_batches_reproduce_full_scoring(warehouse, method):
    con, _ = warehouse
    full = scored(con, method)
    assert len(full) > 0
    customers = np.array(sorted(full["customer_key"].unique()))
    # many small batches (hash-partitioned, as a full rebuild of a large population is)
    assert_same_rows(scored(con, method, bridge.Settings(score_batch=97)), full, f"{method} in batches of ~97")
    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 33, 150):
        subset = sorted(rng.choice(customers, size, replace=False))
        run(con, "create or replace temp table subset as select unnest(?::varchar[]) as customer_key", [subset])
        got = scored(con, method, scope="subset")
        assert set(got["customer_key"]) <= set(subset)
        want = full[full["customer_key"].isin(subset)].reset_index(drop=True)
        assert_same_rows(got, want, f"{method} scope of {size}")


# ----------------------------------------------------------------------------- incremental refresh
def _apply(con, method: str, table: str, plan: str, scope: str) -> tuple[bridge.RefreshDecision, int]:
    """One incremental run of cohort_<method>: what the dbt model and the append strategy do."""
    inp = inputs(con)
    decision = bridge.refresh_decision(method, inp, bridge.latest_models(method, inp, f"fits_{method}"),
                                       table, plan)
    reader = bridge.incremental_reader(method, inp, f"fits_{method}", SETTINGS, existing=table,
                                       plan=plan, scope=scope)
    new = reader.read_all()
    con.register("new_rows", new)
    run(con, f"insert into {table} select * from new_rows")
    con.unregister("new_rows")
    return decision, new.num_rows


def _table(con, table: str) -> pd.DataFrame:
    return _frame(con.sql(f"select * from {table}").to_arrow_table())


def _set_plan(con, mode: str, as_of: datetime, previous: datetime | None) -> None:
    run(con, "create or replace table plan as select ?::timestamp as as_of, ?::timestamp as previous_as_of, "
                "?::varchar as mode, 'test' as mode_reason, "
                "(select count(*) from scope) as customers_in_scope", [as_of, previous, mode])


@pytest.fixture(scope="module")
def refreshed(warehouse):
    """Score tables built at T1, then events appended and the stage refreshed at T2."""
    con, _ = warehouse
    run(con, "create table scope (customer_key varchar)")
    _set_plan(con, "full", T1, None)
    for m in METHODS:
        reader = bridge.incremental_reader(m, inputs(con), f"fits_{m}", SETTINGS, existing=None,
                                           plan="plan", scope="scope")
        con.register("rows_t1", reader.read_all())
        run(con, f"create table scores_{m} as select * from rows_t1")
        con.unregister("rows_t1")
    run(con, "create table buckets_t1 as select * from cohort_signal_buckets")

    # T2: new events for 40 customers, one brand-new customer, c00005 merged into c00006
    keys = sorted(con.execute("select distinct customer_key from events").fetch_df()["customer_key"])
    rng = np.random.default_rng(9)
    active = list(rng.choice(keys[10:], 40, replace=False))
    more = synthetic_events(40, seed=8, as_of=T2, days=0.1)
    more = more[more.groupby("customer_key").cumcount() < 4].copy()
    more["customer_key"] = more["customer_key"].map(dict(zip(sorted(more["customer_key"].unique()), active)))
    newcomer = synthetic_events(1, seed=10, as_of=T2, days=200, key_offset=99999)
    con.register("more_df", pd.concat([more, newcomer]))
    run(con, "insert into events select * from more_df")
    con.unregister("more_df")
    run(con, "update events set customer_key = 'c00006' where customer_key = 'c00005'")
    build_features(con, T2)
    cols = "customer_key, signal_type, channel, source_system, category, time_bucket, event_count, " \
           "amount_sum, first_occurred_at"
    run(con, f"""create or replace table scope as
        select distinct customer_key from (
            (select {cols} from buckets_t1 except select {cols} from cohort_signal_buckets)
            union all
            (select {cols} from cohort_signal_buckets except select {cols} from buckets_t1))""")
    _set_plan(con, "incremental", T2, T1)
    runs = {m: _apply(con, m, f"scores_{m}", "plan", "scope") for m in METHODS}
    scope = set(con.execute("select customer_key from scope").fetch_df()["customer_key"])
    return con, runs, scope, active


def test_scope_holds_the_changed_customers(refreshed):
    _, _, scope, active = refreshed
    assert {"c00005", "c00006", "c99999"} | set(active) <= scope     # merged, new, new events
    assert len(scope) > len(active) + 3                               # + events that aged across an edge
    assert len(scope) < N_CUSTOMERS / 2                               # ... but far from everyone


@pytest.mark.parametrize("method", METHODS)
def test_incremental_refresh_equals_full_rebuild(refreshed, method):
    con, runs, scope, _ = refreshed
    decision, n_new = runs[method]
    full = scored(con, method)
    assert_same_rows(_table(con, f"scores_{method}"), full, f"{method} incremental vs full rebuild")
    if bridge.refresh_scope(method, inputs(con)) == "changed_customers":
        assert decision.action == "scope", decision
        # only the customers in scope were scored: exactly their rows of the full rebuild
        assert n_new == int(full["customer_key"].isin(scope).sum())
        assert n_new < len(full) / 2
    else:
        assert decision.action == "all", decision
        assert n_new == len(full)
    assert "c00005" not in set(_table(con, f"scores_{method}")["customer_key"])


def test_unchanged_plan_changes_nothing(refreshed):
    con, _, _, _ = refreshed
    _set_plan(con, "unchanged", T2, T2)
    for m in ("kmeans", "intent"):
        before = _table(con, f"scores_{m}")
        decision, n_new = _apply(con, m, f"scores_{m}", "plan", "scope")
        assert decision.action == "none" and n_new == 0
        assert_same_rows(_table(con, f"scores_{m}"), before, f"{m} unchanged")
        assert before.equals(_table(con, f"scores_{m}"))


def test_failed_run_and_missed_customers_are_repaired(refreshed):
    con, _, _, _ = refreshed
    m = "kmeans"
    full = scored(con, m)
    lost = sorted(full["customer_key"].unique())[:5]
    # a run that failed after deleting its scope's rows, then a run with nothing new: the row
    # counts no longer match cohort_sufficiency, so 'unchanged' rescores everyone
    run(con, f"delete from scores_{m} where customer_key in (select unnest(?::varchar[]))", [lost])
    _set_plan(con, "unchanged", T2, T2)
    decision, _ = _apply(con, m, f"scores_{m}", "plan", "scope")
    assert decision.action == "all" and "cohort_sufficiency" in decision.reason
    assert_same_rows(_table(con, f"scores_{m}"), full, "kmeans repaired after unchanged")
    # ... and an incremental run whose scope misses them: reconciled after the scope is scored
    run(con, f"delete from scores_{m} where customer_key in (select unnest(?::varchar[]))", [lost])
    _set_plan(con, "incremental", T2, T2)
    decision, n_new = _apply(con, m, f"scores_{m}", "plan", "scope")
    assert decision.action == "scope"
    assert n_new == len(full)       # the scope's rows, then everyone else's
    assert_same_rows(_table(con, f"scores_{m}"), full, "kmeans repaired after incremental")


def test_refit_sufficiency_change_and_full_plan_rescore_everyone(refreshed):
    con, _, _, _ = refreshed
    m = "kmeans"
    _set_plan(con, "incremental", T2, T2)
    # a refit: the newest fit of one window gets another model_version
    run(con, f"""insert into fits_{m}
        select * replace (model_version || '-refit' as model_version, fitted_at + interval 1 hour as fitted_at)
        from fits_{m} where window_id = '28d' and status = 'fitted'""")
    decision, n_new = _apply(con, m, f"scores_{m}", "plan", "scope")
    assert decision.action == "all" and "28d" in decision.reason
    after = _table(con, f"scores_{m}")
    assert_same_rows(after, scored(con, m), "kmeans after refit")
    assert after.loc[after["window_id"] == "28d", "model_version"].str.endswith("-refit").all()
    # the sufficiency gate stops passing a window: its rows go
    run(con, f"update cohort_sufficiency set status = 'insufficient' where method_id = '{m}' and window_id = '28d'")
    decision, _ = _apply(con, m, f"scores_{m}", "plan", "scope")
    assert decision.action == "all"
    assert set(_table(con, f"scores_{m}")["window_id"]) == {"lifetime"}
    run(con, f"update cohort_sufficiency set status = 'sufficient' where method_id = '{m}' and window_id = '28d'")
    decision, _ = _apply(con, m, f"scores_{m}", "plan", "scope")
    assert decision.action == "all" and set(_table(con, f"scores_{m}")["window_id"]) == {"28d", "lifetime"}
    # plan mode full
    _set_plan(con, "full", T2, T2)
    decision, n_new = _apply(con, m, f"scores_{m}", "plan", "scope")
    assert decision.action == "all" and n_new == len(scored(con, m))
    assert_same_rows(_table(con, f"scores_{m}"), scored(con, m), "kmeans after plan full")
