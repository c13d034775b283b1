"""Score Observe and Forecast against planted truth (demo) or labelled windows (NAB).

Demo truth (truth/incident_symptoms): one row per incident x stream x location with the
symptom's [start_date, end_date]. An anomaly window on the same stream and location matches
a symptom when it overlaps [start - before, end + after] (`after` covers the recovery days).

- incident x location recall: share of (incident, location) pairs with at least one matched
  symptom; incident recall: share of incidents with at least one matched pair;
- false alarms: location-level anomaly windows that match no symptom, per series per 90
  observed days (after the warm-up);
- onset: for each recalled incident, |earliest matched onset - incident onset| <= tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .incidents import incident_onset
from .panel import PORTFOLIO


def match_windows(anoms: pd.DataFrame, truth: pd.DataFrame, before: int = 1, after: int = 3) -> pd.DataFrame:
    """Pairs (anomaly row, truth row) that overlap on the same stream and location.

    anoms: stream_id, location_id, onset_date, end_date (+ anything); truth: stream_id,
    location_id, start_date, end_date. Dates are Timestamps.
    """
    a = anoms.reset_index(names="a_row")
    t = truth.reset_index(names="t_row")
    j = a.merge(t, on=["stream_id", "location_id"], suffixes=("", "_truth"))
    lo = j["start_date"] - pd.Timedelta(days=before)
    hi = j["end_date_truth"] + pd.Timedelta(days=after)
    return j[(j["onset_date"] <= hi) & (j["end_date"] >= lo)]


def score_demo(anoms: pd.DataFrame, symptoms: pd.DataFrame, incidents: pd.DataFrame,
               n_local_series: int, observed_days: int, onset_tolerance: int = 1,
               strong_share: float = 0.5) -> dict:
    cols = ["stream_id", "location_id", "onset_date", "end_date", "anomaly_score"]
    local = anoms.loc[anoms["location_id"] != PORTFOLIO, cols].reset_index(drop=True)
    m = match_windows(local, symptoms)
    pairs = symptoms[["incident_id", "location_id"]].drop_duplicates()
    hit_pairs = m[["incident_id", "location_id"]].drop_duplicates()
    # the incident's onset: earliest onset among its strong matched windows (as incidents.group)
    onset_est = incident_onset(m, key="incident_id", onset="onset_date", strong_share=strong_share)
    inc = incidents.set_index("incident_id")
    recalled = onset_est.index
    err = (onset_est - pd.to_datetime(inc.loc[recalled, "onset_date"])).dt.days
    false_alarms = int(len(local) - m["a_row"].nunique())
    per_stream = (local.assign(fa=~local.index.isin(m["a_row"])).groupby("stream_id")["fa"].sum())
    n_loc = max(1, local["location_id"].nunique()) if len(local) else 1
    fa_rate = false_alarms / max(1, n_local_series) / (observed_days / 90)
    return {
        "incidents": int(len(incidents)),
        "incident_recall": float(len(recalled) / max(1, len(incidents))),
        "incident_location_pairs": int(len(pairs)),
        "incident_location_recall": float(len(hit_pairs) / max(1, len(pairs))),
        "symptom_recall": float(m["t_row"].nunique() / max(1, len(symptoms))),
        "anomaly_windows": int(len(local)),
        "false_alarms": false_alarms,
        "false_alarms_per_series_per_90d": float(fa_rate),
        "worst_stream_false_alarms_per_series_per_90d": float(
            per_stream.max() / n_loc / (observed_days / 90)) if len(per_stream) else 0.0,
        "onset_within_tolerance": float((err.abs() <= onset_tolerance).mean()) if len(err) else 0.0,
        "onset_error_days_median": float(err.median()) if len(err) else float("nan"),
        "missed_incidents": sorted(set(incidents["incident_id"]) - set(recalled)),
    }


# ------------------------------------------------------------------ NAB
def load_nab(root: Path | str, files: list[str] | None = None) -> dict[str, tuple[pd.DataFrame, list]]:
    """{relative file: (frame with timestamp/value, [(start, end) label windows])}."""
    root = Path(root)
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    keys = files or sorted(k for k in windows if k.startswith(("realAdExchange/", "realKnownCause/")))
    out = {}
    for k in keys:
        df = pd.read_csv(root / k, parse_dates=["timestamp"])
        out[k] = (df, [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows[k]])
    return out


def score_windows(flag_times: list[tuple[pd.Timestamp, pd.Timestamp]], labels: list) -> dict:
    """Window-level recall (labelled windows hit), precision (detections inside a label), F1."""
    hit = sum(any(a <= le and b >= ls for a, b in flag_times) for ls, le in labels)
    tp_det = sum(any(a <= le and b >= ls for ls, le in labels) for a, b in flag_times)
    recall = hit / len(labels) if labels else float("nan")
    precision = tp_det / len(flag_times) if flag_times else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"labels": len(labels), "detections": len(flag_times), "recall": recall,
            "precision": precision, "f1": f1}


# ------------------------------------------------------------------ the demo, end to end
def truth_mask(panel, symptoms: pd.DataFrame, before: int = 1, after: int = 3) -> np.ndarray:
    """(n, T) bool: days within [start - before, end + after] of a planted symptom of the series;
    portfolio series are masked where any location of the stream is."""
    idx = pd.MultiIndex.from_frame(panel.series[["stream_id", "location_id"]])
    rows = idx.get_indexer(pd.MultiIndex.from_frame(symptoms[["stream_id", "location_id"]]))
    mask = np.zeros(panel.values.shape, bool)
    a = panel.days.searchsorted(pd.to_datetime(symptoms["start_date"]) - pd.Timedelta(days=before))
    b = panel.days.searchsorted(pd.to_datetime(symptoms["end_date"]) + pd.Timedelta(days=after), side="right")
    for r, lo, hi in zip(rows, a, b, strict=True):
        if r >= 0:
            mask[r, lo:hi] = True
    port = panel.series["location_id"].to_numpy() == PORTFOLIO
    for i in np.flatnonzero(port):
        same = (panel.series["stream_id"].to_numpy() == panel.series["stream_id"].iat[i]) & ~port
        mask[i] |= mask[same].any(axis=0)
    return mask


def evaluate_demo(demo_dir: Path | str, registry_dir: Path | str, log=print) -> dict:
    """Observe + Forecast on a generated demo folder, scored against its planted truth."""
    from . import pipeline as PL
    from .panel import build_panel

    demo_dir = Path(demo_dir)
    m = pd.read_parquet(demo_dir / "raw" / "stream_metrics")
    for c in ("stream_id", "location_id"):
        m[c] = m[c].astype(str)
    registry = pd.read_csv(Path(registry_dir) / "registry_streams.csv")
    holidays = pd.read_csv(Path(registry_dir) / "registry_holidays.csv")
    holidays = holidays[holidays["country"] == "US"]
    symptoms = pd.read_parquet(demo_dir / "truth" / "incident_symptoms.parquet")
    incidents = pd.read_parquet(demo_dir / "truth" / "incidents.parquet")
    for c in ("start_date", "end_date"):
        symptoms[c] = pd.to_datetime(symptoms[c])
    panel = build_panel(m, registry)
    res = PL.run(panel, holidays=holidays, with_observations=False, log=log)
    w = res.anomalies.merge(panel.series[["stream_id", "location_id"]], left_on="series", right_index=True)
    w["onset_date"] = panel.days[w["onset"]]
    w["end_date"] = panel.days[w["end"]]
    n_local = int((panel.series["location_id"] != PORTFOLIO).sum())
    observe = score_demo(w, symptoms, incidents, n_local, panel.values.shape[1] - 28)
    # Forecast on normal periods: the backtests again, with the planted symptom days masked
    from . import forecast as F
    from .pipeline import _backtest
    normal = truth_mask(panel, symptoms)
    origins = F.backtest_origins(panel.values.shape[1], F.ForecastConfig())
    params = F.params_for_series(panel.series, res.models)
    bt, _ = _backtest(panel, res.filter, origins, params, F.ForecastConfig(), normal)
    chosen = panel.series[["stream_id"]].merge(res.models[["stream_id", "model"]], on="stream_id", how="left")["model"].to_numpy()
    bt = bt[(bt["model"].to_numpy() == chosen[bt["series"]]) & (bt["origin"] > min(origins))]
    local = panel.series["location_id"].to_numpy()[bt["series"]] != PORTFOLIO
    pts = bt["n_points"].to_numpy()
    forecast = {
        "origins_scored": len(origins) - 1,
        "coverage_80": float(np.average(bt["coverage_80"].fillna(0), weights=pts)),
        "coverage_95": float(np.average(bt["coverage_95"].fillna(0), weights=pts)),
        "mase_mean": float(bt["mase"].mean()),
        "mase_local_series_mean": float(bt.loc[local, "mase"].mean()),
        # pooled: sum of the chosen model's errors over seasonal naive's on the same days
        "relative_mae_vs_seasonal_naive": float(np.nansum(bt["mae"] * pts) / np.nansum(bt["mae"] / bt["relative_mae"] * pts)),
        "models": res.models["model"].value_counts().to_dict(),
    }
    from . import incidents as I

    _, grouped = I.group(w[["stream_id", "location_id", "onset", "end", "anomaly_score"]])
    incidents_summary = {"anomalies": int(len(w)), "incidents": int(len(grouped)),
                         "alert_reduction_ratio": float(len(w) / max(1, len(grouped)))}
    return {"observe": observe, "forecast": forecast, "incidents": incidents_summary, "timings": res.timings}
