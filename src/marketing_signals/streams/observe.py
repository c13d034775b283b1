"""Observe: direction-aware anomaly windows with onset estimates, for many series at once.

Each series is followed by the robust ETS filter (`ets.run_filter` in robust mode, smoothing
parameters from the stream's Forecast model). Its standardised one-step residual z feeds two
one-sided detectors per series, "up" and "down":

- a spike test, x > tau, and
- a CUSUM for level shifts, C_t = max(0, C_{t-1} + x_t - k), alarm when C_t > h
  (Page 1954). A window's onset is the maximum-likelihood change point between the day C last
  stood at 0 and the detection day (`change_point_onsets`).

x is z for the up side and -z for the down side. The side the registry names as the direction of concern
(`direction_of_concern`: up, down or both) runs at the stream's sensitivity; the other side at
sensitivity x `counter_factor`, so CPC falling or clicks rising is still reported, but only
when it is large. tau and h are divided by the sensitivity. On calendar days whose effect has
been seen fewer than `Calendar.mature` times (first holiday, first promo) the sensitivity is
multiplied by `immature_factor`.

While a side is in alarm the observation does not update the baseline (level, trend, season),
so an incident does not drag it; the robust scale still learns, boundedly (see ets.py), and so
do calendar effects (a new promo or holiday effect would otherwise never be learnt). An alarm ends after `calm_days` days with x <= k_end;
the anomaly window runs from the onset estimate to the last day with x > k_end. An alarm that
lasts longer than `max_days` is a confirmed level shift: the window closes with kind
'level_shift' and the baseline accepts the new level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import ets


@dataclass(frozen=True)
class ObserveConfig:
    spike_tau: float = 4.0
    cusum_k: float = 0.75
    cusum_h: float = 3.5
    k_end: float = 1.0
    calm_days: int = 2
    max_days: int = 28
    counter_factor: float = 0.6
    immature_factor: float = 0.5
    x_cap: float = 8.0
    huber_k: float = 2.0
    scale_lambda: float = 0.02
    warmup_days: int = 28


WINDOW_COLUMNS = ["series", "side", "onset", "end", "detected", "peak_z", "peak_cusum", "kind", "is_open"]


class Detector:
    """Two one-sided spike + CUSUM detectors per series; collects closed anomaly windows."""

    def __init__(self, sensitivity: np.ndarray, concern: np.ndarray, cfg: ObserveConfig):
        n = sensitivity.size
        self.cfg = cfg
        # side 0 = up (x = z), side 1 = down (x = -z); concern: +1 up, -1 down, 0 both
        side_sens = np.vstack([
            sensitivity * np.where(concern >= 0, 1.0, cfg.counter_factor),
            sensitivity * np.where(concern <= 0, 1.0, cfg.counter_factor),
        ])
        self.sens = side_sens
        self.sign = np.array([[1.0], [-1.0]])
        self.C = np.zeros((2, n))
        self.last_zero = np.full((2, n), -1)
        self.z: list[np.ndarray] = []
        self.in_alarm = np.zeros((2, n), bool)
        self.onset = np.zeros((2, n), np.int64)
        self.detected = np.zeros((2, n), np.int64)
        self.last_active = np.zeros((2, n), np.int64)
        self.quiet = np.zeros((2, n), np.int64)
        self.peak_z = np.zeros((2, n))
        self.peak_c = np.zeros((2, n))
        self.out: list[np.ndarray] = []

    def _emit(self, mask: np.ndarray, end: np.ndarray, kind: int, is_open: bool) -> None:
        side, series = np.nonzero(mask)
        if series.size:
            self.out.append(np.column_stack([
                series, side, self.onset[side, series], end[side, series], self.detected[side, series],
                self.peak_z[side, series], self.peak_c[side, series],
                np.full(series.size, kind), np.full(series.size, int(is_open)),
            ]).astype(np.float64))

    def step(self, t: int, z: np.ndarray, immature: np.ndarray):
        c = self.cfg
        warm = t >= c.warmup_days
        x = np.clip(self.sign * z[None, :], -c.x_cap, c.x_cap)
        self.z.append(z.astype(np.float32))
        sens = self.sens * np.where(immature, c.immature_factor, 1.0)[None, :]
        tau, h = c.spike_tau / sens, c.cusum_h / sens
        self.C = np.maximum(0.0, self.C + x - c.cusum_k) if warm else np.zeros_like(self.C)
        trigger = warm & ~self.in_alarm & ((self.C > h) | (x > tau))
        if trigger.any():
            self.in_alarm |= trigger
            # the CUSUM's start; finish() refines it into the maximum-likelihood onset
            self.onset = np.where(trigger, np.minimum(self.last_zero + 1, t), self.onset)
            self.detected = np.where(trigger, t, self.detected)
            self.last_active = np.where(trigger, t, self.last_active)
            self.quiet = np.where(trigger, 0, self.quiet)
            self.peak_z = np.where(trigger, 0.0, self.peak_z)
            self.peak_c = np.where(trigger, 0.0, self.peak_c)
        alarm = self.in_alarm
        active = alarm & (x > c.k_end)
        self.last_active = np.where(active, t, self.last_active)
        self.quiet = np.where(alarm, np.where(active, 0, self.quiet + 1), 0)
        self.peak_z = np.where(alarm, np.maximum(self.peak_z, x), self.peak_z)
        self.peak_c = np.where(alarm, np.maximum(self.peak_c, self.C), self.peak_c)
        anomalous = (alarm & (x > c.k_end)).any(axis=0) | (alarm & (self.quiet == 0)).any(axis=0)
        close = alarm & (self.quiet >= c.calm_days)
        long = alarm & ~close & (t - self.onset >= c.max_days)
        relevel = long.any(axis=0)
        if close.any():
            self._emit(close, self.last_active, 0, False)
        if long.any():
            self._emit(long, np.full_like(self.onset, t), 1, False)
        done = close | long
        if done.any():
            self.in_alarm &= ~done
            self.C = np.where(done, 0.0, self.C)
        if relevel.any():  # a level shift resets both sides of the series
            self.in_alarm[:, relevel] = False
            self.C[:, relevel] = 0.0
        self.last_zero = np.where(self.C <= 0.0, t, self.last_zero)
        return anomalous | self.in_alarm.any(axis=0), relevel

    def finish(self, T: int) -> pd.DataFrame:
        self._emit(self.in_alarm, self.last_active, 0, True)
        if not self.out:
            empty = pd.DataFrame({c: pd.Series(dtype=np.int64) for c in WINDOW_COLUMNS})
            empty[["peak_z", "peak_cusum"]] = empty[["peak_z", "peak_cusum"]].astype(float)
            return empty.astype({"kind": object, "is_open": bool})
        a = np.concatenate(self.out)
        df = pd.DataFrame(a, columns=WINDOW_COLUMNS)
        for col in ("series", "side", "onset", "end", "detected", "kind", "is_open"):
            df[col] = df[col].astype(np.int64)
        df["kind"] = np.where(df["kind"] == 1, "level_shift", "anomaly")
        df["is_open"] = df["is_open"].astype(bool)
        df["onset"] = change_point_onsets(df, np.stack(self.z, axis=1), self.cfg)
        df["end"] = np.maximum(df["end"], df["onset"])
        return df.sort_values(["series", "onset", "side"], kind="stable").reset_index(drop=True)


def change_point_onsets(df: pd.DataFrame, z: np.ndarray, cfg: ObserveConfig) -> np.ndarray:
    """Maximum-likelihood onset of a mean shift, per window.

    Between the day the CUSUM last stood at 0 and the detection day, the onset is the tau that
    maximises sum_{t=tau..detected} (x_t - delta/2), delta being the shift estimated from the
    days around detection (a Gaussian mean shift of size delta starting at tau). Spikes keep their
    day. Uses only days up to the window's end, so it needs no future data beyond the window.
    """
    out = df["onset"].to_numpy().copy()
    sign = np.where(df["side"].to_numpy() == 0, 1.0, -1.0)
    for i, (s, a, d, e) in enumerate(zip(df["series"].to_numpy(), df["onset"].to_numpy(),
                                          df["detected"].to_numpy(), df["end"].to_numpy(), strict=True)):
        if d <= a:
            continue
        x = np.clip(sign[i] * z[s, a:d + 1].astype(np.float64), -cfg.x_cap, cfg.x_cap)
        post = np.clip(sign[i] * z[s, max(a, d - 1):min(e, d + 3) + 1], -cfg.x_cap, cfg.x_cap)
        delta = max(float(np.mean(post)), 2 * cfg.cusum_k)
        gain = np.cumsum((x - delta / 2)[::-1])[::-1]  # gain[j] = sum_{t >= a + j} (x_t - delta / 2)
        out[i] = a + int(np.argmax(gain))
    return out


def observe(y: np.ndarray, params: ets.EtsParams, sensitivity: np.ndarray, concern: np.ndarray,
            calendars: tuple[ets.Calendar, ...] = (), cfg: ObserveConfig = ObserveConfig(),
            snapshot_at: tuple[int, ...] = (), count_rows: np.ndarray | None = None
            ) -> tuple[pd.DataFrame, ets.FilterResult]:
    """Anomaly windows (one row each; `series` indexes the rows of y) and the filter result."""
    det = Detector(np.asarray(sensitivity, float), np.asarray(concern, float), cfg)
    state = ets.initial_state(y)
    res = ets.run_filter(y, params, state, huber_k=cfg.huber_k, scale_lambda=cfg.scale_lambda,
                         calendars=calendars, detector=det, snapshot_at=snapshot_at,
                         count_rows=None if count_rows is None or not np.any(count_rows) else np.flatnonzero(count_rows))
    return det.finish(y.shape[1]), res


def anomaly_score(windows: pd.DataFrame, sensitivity: np.ndarray, concern: np.ndarray,
                  cfg: ObserveConfig = ObserveConfig()) -> np.ndarray:
    """max(peak z / tau, peak CUSUM / h) at the side's sensitivity: >= 1 means it alarmed."""
    s = np.asarray(sensitivity, float)[windows["series"]]
    c = np.asarray(concern, float)[windows["series"]]
    is_concern = np.where(windows["side"] == 0, c >= 0, c <= 0)
    sens = s * np.where(is_concern, 1.0, cfg.counter_factor)
    return np.maximum(windows["peak_z"] * sens / cfg.spike_tau, windows["peak_cusum"] * sens / cfg.cusum_h)


# ------------------------------------------------------------------ the in-repo baseline
def zscore_windows(y: np.ndarray, window: int = 28, threshold: float = 3.0, min_periods: int = 14) -> pd.DataFrame:
    """Rolling z-score baseline: |y_t - mean| / sd over the previous `window` values > threshold.

    Consecutive flagged days form one window (onset = first flagged day). Both directions;
    no seasonality, no robustness - the yardstick every change to Observe is compared with.
    The dbt model `stream_anomalies_zscore` computes the same in SQL.
    """
    frame = pd.DataFrame(y.T)
    prev = frame.shift(1).rolling(window, min_periods=min_periods)
    z = ((frame - prev.mean()) / prev.std(ddof=1)).to_numpy().T
    flag = np.abs(np.nan_to_num(z)) > threshold
    return flags_to_windows(flag, np.nan_to_num(z))


def flags_to_windows(flag: np.ndarray, z: np.ndarray) -> pd.DataFrame:
    """Runs of flagged days per series -> one row per run."""
    n, T = flag.shape
    f = np.pad(flag.astype(np.int8), ((0, 0), (1, 1)))
    d = np.diff(f, axis=1)
    s_series, s_t = np.nonzero(d == 1)
    e_series, e_t = np.nonzero(d == -1)
    peak = [float(np.max(np.abs(z[i, a:b]))) for i, a, b in zip(s_series, s_t, e_t, strict=True)]
    side = [int(np.sum(z[i, a:b]) < 0) for i, a, b in zip(s_series, s_t, e_t, strict=True)]
    return pd.DataFrame({"series": s_series, "side": np.array(side, np.int64), "onset": s_t,
                         "end": e_t - 1, "detected": s_t, "peak_z": peak, "peak_cusum": 0.0,
                         "kind": "anomaly", "is_open": e_t == T})
