"""The streams engine (marketing_signals.streams): ETS filter, Observe, incidents, scoring, panel.

- ets: the vectorised filter reproduces statsmodels' ETSModel(A,Ad,A) fitted values, forecasts
  and 80% prediction intervals exactly, and a panel run equals the per-series runs;
- observe: planted drops are recovered with their onsets at a low false-alarm rate; the
  direction of concern and the sensitivity steer which side alarms (exact thresholds on the
  Detector, rates on noisy panels, an exact mirror symmetry); a persistent shift becomes one
  'level_shift' window and the baseline accepts it; the count dead-zone silences rounding noise
  of small integer counts; the rolling z-score baseline and `flags_to_windows`;
- incidents.group, evaluate.score_demo / score_windows and panel.build_panel on hand-built
  frames with hand-computed answers.

All data are synthetic with fixed seeds; no dbt, no timing assertions.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from marketing_signals.streams import ets
from marketing_signals.streams import evaluate as E
from marketing_signals.streams import incidents as I
from marketing_signals.streams import observe as O
from marketing_signals.streams import panel as P

Z80 = 1.2815515655446004  # norm.ppf(0.9)
SMOOTHING = ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")


# ============================================================================ helpers
def _params(n: int) -> ets.EtsParams:
    return ets.EtsParams.broadcast(n, 0.1, 0.01, 0.05, 0.9)


def _weekly_log_panel(rng: np.random.Generator, n: int, T: int, cv: float = 0.1) -> np.ndarray:
    """log of log-normal daily values (noise cv `cv`) with a multiplicative weekly pattern."""
    t = np.arange(T)
    level = rng.uniform(np.log(20), np.log(500), n)[:, None]
    amp = rng.uniform(0.1, 0.4, n)[:, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    sd = np.sqrt(np.log1p(cv * cv))
    raw = np.exp(level + amp * np.sin(2 * np.pi * t / 7 + phase) + rng.normal(0.0, sd, (n, T)))
    return np.log(raw)


def _observe(y: np.ndarray, concern: float, sensitivity: float = 1.0, **kw) -> pd.DataFrame:
    n = y.shape[0]
    windows, _ = O.observe(y, _params(n), sensitivity=np.full(n, sensitivity), concern=np.full(n, float(concern)),
                           calendars=(), cfg=O.ObserveConfig(), **kw)
    return windows


def _overlapping(w: pd.DataFrame, series: int, start: int, end: int, side: int | None = None) -> pd.DataFrame:
    hit = w[(w["series"] == series) & (w["onset"] <= end) & (w["end"] >= start)]
    return hit if side is None else hit[hit["side"] == side]


def _hit_rate(w: pd.DataFrame, starts: np.ndarray, length: int, side: int | None) -> float:
    return float(np.mean([len(_overlapping(w, s, a, a + length - 1, side)) > 0 for s, a in enumerate(starts)]))


def _run_detector(z: np.ndarray, sensitivity, concern, cfg: O.ObserveConfig = O.ObserveConfig()) -> pd.DataFrame:
    """Feed standardised residuals straight into the Detector (no filter in between)."""
    n, T = z.shape
    det = O.Detector(np.asarray(sensitivity, float), np.asarray(concern, float), cfg)
    for t in range(T):
        det.step(t, z[:, t], np.zeros(n, bool))
    return det.finish(T)


# ============================================================================ 1. ETS == statsmodels
@pytest.fixture(scope="module")
def sm_fit():
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    rng = np.random.default_rng(20240601)
    T = 301
    t = np.arange(T)
    y = (4.0 + 0.002 * t + 0.3 * np.sin(2 * np.pi * t / 7) + 0.12 * np.cos(4 * np.pi * t / 7)
         + rng.normal(0.0, 0.1, T))
    s = pd.Series(y, index=pd.date_range("2023-01-01", periods=T, freq="D"))
    model = ETSModel(s, error="add", trend="add", damped_trend=True, seasonal="add", seasonal_periods=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(disp=False)
    return y, model, res


def _check_against_statsmodels(y: np.ndarray, res) -> None:
    T = len(y)
    named = dict(zip(res.param_names, (float(v) for v in res.params), strict=True))
    p = ets.EtsParams.broadcast(1, *(named[k] for k in SMOOTHING))
    state = ets.state_from_statsmodels(named)
    out = ets.run_filter(y[None, :], p, state)
    np.testing.assert_allclose(out.fitted[0], res.fittedvalues.to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(out.resid[0], y - res.fittedvalues.to_numpy(), rtol=0, atol=1e-9)
    assert out.state.t == T

    mean, sd = ets.forecast(out.state, p, 21, np.array([np.sqrt(res.mse)]))
    assert mean.shape == sd.shape == (1, 21)
    frame = res.get_prediction(start=T, end=T + 20).summary_frame(alpha=0.2)
    assert len(frame) == 21
    np.testing.assert_allclose(mean[0], frame["mean"].to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(mean[0] - Z80 * sd[0], frame["pi_lower"].to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(mean[0] + Z80 * sd[0], frame["pi_upper"].to_numpy(), rtol=0, atol=1e-8)


def test_filter_reproduces_statsmodels_fit(sm_fit):
    y, _, res = sm_fit
    _check_against_statsmodels(y, res)


def test_filter_and_intervals_reproduce_statsmodels_with_nontrivial_gamma(sm_fit):
    """Fixed parameters with a real seasonal update (gamma = 0.2), so the h-step variance
    formula is exercised past the first, second and third season (h = 7, 14, 21)."""
    y, model, res = sm_fit
    names = list(res.param_names)
    vec = np.asarray(res.params, dtype=float).copy()
    fixed = dict(smoothing_level=0.3, smoothing_trend=0.05, smoothing_seasonal=0.2, damping_trend=0.9)
    # distinct initial seasonal states, so a wrong phase mapping cannot hide behind a zero
    fixed |= {f"initial_seasonal.{j}": v for j, v in enumerate([0.3, -0.2, 0.1, -0.4, 0.25, 0.05, -0.1])}
    for k, v in fixed.items():
        vec[names.index(k)] = v
    smoothed = model.smooth(vec)
    got = dict(zip(smoothed.param_names, (float(v) for v in smoothed.params), strict=True))
    assert all(np.isclose(got[k], v) for k, v in fixed.items())
    _check_against_statsmodels(y, smoothed)
    # the gamma term really matters here: without it the interval past one season is narrower
    p = ets.EtsParams.broadcast(1, 0.3, 0.05, 0.2, 0.9)
    p0 = ets.EtsParams.broadcast(1, 0.3, 0.05, 0.0, 0.9)
    out = ets.run_filter(y[None, :], p, ets.state_from_statsmodels(got))
    _, sd = ets.forecast(out.state, p, 21, np.array([1.0]))
    _, sd0 = ets.forecast(out.state, p0, 21, np.array([1.0]))
    # (the gamma term enters the variance from h = m + 1 = 8 on: c_j, j < h, j mod 7 == 0)
    np.testing.assert_allclose(sd[0, :7], sd0[0, :7])
    assert np.all(sd[0, 7:] > sd0[0, 7:] + 1e-3)


# ============================================================================ 2. vectorisation
def _panel_with_gaps() -> tuple[np.ndarray, ets.EtsParams]:
    rng = np.random.default_rng(7)
    y = _weekly_log_panel(rng, 3, 180)
    y[1, 40:47] = np.nan
    y[2, 100] = np.nan
    y[0, 120:124] += np.log(0.5)  # an outlier burst, so the robust clipping is active
    p = ets.EtsParams(np.array([0.1, 0.3, 0.05]), np.array([0.01, 0.05, 0.0]), np.array([0.05, 0.2, 0.1]),
                      np.array([0.9, 0.98, 0.8]))
    return y, p


def _row(p: ets.EtsParams, i: int) -> ets.EtsParams:
    return ets.EtsParams(p.alpha[i:i + 1], p.beta[i:i + 1], p.gamma[i:i + 1], p.phi[i:i + 1])


def _state_row(s: ets.EtsState, i: int) -> ets.EtsState:
    floor = s.sigma_floor[i:i + 1] if np.ndim(s.sigma_floor) else s.sigma_floor
    return ets.EtsState(s.level[i:i + 1].copy(), s.trend[i:i + 1].copy(), s.season[i:i + 1].copy(),
                        s.sigma[i:i + 1].copy(), s.t, floor)


@pytest.mark.parametrize("robust", [False, True], ids=["plain", "robust"])
def test_panel_filter_equals_per_series_filters(robust):
    y, p = _panel_with_gaps()
    skip = np.zeros(y.shape, bool)
    skip[2, 60:63] = True
    kw = dict(huber_k=2.0, scale_lambda=0.02) if robust else {}
    state = ets.initial_state(y)
    whole = ets.run_filter(y, p, state, skip=skip, snapshot_at=(90, 150), **kw)
    assert whole.fitted.shape == whole.scale.shape == y.shape
    assert np.isfinite(whole.fitted).all()
    close = dict(rtol=1e-12, atol=1e-12)
    for i in range(3):
        one = ets.run_filter(y[i:i + 1], _row(p, i), _state_row(state, i), skip=skip[i:i + 1],
                             snapshot_at=(90, 150), **kw)
        np.testing.assert_allclose(whole.fitted[i], one.fitted[0], **close)
        np.testing.assert_allclose(whole.scale[i], one.scale[0], **close)
        np.testing.assert_allclose(whole.resid[i], one.resid[0], equal_nan=True, **close)
        for a, b in [(whole.state, one.state), *((whole.snapshots[k], one.snapshots[k]) for k in (90, 150))]:
            assert a.t == b.t
            np.testing.assert_allclose(a.level[i], b.level[0], **close)
            np.testing.assert_allclose(a.trend[i], b.trend[0], **close)
            np.testing.assert_allclose(a.season[i], b.season[0], **close)
            np.testing.assert_allclose(a.sigma[i], b.sigma[0], **close)
    # the input state is not modified by the pass
    np.testing.assert_array_equal(state.season, ets.initial_state(y).season)
    if not robust:
        np.testing.assert_array_equal(whole.scale, np.broadcast_to(state.sigma[:, None], y.shape))


def test_observe_on_a_panel_equals_observe_per_series():
    rng = np.random.default_rng(8)
    y = _weekly_log_panel(rng, 3, 200)
    y[0, 120:126] += np.log(0.55)
    y[2, 80:83] += np.log(1.9)
    whole = _observe(y, concern=0)
    parts = []
    for i in range(3):
        w = _observe(y[i:i + 1], concern=0)
        if len(w):  # (an empty result has object columns; nothing to compare)
            parts.append(w.assign(series=i))
    per = pd.concat(parts, ignore_index=True)
    assert len(whole) >= 2 and {0, 2} <= set(whole["series"])
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), per.reset_index(drop=True), check_exact=False,
                                  rtol=1e-9)


# ============================================================================ 3. Observe: planted drops
N_PLANT, T_PLANT = 200, 400


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(31415)
    y = _weekly_log_panel(rng, N_PLANT, T_PLANT)
    hit = np.arange(0, N_PLANT, 2)
    starts = rng.integers(110, T_PLANT - 20, hit.size)
    lengths = rng.integers(3, 11, hit.size)
    for s, a, L in zip(hit, starts, lengths, strict=True):
        y[s, a:a + L] += np.log(0.6)  # -40%
    windows = _observe(y, concern=-1)
    return windows, hit, starts, lengths


def test_observe_recovers_planted_drops_with_onsets(planted):
    w, hit, starts, lengths = planted
    found, onset_ok = 0, 0
    for s, a, L in zip(hit, starts, lengths, strict=True):
        match = _overlapping(w, s, a, a + L - 1, side=1)
        if len(match):
            found += 1
            onset_ok += abs(int(match["onset"].min()) - a) <= 1
    recall = found / hit.size
    assert recall >= 0.95, recall
    assert onset_ok / max(found, 1) >= 0.90, onset_ok / max(found, 1)


def test_observe_false_alarm_rate_on_untouched_series(planted):
    w, hit, _, _ = planted
    clean = np.setdiff1d(np.arange(N_PLANT), hit)
    per_series_per_90d = len(w[w["series"].isin(clean)]) / clean.size / (T_PLANT / 90)
    assert per_series_per_90d <= 0.5, per_series_per_90d
    counts = w[w["series"].isin(clean)].groupby("series").size()
    assert counts.max() <= 6
    assert set(w.columns) >= set(O.WINDOW_COLUMNS)
    assert (w["onset"] <= w["end"]).all() and (w["onset"] <= w["detected"]).all()
    assert (w["onset"] >= O.ObserveConfig().warmup_days).all()


def test_incident_does_not_drag_the_baseline():
    """While in alarm the observations do not update the states: after a 10-day -40% incident the
    expected values are where they would have been without it (a plain filter follows the drop
    by ~0.32 on the log scale)."""
    rng = np.random.default_rng(12)
    n, T = 50, 240
    y = _weekly_log_panel(rng, n, T)
    y_inc = y.copy()
    y_inc[:, 200:210] += np.log(0.6)
    _, clean = O.observe(y, _params(n), np.ones(n), -np.ones(n))
    w, hit = O.observe(y_inc, _params(n), np.ones(n), -np.ones(n))
    assert all(len(_overlapping(w, s, 200, 209, side=1)) for s in range(n))
    d = hit.fitted[:, 210:217] - clean.fitted[:, 210:217]
    assert float(np.median(np.abs(d))) < 0.06
    assert abs(float(np.median(d))) < 0.03
    st = ets.initial_state(y)
    plain = ets.run_filter(y_inc, _params(n), st).fitted - ets.run_filter(y, _params(n), st).fitted
    assert float(np.median(np.abs(plain[:, 210:217]))) > 0.2  # the check has teeth


def test_observe_does_not_report_windows_during_warmup_only_noise():
    rng = np.random.default_rng(4)
    y = _weekly_log_panel(rng, 20, 60)
    w = _observe(y, concern=0)
    assert (w["detected"] >= O.ObserveConfig().warmup_days).all()


# ------------------------------------------------- direction of concern / sensitivity, exact
def test_detector_thresholds_follow_concern_and_sensitivity():
    """Standardised residuals fed straight into the Detector, so the thresholds are exact:
    concern side: CUSUM h = 3.5, counter side: h = 3.5 / 0.6 = 5.83 (k = 0.75)."""
    T = 120
    z = np.zeros((7, T))
    z[0, 50:53] = +2.4   # concern down, up move: C = 3 * 1.65 = 4.95 < 5.83 -> not reported
    z[1, 50:53] = -2.4   # concern down, down move: 4.95 > 3.5 -> reported
    z[2, 50:53] = +2.4   # concern up, up move -> reported
    z[3, 50:53] = +5.0   # concern down, large up move: C = 8.5 > 5.83 on day 51 -> reported, side 0
    z[4, 50:53] = +2.4   # concern both: both sides at full sensitivity
    z[4, 90:93] = -2.4
    z[5, 50:53] = +2.4   # concern down, sensitivity 2: counter h = 3.5 / 1.2 = 2.92 -> reported
    z[6, 50:53] = -2.4   # concern up (down is the counter side) -> not reported
    concern = np.array([-1, -1, 1, -1, 0, -1, 1])
    sens = np.array([1, 1, 1, 1, 1, 2, 1])
    w = _run_detector(z, sens, concern)
    got = sorted(map(tuple, w[["series", "side", "onset", "end", "detected"]].to_numpy().tolist()))
    assert got == [
        (1, 1, 50, 52, 52),
        (2, 0, 50, 52, 52),
        (3, 0, 50, 52, 51),
        (4, 0, 50, 52, 52),
        (4, 1, 90, 92, 92),
        (5, 0, 50, 52, 51),  # C = 3.3 > 2.92 already on day 51
    ]
    assert (w["kind"] == "anomaly").all() and not w["is_open"].any()
    score = O.anomaly_score(w, sens, concern)
    assert (score >= 1.0).all()
    # the counter-side window of series 3 is scored at the reduced sensitivity
    r3 = w[w["series"] == 3].iloc[0]
    assert r3["peak_cusum"] == pytest.approx(3 * (5.0 - 0.75))
    assert score[w["series"] == 3].iloc[0] == pytest.approx(3 * 4.25 * 0.6 / 3.5)


def test_detector_spike_threshold_and_immature_calendar_days():
    T = 80
    z = np.zeros((4, T))
    z[:, 50] = [4.2, -4.2, 4.2, -4.2]  # one day: spike tau 4 on the concern side, 6.67 on the counter side
    cfg = O.ObserveConfig()
    w = _run_detector(z, np.ones(4), np.array([1, 1, -1, -1]), cfg)
    assert sorted(map(tuple, w[["series", "side", "onset", "end"]].to_numpy().tolist())) == [
        (0, 0, 50, 50), (3, 1, 50, 50)]
    # on an immature calendar day the sensitivity halves: the same spike is not reported
    det = O.Detector(np.ones(1), np.ones(1), cfg)
    for t in range(T):
        det.step(t, z[:1, t], np.array([t == 50]))
    assert len(det.finish(T)) == 0


# ------------------------------------------------- direction of concern, noisy panels
def _moves(mult: float, length: int, n: int = 100, T: int = 200, seed: int = 77):
    rng = np.random.default_rng(seed)
    y = _weekly_log_panel(rng, n, T)
    starts = rng.integers(100, T - 15, n)
    for s, a in enumerate(starts):
        y[s, a:a + length] += np.log(mult)
    return y, starts


def test_large_counter_direction_move_is_reported_on_side_up():
    y, starts = _moves(1.8, 3)  # +80% on streams whose concern is "down"
    w = _observe(y, concern=-1)
    assert _hit_rate(w, starts, 3, side=0) >= 0.95
    assert _hit_rate(w, starts, 3, side=1) <= 0.05


def test_moderate_move_reported_only_in_the_direction_of_concern():
    """+-20% for 3 days, noise cv 0.1, concern down. The down move runs at full sensitivity, the
    up move at the counter sensitivity (0.6). The down move is only ~2.2 residual sd a day, so
    even on the concern side a 3-day CUSUM catches it only about 60% of the time (measured
    0.57-0.61 over seeds); the counter side 4-9%, the same up moves as the concern 33-41%."""
    y_up, starts = _moves(1.2, 3)
    y_down, starts_d = _moves(0.8, 3)
    np.testing.assert_array_equal(starts, starts_d)
    up = _hit_rate(_observe(y_up, concern=-1), starts, 3, side=None)
    down = _hit_rate(_observe(y_down, concern=-1), starts, 3, side=1)
    assert up <= 0.12, up
    assert down >= 0.45 and down >= 4 * up, (down, up)
    # the very same up moves are reported far more often when up is the direction of concern
    up_as_concern = _hit_rate(_observe(y_up, concern=+1), starts, 3, side=0)
    assert up_as_concern >= up + 0.2, (up_as_concern, up)


# ============================================================================ 4. concern "both"
def test_concern_both_detects_both_directions():
    rng = np.random.default_rng(99)
    n, T = 100, 220
    y = _weekly_log_panel(rng, n, T)
    starts = rng.integers(100, T - 15, n)
    up = np.arange(n) % 2 == 0
    for s, a in enumerate(starts):
        y[s, a:a + 4] += np.log(1.5) if up[s] else np.log(1 / 1.5)
    w = _observe(y, concern=0)
    up_hit = np.mean([len(_overlapping(w, s, a, a + 3, 0)) > 0 for s, a in enumerate(starts) if up[s]])
    down_hit = np.mean([len(_overlapping(w, s, a, a + 3, 1)) > 0 for s, a in enumerate(starts) if not up[s]])
    assert up_hit >= 0.95 and down_hit >= 0.95, (up_hit, down_hit)
    # with a one-sided concern the counter side is less sensitive: fewer windows overall
    assert len(_observe(y, concern=-1)) < len(w)


@pytest.mark.parametrize("concern", [0, 1, -1])
def test_observe_is_mirror_symmetric(concern):
    """Negating the log series and the direction of concern swaps the sides and nothing else."""
    rng = np.random.default_rng(5)
    y = _weekly_log_panel(rng, 30, 250)
    y[::3, 150:155] += np.log(0.6)
    y[1::3, 170:173] += np.log(1.7)
    a = _observe(y, concern=concern)
    b = _observe(-y, concern=-concern)
    b["side"] = 1 - b["side"]
    key = ["series", "onset", "side"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    assert len(a) >= 10
    pd.testing.assert_frame_equal(a, b)


# ============================================================================ 5. level shift
def test_persistent_shift_becomes_a_level_shift_and_alarms_stop():
    rng = np.random.default_rng(2718)
    n, T, at = 20, 400, 200
    y = _weekly_log_panel(rng, n, T)
    y[:, at:] += np.log(0.5)
    w, res = O.observe(y, _params(n), np.ones(n), -np.ones(n), calendars=(), cfg=O.ObserveConfig())
    cfg = O.ObserveConfig()
    for s in range(n):
        ws = w[w["series"] == s]
        shift = ws[ws["kind"] == "level_shift"]
        assert len(shift) == 1, ws
        r = shift.iloc[0]
        assert r["side"] == 1 and abs(r["onset"] - at) <= 1 and not r["is_open"]
        # the max_days clock runs from the CUSUM start, which noise can put a few days early
        assert at + cfg.max_days - 8 <= r["end"] <= at + cfg.max_days
        assert len(ws[ws["onset"] > at + cfg.max_days + 10]) <= 2, ws
    # the baseline follows the new level: one-step residuals centred again at the end
    z_late = (res.resid / res.scale)[:, T - 100:]
    assert abs(float(np.median(z_late))) < 0.5


# ============================================================================ 6. count dead-zone
def test_count_dead_zone_silences_rounding_noise_of_small_counts():
    rng = np.random.default_rng(6)
    n, T = 100, 360
    counts = rng.choice([4, 5, 6], p=[0.12, 0.76, 0.12], size=(n, T)).astype(float)
    y = np.log(counts + 1)
    w = _observe(y, concern=-1, count_rows=np.ones(n, bool))
    per_series = w.groupby("series").size().reindex(range(n), fill_value=0) / (T / 90)
    assert per_series.max() <= 1.0, per_series.max()
    assert per_series.mean() <= 0.1
    # without the dead-zone the same data alarm constantly (the test can fail)
    w_raw = _observe(y, concern=-1)
    assert len(w_raw) / n / (T / 90) >= 1.0
    # and a real drop of the counts (5 -> 2 for 4 days) is still reported
    y2 = y.copy()
    y2[:, 200:204] = np.log(2 + 1)
    w2 = _observe(y2, concern=-1, count_rows=np.ones(n, bool))
    assert np.mean([len(_overlapping(w2, s, 200, 203, side=1)) > 0 for s in range(n)]) >= 0.95


# ============================================================================ 7. z-score baseline
def test_zscore_windows_flags_a_spike_and_little_on_noise():
    rng = np.random.default_rng(0)
    n, T = 20, 300
    y = rng.normal(0.0, 1.0, (n, T))
    base = O.zscore_windows(y)
    assert len(base) <= 0.01 * n * (T - 14), len(base)
    y2 = y.copy()
    y2[3, 150] += 12.0
    y2[7, 200] -= 12.0
    w = O.zscore_windows(y2)
    spike = w[(w["series"] == 3) & (w["onset"] == 150)]
    assert len(spike) == 1 and spike.iloc[0]["side"] == 0 and spike.iloc[0]["end"] == 150
    assert spike.iloc[0]["peak_z"] > 8
    dip = w[(w["series"] == 7) & (w["onset"] == 200)]
    assert len(dip) == 1 and dip.iloc[0]["side"] == 1
    # nothing else is added by the spikes
    key = ["series", "onset", "end"]
    extra = set(map(tuple, w[key].to_numpy().tolist())) - set(map(tuple, base[key].to_numpy().tolist()))
    assert extra == {(3, 150, 150), (7, 200, 200)}


def test_flags_to_windows_returns_exact_runs():
    flag = np.array([
        [1, 1, 0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 1, 0, 0],
    ], bool)
    z = np.zeros(flag.shape)
    z[0, :2] = [-3.0, -5.0]
    z[0, 4] = 4.0
    z[1, 7] = 3.5
    z[2] = [1, -2, 3, -9, 1, 1, 1, 1]
    z[4, 1:4] = [3.0, -3.5, 3.0]
    z[4, 5] = -3.2
    w = O.flags_to_windows(flag, z)
    got = w[["series", "onset", "end", "side", "is_open"]].to_numpy().tolist()
    assert got == [
        [0, 0, 1, 1, False],
        [0, 4, 4, 0, False],
        [1, 7, 7, 0, True],
        [2, 0, 7, 1, True],
        [4, 1, 3, 0, False],
        [4, 5, 5, 1, False],
    ]
    assert w["peak_z"].tolist() == [5.0, 4.0, 3.5, 9.0, 3.5, 3.2]
    assert (w["detected"] == w["onset"]).all()
    assert len(O.flags_to_windows(np.zeros((2, 5), bool), np.zeros((2, 5)))) == 0


# ============================================================================ 8. incidents
def test_incident_grouping():
    anoms = pd.DataFrame([
        # same location L1, onsets 2 days apart -> one incident
        ("clicks", "L1", 10, 12, 2.0),
        ("cpc", "L1", 12, 15, 3.0),
        # same stream at two locations, same onset -> one incident
        ("calls", "L2", 40, 41, 1.0),
        ("calls", "L3", 40, 43, 1.5),
        # 30 days later on the same stream and location as above -> separate
        ("calls", "L3", 70, 71, 1.2),
        # same location, 4 days apart (> link_days = 3) -> separate
        ("views", "L9", 100, 101, 2.0),
        ("leads", "L9", 104, 106, 2.0),
        # weak early member (0.4 < 0.5 x 2.0) does not set the onset
        ("visits", "L5", 130, 131, 0.4),
        ("orders", "L5", 132, 136, 2.0),
        # same stream at three locations: lower median of the per-location onsets
        ("reviews", "L6", 160, 161, 2.0),
        ("reviews", "L7", 161, 162, 2.0),
        ("reviews", "L8", 163, 164, 2.0),
        ("reviews", "ALL", 161, 163, 2.5),
    ], columns=["stream_id", "location_id", "onset", "end", "anomaly_score"])
    inc, out = I.group(anoms)
    assert inc.tolist() == [0, 0, 1, 1, 2, 3, 4, 5, 5, 6, 6, 6, 6]
    assert out["incident"].tolist() == list(range(7))
    assert out["onset"].tolist() == [10, 40, 70, 100, 104, 132, 161]
    assert out["end"].tolist() == [15, 43, 71, 101, 106, 136, 164]
    assert out["n_anomalies"].tolist() == [2, 2, 1, 1, 1, 2, 4]
    assert out["n_streams"].tolist() == [2, 1, 1, 1, 1, 2, 1]
    assert out["n_locations"].tolist() == [1, 2, 1, 1, 1, 1, 3]
    assert out["scope"].tolist() == ["location", "portfolio", "location", "location", "location", "location",
                                     "portfolio"]
    assert out["lead_stream_id"].tolist() == ["clicks", "calls", "calls", "views", "leads", "orders", "reviews"]
    assert out["streams"].tolist()[0] == ["clicks", "cpc"]
    assert out["locations"].tolist()[1] == ["L2", "L3"]
    assert out["locations"].tolist()[6] == ["L6", "L7", "L8"]  # the portfolio series is not a location
    assert out["peak_score"].tolist() == [3.0, 1.5, 1.2, 2.0, 2.0, 2.0, 2.5]
    # with every member counted as strong the weak early member sets the onset
    _, loose = I.group(anoms, strong_share=0.0)
    assert loose["onset"].tolist()[5] == 130
    # the grouping does not depend on the row order
    perm = np.random.default_rng(0).permutation(len(anoms))
    inc_p, out_p = I.group(anoms.iloc[perm])
    assert inc_p.tolist() == inc.iloc[perm].tolist()
    pd.testing.assert_frame_equal(out_p, out)


def test_incident_grouping_empty():
    inc, out = I.group(pd.DataFrame(columns=["stream_id", "location_id", "onset", "end", "anomaly_score"]))
    assert len(inc) == 0 and len(out) == 0 and "scope" in out.columns


# ============================================================================ 9. evaluation
def _d(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


def test_score_demo_on_hand_built_truth():
    incidents = pd.DataFrame({"incident_id": ["I1", "I2", "I3"],
                              "onset_date": ["2024-03-10", "2024-05-01", "2024-07-01"]})
    symptoms = pd.DataFrame([
        ("I1", "S1", "L1", "2024-03-10", "2024-03-14"),
        ("I1", "S2", "L2", "2024-03-10", "2024-03-12"),
        ("I2", "S1", "L1", "2024-05-01", "2024-05-03"),
        ("I3", "S3", "L3", "2024-07-01", "2024-07-05"),
    ], columns=["incident_id", "stream_id", "location_id", "start_date", "end_date"])
    for c in ("start_date", "end_date"):
        symptoms[c] = pd.to_datetime(symptoms[c])
    anoms = pd.DataFrame([
        ("S1", "L1", "2024-03-10", "2024-03-13", 3.0),  # I1 at L1, onset error 0
        ("S2", "L2", "2024-03-09", "2024-03-10", 1.0),  # I1 at L2 (1 day early allowed), weak
        ("S1", "L1", "2024-05-04", "2024-05-06", 2.0),  # I2 at L1 (within the 3 recovery days), error 3
        ("S1", "L2", "2024-03-11", "2024-03-12", 2.0),  # wrong location: false alarm
        ("S3", "L3", "2024-06-20", "2024-06-28", 2.0),  # ends 2 days before I3 - 1: false alarm
        ("S1", "ALL", "2024-03-10", "2024-03-12", 5.0),  # portfolio series: ignored
    ], columns=["stream_id", "location_id", "onset_date", "end_date", "anomaly_score"])
    for c in ("onset_date", "end_date"):
        anoms[c] = pd.to_datetime(anoms[c])
    r = E.score_demo(anoms, symptoms, incidents, n_local_series=4, observed_days=180)
    assert r["incidents"] == 3
    assert r["incident_recall"] == pytest.approx(2 / 3)
    assert r["incident_location_pairs"] == 4
    assert r["incident_location_recall"] == pytest.approx(3 / 4)
    assert r["symptom_recall"] == pytest.approx(3 / 4)
    assert r["anomaly_windows"] == 5
    assert r["false_alarms"] == 2
    assert r["false_alarms_per_series_per_90d"] == pytest.approx(2 / 4 / 2)
    assert r["worst_stream_false_alarms_per_series_per_90d"] == pytest.approx(1 / 3 / 2)
    assert r["onset_within_tolerance"] == pytest.approx(0.5)
    assert r["onset_error_days_median"] == pytest.approx(1.5)  # [0, 3]; the weak L2 member would give -1
    assert r["missed_incidents"] == ["I3"]
    # a window ending the day before (start - 1) still matches; two days before does not
    near = anoms.iloc[[4]].assign(end_date=_d("2024-06-30"))
    assert E.score_demo(near, symptoms, incidents, 4, 180)["missed_incidents"] == ["I1", "I2"]
    far = anoms.iloc[[4]].assign(end_date=_d("2024-06-29"))
    assert E.score_demo(far, symptoms, incidents, 4, 180)["false_alarms"] == 1


def test_score_windows_precision_recall_f1():
    day = lambda k: _d("2024-01-01") + pd.Timedelta(days=k)  # noqa: E731
    labels = [(day(10), day(12)), (day(20), day(25)), (day(40), day(41))]
    flags = [(day(11), day(11)), (day(13), day(14)), (day(24), day(30)), (day(50), day(50))]
    r = E.score_windows(flags, labels)
    assert r["labels"] == 3 and r["detections"] == 4
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["precision"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    # boundaries touch: a detection ending on the label's first day counts
    assert E.score_windows([(day(5), day(10))], labels)["precision"] == 1.0
    empty = E.score_windows([], labels)
    assert empty["recall"] == 0.0 and empty["precision"] == 0.0 and empty["f1"] == 0.0
    assert np.isnan(E.score_windows(flags, [])["recall"])


# ============================================================================ 10. panel
@pytest.fixture()
def registry():
    return pd.DataFrame({
        "stream_id": ["clicks", "cpc", "ctr"],
        "unit": ["count", "usd", "ratio"],
        "is_bounded_ratio": ["false", "false", "true"],
        "portfolio_rollup": ["sum", "mean", "mean"],
        "direction_of_concern": ["down", "up", "both"],
        "sensitivity": [1.0, 1.2, 0.8],
        "seasonality": ["weekly", "weekly,monthly", "weekly"],
    })


def _metrics() -> pd.DataFrame:
    days = pd.date_range("2024-01-01", periods=5, freq="D")
    rows = []
    clicks = {"L1": [10, 0, 12, 13, 14], "L2": [5, 6, None, 8, 9]}
    cpc = {"L1": [2.0, 2.2, 2.4, 2.6, 2.8], "L2": [1.0, 1.2, 1.4, None, 1.8]}
    ctr = {"L1": [0.02, 0.03, 0.04, 0.05, 0.06], "L2": [0.10, 0.20, 0.30, 0.40, None]}
    for sid, data in (("clicks", clicks), ("cpc", cpc), ("ctr", ctr)):
        for loc, vals in data.items():
            for d, v in zip(days, vals, strict=True):
                if v is not None:
                    rows.append((sid, loc, d.date(), float(v)))
    rows.append(("unregistered", "L1", days[0].date(), 1.0))  # not in the registry: dropped
    m = pd.DataFrame(rows, columns=["stream_id", "location_id", "period_start", "value"])
    # a day with no row at all for clicks@L1 (day 3) is a gap, not a zero
    return m[~((m["stream_id"] == "clicks") & (m["location_id"] == "L1")
               & (pd.to_datetime(m["period_start"]) == days[3]))]


def test_build_panel_portfolio_rows_gaps_and_transforms(registry):
    p = P.build_panel(_metrics(), registry)
    keys = list(p.series[["stream_id", "location_id"]].itertuples(index=False, name=None))
    assert keys == [("clicks", "L1"), ("clicks", "L2"), ("cpc", "L1"), ("cpc", "L2"), ("ctr", "L1"), ("ctr", "L2"),
                    ("clicks", "ALL"), ("cpc", "ALL"), ("ctr", "ALL")]
    assert list(p.days) == list(pd.date_range("2024-01-01", periods=5, freq="D"))
    assert p.n == 9 and p.values.shape == p.y.shape == (9, 5)
    v = p.values
    nan = np.nan
    np.testing.assert_array_equal(v[0], [10, 0, 12, nan, 14])
    np.testing.assert_array_equal(v[1], [5, 6, nan, 8, 9])
    # portfolio: clicks summed, cpc and ctr averaged; a day with fewer than 80% of the
    # locations reporting (here 1 of 2) has no portfolio value rather than a false drop
    np.testing.assert_allclose(v[6], [15, 6, nan, nan, 23])
    np.testing.assert_allclose(v[7], [1.5, 1.7, 1.9, nan, 2.3])
    np.testing.assert_allclose(v[8], [0.06, 0.115, 0.17, 0.225, nan])
    # transforms: log(count + 1), log(x + 1% of the median) for usd, logit for bounded ratios
    np.testing.assert_array_equal(p.is_ratio, [False, False, False, False, True, True, False, False, True])
    np.testing.assert_array_equal(p.is_count, [True, True, False, False, False, False, True, False, False])
    np.testing.assert_allclose(p.offset[[0, 1, 6]], 1.0)
    np.testing.assert_allclose(p.offset[2], 0.01 * 2.4)
    np.testing.assert_allclose(p.y[0], np.log(v[0] + 1), equal_nan=True)
    np.testing.assert_allclose(p.y[2], np.log(v[2] + 0.024))
    np.testing.assert_allclose(p.y[4], np.log(v[4] / (1 - v[4])))
    np.testing.assert_allclose(p.y[8], np.log(v[8] / (1 - v[8])))
    assert np.isnan(p.y[0, 3]) and np.isnan(p.y[3, 3]) and np.isnan(p.y[5, 4])
    assert p.y[0, 1] == 0.0  # a zero count is finite on the log(count + 1) scale
    # back-transform inverts the transform (NaN stays NaN), for (n, T) and (n,) inputs
    np.testing.assert_allclose(p.back(p.y), v, rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(p.back(p.y[:, 0]), v[:, 0], rtol=1e-12)


def test_build_panel_options_and_boolean_registry(registry):
    reg = registry.assign(is_bounded_ratio=[False, False, True])
    p = P.build_panel(_metrics(), reg, with_portfolio=False, start="2023-12-31", end="2024-01-03")
    assert p.n == 6 and (p.series["location_id"] != P.PORTFOLIO).all()
    assert len(p.days) == 4 and p.days[0] == pd.Timestamp("2023-12-31")
    assert np.isnan(p.values[:, 0]).all()
    np.testing.assert_array_equal(p.is_ratio, [False, False, False, False, True, True])
    np.testing.assert_array_equal(P.concern_sign(p.series["direction_of_concern"]), [-1, -1, 1, 1, 0, 0])
    # a day on which no location reported: the portfolio row is missing, not zero
    m = _metrics()
    m = m[~((m["stream_id"] == "clicks") & (pd.to_datetime(m["period_start"]) == pd.Timestamp("2024-01-02")))]
    q = P.build_panel(m, registry)
    assert np.isnan(q.values[6, 1])


def test_portfolio_series_do_not_link_unrelated_streams():
    """Two streams' portfolio windows share the location 'ALL' but not a cause: they link only
    through their own stream's location windows."""
    a = pd.DataFrame({"stream_id": ["A", "A", "B", "B"], "location_id": ["L1", "ALL", "L9", "ALL"],
                      "onset": [10, 10, 12, 12], "end": [12, 12, 14, 14], "anomaly_score": [2.0, 2.0, 2.0, 2.0]})
    inc, summary = I.group(a, link_days=3)
    assert inc.tolist() == [0, 0, 1, 1]
    assert summary["scope"].tolist() == ["location", "location"]


def test_calendar_effects_are_learnt_not_alarmed_on():
    """A recurring promo lift (+60% for 3 days every 30 days) alarms on every occurrence without a
    calendar; with the promo days as a Calendar key it alarms only while the effect is new."""
    rng = np.random.default_rng(5)
    n, T = 50, 400
    y = _weekly_log_panel(rng, n, T)
    starts = np.arange(60, T - 5, 30)
    keys = np.zeros((n, T), np.int16)
    for s in starts:
        y[:, s:s + 3] += np.log(1.6)
        keys[:, s:s + 3] = 1
    cfg = O.ObserveConfig()
    conc, sens = np.zeros(n), np.ones(n)
    without, _ = O.observe(y, _params(n), sens, conc, (), cfg)
    with_cal, _ = O.observe(y, _params(n), sens, conc, (ets.Calendar(keys, 1, rate=0.5),), cfg)

    def alarmed_share(w, occurrences):  # share of (series, occurrence) pairs with a window on it
        hits = [((w["series"] == i) & (w["onset"] <= s + 2) & (w["end"] >= s)).any()
                for s in occurrences for i in range(n)]
        return float(np.mean(hits))

    later = starts[4:]  # from the fifth occurrence on, the effect is learnt
    assert alarmed_share(without, later) > 0.9
    assert alarmed_share(with_cal, later) < 0.1
    # and a real drop on a promo day is still found
    y2 = y.copy()
    y2[:, starts[-2]:starts[-2] + 3] += np.log(0.4)
    dropped, _ = O.observe(y2, _params(n), sens, conc, (ets.Calendar(keys.copy(), 1, rate=0.5),), cfg)
    assert alarmed_share(dropped[dropped["side"] == 1], [starts[-2]]) > 0.9
