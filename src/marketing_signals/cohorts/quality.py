"""Quality of every method × window, in long form for BI: the fit's own diagnostics
(silhouette, bootstrap stability, hold-out AUC, ...) and, when planted truth is available (the
demo generator's truth/ folder), recovery of that truth (ARI, purity, exact funnel match).

Truth is per raw customer id while cohorts are per resolved customer_key, so recovery is
measured on customers whose key is their own id and who belong to no identity group; persona
recovery also leaves out the planted persona switchers (their truth changes mid-history).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.metrics import adjusted_rand_score

from .. import frames as FR

SCHEMA = pa.schema([("method_id", pa.string()), ("window_id", pa.string()), ("metric", pa.string()),
                    ("value", pa.float64()), ("n_customers", pa.int64()), ("source", pa.string()),
                    ("detail", pa.string())])
PERSONA_METHODS = ("kmeans", "hierarchical", "gaussian_mixture", "dbscan", "lda_topics", "word2vec", "persona")
SAMPLE_PER_MILLION = 200_000


def fit_metrics(fits: pd.DataFrame) -> list[dict]:
    """Numbers from each window's latest fit quality (one row per metric)."""
    rows = []
    # ties on fitted_at (fits of one build share it) broken by the row itself, not the read order
    latest = fits.sort_values(["fitted_at", "model_version", "n_fit"], kind="stable", na_position="first") \
        .groupby(["method_id", "window_id"]).tail(1)
    for r in latest.itertuples():
        quality = json.loads(r.quality_json) if r.quality_json else {}
        for k, v in _flatten(quality).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v):
                rows.append({"method_id": r.method_id, "window_id": r.window_id, "metric": k,
                             "value": float(v), "n_customers": int(r.n_fit) if pd.notna(r.n_fit) else 0, "source": "fit",
                             "detail": r.model_version})
    return rows


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def truth_metrics(con, assignments_sql: str, truth_dir: str) -> list[dict]:
    """Recovery of the demo generator's planted truth, on a deterministic customer sample."""
    truth = Path(truth_dir)
    if not truth_dir or not (truth / "customers.parquet").exists():
        return []
    singles = f"""
        select c.customer_id, c.persona, c.current_persona
        from read_parquet('{truth / "customers.parquet"}') c
        join read_parquet('{truth / "identity.parquet"}') i using (customer_id)
        where i.person_key = c.customer_id
          and not exists (select 1 from read_parquet('{truth / "identity.parquet"}') j
                          where j.person_key = c.customer_id and j.customer_id <> c.customer_id)
    """
    df = con.sql(f"""
        select a.method_id, a.window_id, a.cohort_id, s.persona, s.current_persona, a.customer_key
        from ({assignments_sql}) a
        join ({singles}) s on s.customer_id = a.customer_key
        where (hash(a.customer_key) % 1000000) < {SAMPLE_PER_MILLION}
    """).df()
    rows = []
    stable = df[df["persona"] == df["current_persona"]]
    for (m, w), g in stable.groupby(["method_id", "window_id"]):
        if m not in PERSONA_METHODS or len(g) < 50:
            continue
        rows.append(_row(m, w, "ari_vs_planted_persona", adjusted_rand_score(g["persona"], g["cohort_id"]), len(g)))
        rows.append(_row(m, w, "purity_vs_planted_persona", _purity(g["cohort_id"], g["persona"]), len(g)))
    comm = con.sql(f"""
        select a.window_id, a.cohort_id, t.community_id
        from ({assignments_sql}) a
        join read_parquet('{truth / "communities.parquet"}') t on t.customer_id = a.customer_key
        where a.method_id = 'graph_clustering'
    """).df()
    for w, g in comm.groupby("window_id"):
        rows.append(_row("graph_clustering", w, "ari_vs_planted_communities",
                         adjusted_rand_score(g["community_id"], g["cohort_id"]), len(g)))
    funnel = con.sql(f"""
        select a.window_id, a.cohort_id, 'funnel:' || t.max_stage_reached as truth_id
        from ({assignments_sql}) a
        join read_parquet('{truth / "funnel.parquet"}') t on t.customer_id = a.customer_key
        join ({singles}) s on s.customer_id = a.customer_key
        where a.method_id = 'funnel' and a.window_id = 'lifetime'
          and not exists (select 1 from read_parquet('{truth / "injected_defects.parquet"}') d
                          where d.customer_id = a.customer_key)
    """).df()
    if len(funnel):
        rows.append(_row("funnel", "lifetime", "exact_match_vs_planted_funnel",
                         float((funnel["cohort_id"] == funnel["truth_id"]).mean()), len(funnel)))
    return rows


def _purity(pred: pd.Series, truth: pd.Series) -> float:
    table = pd.crosstab(pred, truth)
    return float(table.max(axis=1).sum() / table.to_numpy().sum())


def _row(m, w, metric, value, n) -> dict:
    return {"method_id": m, "window_id": w, "metric": metric, "value": float(value), "n_customers": int(n),
            "source": "planted_truth", "detail": None}


def quality_table(con, fits, assignments, truth_dir: str | None) -> pa.Table:
    """Fit metrics of every fitted model, and on DuckDB the recovery of the demo's planted truth
    (truth_dir: the generator's local truth files). fits / assignments: relations or SQL.
    Snowflake (Snowpark): fit metrics only -- a stored procedure cannot read local truth files."""
    if FR.is_snowpark(con):
        fits = FR.for_session(con).pandas(fits)  # small: filtered here (see frames.SnowparkFrames.pandas)
        fits = fits[fits["status"] == "fitted"]
        if truth_dir:
            print("[marketing_signals.cohorts] cohort_quality: planted-truth metrics skipped on Snowflake "
                  "(the demo's truth files are local)", flush=True)
        return FR.for_session(con).output(pa.Table.from_pylist(fit_metrics(fits), schema=SCHEMA))
    fits_sql, assignments_sql = (r if isinstance(r, str) else r.sql_query() for r in (fits, assignments))
    fits = con.sql(f"select * from ({fits_sql}) f where status = 'fitted'").df()
    rows = fit_metrics(fits) + truth_metrics(con, assignments_sql, truth_dir or "")
    return pa.Table.from_pylist(rows, schema=SCHEMA)
