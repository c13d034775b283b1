"""Correlate engine (issue 7): each vectorised statistic against its per-pair reference, and planted couplings.

References: statsmodels grangercausalitytests, scipy.signal.coherence, scipy.stats.pearsonr,
dtaidistance (pure-Python DTW), and the plain per-pair numpy TE / cross-recurrence of
marketing_signals.bench.correlate (the same loop the benchmark times).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import signal, stats
from statsmodels.tsa.stattools import grangercausalitytests

from marketing_signals.bench.correlate import reference_crqa, reference_pair, reference_te
from marketing_signals.rca.correlate import (
    COLUMNS, METHODS, CorrelateConfig, coherence_dof, coherence_threshold, correlate_pairs, recurrence_shifts,
)

T = 240


def ar1(rng, shape, phi=0.5):
    e = rng.standard_normal(shape)
    out = np.empty_like(e)
    out[..., 0] = e[..., 0]
    for t in range(1, shape[-1]):
        out[..., t] = phi * out[..., t - 1] + e[..., t]
    return out


def rows(df, method):
    return df[df["method"] == method].set_index("pair").sort_index()


def zs(v):
    return (v - v.mean()) / v.std()


# ----------------------------------------------------------------------------- Granger
@pytest.mark.parametrize("order", [2, 7])
def test_granger_equals_statsmodels(order):
    rng = np.random.default_rng(1)
    x = ar1(rng, (8, T))
    y = ar1(rng, (8, T)) + rng.uniform(0, 3, (8, 1))
    y[0, 1:] += 0.9 * x[0, :-1]  # planted: x drives y at lag 1
    y[1, :] = rng.standard_normal(T)  # independent white noise
    x[2] = 100 + 5 * x[2]  # scale/level must not matter
    cfg = CorrelateConfig(granger_lags=order)
    g = rows(correlate_pairs(x, y, cfg, methods=("granger",)), "granger")
    for i in range(len(x)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            F, p = grangercausalitytests(np.column_stack([y[i], x[i]]), [order])[order][0]["ssr_ftest"][:2]
        assert g.loc[i, "score"] == pytest.approx(F, rel=1e-6)
        assert g.loc[i, "p_value"] == pytest.approx(p, rel=1e-6)
        assert bool(g.loc[i, "significant"]) == (p <= cfg.alpha)
    assert g.loc[0, "p_value"] < 1e-12 and g.loc[0, "significant"]
    assert g.loc[1, "p_value"] > 0.05 and not g.loc[1, "significant"]
    # direction: y does not Granger-cause x in the planted pair
    rev = rows(correlate_pairs(y[:1], x[:1], cfg, methods=("granger",)), "granger")
    assert rev.loc[0, "p_value"] > 0.01


def test_granger_perfect_fit_is_null():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(T)
    y = np.r_[0.0, x[:-1]]  # y_t = x_{t-1} exactly
    g = rows(correlate_pairs(x, y, methods=("granger",)), "granger")
    assert np.isnan(g.loc[0, "score"]) and not g.loc[0, "significant"]
    assert g.loc[0, "reason"] == "singular_or_perfect_fit"


# ----------------------------------------------------------------------------- CCF family
def test_ccf_recovers_planted_lags_and_signs():
    rng = np.random.default_rng(3)
    n = 6
    x = rng.standard_normal((n, T))
    y = rng.standard_normal((n, T))
    y[0, 3:] += 0.8 * x[0, :-3]   # x leads y by 3
    x[1, 2:] += 0.8 * y[1, :-2]   # y leads x by 2
    y[2] += 0.9 * x[2]            # same day, positive
    y[3, 4:] -= 0.9 * x[3, :-4]   # negative, x leads by 4
    y[4] -= 0.9 * x[4]            # same day, negative
    df = correlate_pairs(x, y, methods=("lag", "lead", "sync", "anti_correlation"))
    lag, lead, sync, anti = (rows(df, m) for m in ("lag", "lead", "sync", "anti_correlation"))
    assert (lag.loc[0, "lag"], lag.loc[0, "significant"]) == (3, True) and lag.loc[0, "score"] > 0.4
    assert (lead.loc[1, "lag"], lead.loc[1, "significant"]) == (-2, True) and lead.loc[1, "score"] > 0.4
    assert sync.loc[2, "significant"] and sync.loc[2, "score"] > 0.5
    assert not sync.loc[4, "significant"]  # negative same-day is not "sync"
    assert (lag.loc[3, "lag"], anti.loc[3, "lag"]) == (4, 4) and anti.loc[3, "significant"]
    assert lag.loc[3, "score"] < -0.4
    assert anti.loc[4, "lag"] == 0 and anti.loc[4, "significant"]
    assert not anti.loc[2, "significant"]  # positive coupling is not anti-correlation
    assert not any(df[df["pair"] == 5]["significant"])  # independent
    # CI brackets the score
    assert ((df["ci_low"] <= df["score"]) & (df["score"] <= df["ci_high"])).all()


def test_ccf_equals_corrcoef_and_pearsonr():
    rng = np.random.default_rng(4)
    x, y = ar1(rng, (5, T)), ar1(rng, (5, T))
    y[0, 2:] += x[0, :-2]
    cfg = CorrelateConfig(max_lag=5, ccf_effective_n=False)  # the textbook test: n = overlap
    df = correlate_pairs(x, y, cfg, methods=("lag", "lead", "sync", "anti_correlation"))
    L = cfg.max_lag
    for i in range(len(x)):
        xz, yz = zs(x[i]), zs(y[i])
        seg = {k: ((xz[:T - k], yz[k:]) if k >= 0 else (xz[-k:], yz[:T + k])) for k in range(-L, L + 1)}
        r = {k: np.corrcoef(*seg[k])[0, 1] for k in seg}
        k = max(range(1, L + 1), key=lambda k: abs(r[k]))
        got = rows(df, "lag").loc[i]
        assert got["lag"] == k and got["score"] == pytest.approx(r[k], abs=1e-12)
        assert got["p_value"] == pytest.approx(min(1, L * stats.pearsonr(*seg[k]).pvalue), rel=1e-8)
        k = max(range(-L, 0), key=lambda k: abs(r[k]))
        got = rows(df, "lead").loc[i]
        assert got["lag"] == k and got["score"] == pytest.approx(r[k], abs=1e-12)
        got = rows(df, "sync").loc[i]
        assert got["p_value"] == pytest.approx(stats.pearsonr(*seg[0], alternative="greater").pvalue, rel=1e-8)
        k = min(r, key=r.get)
        got = rows(df, "anti_correlation").loc[i]
        assert got["lag"] == k and got["score"] == pytest.approx(r[k], abs=1e-12)
        p = min(1, (2 * L + 1) * stats.pearsonr(*seg[k], alternative="less").pvalue)
        assert got["p_value"] == pytest.approx(p, rel=1e-8)
        # Fisher-z interval
        zc = stats.norm.ppf(0.975) / np.sqrt(T - abs(k) - 3)
        assert got["ci_low"] == pytest.approx(np.tanh(np.arctanh(r[k]) - zc), abs=1e-12)


def test_ccf_effective_n_is_bartlett_and_calibrated():
    rng = np.random.default_rng(14)
    x, y = ar1(rng, (600, T), phi=0.8), ar1(rng, (600, T), phi=0.8)  # independent, autocorrelated
    on = rows(correlate_pairs(x, y, methods=("sync",)), "sync")
    off = rows(correlate_pairs(x, y, CorrelateConfig(ccf_effective_n=False), methods=("sync",)), "sync")
    for i in range(3):
        xz, yz = zs(x[i]), zs(y[i])
        f = max(1, 1 + 2 * sum(np.dot(xz[:-j], xz[j:]) * np.dot(yz[:-j], yz[j:]) / T ** 2
                               for j in range(1, T // 5 + 1)))
        assert on.loc[i, "aux_score"] == pytest.approx(T / f, rel=1e-9)
        t = on.loc[i, "score"] * np.sqrt((T / f - 2) / (1 - on.loc[i, "score"] ** 2))
        assert on.loc[i, "p_value"] == pytest.approx(stats.t.sf(t, T / f - 2), rel=1e-8)
    assert off["significant"].mean() > 0.12              # one-sided 5% test, ~3x too many rejections
    assert 0.02 <= on["significant"].mean() <= 0.08
    assert (on["aux_score"] < T / 2).all()               # rho = 0.8: n_eff ~ T (1 - 0.64) / (1 + 0.64)


# ----------------------------------------------------------------------------- coherence
def test_coherence_equals_scipy_and_threshold_is_calibrated():
    rng = np.random.default_rng(5)
    n = 300
    x, y = rng.standard_normal((n, T)), rng.standard_normal((n, T))
    y[0] = x[0] + 0.3 * rng.standard_normal(T)  # coherent
    cfg = CorrelateConfig(coherence_nperseg=32)
    c = rows(correlate_pairs(x, y, cfg, methods=("coherence",)), "coherence")
    f, C = signal.coherence(x[:20], y[:20], fs=1.0, nperseg=32)
    band = (f >= cfg.coherence_band[0]) & (f < 0.5)  # the Nyquist bin is left out
    np.testing.assert_allclose(c["score"].to_numpy()[:20], C[:, band].mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(c["aux_score"].to_numpy()[:20], C[:, band].max(axis=1), rtol=1e-12)
    K, keff = coherence_dof(T, cfg)
    assert K == signal.spectrogram(x[0], nperseg=32, noverlap=16, window="hann")[2].shape[-1]
    assert coherence_threshold(T, cfg) == pytest.approx(1 - (1 - 0.95 ** (1 / band.sum())) ** (1 / (keff - 1)))
    assert K / 1.06 < keff < K
    assert c.loc[0, "significant"] and c.loc[0, "score"] > 0.8
    # independent white noise: rejection rate near alpha (simulated: 0.051 for this setting)
    assert c["significant"].iloc[1:].mean() <= 0.08
    np.testing.assert_array_equal(c["aux_score"] > coherence_threshold(T, cfg), c["significant"].astype(bool))
    assert c["score"].iloc[1:].mean() == pytest.approx(1 / keff, rel=0.25)


# ----------------------------------------------------------------------------- DTW
def test_dtw_equals_dtaidistance_per_pair():
    from dtaidistance import dtw

    rng = np.random.default_rng(6)
    S, n = 6, 90
    panel = ar1(rng, (S, n))
    iu, ju = np.triu_indices(S, 1)  # a dense group: one C distance-matrix call
    iso = ar1(rng, (6, n))          # isolated pairs: one C call each
    x = np.concatenate([panel[iu], iso[:3], panel[[2]]])
    y = np.concatenate([panel[ju], iso[3:], panel[[2]]])  # last pair: a series with itself
    for window in (3, 10):
        cfg = CorrelateConfig(dtw_window=window)
        d = rows(correlate_pairs(x, y, cfg, methods=("dtw",)), "dtw")
        ref = [dtw.distance(zs(x[i]), zs(y[i]), window=window, use_c=False) for i in range(len(x))]
        np.testing.assert_allclose(d["score"].to_numpy(), ref, rtol=1e-9, atol=1e-12)
        assert d["significant"].isna().all() and d["p_value"].isna().all()
    # the same pairs one at a time give the same distances
    one = [rows(correlate_pairs(x[i], y[i], cfg, methods=("dtw",)), "dtw")["score"].iloc[0] for i in (0, 16)]
    np.testing.assert_allclose(one, d["score"].to_numpy()[[0, 16]], rtol=1e-12)


# ----------------------------------------------------------------------------- transfer entropy
def test_transfer_entropy_planted_direction_and_independence():
    rng = np.random.default_rng(7)
    n = 60
    x, y = rng.standard_normal((n, 300)), rng.standard_normal((n, 300))
    x[0] = rng.standard_normal(300)
    y[0, 1:] = 0.8 * x[0, :-1] + 0.6 * rng.standard_normal(299)  # x drives y at lag 1
    cfg = CorrelateConfig()
    fwd = rows(correlate_pairs(x[:1], y[:1], cfg, methods=("transfer_entropy",)), "transfer_entropy")
    rev = rows(correlate_pairs(y[:1], x[:1], cfg, methods=("transfer_entropy",)), "transfer_entropy")
    assert fwd.loc[0, "significant"] and fwd.loc[0, "p_value"] <= 1 / (cfg.te_permutations + 1) + 1e-12
    assert fwd.loc[0, "score"] > 0.15 and fwd.loc[0, "score"] > 5 * rev.loc[0, "score"]
    assert not rev.loc[0, "significant"]
    ind = rows(correlate_pairs(x[1:], y[1:], cfg, methods=("transfer_entropy",)), "transfer_entropy")
    assert ind["significant"].mean() <= 0.12  # alpha = 0.05 with 59 pairs
    assert ind["score"].mean() < 0.04 and ind["score"].max() < 0.1  # plug-in bias ~ 12 / (2 n ln 2) = 0.03 bits
    assert abs(ind["aux_score"].mean()) < 0.005      # bias-corrected TE ~ 0
    assert ind["p_value"].mean() == pytest.approx(0.5, abs=0.12)


def test_transfer_entropy_equals_reference():
    rng = np.random.default_rng(8)
    x, y = ar1(rng, (8, T)), ar1(rng, (8, T))
    y[0, 2:] += x[0, :-2]
    x[3] = np.round(x[3])  # ties in the binning
    x[4:] = x[0]            # four pairs share their x series: the kernel's bitset path (the others count cells)
    for cfg in (CorrelateConfig(), CorrelateConfig(te_bins=4, te_lag=2, te_permutations=30, seed=3)):
        te = rows(correlate_pairs(x, y, cfg, methods=("transfer_entropy",)), "transfer_entropy")
        for i in range(len(x)):
            obs, null = reference_te(x[i], y[i], cfg)
            assert te.loc[i, "score"] == pytest.approx(obs, abs=1e-12)
            assert te.loc[i, "aux_score"] == pytest.approx(obs - null.mean(), abs=1e-12)
            assert te.loc[i, "p_value"] == pytest.approx((1 + np.sum(null >= obs - 1e-12)) / (len(null) + 1))
            assert te.loc[i, "lag"] == cfg.te_lag


# ----------------------------------------------------------------------------- cross-recurrence
def naive_crqa(x, y, band, eps, lmin):
    """Cell by cell: recurrence on |i - j| <= band, DET from explicit diagonal runs."""
    n = len(x)
    rec = inl = cells = 0
    per_d = {}
    for d in range(-band, band + 1):
        run = 0
        per_d[d] = 0
        for i in range(n):
            j = i + d
            if not 0 <= j < n:
                continue
            cells += 1
            if abs(x[i] - y[j]) <= eps:
                run += 1
                rec += 1
                per_d[d] += 1
            else:
                inl += run if run >= lmin else 0
                run = 0
        inl += run if run >= lmin else 0
    return rec / cells, (inl / rec if rec else 0.0), max(per_d, key=lambda d: (per_d[d], -d))


@pytest.mark.parametrize("lmin", [2, 3])
def test_cross_recurrence_equals_naive_reference(lmin):
    rng = np.random.default_rng(9)
    x, y = ar1(rng, (5, 150), phi=0.8), ar1(rng, (5, 150), phi=0.8)
    y[0, 3:] = x[0, :-3] + 0.1 * rng.standard_normal(147)
    cfg = CorrelateConfig(recurrence_lmin=lmin, recurrence_band=5, recurrence_eps=0.3, recurrence_surrogates=19)
    cr = rows(correlate_pairs(x, y, cfg, methods=("cross_recurrence",)), "cross_recurrence")
    shifts = recurrence_shifts(150, cfg)
    for i in range(len(x)):
        xz, yz = zs(x[i]), zs(y[i])
        rr, det, lag = naive_crqa(xz, yz, 5, 0.3, lmin)
        assert (cr.loc[i, "aux_score"], cr.loc[i, "score"], cr.loc[i, "lag"]) == (pytest.approx(rr, abs=1e-15),
                                                                               pytest.approx(det, abs=1e-15), lag)
        assert reference_crqa(xz, yz, 5, 0.3, lmin) == (pytest.approx(rr, abs=1e-15), pytest.approx(det, abs=1e-15),
                                                        lag)
        sur = np.array([naive_crqa(xz, np.roll(yz, -s), 5, 0.3, lmin)[1] for s in shifts])
        assert cr.loc[i, "p_value"] == pytest.approx((1 + np.sum(sur >= det - 1e-12)) / (len(shifts) + 1))
    assert cr.loc[0, "lag"] == 3 and cr.loc[0, "significant"]


def test_cross_recurrence_higher_for_coupled_series():
    rng = np.random.default_rng(10)
    n = 40
    x, y = ar1(rng, (n, T), phi=0.7), ar1(rng, (n, T), phi=0.7)
    y[:20, 2:] = x[:20, :-2] + 0.3 * rng.standard_normal((20, T - 2))  # coupled, y follows x by 2 days
    cr = rows(correlate_pairs(x, y, methods=("cross_recurrence",)), "cross_recurrence")
    coupled, indep = cr.iloc[:20], cr.iloc[20:]
    assert coupled["aux_score"].min() > indep["aux_score"].max()  # RR
    assert coupled["score"].mean() > indep["score"].mean() + 0.1  # DET
    assert (coupled["lag"] == 2).all() and coupled["significant"].mean() >= 0.9
    assert indep["significant"].mean() <= 0.2


# ----------------------------------------------------------------------------- engine = per-pair reference, all methods
def test_all_methods_equal_the_benchmark_reference_loop():
    rng = np.random.default_rng(11)
    x, y = ar1(rng, (3, T)), ar1(rng, (3, T))
    y[0, 1:] += x[0, :-1]
    cfg = CorrelateConfig(te_permutations=20, recurrence_surrogates=9)
    df = correlate_pairs(x, y, cfg)
    for i in range(len(x)):
        for m, ref in reference_pair(x[i], y[i], cfg).items():
            got = df[(df["pair"] == i) & (df["method"] == m)].iloc[0]
            for col, v in ref.items():
                assert got[col] == pytest.approx(v, rel=1e-6, abs=1e-12), (i, m, col)


# ----------------------------------------------------------------------------- inputs, output shape
def test_constant_all_nan_and_nan_inputs():
    rng = np.random.default_rng(12)
    x, y = ar1(rng, (4, T)), ar1(rng, (4, T))
    x[0] = 3.0                      # constant
    y[1] = np.nan                   # all NaN
    gaps = x[2].copy()
    gaps[[0, 1, 50, 51, 52, T - 1]] = np.nan  # edges and an interior gap
    x[2] = gaps
    df = correlate_pairs(x, y)
    assert len(df) == 4 * len(METHODS)
    bad = df[df["pair"].isin([0, 1])]
    assert bad["score"].isna().all() and bad["p_value"].isna().all() and bad["lag"].isna().all()
    assert (~bad["significant"].astype(bool)).all()
    assert set(bad[bad["pair"] == 0]["reason"]) == {"x_constant"}
    assert set(bad[bad["pair"] == 1]["reason"]) == {"y_all_nan"}
    good = df[df["pair"].isin([2, 3])]
    assert good["reason"].isna().all() and good[good["method"] != "dtw"]["score"].notna().all()
    # NaNs are linearly interpolated (ends: nearest value)
    t = np.arange(T)
    ok = ~np.isnan(gaps)
    filled = np.interp(t, t[ok], gaps[ok])
    again = correlate_pairs(filled, y[2])
    pd.testing.assert_series_equal(df[df["pair"] == 2]["score"].reset_index(drop=True), again["score"], rtol=1e-12)


def test_bad_inputs_raise():
    x = np.zeros((2, T))
    with pytest.raises(ValueError, match="same shape"):
        correlate_pairs(x, np.zeros((3, T)))
    with pytest.raises(ValueError, match="infinite"):
        correlate_pairs(np.full((1, T), np.inf), np.ones((1, T)))
    with pytest.raises(ValueError, match="too short"):
        correlate_pairs(np.ones((1, 20)), np.ones((1, 20)))
    with pytest.raises(ValueError, match="unknown methods"):
        correlate_pairs(x, x, methods=("pearson",))


def test_output_frame_shape_order_and_dtypes():
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((3, T)), rng.standard_normal((3, T))
    df = correlate_pairs(x, y, methods=("sync", "granger"))
    assert tuple(df.columns) == COLUMNS
    assert list(df["pair"]) == [0, 0, 1, 1, 2, 2] and list(df["method"]) == ["sync", "granger"] * 3
    assert str(df["lag"].dtype) == "Int64" and str(df["significant"].dtype) == "boolean"
    assert df[df["method"] == "granger"]["lag"].isna().all()
    assert set(df.attrs["seconds"]) >= {"granger", "ccf (lag, lead, sync, anti_correlation)"}
