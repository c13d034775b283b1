"""Observe against the Numenta Anomaly Benchmark (NAB): realAdExchange and realKnownCause.

For every NAB file two detectors run on the raw point sequence (index = position; NAB series
are 5-min, 30-min or hourly with irregular gaps, which are not filled and not resampled):

- "observe": the engine's robust ETS filter + spike/CUSUM detector (`observe.Detector`),
  with a season length picked from the file's median spacing (`season_length`) and ETS
  smoothing parameters from a statsmodels ETSModel fit on the first points (`fit_params`);
- "zscore_baseline": the rolling z-score baseline the package ships (`observe.zscore_windows`),
  window one season (at least 28 points), threshold 3.

Values are taken to logs (log(value - min + 1) when the series has non-positive values).
Detections raised during NAB's probationary period (the first 15 % of the points) are ignored
for both detectors; the rest are scored window by window against NAB's label windows with
`evaluate.score_windows`.

    python -m marketing_signals.streams.nab [--nab-dir DIR] [--out results.csv]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import ets, evaluate, observe

DEFAULT_NAB_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "nab"
DETECTORS = ("observe", "zscore_baseline")
COLUMNS = ["file", "detector", "labels", "detections", "recall", "precision", "f1", "n_points", "seconds",
           "season", "params_source"]

PROBATION = 0.15          # NAB's probationary share of each file
FIT_MAX_POINTS = 2000     # statsmodels fit on at most this many leading points
SEASON_CAP = 288          # longest season we model (one day of 5-min data)
DEFAULT_PARAMS = {"alpha": 0.1, "beta": 0.01, "gamma": 0.05, "phi": 0.9}
ZSCORE_THRESHOLD = 3.0


# ------------------------------------------------------------------ per-file ingredients
def transform(values: np.ndarray) -> np.ndarray:
    """log(value), or log(value - min + 1) when the series has non-positive values."""
    v = np.asarray(values, dtype=np.float64)
    if np.nanmin(v) <= 0:
        return np.log(v - np.nanmin(v) + 1.0)
    return np.log(v)


def season_length(timestamps: pd.Series, cap: int = SEASON_CAP) -> int:
    """Points per day from the median spacing (5-min -> 288, 30-min -> 48, hourly -> 24), capped.

    Daily or coarser data gets a weekly season of 7.
    """
    ts = pd.to_datetime(pd.Series(timestamps))
    spacing = ts.diff().dt.total_seconds().median()
    if not np.isfinite(spacing) or spacing <= 0:
        return ets.SEASON
    per_day = int(round(86400.0 / spacing))
    if per_day < 2:
        return ets.SEASON
    return int(min(per_day, cap))


def fit_params(y: np.ndarray, m: int) -> tuple[ets.EtsParams, str]:
    """ETS(A,Ad,A) smoothing parameters from statsmodels on y (the series' leading points).

    Long seasons use statsmodels' heuristic start values (estimating m initial seasonals makes
    the fit take minutes); short ones estimate them. Falls back to DEFAULT_PARAMS when y has
    fewer than two seasons, is constant, or the fit fails. Returns (params, source).
    """
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    s = pd.Series(np.asarray(y, dtype=np.float64)).interpolate(limit_direction="both")
    if len(s) < max(2 * m, 10) or s.isna().any() or s.std() == 0:
        return ets.EtsParams.broadcast(1, **DEFAULT_PARAMS), "default"
    init = "heuristic" if m > 24 else "estimated"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = ETSModel(s, error="add", trend="add", damped_trend=True, seasonal="add",
                           seasonal_periods=m, initialization_method=init).fit(disp=False, maxiter=200)
            p = dict(zip(res.param_names, (float(v) for v in res.params), strict=True))
            vals = [p["smoothing_level"], p["smoothing_trend"], p["smoothing_seasonal"], p["damping_trend"]]
        except Exception:  # noqa: BLE001 - any failed fit falls back to the defaults
            return ets.EtsParams.broadcast(1, **DEFAULT_PARAMS), "default"
    if not np.all(np.isfinite(vals)):
        return ets.EtsParams.broadcast(1, **DEFAULT_PARAMS), "default"
    return ets.EtsParams.broadcast(1, *vals), f"statsmodels_{init}"


def observe_windows(y: np.ndarray, m: int, params: ets.EtsParams, warmup: int,
                    sensitivity: float = 1.0, cfg: observe.ObserveConfig | None = None) -> pd.DataFrame:
    """Observe's anomaly windows on one series, both directions, season m."""
    cfg = cfg or observe.ObserveConfig()
    cfg = observe.ObserveConfig(**{**cfg.__dict__, "warmup_days": warmup})
    Y = np.asarray(y, dtype=np.float64)[None, :]
    T = Y.shape[1]
    det = observe.Detector(np.array([float(sensitivity)]), np.array([0.0]), cfg)
    state = ets.initial_state(Y, m=m, n_init=min(T, 4 * m))
    ets.run_filter(Y, params, state, huber_k=cfg.huber_k, scale_lambda=cfg.scale_lambda, detector=det)
    return det.finish(T)


def zscore_baseline_windows(y: np.ndarray, m: int) -> pd.DataFrame:
    return observe.zscore_windows(np.asarray(y, dtype=np.float64)[None, :], window=max(m, 28),
                                  threshold=ZSCORE_THRESHOLD)


def to_times(windows: pd.DataFrame, ts: pd.Series, probation: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(onset, end) timestamps of the windows raised after the probationary period."""
    if windows.empty:
        return []
    w = windows[windows["detected"].to_numpy() >= probation]
    t = pd.to_datetime(pd.Series(ts)).to_numpy()
    return [(pd.Timestamp(t[a]), pd.Timestamp(t[b])) for a, b in zip(w["onset"], w["end"], strict=True)]


# ------------------------------------------------------------------ the benchmark
def evaluate_file(frame: pd.DataFrame, labels: list, *, sensitivity: float = 1.0,
                  cfg: observe.ObserveConfig | None = None) -> list[dict]:
    """One result row per detector for one NAB file (without the `file` column)."""
    ts = frame["timestamp"]
    y = transform(frame["value"].to_numpy())
    T = len(y)
    m = season_length(ts)
    probation = int(PROBATION * T)
    rows = []

    t0 = time.perf_counter()
    n_fit = min(max(probation, 2 * m), FIT_MAX_POINTS, T)
    params, source = fit_params(y[:n_fit], m)
    w = observe_windows(y, m, params, warmup=probation, sensitivity=sensitivity, cfg=cfg)
    score = evaluate.score_windows(to_times(w, ts, probation), labels)
    rows.append({"detector": "observe", **score, "n_points": T, "seconds": time.perf_counter() - t0,
                 "season": m, "params_source": source})

    t0 = time.perf_counter()
    w = zscore_baseline_windows(y, m)
    score = evaluate.score_windows(to_times(w, ts, probation), labels)
    rows.append({"detector": "zscore_baseline", **score, "n_points": T, "seconds": time.perf_counter() - t0,
                 "season": m, "params_source": "none"})
    return rows


def evaluate_nab(root: Path | str, files: list[str] | None = None, log=print, *, sensitivity: float = 1.0,
                 cfg: observe.ObserveConfig | None = None) -> pd.DataFrame:
    """One row per NAB file x detector: labels, detections, recall, precision, f1, n_points, seconds."""
    data = evaluate.load_nab(root, files)
    rows = []
    for name, (frame, labels) in data.items():
        for r in evaluate_file(frame, labels, sensitivity=sensitivity, cfg=cfg):
            rows.append({"file": name, **r})
        if log:
            got = {r["detector"]: r for r in rows[-2:]}
            log(f"{name}: observe F1 {got['observe']['f1']:.3f} "
                f"({got['observe']['seconds']:.1f}s, m={got['observe']['season']}, {got['observe']['params_source']}), "
                f"zscore F1 {got['zscore_baseline']['f1']:.3f}")
    return pd.DataFrame(rows, columns=COLUMNS)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """file x (detector, metric) side by side."""
    wide = results.pivot(index="file", columns="detector", values=["recall", "precision", "f1"])
    wide = wide.swaplevel(axis=1)
    order = [(d, k) for d in DETECTORS for k in ("recall", "precision", "f1") if (d, k) in wide.columns]
    return wide[order]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Observe vs the z-score baseline on NAB (realAdExchange, realKnownCause).")
    ap.add_argument("--nab-dir", type=Path, default=DEFAULT_NAB_DIR, help=f"NAB folder (default {DEFAULT_NAB_DIR})")
    ap.add_argument("--out", type=Path, default=None, help="write the per-file results to this CSV")
    args = ap.parse_args(argv)
    root = args.nab_dir
    if not (root / "labels" / "combined_windows.json").is_file():
        print(f"NAB data not found: {root} has no labels/combined_windows.json "
              f"(expected the NAB folder with realAdExchange/, realKnownCause/ and labels/; pass --nab-dir)",
              file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    results = evaluate_nab(root, log=lambda msg: print(msg, file=sys.stderr))
    elapsed = time.perf_counter() - t0
    with pd.option_context("display.width", 200, "display.max_rows", 100, "display.precision", 3):
        print(summary_table(results).to_string(float_format=lambda v: f"{v:.3f}"))
    mean_f1 = results.groupby("detector")["f1"].mean()
    print()
    for d in DETECTORS:
        if d in mean_f1:
            print(f"mean F1 {d}: {mean_f1[d]:.3f}")
    print(f"{results['file'].nunique()} files in {elapsed:.1f}s")
    if args.out:
        results.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
