"""Membership confidence calibration: labelled pairs from snapshots, isotonic fit, cross-fitted
ECE on equal-mass bins, statuses and order independence."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

from marketing_signals.membership.calibration import (
    PAIR_COLUMNS, apply_breakpoints, customer_folds, expected_calibration_error, fit_calibration,
    pairs_from_snapshots)

T1, T2, T3 = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-01")


def _shuffle(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _synthetic_pairs(n_customers: int, n_as_of: int, outcome_prob, *, method="m", window="w",
                     seed=0, decimals=None) -> pd.DataFrame:
    """Pairs with raw confidence ~ U(0, 1) and held ~ Bernoulli(outcome_prob(raw))."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=n_as_of + 1, freq="7D")
    n = n_customers * n_as_of
    raw = rng.random(n)
    if decimals is not None:
        raw = np.round(raw, decimals)
    return pd.DataFrame({
        "method_id": method, "window_id": window,
        "as_of": np.repeat(times[:-1], n_customers), "next_as_of": np.repeat(times[1:], n_customers),
        "customer_key": np.tile([f"c{i}" for i in range(n_customers)], n_as_of),
        "cohort_id": "k1", "raw_confidence": raw,
        "held": (rng.random(n) < outcome_prob(raw)).astype("int64")})[PAIR_COLUMNS]


# ---------- pairs_from_snapshots ----------

def _snapshots() -> pd.DataFrame:
    rows = [
        # m1/w1 has as_of T1, T2, T3; c2 is absent at T2, c4 only appears at T3
        (T1, "c1", "m1", "w1", "A", 0.9), (T2, "c1", "m1", "w1", "A", 0.8), (T3, "c1", "m1", "w1", "B", 0.7),
        (T1, "c2", "m1", "w1", "A", 0.6), (T3, "c2", "m1", "w1", "A", 0.5),
        (T1, "c3", "m1", "w1", "B", 0.4), (T2, "c3", "m1", "w1", "A", 0.3), (T3, "c3", "m1", "w1", "A", 0.2),
        (T3, "c4", "m1", "w1", "A", 0.1),
        # m2/w1 skips T2: its next as_of after T1 is T3
        (T1, "c1", "m2", "w1", "X", 0.55), (T3, "c1", "m2", "w1", "X", 0.65),
        (T1, "c2", "m2", "w1", "X", 0.45),
    ]
    return pd.DataFrame(rows, columns=["as_of", "customer_key", "method_id", "window_id", "cohort_id",
                                       "raw_confidence"])


def test_pairs_from_snapshots_labels_held_changed_and_absent():
    got = pairs_from_snapshots(_snapshots())
    expected = pd.DataFrame([
        ("m1", "w1", T1, T2, "c1", "A", 0.9, 1),   # same cohort next time
        ("m1", "w1", T1, T2, "c2", "A", 0.6, 0),   # absent at T2
        ("m1", "w1", T1, T2, "c3", "B", 0.4, 0),   # moved B -> A
        ("m1", "w1", T2, T3, "c1", "A", 0.8, 0),   # moved A -> B
        ("m1", "w1", T2, T3, "c3", "A", 0.3, 1),
        ("m2", "w1", T1, T3, "c1", "X", 0.55, 1),  # next as_of is per method × window
        ("m2", "w1", T1, T3, "c2", "X", 0.45, 0),
    ], columns=PAIR_COLUMNS)
    expected["held"] = expected["held"].astype("int64")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["held"].dtype == np.int64
    assert not (got["as_of"] == T3).any()  # latest as_of has no label yet


def test_pairs_from_snapshots_ignores_row_order():
    base = pairs_from_snapshots(_snapshots())
    for seed in range(3):
        got = pairs_from_snapshots(_shuffle(_snapshots(), seed))
        pd.testing.assert_frame_equal(got, base, check_exact=True)


def test_pairs_from_snapshots_rejects_duplicate_membership_rows():
    snap = _snapshots()
    with pytest.raises(ValueError, match="more than one"):
        pairs_from_snapshots(pd.concat([snap, snap.iloc[[0]]], ignore_index=True))


# ---------- breakpoints reproduce sklearn ----------

def test_apply_breakpoints_matches_sklearn_isotonic_predict():
    pairs = _synthetic_pairs(600, 3, lambda p: p ** 2, seed=3, decimals=3)  # rounding makes ties
    result = fit_calibration(pairs, min_pairs=10)
    assert result.summary["status"].tolist() == ["calibrated"]
    reference = IsotonicRegression(y_min=0, y_max=1, increasing=True, out_of_bounds="clip").fit(
        pairs["raw_confidence"], pairs["held"])
    rng = np.random.default_rng(7)
    query = np.concatenate([rng.random(5000), [0.0, 1.0, -0.5, 1.5],
                            result.breakpoints["raw_confidence"].to_numpy(),
                            pairs["raw_confidence"].to_numpy()])
    np.testing.assert_array_equal(apply_breakpoints(result.breakpoints, query), reference.predict(query))
    points = result.breakpoints["point"].tolist()
    assert len(points) > 2 and points == list(range(len(points)))


# ---------- ECE ----------

def test_ece_hand_computed_with_ties_kept_in_one_bin():
    # lowest-rank binning: the three tied 0.1 share bin 0, 0.9 is bin 1
    pred, outcome = np.array([0.1, 0.9, 0.1, 0.1]), np.array([0, 1, 1, 0])
    assert expected_calibration_error(pred, outcome, 2) == pytest.approx(0.75 * (1 / 3 - 0.1) + 0.25 * 0.1)
    for perm in ([3, 2, 1, 0], [1, 0, 3, 2]):
        assert expected_calibration_error(pred[perm], outcome[perm], 2) == \
            expected_calibration_error(pred, outcome, 2)


def test_ece_small_when_calibrated_large_when_not_and_isotonic_fixes_it():
    rng = np.random.default_rng(11)
    p = rng.random(50_000)
    assert expected_calibration_error(p, (rng.random(50_000) < p).astype(float), 10) < 0.02

    pairs = _synthetic_pairs(10_000, 5, lambda q: q ** 3, seed=12)
    summary = fit_calibration(pairs).summary.iloc[0]
    assert summary["status"] == "calibrated" and summary["n_pairs"] == 50_000
    assert summary["ece_raw"] > 0.1
    assert summary["ece_calibrated"] <= 0.03
    assert summary["brier_calibrated"] < summary["brier_raw"]


def test_calibrated_metrics_are_out_of_fold_not_in_sample():
    # raw confidence carries no signal: an in-sample isotonic fit still looks better than the base
    # rate, the cross-fitted one must not
    pairs = _synthetic_pairs(200, 2, lambda q: np.full_like(q, 0.3), seed=5)
    result = fit_calibration(pairs, min_pairs=10)
    y = pairs["held"].to_numpy(float)
    in_sample = apply_breakpoints(result.breakpoints, pairs["raw_confidence"].to_numpy())
    brier_in_sample = np.mean((in_sample - y) ** 2)
    base_rate_brier = y.var()
    assert brier_in_sample < base_rate_brier
    assert result.summary["brier_calibrated"].iloc[0] > base_rate_brier


def test_customer_folds_group_customers_and_ignore_order():
    keys = pd.Series(["a", "b", "a", "c", "b", "a"] * 50 + [f"x{i}" for i in range(200)])
    folds = customer_folds(keys, 2)
    assert pd.DataFrame({"k": keys, "f": folds}).groupby("k")["f"].nunique().max() == 1
    assert 50 < (folds[-200:] == 0).sum() < 150
    shuffled = keys.sample(frac=1.0, random_state=0)
    np.testing.assert_array_equal(customer_folds(shuffled, 2),
                                  pd.Series(folds, index=keys.index).loc[shuffled.index].to_numpy())


# ---------- statuses and history limit ----------

def test_statuses_insufficient_single_class_and_calibrated():
    pairs = pd.concat([
        _synthetic_pairs(50, 3, lambda q: q, method="few"),                           # 150 pairs
        _synthetic_pairs(100, 3, lambda q: np.ones_like(q), method="all_held"),       # 300 pairs
        _synthetic_pairs(200, 3, lambda q: q, method="ok"),
    ], ignore_index=True)
    result = fit_calibration(pairs, min_pairs=200)
    s = result.summary.set_index("method_id")
    assert s.loc["few", "status"] == "insufficient_history"
    assert s.loc["all_held", "status"] == "single_class"
    assert s.loc["ok", "status"] == "calibrated"
    assert set(result.breakpoints["method_id"]) == {"all_held", "ok"}
    assert np.isnan(s.loc["few", "ece_calibrated"]) and pd.isna(s.loc["few", "calibration_version"])
    assert not np.isnan(s.loc["few", "ece_raw"])
    assert set(result.curves.loc[result.curves["method_id"] == "few", "kind"]) == {"raw"}
    single = result.breakpoints[result.breakpoints["method_id"] == "all_held"]
    np.testing.assert_array_equal(apply_breakpoints(single, np.array([0.0, 0.3, 1.0])), 1.0)
    assert s.loc["all_held", "held_rate"] == 1.0 and s.loc["all_held", "ece_calibrated"] == 0.0
    assert s.loc["all_held", "ece_raw"] > 0.3


def test_only_last_snapshot_pairs_are_used():
    pairs = _synthetic_pairs(40, 10, lambda q: q, seed=2)
    s = fit_calibration(pairs, min_pairs=1, max_snapshot_pairs=8).summary.iloc[0]
    as_ofs = np.sort(pairs["as_of"].unique())
    assert s["n_as_of_pairs"] == 8 and s["n_pairs"] == 320
    assert s["first_as_of"] == as_ofs[2] and s["last_as_of"] == as_ofs[-1]


# ---------- determinism ----------

def test_fit_calibration_ignores_row_order():
    pairs = pd.concat([
        _synthetic_pairs(300, 4, lambda q: q ** 2, method="m1", seed=1, decimals=2),
        _synthetic_pairs(300, 4, lambda q: np.sqrt(q), method="m2", window="w2", seed=2, decimals=2),
        _synthetic_pairs(30, 2, lambda q: q, method="m3", seed=3),
    ], ignore_index=True)
    base = fit_calibration(pairs)
    assert len(base.summary) == 3 and len(base.breakpoints) > 0 and len(base.curves) > 0
    for seed in range(3):
        other = fit_calibration(_shuffle(pairs, seed))
        pd.testing.assert_frame_equal(other.summary, base.summary, check_exact=True)
        pd.testing.assert_frame_equal(other.breakpoints, base.breakpoints, check_exact=True)
        pd.testing.assert_frame_equal(other.curves, base.curves, check_exact=True)
    assert base.summary["calibration_version"].str.fullmatch("[0-9a-f]{12}").sum() == 2
