"""Confidence calibration of cohort memberships, per method × window.

Label. Memberships (customer × method × window → cohort_id, raw_confidence in [0, 1]) are
recomputed at successive as_of times. A membership observed at as_of a_k is *held* (label 1)
when the same customer has the same cohort_id for the same method × window at the next as_of
a_{k+1} of that method × window; a different cohort or no row at all at a_{k+1} is 0. Rows at a
method × window's latest as_of have no label yet and produce no pair.

Calibration. For each method × window, isotonic regression (increasing, clipped to [0, 1],
out-of-bounds inputs clipped to the fitted range) maps raw_confidence to P(held). The final map
is fitted on all used pairs (the last `max_snapshot_pairs` as_of values) and stored as
breakpoints: linear interpolation between them, constant beyond the ends, reproduces
`IsotonicRegression.predict`.

Cross-fitting. The calibrated ECE / Brier score are measured out of fold: customers are split
into `folds` folds by a stable hash (blake2b of the seed and str(customer_key)), so all pairs
of one customer, across as_of values and across method × window, fall into the same fold; each
fold is predicted by an isotonic fit on the other folds. Scoring the final fit on its own
training pairs would flatter it (isotonic regression overfits small blocks).

Binning. Reliability curves and ECE use equal-mass (quantile) bins of the predicted value:
a value v goes to bin floor(n_bins * #{pred < v} / n), i.e. by its lowest 0-based rank, so
tied values always share one bin (the lowest one they reach) and the assignment depends only on
the multiset of predictions, not on row order. With heavy ties some nominal bins stay empty;
empty bins are left out of the curves. ECE = sum over bins of n_bin / n * |observed_rate -
mean_predicted|.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

KEYS = ["method_id", "window_id"]
SNAPSHOT_COLUMNS = ["as_of", "customer_key", "method_id", "window_id", "cohort_id", "raw_confidence"]
PAIR_COLUMNS = ["method_id", "window_id", "as_of", "next_as_of", "customer_key", "cohort_id",
                "raw_confidence", "held"]
SUMMARY_COLUMNS = ["method_id", "window_id", "status", "n_pairs", "n_as_of_pairs", "held_rate",
                   "ece_raw", "ece_calibrated", "brier_raw", "brier_calibrated",
                   "calibration_version", "first_as_of", "last_as_of"]
BREAKPOINT_COLUMNS = ["method_id", "window_id", "point", "raw_confidence", "calibrated_confidence"]
CURVE_COLUMNS = ["method_id", "window_id", "kind", "bin", "n", "mean_predicted", "observed_rate"]


@dataclass
class CalibrationResult:
    """Output of `fit_calibration` (columns: SUMMARY_COLUMNS, BREAKPOINT_COLUMNS, CURVE_COLUMNS)."""
    summary: pd.DataFrame
    breakpoints: pd.DataFrame
    curves: pd.DataFrame


def pairs_from_snapshots(snapshots: pd.DataFrame) -> pd.DataFrame:
    """One labelled pair per membership row that has a next as_of in its method × window.

    Returns PAIR_COLUMNS sorted by method_id, window_id, as_of, customer_key; held is 1 when
    the customer has the same cohort_id at next_as_of, else 0 (including absent). Raises
    ValueError on missing columns, null cohort_id, raw_confidence outside [0, 1] or a customer
    with more than one row per as_of × method × window.
    """
    missing = set(SNAPSHOT_COLUMNS) - set(snapshots.columns)
    if missing:
        raise ValueError(f"snapshots lack columns {sorted(missing)}")
    snap = snapshots[SNAPSHOT_COLUMNS].copy()
    if snap["cohort_id"].isna().any():
        raise ValueError("cohort_id is null in snapshots (a row means the customer is a member)")
    _check_confidence(snap["raw_confidence"].to_numpy(dtype=float))
    if snap.duplicated(["method_id", "window_id", "as_of", "customer_key"]).any():
        raise ValueError("more than one membership row per customer × method × window × as_of")

    times = snap[KEYS + ["as_of"]].drop_duplicates().sort_values(KEYS + ["as_of"], kind="mergesort")
    times["next_as_of"] = times.groupby(KEYS, sort=False)["as_of"].shift(-1)
    times = times[times["next_as_of"].notna()]

    pairs = snap.merge(times, on=KEYS + ["as_of"], how="inner")
    later = snap[KEYS + ["as_of", "customer_key", "cohort_id"]].rename(
        columns={"as_of": "next_as_of", "cohort_id": "next_cohort_id"})
    pairs = pairs.merge(later, on=KEYS + ["next_as_of", "customer_key"], how="left")
    pairs["held"] = (pairs["next_cohort_id"].notna()
                     & (pairs["next_cohort_id"] == pairs["cohort_id"])).astype("int64")
    pairs["raw_confidence"] = pairs["raw_confidence"].astype("float64")
    return (pairs[PAIR_COLUMNS]
            .sort_values(["method_id", "window_id", "as_of", "customer_key"], kind="mergesort")
            .reset_index(drop=True))


def fit_calibration(pairs: pd.DataFrame, *, n_bins: int = 10, folds: int = 2, min_pairs: int = 200,
                    max_snapshot_pairs: int = 8, seed: int = 0) -> CalibrationResult:
    """Isotonic calibration of raw_confidence → P(held), per method × window in `pairs`.

    Uses only the pairs of the last `max_snapshot_pairs` as_of values of each method × window.
    status: 'insufficient_history' (fewer than `min_pairs` pairs: raw metrics and raw curve
    only, no breakpoints), 'single_class' (all or none held: the fit is the constant observed
    rate), else 'calibrated'. ece_calibrated / brier_calibrated are cross-fitted (module
    docstring); they are NaN when fewer than two folds are non-empty. first_as_of / last_as_of
    are the earliest / latest as_of of the used pairs (outcomes observed up to the last one's
    next_as_of). calibration_version is a 12-hex blake2b digest of the final breakpoints.
    Output is independent of the row order of `pairs`.
    """
    if n_bins < 1 or folds < 2 or min_pairs < 1 or max_snapshot_pairs < 1:
        raise ValueError("need n_bins >= 1, folds >= 2, min_pairs >= 1, max_snapshot_pairs >= 1")
    missing = set(PAIR_COLUMNS) - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs lack columns {sorted(missing)}")
    data = pairs[PAIR_COLUMNS].copy()
    _check_confidence(data["raw_confidence"].to_numpy(dtype=float))
    if not data["held"].isin([0, 1]).all():
        raise ValueError("held must be 0 or 1")
    data = data.sort_values(PAIR_COLUMNS, kind="mergesort").reset_index(drop=True)
    data["_fold"] = customer_folds(data["customer_key"], folds, seed)

    summary, breakpoints, curves = [], [], []
    for (method_id, window_id), g in data.groupby(KEYS, sort=True):
        recent = g["as_of"].drop_duplicates().sort_values().iloc[-max_snapshot_pairs:]
        g = g[g["as_of"].isin(recent)]
        x = g["raw_confidence"].to_numpy(dtype=float)
        y = g["held"].to_numpy(dtype=float)
        fold = g["_fold"].to_numpy()
        key = {"method_id": method_id, "window_id": window_id}
        row = key | {"n_pairs": len(g), "n_as_of_pairs": len(recent), "held_rate": float(y.mean()),
                     "ece_raw": expected_calibration_error(x, y, n_bins), "brier_raw": _brier(x, y),
                     "ece_calibrated": np.nan, "brier_calibrated": np.nan,
                     "calibration_version": None,
                     "first_as_of": g["as_of"].min(), "last_as_of": g["as_of"].max()}
        curves.append(_curve(x, y, n_bins, key | {"kind": "raw"}))
        if len(g) < min_pairs:
            summary.append(row | {"status": "insufficient_history"})
            continue
        row["status"] = "single_class" if y.min() == y.max() else "calibrated"

        oof = _out_of_fold(x, y, fold)
        if not np.isnan(oof).any():
            row["ece_calibrated"] = expected_calibration_error(oof, y, n_bins)
            row["brier_calibrated"] = _brier(oof, y)
            curves.append(_curve(oof, y, n_bins, key | {"kind": "calibrated_out_of_fold"}))

        iso = _isotonic().fit(x, y)
        xs = np.asarray(iso.X_thresholds_, dtype=np.float64)
        ys = np.asarray(iso.y_thresholds_, dtype=np.float64)
        row["calibration_version"] = hashlib.blake2b(
            xs.astype("<f8").tobytes() + b"|" + ys.astype("<f8").tobytes(), digest_size=6).hexdigest()
        breakpoints.append(pd.DataFrame(key | {"point": np.arange(len(xs), dtype=np.int64),
                                               "raw_confidence": xs, "calibrated_confidence": ys}))
        summary.append(row)

    summary_df = pd.DataFrame(summary, columns=SUMMARY_COLUMNS)
    summary_df[["n_pairs", "n_as_of_pairs"]] = summary_df[["n_pairs", "n_as_of_pairs"]].astype("int64")
    return CalibrationResult(
        summary=summary_df.reset_index(drop=True),
        breakpoints=_concat(breakpoints, BREAKPOINT_COLUMNS),
        curves=_concat(curves, CURVE_COLUMNS))


def apply_breakpoints(breakpoints_for_one_method_window: pd.DataFrame, raw: np.ndarray) -> np.ndarray:
    """Calibrated confidence for `raw`: linear interpolation between the breakpoints of one
    method × window (ordered by point), constant beyond the first / last point."""
    bp = breakpoints_for_one_method_window
    if bp.empty:
        raise ValueError("no breakpoints (status insufficient_history has none)")
    if bp[[c for c in KEYS if c in bp.columns]].drop_duplicates().shape[0] > 1:
        raise ValueError("breakpoints of more than one method × window")
    bp = bp.sort_values("point", kind="mergesort")
    xp = bp["raw_confidence"].to_numpy(dtype=float)
    fp = bp["calibrated_confidence"].to_numpy(dtype=float)
    raw = np.asarray(raw, dtype=float)
    return np.interp(np.clip(raw, xp[0], xp[-1]), xp, fp)


def expected_calibration_error(pred, outcome, n_bins: int = 10) -> float:
    """ECE over equal-mass bins of `pred` (ties share a bin; see module docstring); NaN if empty."""
    table = _reliability(np.asarray(pred, dtype=float), np.asarray(outcome, dtype=float), n_bins)
    if table.empty:
        return float("nan")
    n = table["n"].to_numpy()
    gap = np.abs(table["observed_rate"].to_numpy() - table["mean_predicted"].to_numpy())
    return float(np.sum(n * gap) / n.sum())


def customer_folds(customer_key: pd.Series, folds: int, seed: int = 0) -> np.ndarray:
    """Fold 0..folds-1 per row from blake2b(seed, str(customer_key)): stable across runs/platforms."""
    codes, uniques = pd.factorize(customer_key, sort=False)
    if (codes < 0).any():
        raise ValueError("customer_key is null")
    salt = f"{seed}\x1f".encode()
    per_key = np.fromiter(
        (int.from_bytes(hashlib.blake2b(salt + str(k).encode(), digest_size=8).digest(), "little") % folds
         for k in uniques), dtype=np.int64, count=len(uniques))
    return per_key[codes]


def _isotonic() -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")


def _out_of_fold(x: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each fold predicted by an isotonic fit on the other folds; all NaN if < 2 folds non-empty."""
    oof = np.full(len(x), np.nan)
    present = np.unique(fold)
    if len(present) < 2:
        return oof
    for f in present:
        test = fold == f
        oof[test] = _isotonic().fit(x[~test], y[~test]).predict(x[test])
    return oof


def _bins(pred: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-mass bin per value by its lowest rank: floor(n_bins * #{pred < v} / n)."""
    below = np.searchsorted(np.sort(pred), pred, side="left")
    return (below * n_bins) // len(pred)


def _reliability(pred: np.ndarray, outcome: np.ndarray, n_bins: int) -> pd.DataFrame:
    if pred.shape != outcome.shape:
        raise ValueError("pred and outcome differ in shape")
    if not (np.isfinite(pred).all() and np.isfinite(outcome).all()):
        raise ValueError("pred and outcome must be finite")
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    if len(pred) == 0:
        return pd.DataFrame(columns=["bin", "n", "mean_predicted", "observed_rate"])
    b = _bins(pred, n_bins)
    n = np.bincount(b, minlength=n_bins)
    keep = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(b, weights=pred, minlength=n_bins) / n
        rate = np.bincount(b, weights=outcome, minlength=n_bins) / n
    return pd.DataFrame({"bin": np.arange(n_bins, dtype=np.int64)[keep], "n": n[keep].astype(np.int64),
                         "mean_predicted": mean_pred[keep], "observed_rate": rate[keep]})


def _curve(pred: np.ndarray, outcome: np.ndarray, n_bins: int, key: dict) -> pd.DataFrame:
    table = _reliability(pred, outcome, n_bins)
    for k, v in key.items():
        table[k] = v
    return table[CURVE_COLUMNS]


def _brier(pred: np.ndarray, outcome: np.ndarray) -> float:
    return float(np.mean((pred - outcome) ** 2)) if len(pred) else float("nan")


def _check_confidence(c: np.ndarray) -> None:
    if not (np.isfinite(c).all() and (c >= 0).all() and (c <= 1).all()):
        raise ValueError("raw_confidence must be finite and within [0, 1]")


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
