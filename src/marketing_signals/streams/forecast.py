"""Forecast: per-stream ETS models fitted with statsmodels on sampled series, applied to all.

1. For each stream, statsmodels `ETSModel` (A,Ad,A), weekly season, log scale) is fitted on
   `fit_sample` series (locations picked by a stable hash) over the last `fit_days` days; the
   stream's parameters are the medians of the sampled fits.
2. Model choice per stream: the ETS parameters are backtested on the sampled series against
   seasonal naive (rolling origins, horizons 1..H, MAE). When ETS does not beat seasonal naive
   or no fit converged, the stream falls back to seasonal naive.
3. Every series of the stream runs through the vectorised filter (`ets.run_filter`, robust
   mode, the same pass Observe uses), which gives the state at the forecast origin and at the
   backtest origins. Forecast sd: the ETS class-1 variance formula scaled by the series'
   robust residual scale; intervals are exp(mean +- z sd) (log scale -> median forecast).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from . import ets

MODELS = ("ets_AAdA", "seasonal_naive")


@dataclass(frozen=True)
class ForecastConfig:
    horizon: int = 28
    fit_sample: int = 3
    fit_days: int = 365
    backtest_origins: int = 4
    backtest_spacing: int = 28
    interval_levels: tuple[float, ...] = (0.8, 0.95)
    workers: int = 0  # 0: min(2, cpu count)


def _stable_rank(values: pd.Series, salt: str) -> np.ndarray:
    h = [int(hashlib.sha256(f"{salt}|{v}".encode()).hexdigest()[:12], 16) for v in values]
    return np.argsort(np.array(h), kind="stable")


def _fit_job(args):
    sid, block = args
    fits = [ets.fit_one(r) for r in block]
    return sid, [f for f in fits if f is not None]


def fit_stream_params(y: np.ndarray, series: pd.DataFrame, cfg: ForecastConfig = ForecastConfig(),
                      origin: int | None = None) -> pd.DataFrame:
    """One row per stream: model, parameters (medians over sampled fits), n_fitted, sampled locations."""
    T = y.shape[1] if origin is None else origin
    lo = max(0, T - cfg.fit_days)
    jobs, samples = [], {}
    for sid, grp in series.groupby("stream_id", sort=True):
        local = grp[grp["location_id"] != "ALL"]
        pool = local if len(local) else grp
        pick = pool.index.to_numpy()[_stable_rank(pool["location_id"], sid)[: cfg.fit_sample]]
        samples[sid] = pick
        jobs.append((sid, y[pick, lo:T]))
    workers = cfg.workers or min(2, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: dbt runs models on threads, and a child forked while another thread
        # holds an import lock waits for it forever (seen: a stand-in build hung in formulaic's import)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            results = dict(ex.map(_fit_job, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        results = dict(map(_fit_job, jobs))
    rows = []
    for sid in samples:
        fits = results.get(sid, [])
        if fits:
            med = {k: float(np.median([f[k] for f in fits])) for k in
                   ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")}
        else:
            med = dict(smoothing_level=np.nan, smoothing_trend=np.nan, smoothing_seasonal=np.nan, damping_trend=np.nan)
        rows.append({"stream_id": sid, "n_fitted": len(fits), "n_sampled": len(samples[sid]),
                     "sampled_rows": samples[sid].tolist(), **med})
    out = pd.DataFrame(rows)
    return out.rename(columns={"smoothing_level": "alpha", "smoothing_trend": "beta",
                               "smoothing_seasonal": "gamma", "damping_trend": "phi"})


def params_for_series(series: pd.DataFrame, stream_params: pd.DataFrame) -> ets.EtsParams:
    """Per-series ETS parameters; streams without a fit get a conservative default."""
    p = series[["stream_id"]].merge(stream_params, on="stream_id", how="left")
    fill = {"alpha": 0.2, "beta": 0.01, "gamma": 0.05, "phi": 0.9}
    return ets.EtsParams(*(p[k].fillna(v).to_numpy(dtype=np.float64) for k, v in fill.items()))


def backtest_origins(T: int, cfg: ForecastConfig) -> list[int]:
    """Origins o (first forecast day index) spaced back from the end, each with a full horizon."""
    return sorted(T - cfg.horizon - k * cfg.backtest_spacing for k in range(cfg.backtest_origins)
                  if T - cfg.horizon - k * cfg.backtest_spacing > 90)


def seasonal_naive_scale(values: np.ndarray, upto: int, m: int = ets.SEASON, days: int = 365) -> np.ndarray:
    """MASE denominator: in-sample mean |y_t - y_{t-m}| over the `days` before `upto` (raw scale)."""
    lo = max(m, upto - days)
    d = np.abs(values[:, lo:upto] - values[:, lo - m:upto - m])
    with np.errstate(all="ignore"):
        return np.nanmean(d, axis=1)


def forecast_paths(state: ets.EtsState, p: ets.EtsParams, y_hist: np.ndarray, model: np.ndarray,
                   horizon: int, sigma_ets: np.ndarray, sigma_naive: np.ndarray):
    """Log-scale mean and sd (n, H) for each series' chosen model."""
    mean_e, sd_e = ets.forecast(state, p, horizon, sigma_ets)
    hist = pd.DataFrame(y_hist.T).ffill().to_numpy().T  # seasonal naive from the last observed values
    mean_n, sd_n = ets.seasonal_naive_forecast(hist, horizon, sigma_naive)
    use_ets = (model == MODELS[0])[:, None]
    return np.where(use_ets, mean_e, mean_n), np.where(use_ets, sd_e, sd_n)


def interval(mean: np.ndarray, sd: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    z = norm.ppf(0.5 + level / 2)
    return mean - z * sd, mean + z * sd


def naive_sigma(y: np.ndarray, upto: int, m: int = ets.SEASON, days: int = 365) -> np.ndarray:
    """Robust sd of one-season differences: the one-season-ahead error sd of seasonal naive."""
    lo = max(m, upto - days)
    d = y[:, lo:upto] - y[:, lo - m:upto - m]
    with np.errstate(all="ignore"):
        med = np.nanmedian(d, axis=1, keepdims=True)
        mad = np.nanmedian(np.abs(d - med), axis=1)
    return np.maximum(np.nan_to_num(1.4826 * mad, nan=1.0), 1e-6)
