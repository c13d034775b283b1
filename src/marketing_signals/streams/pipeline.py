"""Observe + Forecast in one pass over time for every series (stream x location + portfolio).

`run(panel)` fits the per-stream ETS parameters (statsmodels, sampled series), runs the robust
filter with the anomaly detector once over the whole history (snapshotting the state at the
backtest origins), backtests ETS and seasonal naive from those snapshots, picks each stream's
model, and forecasts from the final state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scipy.stats import norm

from . import forecast as F
from . import observe as O
from .panel import Panel, concern_sign, day_of_month_calendar, event_calendar


@dataclass
class StreamsResult:
    anomalies: pd.DataFrame
    observations: pd.DataFrame | None
    forecasts: pd.DataFrame
    backtests: pd.DataFrame
    models: pd.DataFrame
    timings: dict = field(default_factory=dict)
    flagged: np.ndarray | None = None       # (n, T) bool: day inside an anomaly window
    filter: object = None                   # ets.FilterResult of the pass (states at the backtest origins)


def window_mask(windows: pd.DataFrame, n: int, T: int) -> np.ndarray:
    """(n, T) bool: days covered by any window."""
    mask = np.zeros((n, T + 1), np.int32)
    if len(windows):
        s = windows["series"].to_numpy()
        np.add.at(mask, (s, windows["onset"].to_numpy()), 1)
        np.add.at(mask, (s, windows["end"].to_numpy() + 1), -1)
    return np.cumsum(mask, axis=1)[:, :T] > 0


MIN_CALIBRATION_POINTS = 50


def _calibration(pool: dict, key, levels, n_streams: int) -> dict:
    """Interval scale per stream and level: the level-quantile of |standardised error| over the
    pooled earlier backtest points, divided by the normal quantile (1 where too few points)."""
    out = {}
    for lvl in levels:
        f = np.ones(n_streams)
        z = norm.ppf(0.5 + lvl / 2)
        for st, errs in pool.get(key, {}).items():
            e = np.concatenate(errs) if errs else np.zeros(0)
            if e.size >= MIN_CALIBRATION_POINTS:
                f[st] = np.quantile(e, lvl) / z
        out[lvl] = f
    return out


def _backtest(panel: Panel, res, origins, params, cfg: F.ForecastConfig, flagged: np.ndarray):
    """Backtest rows, and the interval scales (per model, level, stream) from every origin.

    Intervals are calibrated sequentially (split conformal over time): the coverage reported for
    an origin uses the scales learnt from the earlier origins only; the first origin uses the
    model's own sd. The forecasts use the scales learnt from all origins.
    """
    H = cfg.horizon
    stream_code, streams = pd.factorize(panel.series["stream_id"])
    pool: dict = {}
    rows = []
    for o in origins:
        snap = res.snapshots[o]
        actual_raw = panel.values[:, o:o + H]
        actual_y = panel.y[:, o:o + H]
        ok = ~np.isnan(actual_raw) & ~flagged[:, o:o + H]
        scale = F.seasonal_naive_scale(panel.values, o)
        sig_naive = F.naive_sigma(panel.y, o)
        for model in F.MODELS:
            mean, sd = F.forecast_paths(snap, params, panel.y[:, :o], np.full(panel.n, model), H,
                                        snap.sigma, sig_naive)
            point = panel.back(mean)
            err = np.where(ok, np.abs(point - actual_raw), np.nan)
            cal = _calibration(pool, model, cfg.interval_levels, len(streams))
            cov = {}
            for lvl in cfg.interval_levels:
                lo, hi = F.interval(mean, sd * cal[lvl][stream_code][:, None], lvl)
                inside = (actual_y >= lo) & (actual_y <= hi)
                with np.errstate(all="ignore"):
                    cov[lvl] = np.where(ok.sum(1) > 0, (inside & ok).sum(1) / ok.sum(1), np.nan)
            u = np.abs(actual_y - mean) / sd
            per_stream = pool.setdefault(model, {})
            for st in range(len(streams)):
                m = ok & (stream_code == st)[:, None]
                per_stream.setdefault(st, []).append(u[m])
            with np.errstate(all="ignore"):
                mae = np.nanmean(err, axis=1)
            rows.append(pd.DataFrame({
                "series": np.arange(panel.n), "origin": o, "model": model, "mae": mae,
                "mase": mae / scale, "coverage_80": cov.get(0.8), "coverage_95": cov.get(0.95),
                "n_points": ok.sum(1),
            }))
    bt = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["series", "origin", "model", "mae", "mase", "coverage_80", "coverage_95", "n_points"])
    naive = bt[bt["model"] == "seasonal_naive"].set_index(["series", "origin"])["mae"]
    with np.errstate(all="ignore"):
        bt["relative_mae"] = bt["mae"].to_numpy() / naive.reindex(
            pd.MultiIndex.from_frame(bt[["series", "origin"]])).to_numpy()
    final = {model: _calibration(pool, model, cfg.interval_levels, len(streams)) for model in F.MODELS}
    scales = pd.DataFrame([{"stream_id": streams[st], "model": model, **{f"interval_scale_{int(round(l * 100))}": final[model][l][st]
                                                                     for l in cfg.interval_levels}}
                           for model in F.MODELS for st in range(len(streams))])
    return bt, scales


def choose_models(backtests: pd.DataFrame, series: pd.DataFrame, stream_params: pd.DataFrame) -> pd.DataFrame:
    """Per stream: ETS when it fitted and its pooled backtest MAE ratio to seasonal naive is < 1."""
    b = backtests.merge(series[["stream_id"]], left_on="series", right_index=True)
    agg = (b.groupby(["stream_id", "model"])["mae"].mean().unstack("model")
           .reindex(columns=list(F.MODELS)))
    ratio = (agg[F.MODELS[0]] / agg[F.MODELS[1]]).rename("ets_relative_mae")
    keep = ["stream_id", "n_fitted", "n_sampled", "alpha", "beta", "gamma", "phi"]
    out = stream_params[keep].merge(ratio, left_on="stream_id", right_index=True, how="left")
    ets_ok = (out["n_fitted"] > 0) & (out["ets_relative_mae"] < 1.0)
    out["model"] = np.where(ets_ok, F.MODELS[0], F.MODELS[1])
    out["selection_reason"] = np.select(
        [out["n_fitted"] == 0, ~ets_ok], ["no_ets_fit_converged", "ets_not_better_than_seasonal_naive"],
        "ets_beats_seasonal_naive")
    return out


def run(panel: Panel, *, holidays: pd.DataFrame | None = None, promos: pd.DataFrame | None = None,
        ocfg: O.ObserveConfig = O.ObserveConfig(), fcfg: F.ForecastConfig = F.ForecastConfig(),
        with_observations: bool = True, stream_params: pd.DataFrame | None = None, log=print) -> StreamsResult:
    """stream_params: the per-stream fit of an earlier run (stream_models); None fits now."""
    n, T = panel.y.shape
    timings = {}
    t0 = time.perf_counter()
    if stream_params is None:
        stream_params = F.fit_stream_params(panel.y, panel.series, fcfg)
        log(f"[streams] fitted ETS for {len(stream_params)} streams on {int(stream_params['n_sampled'].sum())} "
            f"sampled series in {time.perf_counter() - t0:.1f} s")
    else:
        stream_params = stream_params.assign(sampled_rows=[[] for _ in range(len(stream_params))])
    timings["fit_seconds"] = time.perf_counter() - t0
    params = F.params_for_series(panel.series, stream_params)
    cals = [day_of_month_calendar(panel)]
    ev = event_calendar(panel, holidays, promos)
    if ev is not None:
        cals.append(ev)
    origins = F.backtest_origins(T, fcfg)
    sens = panel.series["sensitivity"].astype(float).fillna(1.0).to_numpy()
    concern = concern_sign(panel.series["direction_of_concern"])
    t0 = time.perf_counter()
    windows, res = O.observe(panel.y, params, sens, concern, tuple(cals), ocfg, snapshot_at=tuple(origins),
                             count_rows=panel.is_count & ~panel.is_ratio)
    timings["observe_seconds"] = time.perf_counter() - t0
    flagged = window_mask(windows, n, T)
    log(f"[streams] observed {n} series x {T} days: {len(windows)} anomaly windows in {timings['observe_seconds']:.1f} s")

    t0 = time.perf_counter()
    bt, scales = _backtest(panel, res, origins, params, fcfg, flagged)
    models = choose_models(bt, panel.series, stream_params).merge(scales, on=["stream_id", "model"], how="left")
    per_series = panel.series[["stream_id"]].merge(models, on="stream_id", how="left")
    model_of = per_series["model"].to_numpy()
    mean, sd = F.forecast_paths(res.state, params, panel.y, model_of, fcfg.horizon, res.state.sigma, F.naive_sigma(panel.y, T))
    fc = {"series": np.repeat(np.arange(n), fcfg.horizon), "horizon": np.tile(np.arange(1, fcfg.horizon + 1), n),
          "model": np.repeat(model_of, fcfg.horizon), "forecast": panel.back(mean).ravel()}
    for lvl in fcfg.interval_levels:
        tag = int(round(lvl * 100))
        k = per_series.get(f"interval_scale_{tag}", pd.Series(1.0, index=per_series.index)).fillna(1.0).to_numpy()
        lo, hi = F.interval(mean, sd * k[:, None], lvl)
        fc[f"lower_{tag}"] = panel.back(lo).ravel()
        fc[f"upper_{tag}"] = panel.back(hi).ravel()
    forecasts = pd.DataFrame(fc)
    timings["forecast_seconds"] = time.perf_counter() - t0
    log(f"[streams] backtested {len(origins)} origins and forecast {fcfg.horizon} days in {timings['forecast_seconds']:.1f} s")

    windows["anomaly_score"] = O.anomaly_score(windows, sens, concern, ocfg)
    windows["is_direction_of_concern"] = np.where(windows["side"] == 0, concern[windows["series"]] >= 0,
                                                  concern[windows["series"]] <= 0)
    obs = None
    if with_observations:
        z = res.resid / res.scale
        obs = pd.DataFrame({
            "series": np.repeat(np.arange(n), T), "day": np.tile(np.arange(T), n),
            "value": panel.values.ravel(), "expected": panel.back(res.fitted).ravel(),
            "z_score": z.ravel(), "is_anomalous": flagged.ravel(),
        })
    return StreamsResult(windows, obs, forecasts, bt, models, timings, flagged, res)
