"""What the dbt Python models of python_models/streams/ call: read refs, run the engine once per
dbt invocation, return one output frame each.

The five stream models share one engine run: the result is cached in the process, keyed by a
fingerprint of the inputs (row count, value sum and date range of stream_metrics_staged, the
registry, the calendar, the settings and the stream_models fit), so a second model of the same
build reuses it and any change of input recomputes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from .. import frames as FR
from . import forecast as F
from . import incidents as I
from . import observe as O
from . import pipeline as PL
from .panel import PORTFOLIO, build_panel

_CACHE: dict[str, tuple] = {}
_LOCK = threading.Lock()


def _df(rel) -> pd.DataFrame:
    """A relation as pandas with lower-case column names (DuckDB relation or Snowpark DataFrame)."""
    if FR.is_snowpark(rel):
        return FR.SnowparkFrames(None).pandas(rel)
    return rel.df() if hasattr(rel, "df") else rel.to_pandas()


def _settings(settings: dict | None) -> tuple[O.ObserveConfig, F.ForecastConfig, int]:
    s = settings or {}
    ocfg = O.ObserveConfig(spike_tau=float(s.get("spike_tau", 4.0)), cusum_k=float(s.get("cusum_k", 0.75)),
                           cusum_h=float(s.get("cusum_h", 3.5)), counter_factor=float(s.get("counter_factor", 0.6)))
    fcfg = F.ForecastConfig(horizon=int(s.get("horizon", 28)), fit_sample=int(s.get("fit_sample", 3)))
    return ocfg, fcfg, int(s.get("link_days", 3))


def _inputs(refs: dict):
    metrics = _df(refs["metrics"])
    registry = _df(refs["registry"])
    calendar = _df(refs["calendar"])
    ctx = _df(refs["context"])
    as_of = pd.Timestamp(ctx["as_of_date"].iloc[0]) if len(ctx) and pd.notna(ctx["as_of_date"].iloc[0]) else None
    return metrics, registry, calendar, as_of


def _fingerprint(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, pd.DataFrame):
            h.update(pd.util.hash_pandas_object(p.sort_index(axis=1), index=False).values.tobytes())
        else:
            h.update(json.dumps(p, default=str, sort_keys=True).encode())
    return h.hexdigest()


def _calendars(calendar: pd.DataFrame):
    hol = calendar[calendar["calendar_kind"] == "holiday"].rename(
        columns={"calendar_date": "holiday_date", "calendar_key": "holiday_name"})
    promo = calendar[calendar["calendar_kind"] == "promo"]
    promos = promo.rename(columns={"calendar_date": "starts_on"}).assign(ends_on=lambda d: d["starts_on"])
    return hol[["holiday_date", "holiday_name"]], promos[["location_id", "starts_on", "ends_on"]]


def run(refs: dict, settings: dict | None) -> tuple:
    """(panel, result, as_of, link_days) for this build, computed once per input fingerprint.

    refs: metrics, registry, calendar, context relations, and models (the stream_models fit)
    except when stream_models itself is being built (then the ETS parameters are fitted now)."""
    ocfg, fcfg, link_days = _settings(settings)
    metrics, registry, calendar, as_of = _inputs(refs)
    params = _df(refs["models"]) if "models" in refs else None
    key = _fingerprint(metrics, registry, calendar, [str(as_of), repr(ocfg), repr(fcfg), link_days],
                       params if params is not None else "fit")
    with _LOCK:
        if key not in _CACHE:
            if metrics.empty:
                raise ValueError("stream_metrics_staged is empty: no usable stream values up to the as_of date "
                                 "(see stream_metrics_quarantine for rejected rows)")
            panel = build_panel(metrics, registry, end=as_of)
            holidays, promos = _calendars(calendar)
            res = PL.run(panel, holidays=holidays, promos=promos, ocfg=ocfg, fcfg=fcfg,
                         stream_params=None if params is None else params[["stream_id", "alpha", "beta", "gamma", "phi",
                                                                             "n_fitted", "n_sampled"]],
                         with_observations=True)
            _CACHE.clear()
            _CACHE[key] = (panel, res, as_of or panel.days[-1], link_days)
        return _CACHE[key]


def _ids(frame: pd.DataFrame, cols: list[str], prefix: str) -> pd.Series:
    joined = frame[cols].astype(str).agg("|".join, axis=1)
    return prefix + joined.map(lambda v: hashlib.sha256(v.encode()).hexdigest()[:16])


def stream_models(refs: dict, settings: dict | None) -> pd.DataFrame:
    panel, res, as_of, _ = run(refs, settings)
    m = res.models.copy()
    m["as_of_date"] = pd.Timestamp(as_of).date()
    m["fitted_at"] = datetime.now(timezone.utc).replace(tzinfo=None)
    m["fit_seconds"] = res.timings.get("fit_seconds")
    return m[["stream_id", "model", "selection_reason", "alpha", "beta", "gamma", "phi", "n_sampled", "n_fitted",
              "ets_relative_mae", "as_of_date", "fitted_at", "fit_seconds"]]


def anomaly_windows(refs: dict, settings: dict | None) -> tuple:
    """(panel, result, as_of, windows): every anomaly window of this build with its stream,
    location, day indices (onset, end), incident number and incident_id."""
    panel, res, as_of, link_days = run(refs, settings)
    w = res.anomalies.merge(panel.series[["stream_id", "location_id"]], left_on="series", right_index=True)
    days = panel.days
    out = pd.DataFrame({
        "stream_id": w["stream_id"].to_numpy(), "location_id": w["location_id"].to_numpy(),
        "direction": np.where(w["side"] == 0, "up", "down"),
        "is_direction_of_concern": w["is_direction_of_concern"].to_numpy(bool),
        "kind": w["kind"].to_numpy(), "onset_date": days[w["onset"]].date, "detected_date": days[w["detected"]].date,
        "end_date": days[w["end"]].date, "is_open": w["is_open"].to_numpy(bool),
        "duration_days": (w["end"] - w["onset"] + 1).to_numpy(np.int64),
        "detection_delay_days": (w["detected"] - w["onset"]).to_numpy(np.int64),
        "peak_z": w["peak_z"].to_numpy(float), "peak_cusum": w["peak_cusum"].to_numpy(float),
        "anomaly_score": w["anomaly_score"].to_numpy(float),
        "onset": w["onset"].to_numpy(), "end": w["end"].to_numpy(),
    })
    out["anomaly_id"] = _ids(out, ["stream_id", "location_id", "direction", "onset_date"], "A")
    inc, summary = I.group(out[["stream_id", "location_id", "onset", "end", "anomaly_score"]], link_days=link_days)
    out["incident_number"] = inc.to_numpy()
    members = out.groupby("incident_number")["anomaly_id"].agg(lambda s: "|".join(sorted(s)))
    onset = pd.Series(days[summary["onset"].to_numpy()].strftime("%Y%m%d"), index=summary["incident"])
    inc_id = "I" + onset + "-" + members.map(lambda v: hashlib.sha256(v.encode()).hexdigest()[:10])
    out["incident_id"] = out["incident_number"].map(inc_id)
    out["incident_onset_date"] = out["incident_number"].map(pd.Series(days[summary["onset"].to_numpy()].date,
                                                                       index=summary["incident"]))
    return panel, res, as_of, out


def anomalies(refs: dict, settings: dict | None) -> pd.DataFrame:
    _, _, as_of, out = anomaly_windows(refs, settings)
    out = out.assign(as_of_date=pd.Timestamp(as_of).date())
    cols = ["anomaly_id", "incident_id", "stream_id", "location_id", "direction", "is_direction_of_concern", "kind",
            "onset_date", "detected_date", "end_date", "incident_onset_date", "duration_days", "detection_delay_days",
            "is_open", "peak_z", "peak_cusum", "anomaly_score", "as_of_date"]
    return out[cols].sort_values(["onset_date", "stream_id", "location_id", "direction"]).reset_index(drop=True)


def observations(refs: dict, settings: dict | None) -> pd.DataFrame:
    panel, res, as_of, _ = run(refs, settings)
    o = res.observations
    s = panel.series
    return pd.DataFrame({
        "stream_id": s["stream_id"].to_numpy()[o["series"]], "location_id": s["location_id"].to_numpy()[o["series"]],
        "period_start": panel.days[o["day"]].date, "value": o["value"].to_numpy(),
        "expected": o["expected"].to_numpy(), "z_score": o["z_score"].to_numpy(),
        "is_anomalous": o["is_anomalous"].to_numpy(bool), "is_portfolio": s["location_id"].to_numpy()[o["series"]] == PORTFOLIO,
    })


def forecasts(refs: dict, settings: dict | None) -> pd.DataFrame:
    panel, res, as_of, _ = run(refs, settings)
    f = res.forecasts
    s = panel.series
    as_of = pd.Timestamp(as_of)
    out = pd.DataFrame({
        "stream_id": s["stream_id"].to_numpy()[f["series"]], "location_id": s["location_id"].to_numpy()[f["series"]],
        "as_of_date": as_of.date(), "forecast_date": pd.DatetimeIndex(panel.days[-1] + pd.to_timedelta(f["horizon"].to_numpy(), unit="D")).date,
        "horizon_days": f["horizon"].to_numpy(np.int64), "model": f["model"].to_numpy(),
        "forecast": f["forecast"].to_numpy(),
    })
    for c in ("lower_80", "upper_80", "lower_95", "upper_95"):
        out[c] = f[c].to_numpy()
    return out


def backtests(refs: dict, settings: dict | None) -> pd.DataFrame:
    panel, res, as_of, _ = run(refs, settings)
    b = res.backtests
    s = panel.series
    chosen = s[["stream_id"]].merge(res.models[["stream_id", "model"]], on="stream_id", how="left")["model"].to_numpy()
    return pd.DataFrame({
        "stream_id": s["stream_id"].to_numpy()[b["series"]], "location_id": s["location_id"].to_numpy()[b["series"]],
        "origin_date": panel.days[b["origin"]].date, "model": b["model"].to_numpy(),
        "is_chosen_model": b["model"].to_numpy() == chosen[b["series"]],
        "mae": b["mae"].to_numpy(), "mase": b["mase"].to_numpy(), "relative_mae": b["relative_mae"].to_numpy(),
        "coverage_80": b["coverage_80"].to_numpy(), "coverage_95": b["coverage_95"].to_numpy(),
        "n_points": b["n_points"].to_numpy(np.int64),
    })
