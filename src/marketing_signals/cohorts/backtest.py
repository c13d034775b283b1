"""Out-of-time check of cohorts built with an earlier as_of: what did customers do next?

After `dbt build --vars '{"marketing_signals__as_of": "<cut-off>"}'` the cohorts only saw
events up to the cut-off; signals_staged still holds everything after it. For each window this
reports the intent score's AUC for "purchased in the horizon after the cut-off", and for each
RFM segment the share of customers who purchased and their mean spend in that horizon.
"""
from __future__ import annotations

import duckdb
import pandas as pd
from sklearn.metrics import roc_auc_score

from marketing_signals.summary import relation_name


def backtest(db_path: str, horizon_days: int = 90) -> dict:
    con = duckdb.connect(db_path, read_only=True)
    try:
        staged = relation_name(con, "signals_staged")
        assignments = relation_name(con, "cohort_assignments")
        as_of = con.execute(f"select max(as_of) from {relation_name(con, 'cohort_run_context')}").fetchone()[0]
        future = f"""
            select customer_key, count(*) as purchases, sum(amount) as spend
            from {staged}
            where signal_type = 'purchase'
              and occurred_at > timestamp '{as_of}'
              and occurred_at <= timestamp '{as_of}' + interval {int(horizon_days)} day
            group by 1"""
        df = con.execute(f"""
            select a.method_id, a.window_id, a.cohort_id, a.cohort_label, a.score,
                   coalesce(f.purchases, 0) > 0 as purchased, coalesce(f.spend, 0) as spend
            from {assignments} a left join ({future}) f using (customer_key)
            where a.method_id in ('intent', 'rfm')""").df()
    finally:
        con.close()
    out = {"as_of": str(as_of), "horizon_days": horizon_days, "intent_auc": {}, "rfm": {}}
    intent = df[df.method_id == "intent"]
    for window, g in intent.groupby("window_id"):
        if g.purchased.nunique() == 2:
            out["intent_auc"][window] = {"auc": round(float(roc_auc_score(g.purchased, g.score)), 4),
                                         "customers": int(len(g)), "purchasers": int(g.purchased.sum())}
    rfm = df[df.method_id == "rfm"]
    for window, g in rfm.groupby("window_id"):
        seg = g.groupby("cohort_id").agg(customers=("purchased", "size"), purchased_share=("purchased", "mean"),
                                         mean_spend=("spend", "mean")).sort_values("purchased_share", ascending=False)
        out["rfm"][window] = {k: {c: round(float(v), 4) for c, v in row.items()} for k, row in seg.iterrows()}
    return out


def print_backtest(result: dict) -> None:
    print(f"cohorts as of {result['as_of']}; outcome: purchase in the next {result['horizon_days']} days")
    for window, r in result["intent_auc"].items():
        print(f"  intent {window:>8}: AUC {r['auc']:.3f} over {r['customers']:,} customers ({r['purchasers']:,} purchased)")
    for window, segs in result["rfm"].items():
        print(f"  RFM {window}:")
        for seg, r in segs.items():
            print(f"    {seg:<32} {int(r['customers']):>7,} customers  purchased {r['purchased_share']:.1%}"
                  f"  mean spend {r['mean_spend']:.2f}")
