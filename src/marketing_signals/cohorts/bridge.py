"""Fit/score orchestration behind the thin dbt Python models (python_models/cohorts/).

``fit_table`` fits one method for every window on a deterministic sample of customers and
returns the fitted models as rows (method, window, model_version, model JSON, quality, status,
reason). ``score_reader`` reads the latest fitted model per window and scores every customer (or
only the customers of a scope) in batches, streaming Arrow record batches, so memory stays
bounded as customers grow. ``incremental_reader`` is the incremental refresh of a score table:
it decides from cohort_refresh_plan, the registry's refresh_scope and the fits whether to
rescore everyone, only the customers in cohort_refresh_scope, or no one, deletes the rows being
replaced and streams the new ones.

Engine differences go through the frame adapter (marketing_signals.frames): on DuckDB
``session`` is a connection and relations are DuckDB relations, whose SQL is used as a
sub-query; on Snowflake ``session`` is a Snowpark Session and relations are DataFrames: the fit
sample is read with a DataFrame filter, scoring runs per hash bucket through
``applyInPandas`` and the small tables (fits, registries, context) are read whole. The
customer-scoped incremental refresh is DuckDB-only so far: on Snowflake an incremental run
rescores everyone (see ``incremental_reader``).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import frames as FR
from . import alignment
from .buckets import KINDS, BucketBatch, WindowSpec, window_specs
from .contract import FitInput, InsufficientData, ScoreInput, ScoreResult, to_jsonable

PYTHON_METHODS = ("kmeans", "hierarchical", "dbscan", "gaussian_mixture", "lda_topics", "word2vec",
                  "graph_clustering", "survival", "intent")
FIT_SCHEMA = pa.schema([
    ("method_id", pa.string()), ("window_id", pa.string()), ("model_version", pa.string()),
    ("status", pa.string()), ("reason", pa.string()), ("as_of", pa.timestamp("us")),
    ("fitted_at", pa.timestamp("us")), ("n_fit", pa.int64()), ("fit_seconds", pa.float64()),
    ("quality_json", pa.string()), ("model_json", pa.string()),
])
ASSIGNMENT_SCHEMA = pa.schema([
    ("customer_key", pa.string()), ("method_id", pa.string()), ("window_id", pa.string()),
    ("cohort_id", pa.string()), ("cohort_label", pa.string()), ("confidence", pa.float64()),
    ("source_attribution", pa.string()), ("model_version", pa.string()), ("as_of", pa.timestamp("us")),
    ("score", pa.float64()), ("unassigned_reason", pa.string()),
])
INTENT_HORIZON_H = 168
SURVIVAL_HORIZON_H = 2160
# Feature kinds each matrix method is fitted on.
METHOD_KINDS = {
    "lda_topics": ("signal_category", "signal_type"),
    "word2vec": ("signal_type", "signal_category"),
    "intent": ("signal_type", "channel"),
    "survival": ("signal_type",),
}


@dataclass
class Settings:
    fit_sample: int = 50_000
    score_batch: int = 200_000
    seed: int = 42
    force_refit: bool = False
    refit_cadence_days: int | None = None  # None = the registry's per-method cadence

    @classmethod
    def from_config(cls, raw: dict | None) -> "Settings":
        raw = raw or {}
        force = str(raw.get("force_refit", "false")).strip().lower() in ("true", "1", "yes")
        cadence = str(raw.get("refit_cadence_days", "") or "").strip()
        return cls(int(float(raw.get("fit_sample", 50_000))), int(float(raw.get("score_batch", 200_000))),
                   int(float(raw.get("seed", 42))), force,
                   int(float(cadence)) if cadence not in ("", "None", "none", "null") else None)


class Inputs:
    """The relations a cohort model reads: SQL sub-queries on one DuckDB connection, or Snowpark
    DataFrames (``self.snowpark``)."""

    def __init__(self, session, *, buckets, window_buckets, context, methods, sufficiency,
                 sequences=None, edges=None):
        self.con = session
        self.frames = FR.for_session(session)
        self.snowpark = self.frames.engine == "snowflake"
        self.buckets, self.sequences, self.edges = buckets, sequences, edges
        self.buckets_sql = None if self.snowpark else _sql(buckets)
        self.window_buckets = _df(session, window_buckets)
        self.specs = window_specs(self.window_buckets)
        ctx = _df(session, context)
        self.as_of = pd.Timestamp(ctx["as_of"].iloc[0]).to_pydatetime()
        self.methods = _df(session, methods).set_index("method_id")
        self.sufficiency = _df(session, sufficiency).set_index(["method_id", "window_id"])
        self.sequences_sql = _sql(sequences) if sequences is not None and not self.snowpark else None
        self.edges_sql = _sql(edges) if edges is not None and not self.snowpark else None
        self.windows = sorted({w for w, _ in self.specs}, key=_window_order)

    def read_buckets(self, predicate: str, flag: str = "true") -> BucketBatch:
        """Bucket rows of the customers matching predicate; `flag` (a boolean SQL expression of
        customer_key) is kept per customer as BucketBatch.flag."""
        cols = "customer_key, signal_type, channel, source_system, category, time_bucket, " \
               f"event_count, amount_sum, first_occurred_at, ({flag}) as flag"
        tbl = self.con.sql(f"select {cols} from ({self.buckets_sql}) as b where {predicate}").to_arrow_table()
        return BucketBatch(tbl, self.window_buckets)

    def read_fit_sample(self, per_million: int, seed: int, small_buckets: list[int]) -> BucketBatch:
        """The fit sample: customers in the hash sample (BucketBatch.flag) and, where windows
        are small (small_buckets: their time buckets), everyone with a row in those buckets."""
        if not self.snowpark:
            predicate = _sample_predicate(per_million, seed)
            if small_buckets:
                predicate += (f" or customer_key in (select customer_key from ({self.buckets_sql}) s "
                              f"where time_bucket in ({', '.join(map(str, small_buckets))}))")
            return self.read_buckets(predicate, flag=_sample_predicate(per_million, seed))
        from snowflake.snowpark import functions as F
        b = self.buckets
        in_sample = self.frames.sample_condition("customer_key", per_million, seed)
        keep = in_sample
        if small_buckets:
            small = b.filter(F.col("TIME_BUCKET").isin([int(x) for x in small_buckets])).select("CUSTOMER_KEY")
            keep = in_sample | F.col("CUSTOMER_KEY").isin(small)
        cols = [c.upper() for c in BUCKET_COLUMNS]
        rows = b.filter(keep).select(*cols, in_sample.alias("FLAG"))
        return BucketBatch(self.frames.arrow(rows), self.window_buckets)

    def n_customers(self) -> int:
        return _count_distinct(self, self.buckets, self.buckets_sql)


BUCKET_COLUMNS = ("customer_key", "signal_type", "channel", "source_system", "category", "time_bucket",
                  "event_count", "amount_sum", "first_occurred_at")


def _count_distinct(inputs: Inputs, rel, rel_sql: str | None, column: str = "customer_key") -> int:
    if inputs.snowpark:
        return inputs.frames.count_distinct(rel, column)
    return int(inputs.con.sql(f"select count(distinct {column}) from ({rel_sql}) b").fetchall()[0][0])


def _sql(rel) -> str:
    return rel.sql_query() if hasattr(rel, "sql_query") else f"select * from {rel}"


def _df(con, rel) -> pd.DataFrame:
    if FR.is_snowpark(rel) or FR.is_snowpark(con):
        return FR.for_session(con).pandas(rel)
    return con.sql(_sql(rel)).df()


def _window_order(w: str) -> int:
    return ["24h", "7d", "28d", "90d", "365d", "lifetime"].index(w) if w in (
        "24h", "7d", "28d", "90d", "365d", "lifetime") else 99


def _method_module(method_id: str):
    return importlib.import_module(f"marketing_signals.cohorts.methods.{method_id}")


def _log(msg: str) -> None:
    print(f"[marketing_signals.cohorts] {datetime.now(timezone.utc):%H:%M:%S} {msg}", flush=True)


# ---------------------------------------------------------------------------------- fitting
def fit_table(method_id: str, inputs: Inputs, settings: Settings, previous=None) -> pa.Table:
    """Fitted models for every window that is due a refit (one row per window).

    Stable cohort ids (cluster / topic / community methods, see cohorts.alignment): a refit
    numbers its clusters arbitrarily, so the fitted params get ``cohort_ids``, the stable id of
    each cohort index, which scoring writes as cohort_id. First fit of a method × window: the
    indices. Refit (``previous`` holds a fitted model of the method × window): the fit's
    customers are scored with the latest previous model and the new one, the (previous, new)
    contingency table is matched one-to-one maximising overlap (linear_sum_assignment); a new
    cohort keeps its match's stable id when the overlap is >= half of the smaller cohort among
    the compared customers, else gets a fresh id above every id the method × window ever used.
    The diagnostics go to quality_json["alignment"]. Ordinal methods (intent, survival) are
    not aligned: their bands keep their indices."""
    reg = inputs.methods.loc[method_id]
    cadence = settings.refit_cadence_days if settings.refit_cadence_days is not None else int(reg["refit_cadence_days"])
    due = _windows_due(method_id, inputs, settings, previous, cadence)
    rows = []
    if not due:
        _log(f"{method_id}: every window fitted within {cadence} days of as_of; no refit")
        return inputs.frames.output(pa.Table.from_pylist([], schema=FIT_SCHEMA))
    n_total = max(inputs.n_customers(), 1)
    per_million = min(1_000_000, math.ceil(settings.fit_sample / n_total * 1_000_000))
    small = _small_windows(method_id, inputs, due, settings)
    small_buckets = sorted(set().union(*(inputs.specs[(w, "as_of")].buckets for w in small))) if small else []
    sample = inputs.read_fit_sample(per_million, settings.seed, small_buckets)
    _log(f"{method_id}: fitting {len(due)} windows on a sample of {sample.n} customers")
    module = _method_module(method_id)
    for window_id in due:
        t0 = time.perf_counter()
        status, reason, model, n_fit = "fitted", None, None, 0
        suff = inputs.sufficiency.loc[(method_id, window_id)]
        if suff["status"] != "sufficient":
            status, reason = "insufficient_data", suff["reason"]
        else:
            try:
                # the hash sample, or everyone eligible where the window's population is small
                in_fit = np.ones(sample.n, bool) if window_id in small else sample.flag
                data = _fit_input(method_id, window_id, inputs, sample, reg, in_fit)
                n_fit = len(data.customer_keys)
                fitted = module.fit(data, seed=settings.seed, options=_options(reg))
                model = {"columns": data.columns, "kinds": list(_kinds(method_id)), "fitted": to_jsonable(fitted)}
                if _aligned(method_id, reg):
                    _align(method_id, window_id, module, model, data, inputs, sample, reg, previous)
            except InsufficientData as exc:
                status, reason = "insufficient_data", f"insufficient_data: {exc}"
        seconds = time.perf_counter() - t0
        model_json = json.dumps(model, separators=(",", ":"), allow_nan=False) if model else None
        version = _version(method_id, window_id, inputs.as_of, model_json) if model else None
        quality = (model or {}).get("fitted", {}).get("quality", {})
        rows.append({"method_id": method_id, "window_id": window_id, "model_version": version,
                     "status": status, "reason": reason, "as_of": inputs.as_of,
                     "fitted_at": datetime.now(timezone.utc).replace(tzinfo=None), "n_fit": n_fit,
                     "fit_seconds": seconds, "quality_json": json.dumps(to_jsonable(quality)),
                     "model_json": model_json})
        _log(f"{method_id} {window_id}: {status} in {seconds:.1f}s" + (f" ({reason})" if reason else ""))
    return inputs.frames.output(pa.Table.from_pylist(rows, schema=FIT_SCHEMA))


def _aligned(method_id: str, reg) -> bool:
    """Cohort indices of this method are arbitrary (cluster / topic / community), not ordinal."""
    kind = reg.get("output_kind") if hasattr(reg, "get") else None
    if kind is None or pd.isna(kind):
        return method_id not in ("intent", "survival")
    return str(kind).strip() in alignment.ALIGNED_KINDS


def _previous_fits(method_id: str, window_id: str, inputs: Inputs, previous):
    """(model_version, model, id_high) of the latest earlier fitted model of the method × window
    and the highest stable id any earlier fit of it used; None when there is none. id_high comes
    from quality_json["alignment"]["id_high"] where a fit recorded it, else from the model."""
    if previous is None:
        return None
    fits = _fits_of(inputs, previous, method_id)
    fits = fits[(fits["window_id"] == window_id) & fits["model_json"].notna()].sort_values(
        ["fitted_at", "model_version"], ascending=False)
    rows = list(zip(fits["model_version"], fits["quality_json"]))
    if not rows:
        return None

    def model_of(version: str) -> dict:
        return json.loads(fits.loc[fits["model_version"] == version, "model_json"].iloc[0])

    latest_version = rows[0][0]
    latest = model_of(latest_version)
    id_high = max(alignment.cohort_ids_of(latest["fitted"]), default=-1)
    for version, quality_json in rows[1:]:
        recorded = (json.loads(quality_json) if isinstance(quality_json, str) and quality_json else {}).get("alignment", {}) or {}
        if recorded.get("id_high") is not None:
            id_high = max(id_high, int(recorded["id_high"]))
        else:
            id_high = max(id_high, max(alignment.cohort_ids_of(model_of(version)["fitted"]), default=-1))
    return latest_version, latest, id_high


def _sample_index(method_id, module, window_id, model, inputs: Inputs, sample: BucketBatch, reg,
                  keys: np.ndarray) -> np.ndarray:
    """Cohort index of each of `keys` (customers of `sample`) under `model`, -1 = unassigned,
    through the scoring path (the model's own columns are read from the batch)."""
    scored = _score_result(method_id, module, window_id, model, inputs, sample, reg)
    out = np.full(len(keys), -1, np.int64)
    if scored is None:
        return out
    data, res, _, _ = scored
    pos = pd.Index(np.asarray(data.customer_keys, dtype=object)).get_indexer(np.asarray(keys, dtype=object))
    found = pos >= 0
    out[found] = np.asarray(res.cohort_index, dtype=np.int64)[pos[found]]
    return out


def _align(method_id, window_id, module, model, data: FitInput, inputs: Inputs, sample: BucketBatch, reg,
           previous) -> None:
    """Sets model["fitted"]["cohort_ids"] (and quality["alignment"] on a refit); see fit_table."""
    fitted = model["fitted"]
    k = alignment.n_cohorts(fitted)
    prev = _previous_fits(method_id, window_id, inputs, previous)
    if prev is None:
        fitted["cohort_ids"] = alignment.first_fit_ids(k)
        return
    prev_version, prev_model, id_high = prev
    keys = np.asarray(data.customer_keys, dtype=object)
    new_idx = _sample_index(method_id, module, window_id, model, inputs, sample, reg, keys)
    error = None
    try:
        old_idx = _sample_index(method_id, module, window_id, prev_model, inputs, sample, reg, keys)
    except Exception as exc:  # an unscorable old model must not block the refit: all ids fresh
        error = f"{type(exc).__name__}: {exc}"
        old_idx = np.full(len(keys), -1, np.int64)
        _log(f"{method_id} {window_id}: previous model {prev_version} could not score the sample "
             f"({error}); every cohort gets a fresh id")
    result = alignment.align_cohorts(old_idx, new_idx, previous_ids=alignment.cohort_ids_of(prev_model["fitted"]),
                                     n_new=k, id_high=id_high)
    fitted["cohort_ids"] = result.cohort_ids
    diag = {"previous_model_version": prev_version, "n_fit": int(len(keys)), **result.diagnostics}
    if error:
        diag["error"] = error
    fitted.setdefault("quality", {})["alignment"] = to_jsonable(diag)
    _log(f"{method_id} {window_id}: cohort ids aligned to {prev_version}: "
         f"{sum(p['kept'] for p in result.diagnostics['pairs'])} kept, {len(result.diagnostics['fresh'])} fresh, "
         f"{result.diagnostics['unchanged_share']} of {result.diagnostics['n_compared']} customers unchanged")


def _fits_of(inputs: Inputs, fits, method_id: str, status: str | None = "fitted") -> pd.DataFrame:
    """The rows of a fits table (cohort_fit_<method>: one row per window and refit, so small)
    of one method, optionally of one status."""
    if inputs.snowpark:  # small: read whole, filtered here (see frames.SnowparkFrames.pandas)
        df = inputs.frames.pandas(inputs.con.table(fits) if isinstance(fits, str) else fits)
        keep = (df["method_id"] == method_id) & ((df["status"] == status) if status is not None else True)
        return df[keep].reset_index(drop=True)
    where = f"method_id = '{method_id}'" + (f" and status = '{status}'" if status is not None else "")
    return inputs.con.sql(f"select * from ({_sql(fits)}) f where {where}").df()


def _windows_due(method_id, inputs, settings, previous, cadence_days) -> list[str]:
    if previous is None or settings.force_refit:
        return list(inputs.windows)
    prev = _fits_of(inputs, previous, method_id, status=None).groupby("window_id").agg(
        fitted_at=("fitted_at", "max"), as_of=("as_of", "max"))
    due = []
    for w in inputs.windows:
        if w not in prev.index:
            due.append(w)
            continue
        age = inputs.as_of - pd.Timestamp(prev.loc[w, "as_of"]).to_pydatetime()
        if age >= timedelta(days=cadence_days):
            due.append(w)
    return due


def _sample_predicate(per_million: int, seed: int) -> str:
    return f"(hash(customer_key || '#{seed}') % 1000000) < {per_million}"


def _small_windows(method_id, inputs: Inputs, windows, settings: Settings) -> list[str]:
    """Finite windows whose eligible population fits in one fitting sample: fitted on everyone
    eligible, since hash sampling would starve them."""
    return [w for w in windows
            if 0 < int(inputs.sufficiency.loc[(method_id, w), "eligible_customers"]) <= settings.fit_sample
            and inputs.specs[(w, "as_of")].hours is not None]


def _version(method_id, window_id, as_of, model_json) -> str:
    digest = hashlib.sha256(model_json.encode()).hexdigest()[:10]
    return f"{method_id}/{window_id}/{as_of:%Y%m%dT%H%M}/{digest}"


# Fit-time budgets per method: model selection (k) and bootstrap stability run on subsamples
# of the fitting sample; the final model is fitted on the whole sample.
METHOD_OPTIONS = {
    # k is chosen at the elbow of the inertia / BIC curve: below ~20k rows the elbow drifts
    # (measured: 8000 rows picked k=7 on the 30k demo, 20000 rows k=8), so selection keeps 20k
    "gaussian_mixture": {"stability_rows": 8000},
    "lda_topics": {"max_fit_rows": 10000, "stability_rows": 4000},
    "dbscan": {"max_fit_rows": 15000},
}


def _options(reg) -> dict:
    options = {"min_customers": int(reg["min_customers"])} | METHOD_OPTIONS.get(reg.name, {})
    if reg.name == "survival":
        options |= {"event": "repurchase", "horizon_days": SURVIVAL_HORIZON_H / 24}
    return options


def _kinds(method_id: str) -> tuple[str, ...]:
    return METHOD_KINDS.get(method_id, ("signal_type", "category", "channel"))


def _eligible(batch: BucketBatch, spec: WindowSpec, reg) -> np.ndarray:
    events, distinct = batch.signal_totals(spec)
    return (events >= int(reg["min_events_per_customer"])) & (distinct >= int(reg["min_distinct_signal_types"]))


def _fit_input(method_id, window_id, inputs: Inputs, sample: BucketBatch, reg, in_fit) -> FitInput:
    spec = inputs.specs[(window_id, "as_of")]
    kinds = _kinds(method_id)
    if method_id == "intent":
        return _intent_fit_input(window_id, inputs, sample, reg, kinds, in_fit)
    if method_id == "survival":
        return _survival_fit_input(window_id, inputs, sample, reg, kinds, in_fit)
    ok = _eligible(sample, spec, reg) & in_fit
    columns = sample.columns(spec, kinds)
    X = sample.matrix(spec, columns)[ok]
    keys = sample.customer_keys[ok]
    extra = {}
    if method_id == "word2vec":
        extra["sequences"] = _sequences(inputs, spec)
    if method_id == "graph_clustering":
        extra["edges"] = _edges(inputs, spec)
    return FitInput(keys, X, columns, extra)


def _sequences(inputs: Inputs, spec: WindowSpec) -> list[list[str]]:
    if inputs.sequences is None:
        raise InsufficientData("no event sequences relation was given")
    if inputs.snowpark:
        df = inputs.frames.pandas(_in_window(inputs.sequences, "OCCURRED_AT", inputs.as_of, spec)
                                  .select("CUSTOMER_KEY", "SIGNAL_TYPE", "CATEGORY", "OCCURRED_AT"))
        df = df.sort_values(["customer_key", "occurred_at", "signal_type"], kind="stable")
    else:
        cond = _time_condition("occurred_at", inputs.as_of, spec)
        df = inputs.con.sql(
            f"select customer_key, signal_type, category from ({inputs.sequences_sql}) s where {cond} "
            f"order by customer_key, occurred_at, signal_type").df()
    tokens = np.where(df["category"].notna(), df["signal_type"] + "|" + df["category"].fillna(""), df["signal_type"])
    groups = pd.Series(tokens).groupby(df["customer_key"].to_numpy(), sort=False)
    return [list(g) for _, g in groups if len(g) >= 2]


def _edges(inputs: Inputs, spec: WindowSpec) -> pd.DataFrame:
    if inputs.edges is None:
        raise InsufficientData("no graph edges relation was given")
    if inputs.snowpark:
        from snowflake.snowpark import functions as F
        e = _in_window(inputs.edges, "OCCURRED_AT", inputs.as_of, spec)
        e = e.select(F.least("SRC_CUSTOMER_KEY", "DST_CUSTOMER_KEY").alias("SRC"),
                     F.greatest("SRC_CUSTOMER_KEY", "DST_CUSTOMER_KEY").alias("DST"))
        out = inputs.frames.pandas(e.group_by("SRC", "DST").agg(F.count(F.lit(1)).alias("WEIGHT")))
        return out.astype({"weight": float})
    cond = _time_condition("occurred_at", inputs.as_of, spec)
    return inputs.con.sql(
        f"select least(src_customer_key, dst_customer_key) as src, greatest(src_customer_key, dst_customer_key) as dst, "
        f"cast(count(*) as double) as weight from ({inputs.edges_sql}) e where {cond} group by 1, 2").df()


def _in_window(rel, col: str, as_of: datetime, spec: WindowSpec):
    """Snowpark: the rows of rel with col in the window ending at as_of (as _time_condition)."""
    from snowflake.snowpark import functions as F
    out = rel.filter(F.col(col) <= F.lit(pd.Timestamp(as_of).to_pydatetime()))
    if spec.hours is not None:
        out = out.filter(F.col(col) > F.lit((pd.Timestamp(as_of) - pd.Timedelta(hours=spec.hours)).to_pydatetime()))
    return out


def _time_condition(col: str, as_of: datetime, spec: WindowSpec) -> str:
    upper = f"{col} <= timestamp '{as_of:%Y-%m-%d %H:%M:%S.%f}'"
    if spec.hours is None:
        return upper
    return upper + f" and {col} > timestamp '{as_of:%Y-%m-%d %H:%M:%S.%f}' - interval {spec.hours} hour"


def _anchor(inputs: Inputs, hours: int) -> str:
    return "as_of" if hours == 0 else f"as_of_minus_{hours}h"


def _numeric(batch: BucketBatch, spec: WindowSpec, anchor_time: datetime) -> np.ndarray:
    """Days since the customer's last event and last purchase in the window, capped at 400."""
    last = batch.last_event_time(spec)
    last_p = batch.last_event_time(spec, "purchase")
    t = pd.Timestamp(anchor_time)
    d1 = ((t - pd.to_datetime(last)).dt.total_seconds() / 86400).fillna(400).clip(0, 400)
    d2 = ((t - pd.to_datetime(last_p)).dt.total_seconds() / 86400).fillna(400).clip(0, 400)
    return np.column_stack([d1.to_numpy(), d2.to_numpy()])


RECENT_WINDOWS = ("7d", "28d")
INTENT_NUMERIC = ["days_since_last_event", "days_since_last_purchase", "days_since_first_event",
                  *[f"{kind}_{w}" for w in RECENT_WINDOWS for kind in ("events", "purchase_events", "cart_events")]]


def _intent_numeric(batch: BucketBatch, inputs: "Inputs", spec: WindowSpec, anchor_time: datetime) -> np.ndarray:
    """Recency plus the last 7 and 28 days' activity at the same anchor, whatever the window:
    purchase intent is mostly recent behaviour, so every window's model sees it."""
    first = pd.to_datetime(batch.first_event_time(spec))
    tenure = ((pd.Timestamp(anchor_time) - first).dt.total_seconds() / 86400).fillna(0).clip(0, None)
    cols = [_numeric(batch, spec, anchor_time), tenure.to_numpy()[:, None]]
    for w in RECENT_WINDOWS:
        recent = inputs.specs.get((w, spec.anchor_id))
        if recent is None:
            cols.append(np.zeros((batch.n, 3)))
            continue
        events, _ = batch.signal_totals(recent)
        X = batch.matrix(recent, ["signal_type:purchase", "signal_type:add_to_cart", "signal_type:checkout_start"])
        X = X.toarray()
        cols.append(np.column_stack([events, X[:, 0], X[:, 1] + X[:, 2]]))
    return np.column_stack(cols)


def _intent_fit_input(window_id, inputs, sample, reg, kinds, in_fit) -> FitInput:
    spec_train = inputs.specs[(window_id, _anchor(inputs, 2 * INTENT_HORIZON_H))]
    spec_hold = inputs.specs[(window_id, _anchor(inputs, INTENT_HORIZON_H))]
    spec_now = inputs.specs[(window_id, "as_of")]
    columns = sample.columns(spec_now, kinds)
    ok_train = _eligible(sample, spec_train, reg) & in_fit
    ok_hold = _eligible(sample, spec_hold, reg) & in_fit
    y_train = (sample.purchases(INTENT_HORIZON_H, 2 * INTENT_HORIZON_H) > 0).astype(int)
    y_hold = (sample.purchases(0, INTENT_HORIZON_H) > 0).astype(int)
    t_train = inputs.as_of - timedelta(hours=2 * INTENT_HORIZON_H)
    t_hold = inputs.as_of - timedelta(hours=INTENT_HORIZON_H)
    train = {"X": sample.matrix(spec_train, columns)[ok_train], "y": y_train[ok_train],
             "numeric": _intent_numeric(sample, inputs, spec_train, t_train)[ok_train]}
    hold = {"X": sample.matrix(spec_hold, columns)[ok_hold], "y": y_hold[ok_hold],
            "numeric": _intent_numeric(sample, inputs, spec_hold, t_hold)[ok_hold]}
    return FitInput(sample.customer_keys[ok_train], train["X"], columns,
                    {"train": train | {"numeric_columns": INTENT_NUMERIC}, "holdout": hold | {"numeric_columns": INTENT_NUMERIC}})


def _survival_frame(batch: BucketBatch, spec: WindowSpec, anchor_time: datetime, columns) -> pd.DataFrame:
    X = batch.matrix(spec, columns)
    events, distinct = batch.signal_totals(spec)
    num = _numeric(batch, spec, anchor_time)
    amount = _purchase_amount(batch, spec)
    purchases = X[:, columns.index("signal_type:purchase")].toarray()[:, 0] if "signal_type:purchase" in columns else 0
    return pd.DataFrame({
        "x_log_events": np.log1p(events), "x_distinct_types": distinct,
        "x_log_purchases": np.log1p(purchases), "x_log_spend": np.log1p(np.clip(amount, 0, None)),
        "x_days_since_last_event": num[:, 0], "x_days_since_last_purchase": num[:, 1],
    })


def _purchase_amount(batch: BucketBatch, spec: WindowSpec) -> np.ndarray:
    """Purchase amount per customer in the window, summed in whole cents: exact, so it does not
    depend on the order DuckDB returns the customer's bucket rows in (summing the doubles did,
    in the last bit, and the order changes with the batch's composition)."""
    rows = batch.rows_in(spec) & batch.is_purchase
    cents = np.round(batch.amount[rows] * 100.0)
    return np.bincount(batch.cust[rows], weights=cents, minlength=batch.n) / 100.0


def _survival_fit_input(window_id, inputs, sample, reg, kinds, in_fit) -> FitInput:
    """Customers as of the 90-day backtest anchor: covariates from the window ending there,
    outcome = days to their next purchase after it (censored at 90 days)."""
    spec = inputs.specs[(window_id, _anchor(inputs, SURVIVAL_HORIZON_H))]
    anchor_time = inputs.as_of - timedelta(hours=SURVIVAL_HORIZON_H)
    columns = ["signal_type:purchase"]
    ok = _eligible(sample, spec, reg) & in_fit
    frame = _survival_frame(sample, spec, anchor_time, columns)
    nxt = pd.to_datetime(sample.first_purchase_time(0, SURVIVAL_HORIZON_H))
    waited = (nxt - pd.Timestamp(anchor_time)).dt.total_seconds() / 86400
    horizon_days = SURVIVAL_HORIZON_H / 24
    # Time to the next purchase after the anchor (event = repurchase), censored at the horizon;
    # the lapse risk scored later is the probability of no purchase within the horizon.
    frame["event"] = waited.notna().astype(int).to_numpy()
    frame["duration_days"] = waited.fillna(horizon_days).clip(lower=0.01, upper=horizon_days).to_numpy()
    frame = frame[ok].reset_index(drop=True)
    return FitInput(sample.customer_keys[ok], sample.matrix(spec, columns)[ok], columns,
                    {"survival": frame, "horizon_days": horizon_days})


# ---------------------------------------------------------------------------------- scoring
def latest_models(method_id: str, inputs: Inputs, fits) -> dict[str, tuple[str, dict]]:
    """window_id -> (model_version, model) of the newest fitted model of every window that the
    data-sufficiency gate (cohort_sufficiency) passes now. Like the SQL methods, scoring skips
    the windows the gate fails ('insufficient', or 'disabled' methods): a model fitted earlier
    no longer scores a window whose population fell below the method's minimums."""
    latest = _fits_of(inputs, fits, method_id).sort_values("fitted_at", ascending=False, kind="stable") \
        .drop_duplicates("window_id")
    gate = inputs.sufficiency
    passed = {w for (m, w), status in gate["status"].items() if m == method_id and status == "sufficient"}
    skipped = sorted(set(latest["window_id"]) - passed, key=_window_order)
    if skipped:
        _log(f"{method_id}: fitted windows {', '.join(skipped)} not scored: cohort_sufficiency does not pass them")
    return {r.window_id: (r.model_version, json.loads(r.model_json))
            for r in latest.itertuples() if r.window_id in passed}


def score_reader(method_id: str, inputs: Inputs, fits, settings: Settings, scope=None,
                 models: dict | None = None) -> pa.RecordBatchReader:
    """Stream assignments for every customer × window with a fitted model; with ``scope`` (a
    relation or SQL with a customer_key column) only for those customers: the filter is a
    semi-join in the SQL that reads the buckets, so the work is proportional to the scope.

    A customer's rows never depend on the other customers of its batch (everything that is
    standardised comes from the fit), so scoring a subset reproduces those customers' rows of
    a full scoring; see tests_py/test_cohort_incremental_scoring.py for what is checked."""
    models = latest_models(method_id, inputs, fits) if models is None else models
    if inputs.snowpark:
        if scope is not None:
            raise NotImplementedError("customer-scoped scoring is DuckDB-only so far")
        return _score_snowpark(method_id, inputs, settings, models)
    where = "true" if scope is None else _in_scope(scope)
    return pa.RecordBatchReader.from_batches(ASSIGNMENT_SCHEMA,
                                             _score_batches(method_id, inputs, settings, models, where))


def _batch_scorer(method_id: str, inputs: Inputs, models: dict):
    """The function that scores one batch of bucket rows (an Arrow table of whole customers)
    under every window's model: the same code on every engine."""
    reg = inputs.methods.loc[method_id]
    module = _method_module(method_id)

    def score(rows: pa.Table) -> pa.Table | None:
        batch = BucketBatch(rows.select(list(BUCKET_COLUMNS)), inputs.window_buckets)
        outs = [out for window_id, (version, model) in models.items()
                if (out := _score_window(method_id, module, window_id, version, model, inputs, batch, reg)) is not None]
        return pa.Table.from_batches(outs) if outs else None
    return score


def _score_snowpark(method_id: str, inputs: Inputs, settings: Settings, models: dict):
    """Snowflake: every customer scored in hash buckets of about score_batch customers, one
    applyInPandas call per bucket on the warehouse (frames.SnowparkFrames.partitioned)."""
    if not models:
        _log(f"{method_id}: no fitted window passes the sufficiency gate; nothing scored")
        return inputs.frames.output(pa.Table.from_pylist([], schema=ASSIGNMENT_SCHEMA))
    n_total = inputs.n_customers()
    n_batches = max(1, math.ceil(max(n_total, 1) / settings.score_batch))
    _log(f"{method_id}: scoring {n_total} customers in {n_batches} hash buckets")
    rows = inputs.buckets.select(*[c.upper() for c in BUCKET_COLUMNS])
    return inputs.frames.partitioned(rows, "customer_key", n_batches, _batch_scorer(method_id, inputs, models),
                                     ASSIGNMENT_SCHEMA)


def _in_scope(scope) -> str:
    return f"customer_key in (select customer_key from ({_sql(scope)}) as scope where customer_key is not null)"


def _score_batches(method_id: str, inputs: Inputs, settings: Settings, models: dict, where: str):
    """Record batches of the assignments of the customers matching the SQL predicate `where`."""
    if not models:
        _log(f"{method_id}: no fitted window passes the sufficiency gate; nothing scored")
        return
    n_total = int(inputs.con.sql(
        f"select count(distinct customer_key) from ({inputs.buckets_sql}) b where {where}").fetchall()[0][0])
    n_batches = max(1, math.ceil(max(n_total, 1) / settings.score_batch))
    reg = inputs.methods.loc[method_id]
    module = _method_module(method_id)
    customers = rows = 0
    for i in range(n_batches if n_total else 0):
        t0 = time.perf_counter()
        batch = inputs.read_buckets(f"hash(customer_key) % {n_batches} = {i} and ({where})")
        batch_rows = 0
        for window_id, (version, model) in models.items():
            out = _score_window(method_id, module, window_id, version, model, inputs, batch, reg)
            if out is not None:
                batch_rows += out.num_rows
                yield out
        customers, rows = customers + batch.n, rows + batch_rows
        _log(f"{method_id}: batch {i + 1}/{n_batches} ({batch.n} customers, {batch_rows} rows) "
             f"in {time.perf_counter() - t0:.1f}s")
    _log(f"{method_id}: scored {customers} customers, {rows} rows")


# ---------------------------------------------------------------------------------- incremental refresh
REFRESH_SCOPES = ("changed_customers", "all_customers")
# Methods whose scored rows depend on nothing but the customer's own bucket rows in the window
# and the fitted model: no clock-relative feature (intent and survival use days since the last
# event / purchase, which change as as_of moves) and no other customer's data at score time
# (graph_clustering looks the customer up in the fitted partition; the internal edge share that
# is its confidence was computed at fit time, so a neighbour's new edges change nothing until
# the next refit, which rescores everyone). Only these may be registered 'changed_customers'.
LOCAL_SCORING = ("kmeans", "hierarchical", "dbscan", "gaussian_mixture", "lda_topics", "word2vec",
                 "graph_clustering")


@dataclass(frozen=True)
class RefreshDecision:
    action: str  # "all": delete every row, score everyone; "scope": delete and rescore the scope; "none"
    reason: str


def refresh_scope(method_id: str, inputs: Inputs) -> str:
    """The method's registry refresh_scope; anything but a valid 'changed_customers' on a
    method that scores locally counts as 'all_customers' (the safe reading)."""
    reg = inputs.methods.loc[method_id]
    value = str(reg["refresh_scope"]).strip() if "refresh_scope" in reg.index and pd.notna(reg["refresh_scope"]) \
        else "all_customers"
    if value == "changed_customers" and method_id not in LOCAL_SCORING:
        _log(f"{method_id}: registry refresh_scope 'changed_customers' ignored: its scores depend on "
             "as_of or on other customers; every customer is rescored")
        return "all_customers"
    return value if value in REFRESH_SCOPES else "all_customers"


def refresh_decision(method_id: str, inputs: Inputs, models: dict, existing, plan) -> RefreshDecision:
    """What an incremental run of cohort_<method> must do, the first that applies:

    no existing table (first build, --full-refresh) -> all; the table's (window, model_version)
    pairs are not exactly the windows scored now with their latest fit -> all (a refit, a
    first fit, or a window whose sufficiency status changed: a window the gate passes always
    has rows, it has >= min_customers eligible customers); plan mode 'full' -> all;
    'unchanged' -> none, unless the table's rows per window differ from the gate's eligible
    customers (an earlier run failed after its deletes) -> all; registry refresh_scope
    'all_customers' -> all; 'incremental' -> scope."""
    if existing is None:
        return RefreshDecision("all", "no existing table (first build or --full-refresh)")
    con = inputs.con
    p = con.sql(f"select mode, mode_reason from ({_sql(plan)}) p").fetchall()
    if len(p) != 1:
        return RefreshDecision("all", f"cohort_refresh_plan has {len(p)} rows, expected 1")
    mode, mode_reason = p[0]
    held = con.sql(f"select window_id, model_version, count(*) from ({_sql(existing)}) t group by 1, 2").fetchall()
    expected = {(w, v) for w, (v, _) in models.items()}
    pairs = {(w, v) for w, v, _ in held}
    if pairs != expected:
        changes = [f"{w} {a} -> {b}" for w in sorted({w for w, _ in pairs | expected}, key=_window_order)
                   for a, b in [(_version_of(pairs, w), _version_of(expected, w))] if a != b]
        return RefreshDecision("all", "fits or sufficiency changed since the rows were scored: "
                               + "; ".join(changes[:3]) + (f"; {len(changes) - 3} more" if len(changes) > 3 else ""))
    if mode == "full":
        return RefreshDecision("all", f"plan mode full ({mode_reason})")
    if mode == "unchanged":
        off = _count_mismatch(method_id, inputs, models, {w: n for w, _, n in held}, {})
        if off:
            return RefreshDecision("all", "plan mode unchanged, but rows per window differ from "
                                          f"cohort_sufficiency: {off}")
        return RefreshDecision("none", f"plan mode unchanged ({mode_reason})")
    if mode != "incremental":
        return RefreshDecision("all", f"unknown plan mode {mode!r}")
    if refresh_scope(method_id, inputs) != "changed_customers":
        return RefreshDecision("all", "registry refresh_scope all_customers")
    return RefreshDecision("scope", f"plan mode incremental ({mode_reason})")


def _version_of(pairs, window_id) -> str:
    versions = sorted(str(v) for w, v in pairs if w == window_id)
    return ",".join(versions) if versions else "none"


def _count_mismatch(method_id, inputs: Inputs, models: dict, kept: dict, new: dict) -> str:
    """'' when, for every scored window, kept + new rows = the gate's eligible customers (every
    eligible customer gets exactly one row per scored window); else what differs."""
    off = []
    for w in sorted(models, key=_window_order):
        eligible = int(inputs.sufficiency.loc[(method_id, w), "eligible_customers"])
        if kept.get(w, 0) + new.get(w, 0) != eligible:
            off.append(f"{w}: {kept.get(w, 0)} kept + {new.get(w, 0)} new != {eligible} eligible")
    return "; ".join(off)


def incremental_reader(method_id: str, inputs: Inputs, fits, settings: Settings, *, existing=None,
                       plan=None, scope=None) -> pa.RecordBatchReader:
    """The rows to append to an incremental cohort_<method> table, after deleting from
    ``existing`` (dbt.this; None when dbt is not building incrementally) the rows they replace.

    'scope' deletes the rows of every customer in cohort_refresh_scope -- also those who vanished
    (identity merge) or lost windows, who get no new rows -- and rescores the ones still in the
    buckets; the rows kept get the run's as_of, as a full rebuild writes it. The deletes run on
    the model's connection and commit at once (dbt-duckdb opens no transaction around a Python
    model, and writes a streamed result through a second cursor, which a transaction opened
    before the model could not see). So a run that fails after its deletes is repaired by the
    next: an emptied table no longer matches the fits (-> all); a partly deleted one is re-scoped
    from the last completed refresh, and the row counts are reconciled with cohort_sufficiency
    after every 'scope' refresh: if kept + rescored rows differ from the eligible customers of
    any window, everyone else is rescored too, in the same run."""
    models = latest_models(method_id, inputs, fits)
    if inputs.snowpark:
        # not yet ported: the scoped refresh. Every run replaces every row (correct, not minimal).
        if existing is not None:
            target = inputs.con.table(str(existing)) if not FR.is_snowpark(existing) else existing
            target.delete()
        _log(f"{method_id}: refresh all customers (Snowflake: the customer-scoped refresh is DuckDB-only so far)")
        return score_reader(method_id, inputs, fits, settings, models=models)
    decision = refresh_decision(method_id, inputs, models, existing, plan)
    if existing is not None:
        target, con = str(existing), inputs.con
        if decision.action == "all":
            con.execute(f"delete from {target}").fetchall()
        elif decision.action == "scope":
            con.execute(f"delete from {target} where {_in_scope(scope)}").fetchall()
        if decision.action != "all":
            con.execute(f"update {target} set as_of = ? where as_of is distinct from ?",
                        [inputs.as_of, inputs.as_of]).fetchall()
    if decision.action == "none":
        _log(f"{method_id}: refresh none -- {decision.reason}; nothing rescored")
        return pa.RecordBatchReader.from_batches(ASSIGNMENT_SCHEMA, iter(()))
    if decision.action == "all":
        _log(f"{method_id}: refresh all customers -- {decision.reason}")
        return score_reader(method_id, inputs, fits, settings, models=models)
    n_scope = int(inputs.con.sql(f"select count(distinct customer_key) from ({_sql(scope)}) s").fetchall()[0][0])
    kept = dict(inputs.con.sql(f"select window_id, count(*) from {target} group by 1").fetchall())
    _log(f"{method_id}: refresh changed customers -- {decision.reason}; {n_scope} customers in "
         "cohort_refresh_scope: rows deleted, rescoring those still in the buckets")
    return pa.RecordBatchReader.from_batches(
        ASSIGNMENT_SCHEMA, _scope_batches(method_id, inputs, settings, models, scope, target, kept))


def _scope_batches(method_id, inputs: Inputs, settings: Settings, models: dict, scope, target: str, kept: dict):
    new: dict[str, int] = {}
    for batch in _score_batches(method_id, inputs, settings, models, _in_scope(scope)):
        w = batch.column("window_id")[0].as_py()  # one window per record batch
        new[w] = new.get(w, 0) + batch.num_rows
        yield batch
    off = _count_mismatch(method_id, inputs, models, kept, new)
    if off:
        # a customer outside the scope changed, or an earlier run failed after its deletes
        _log(f"{method_id}: rows do not add up to cohort_sufficiency ({off}); rescoring everyone else too")
        inputs.con.execute(f"delete from {target}").fetchall()
        yield from _score_batches(method_id, inputs, settings, models, f"not ({_in_scope(scope)})")


def _score_window(method_id, module, window_id, version, model, inputs, batch, reg):
    scored = _score_result(method_id, module, window_id, model, inputs, batch, reg)
    if scored is None:
        return None
    data, res, spec, ok = scored
    return _assemble(method_id, window_id, version, model, data, res, batch, spec, ok, inputs.as_of)


def _score_result(method_id, module, window_id, model, inputs, batch, reg):
    """(ScoreInput, ScoreResult, spec, eligible mask) of the batch's eligible customers under
    `model` for the window, or None when no customer is eligible."""
    spec = inputs.specs[(window_id, "as_of")]
    ok = _eligible(batch, spec, reg)
    if not ok.any():
        return None
    columns = model["columns"]
    X = batch.matrix(spec, columns)
    extra = {}
    if method_id == "intent":
        extra["numeric"] = _intent_numeric(batch, inputs, spec, inputs.as_of)[ok]
        extra["numeric_columns"] = INTENT_NUMERIC
    if method_id == "survival":
        extra["survival"] = _survival_frame(batch, spec, inputs.as_of, columns)[ok].reset_index(drop=True)
    data = ScoreInput(batch.customer_keys[ok], X[ok], columns, extra)
    res: ScoreResult = module.score(_scoring_params(method_id, model["fitted"]), data)
    return data, res, spec, ok


def _scoring_params(method_id: str, fitted: dict) -> dict:
    """The fitted parameters as scoring uses them. lda_topics: the batched E-step stops when
    the largest change of any customer in the batch falls below gamma_threshold, so a
    customer's topic shares depended on its batch (measured up to 4e-4 in confidence between a
    customer scored alone and in a batch of 3000); with the threshold at 0 every customer gets
    the model's full `iterations` E-step updates whatever the batch. Large batches already ran
    all of them (identical results on 20k customers), so full scoring is unchanged."""
    if method_id == "lda_topics":
        return dict(fitted, gamma_threshold=0.0)
    return fitted


def _assemble(method_id, window_id, version, model, data: ScoreInput, res: ScoreResult, batch, spec, ok, as_of):
    n = len(data.customer_keys)
    idx = np.asarray(res.cohort_index, dtype=np.int64)
    labels = model["fitted"].get("labels", [])
    assigned = idx >= 0
    # stable ids (cluster-type methods, see cohorts.alignment); models without them: the index
    ids = model["fitted"].get("cohort_ids")
    stable = [ids[i] if ids is not None and 0 <= i < len(ids) else i for i in idx.tolist()]
    cohort_id = np.where(assigned, [f"{method_id}:{i}" for i in stable], None)
    label = np.array([labels[i] if 0 <= i < len(labels) else None for i in idx], dtype=object)
    conf = np.where(assigned, np.clip(np.nan_to_num(np.asarray(res.confidence, float), nan=0.0), 0, 1), np.nan)
    reason = np.array(res.reason if res.reason is not None else [None] * n, dtype=object)
    reason[assigned] = None
    reason[~assigned & pd.isna(reason)] = f"{method_id}: not assigned"
    attribution = _attribution(data, res, batch, spec, ok, assigned)
    score = np.asarray(res.score, float) if res.score is not None else np.full(n, np.nan)
    return pa.record_batch({
        "customer_key": pa.array(data.customer_keys.astype(str)),
        "method_id": pa.array([method_id] * n), "window_id": pa.array([window_id] * n),
        "cohort_id": pa.array(cohort_id, pa.string()), "cohort_label": pa.array(label, pa.string()),
        "confidence": pa.array(conf, pa.float64(), from_pandas=True),
        "source_attribution": pa.array(attribution, pa.string()),
        "model_version": pa.array([version] * n),
        "as_of": pa.array([as_of] * n, pa.timestamp("us")),
        "score": pa.array(score, pa.float64(), from_pandas=True),
        "unassigned_reason": pa.array(reason, pa.string()),
    }, schema=ASSIGNMENT_SCHEMA)


def _attribution(data: ScoreInput, res: ScoreResult, batch: BucketBatch, spec, ok, assigned,
                 top: int = 5) -> np.ndarray:
    """JSON per assigned customer (None elsewhere): the signal types that drove the assignment
    (the method's column contributions, else the customer's own mix) and the source systems
    the customer's events in the window came from, top `top` of each, weights summing to 1."""
    out = np.full(len(data.customer_keys), None, dtype=object)
    if not assigned.any():
        return out
    cols = data.columns
    type_of = np.array([_signal_type_of(c) for c in cols], dtype=object)
    types = sorted({t for t in type_of if t})
    W = res.contribution if res.contribution is not None else data.X
    W = W[assigned] if not hasattr(W, "tocsr") else W.tocsr()[assigned]
    # column -> signal type aggregation as a sparse product
    agg = np.zeros((len(cols), len(types)))
    for j, t in enumerate(types):
        agg[type_of == t, j] = 1.0
    T = W @ agg if hasattr(W, "tocsr") else np.clip(np.nan_to_num(np.asarray(W, float)), 0, None) @ agg
    T = np.clip(np.asarray(T), 0, None)
    # where the method's contributions carry no signal-type weight (contributions on category
    # or channel columns only, or no contributions at all), the customer's own mix stands in
    empty = T.sum(axis=1) <= 0
    if empty.any():
        own_cols = batch.columns(spec, ("signal_type",))
        own = batch.matrix(spec, own_cols)[ok][assigned][empty].toarray()
        own_types = [c.split(":", 1)[1] for c in own_cols]
        all_types = sorted(set(types) | set(own_types))
        if all_types != types:
            T2 = np.zeros((T.shape[0], len(all_types)))
            T2[:, [all_types.index(t) for t in types]] = T
            T, types = T2, all_types
        T[np.ix_(np.flatnonzero(empty), [types.index(t) for t in own_types])] = own
    src_cols = batch.columns(spec, ("source_system",))
    S = batch.matrix(spec, src_cols)[ok][assigned].toarray()
    src_names = [c.split(":", 1)[1] for c in src_cols]
    type_json = _top_json(T, types, top)
    src_json = _top_json(S, src_names, top)
    out[assigned] = [f'{{"signal_types":{a},"source_systems":{b}}}' for a, b in zip(type_json, src_json)]
    return out


def _top_json(W: np.ndarray, names: list[str], k: int) -> list[str]:
    """Row-wise top-k of W as JSON objects {name: weight} with weights normalised to sum 1."""
    if W.shape[1] == 0:
        return ["{}"] * W.shape[0]
    k = min(k, W.shape[1])
    # stable: ties keep name order whatever other columns the batch has
    order = np.argsort(-W, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(W, order, axis=1)
    sums = vals.sum(axis=1, keepdims=True)
    share = np.round(np.divide(vals, sums, out=np.zeros_like(vals), where=sums > 0), 4)
    quoted = np.array([json.dumps(n) for n in names], dtype=object)
    keys = quoted[order]
    return ["{" + ",".join(f"{kk}:{v:g}" for kk, v, w in zip(kr, vr, raw) if w > 0) + "}"
            for kr, vr, raw in zip(keys, share.tolist(), vals.tolist())]


def _signal_type_of(col: str) -> str | None:
    kind, _, value = col.partition(":")
    if kind == "signal_type":
        return value
    if kind == "signal_category":
        return value.split("|", 1)[0]
    return None


# ---------------------------------------------------------------------------------- retention
LAPSE_DAYS = 90


def retention_table(con, customers, context) -> pa.Table:
    """Kaplan-Meier retention curves per acquisition month (first event month, lifetime window).

    A customer is retained while active; they lapse at their last event if it is more than
    LAPSE_DAYS before as_of (event observed), else they are censored at as_of.
    """
    from .methods.survival import retention_curves

    as_of = pd.Timestamp(_df(con, context)["as_of"].iloc[0])
    fr = FR.for_session(con)
    if fr.engine == "snowflake":  # one row per customer: read to the procedure's node (3 columns)
        from snowflake.snowpark import functions as F
        df = fr.pandas(customers.filter(F.col("WINDOW_ID") == F.lit("lifetime"))
                       .select("FIRST_OCCURRED_AT", "LAST_OCCURRED_AT"))
        for c in ("first_occurred_at", "last_occurred_at"):
            df[c] = pd.to_datetime(df[c])
        df.insert(0, "acquisition_month", df["first_occurred_at"].dt.to_period("M").dt.to_timestamp())
    else:
        df = con.sql(
            f"select date_trunc('month', first_occurred_at) as acquisition_month, first_occurred_at, last_occurred_at "
            f"from ({_sql(customers)}) c where window_id = 'lifetime'").df()
    if df.empty:
        return fr.output(pa.table({"acquisition_month": pa.array([], pa.timestamp("us"))}))
    lapsed = (as_of - df["last_occurred_at"]).dt.total_seconds() / 86400 > LAPSE_DAYS
    end = df["last_occurred_at"].where(lapsed, as_of)
    durations = ((end - df["first_occurred_at"]).dt.total_seconds() / 86400).clip(lower=0.01)
    curves = retention_curves(durations.to_numpy(), lapsed.astype(int).to_numpy(),
                              df["acquisition_month"].dt.strftime("%Y-%m").to_numpy())
    curves = curves.rename(columns={"group": "acquisition_month"})
    curves.insert(0, "as_of", as_of)
    curves["lapse_definition_days"] = LAPSE_DAYS
    return fr.output(pa.Table.from_pandas(curves, preserve_index=False))
