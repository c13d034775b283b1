"""intent: propensity to purchase in the next 7 days (statsmodels Logit + calibration).

Inputs
``FitInput.extra["train"]`` (required): dict with
    ``X``  scipy CSR [n, p] event counts as of an earlier anchor, same columns as ``data.columns``;
    ``y``  [n] 0/1: purchased in the 7 days after that anchor;
    ``numeric`` (optional) float array [n, q] of extra numeric features (e.g. days since last
           event / purchase; NaN allowed = unknown, imputed with the training median);
    ``numeric_columns`` (optional) q names (default ``num_0..``).
``FitInput.extra["holdout"]`` (optional): same keys for the following week (later anchor); used
    only for ``quality`` (auc_holdout, brier_holdout, per-band calibration).
``FitInput.X`` / ``customer_keys`` are not used by the fit (the training anchor is what matters).
``ScoreInput.X`` (counts as of now, columns matched by name; columns unknown to the model are
    ignored, model columns absent from the batch count as 0) and, when the model has numeric
    features, ``ScoreInput.extra["numeric"]`` [n, q] (+ optional ``numeric_columns`` to match by
    name; otherwise the model's order is assumed).

Feature recipe (stored in the model): count columns -> log1p; numeric columns -> log1p(max(v, 0))
when ``numeric_log1p`` (default) else as given, NaN -> training median; every feature is then
standardised with stored means / scales. Count columns are kept when at least
``min_column_support`` training customers have them (at most ``max_features``, by support);
exactly collinear features (e.g. ``channel:web`` == ``source_system:web``) are dropped by a
pivoted QR.

Fit: statsmodels Logit (Newton) on (1 - ``calibration_share``) of the training sample. When it
does not converge, or a coefficient runs away (|b| > ``max_abs_coef`` on the standardised scale:
(quasi-)separation), it is refitted as a ridge-penalised GLM Binomial (``ridge_alpha``) and the
covariance is the penalised information inverse (X'WX + n*alpha)^-1. The remaining training slice
calibrates the probability: Platt scaling (default; a non-positive slope means the scores carry
no information on that slice and the calibrated probability becomes the slice's base rate) or
isotonic (``calibration = "isotonic"``, stored as interpolation thresholds) or none.

Quality: n_fit, n_calibration, positives_train, base_rate_train, n_features, regularized,
auc_train (fit slice, in-sample), auc_calibration (held-out slice of the training anchor),
brier_train, auc_holdout / brier_holdout (NaN -> null without a holdout week), and with a holdout
also auc_holdout_uncalibrated, base_rate_holdout, mean_pred_holdout, sd_pred_holdout and
holdout_rate_<band> / holdout_pred_<band> (observed vs mean predicted per band).

Score: calibrated probability (``ScoreResult.score``) -> bands "low", "medium", "high",
"very_high" cut at quantiles ``band_quantiles`` (default 0.5, 0.8, 0.95) of the calibrated
training distribution. Confidence = 1 - (width of the calibrated 95% interval of the
probability, delta method on x'b with the coefficient covariance) / (width of the customer's
band), clipped to 0..1. ``contribution`` = positive part of b_j * log1p(count_ij) / scale_j per
count column (the column's push towards purchase relative to a zero count).

Options: ``max_fit`` (50000), ``min_rows`` (200), ``min_positives`` (20), ``max_features`` (80),
``min_column_support`` (20), ``numeric_log1p`` (True), ``calibration`` ("platt"),
``calibration_share`` (0.3), ``band_quantiles`` ([0.5, 0.8, 0.95]), ``max_abs_coef`` (10),
``ridge_alpha`` (1e-3), ``min_auc_calibration`` (0.55: below this AUC on the held-out
calibration slice the fit raises InsufficientData "no predictive signal"; 0 disables).
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logit

from ..contract import FitInput, InsufficientData, ScoreInput, ScoreResult, to_jsonable

METHOD = "intent"
BANDS = ["low", "medium", "high", "very_high"]
Z95 = 1.959963984540054


# ---------------------------------------------------------------- features
def _numeric_block(numeric, names, model: dict, n) -> np.ndarray:
    model_names = model["numeric_columns"]
    if not model_names:
        return np.empty((n, 0))
    if numeric is None:
        raise ValueError(f"{METHOD}: the model uses numeric features {model_names}; "
                         "extra['numeric'] is missing")
    A = np.asarray(numeric, dtype=np.float64).reshape(n, -1)
    if names is None:                    # positional: the training anchor's numeric columns
        names = model["numeric_input_columns"]
        if A.shape[1] != len(names):
            raise ValueError(f"{METHOD}: numeric has {A.shape[1]} columns, the training "
                             f"anchor had {len(names)} ({names}); pass numeric_columns")
    pos = {c: i for i, c in enumerate(names)}
    missing = [c for c in model_names if c not in pos]
    if missing:
        raise ValueError(f"{METHOD}: numeric columns {missing} missing")
    return A[:, [pos[c] for c in model_names]]


def _raw_features(model: dict, X, columns, numeric, numeric_names):
    """Unstandardised design [n, k] following the model recipe, plus the count block's
    column positions in ``columns`` (-1 = absent)."""
    X = sp.csr_matrix(X)
    n = X.shape[0]
    pos = {c: i for i, c in enumerate(columns)}
    idx = np.array([pos.get(c, -1) for c in model["count_columns"]], dtype=np.int64)
    C = np.zeros((n, idx.size))
    present = idx >= 0
    if present.any():
        C[:, present] = X[:, idx[present]].toarray()
    C = np.log1p(np.maximum(C, 0))
    A = _numeric_block(numeric, numeric_names, model, n)
    if A.shape[1]:
        if model["numeric_log1p"]:
            A = np.log1p(np.maximum(A, 0))
        A = np.where(np.isfinite(A), A, np.asarray(model["numeric_fill"], np.float64))
    return np.hstack([C, A]), idx


def _design(model: dict, F: np.ndarray) -> np.ndarray:
    Z = (F - np.asarray(model["means"], np.float64)) / np.asarray(model["scales"], np.float64)
    return np.hstack([np.ones((F.shape[0], 1)), Z])


# ------------------------------------------------------------- calibration
def _calibrate(cal: dict, p: np.ndarray) -> np.ndarray:
    kind = cal["kind"]
    if kind == "platt":
        return expit(cal["a"] + cal["b"] * logit(np.clip(p, 1e-12, 1 - 1e-12)))
    if kind == "isotonic":
        return np.interp(p, np.asarray(cal["x"], np.float64), np.asarray(cal["y"], np.float64))
    return p


def _fit_calibration(kind: str, p: np.ndarray, y: np.ndarray) -> dict:
    if kind == "none" or y.size == 0 or y.min() == y.max():
        return {"kind": "none"}
    if kind == "isotonic":
        from sklearn.isotonic import IsotonicRegression
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return {"kind": "isotonic", "x": iso.X_thresholds_, "y": iso.y_thresholds_}
    if kind == "platt":
        import statsmodels.api as sm
        s = logit(np.clip(p, 1e-12, 1 - 1e-12))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = sm.Logit(y, np.column_stack([np.ones_like(s), s])).fit(disp=0, maxiter=100)
        a, b = (float(v) for v in r.params)
        if not (np.isfinite(a) and np.isfinite(b)):
            return {"kind": "none"}
        if b <= 0:   # scores carry no (or reversed) information on the held-out slice
            return {"kind": "platt", "a": float(logit(np.clip(y.mean(), 1e-6, 1 - 1e-6))),
                    "b": 0.0}
        return {"kind": "platt", "a": a, "b": b}
    raise ValueError(f"{METHOD}: unknown calibration {kind!r} (platt, isotonic, none)")


# --------------------------------------------------------------------- fit
def _fit_logit(D: np.ndarray, y: np.ndarray, max_abs: float, ridge_alpha: float):
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = sm.Logit(y, D).fit(method="newton", maxiter=100, disp=0)
        beta = np.asarray(r.params, np.float64)
        cov = np.asarray(r.cov_params(), np.float64)
        ok = (bool(r.mle_retvals.get("converged", False)) and np.all(np.isfinite(beta))
              and np.all(np.isfinite(cov)) and np.all(np.diag(cov) >= 0)
              and np.abs(beta[1:]).max(initial=0) <= max_abs)
        if ok:
            return beta, cov, False
    except (np.linalg.LinAlgError, PerfectSeparationError, ValueError):
        pass
    # (quasi-)separation or non-convergence: ridge-penalised GLM Binomial, intercept free
    alpha = np.full(D.shape[1], ridge_alpha)
    alpha[0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = sm.GLM(y, D, family=sm.families.Binomial()).fit_regularized(alpha=alpha, L1_wt=0.0)
    beta = np.asarray(r.params, np.float64)
    p = expit(D @ beta)
    info = (D * (p * (1 - p))[:, None]).T @ D + np.diag(alpha * y.size)
    cov = np.linalg.pinv(info)
    return beta, cov, True


def _split(y: np.ndarray, share: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split -> (fit rows, calibration rows)."""
    cal = []
    for cls in (0, 1):
        rows = np.flatnonzero(y == cls)
        rows = rows[rng.permutation(rows.size)]
        cal.append(rows[: int(round(share * rows.size))])
    cal = np.sort(np.concatenate(cal))
    mask = np.ones(y.size, bool)
    mask[cal] = False
    return np.flatnonzero(mask), cal


def _auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if y.size and y.min() != y.max() else float("nan")


def _get_block(block: dict, p: int, what: str):
    X = sp.csr_matrix(block["X"])
    y = np.asarray(block["y"], dtype=np.float64).ravel()
    if X.shape[0] != y.size:
        raise ValueError(f"{METHOD}: extra['{what}'] X has {X.shape[0]} rows, y {y.size}")
    if X.shape[1] != p:
        raise ValueError(f"{METHOD}: extra['{what}'] X has {X.shape[1]} columns, "
                         f"data.columns {p}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{METHOD}: extra['{what}'] y must be 0/1")
    return X, y, block.get("numeric"), block.get("numeric_columns")


def fit(data: FitInput, *, seed: int, options: dict) -> dict:
    options = options or {}
    max_fit = int(options.get("max_fit", 50000))
    min_rows = int(options.get("min_rows", 200))
    min_pos = int(options.get("min_positives", 20))
    max_features = int(options.get("max_features", 80))
    min_support = int(options.get("min_column_support", 20))
    num_log1p = bool(options.get("numeric_log1p", True))
    cal_kind = str(options.get("calibration", "platt"))
    cal_share = float(options.get("calibration_share", 0.3))
    quantiles = [float(q) for q in options.get("band_quantiles", [0.5, 0.8, 0.95])]
    if len(quantiles) != len(BANDS) - 1:
        raise ValueError(f"{METHOD}: band_quantiles needs {len(BANDS) - 1} values")
    max_abs = float(options.get("max_abs_coef", 10.0))
    ridge_alpha = float(options.get("ridge_alpha", 1e-3))
    min_auc = float(options.get("min_auc_calibration", 0.55))
    rng = np.random.default_rng(seed)

    train = data.extra.get("train")
    if train is None:
        raise InsufficientData(f"{METHOD}: no training anchor given (extra['train'] missing)")
    columns = list(data.columns)
    X, y, numeric, numeric_names = _get_block(train, len(columns), "train")
    if y.size > max_fit:
        rows = np.sort(rng.choice(y.size, max_fit, replace=False))
        X, y = X[rows], y[rows]
        numeric = None if numeric is None else np.asarray(numeric, np.float64)[rows]
    n, n_pos = y.size, int(y.sum())
    if n < min_rows:
        raise InsufficientData(f"{METHOD}: {n} training customers (min_rows {min_rows})")
    if min(n_pos, n - n_pos) < min_pos:
        raise InsufficientData(f"{METHOD}: {n_pos} purchasers and {n - n_pos} non-purchasers in "
                               f"the 7 days after the training anchor (min_positives {min_pos})")

    # ---- column recipe
    support = np.diff(sp.csc_matrix(X).indptr)
    cand = np.flatnonzero(support >= min_support)
    cand = cand[np.lexsort((cand, -support[cand]))][:max_features]
    count_cols = [columns[j] for j in sorted(cand)]
    if numeric is not None:
        A = np.asarray(numeric, np.float64).reshape(n, -1)
        num_cols = list(numeric_names) if numeric_names is not None else [
            f"num_{j}" for j in range(A.shape[1])]
        At = np.log1p(np.maximum(A, 0)) if num_log1p else A.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fill = np.nanmedian(np.where(np.isfinite(At), At, np.nan), axis=0)
        fill = np.where(np.isfinite(fill), fill, 0.0)
    else:
        num_cols, fill = [], np.empty(0)
    recipe = {"count_columns": count_cols, "numeric_columns": num_cols,
              "numeric_input_columns": num_cols, "numeric_log1p": num_log1p, "numeric_fill": fill}
    F, _ = _raw_features(recipe, X, columns, numeric, num_cols)
    means, scales = F.mean(axis=0), F.std(axis=0)
    keep = scales > 1e-12
    # exact collinearity: pivoted QR on the standardised non-constant features
    if keep.any():
        from scipy.linalg import qr
        Zk = (F[:, keep] - means[keep]) / scales[keep]
        _, R, piv = qr(Zk, mode="economic", pivoting=True)
        d = np.abs(np.diag(R))
        rank = int((d > d[0] * max(Zk.shape) * np.finfo(float).eps * 10).sum()) if d.size else 0
        kidx = np.flatnonzero(keep)
        keep = np.zeros_like(keep)
        keep[kidx[np.sort(piv[:rank])]] = True
    n_count = len(count_cols)
    recipe["count_columns"] = [c for c, k in zip(count_cols, keep[:n_count]) if k]
    recipe["numeric_columns"] = [c for c, k in zip(num_cols, keep[n_count:]) if k]
    recipe["numeric_fill"] = fill[keep[n_count:]]
    if not keep.any():
        raise InsufficientData(f"{METHOD}: no feature column has support >= {min_support} "
                               "and non-zero variance")
    F, means, scales = F[:, keep], means[keep], scales[keep]
    recipe["means"], recipe["scales"] = means, scales
    D = _design(recipe, F)

    # ---- fit + calibration
    fit_rows, cal_rows = _split(y, cal_share, rng)
    beta, cov, regularized = _fit_logit(D[fit_rows], y[fit_rows], max_abs, ridge_alpha)
    raw = expit(D @ beta)
    auc_cal = _auc(y[cal_rows], raw[cal_rows])
    if cal_rows.size and not auc_cal >= min_auc:
        raise InsufficientData(f"{METHOD}: no predictive signal: AUC {auc_cal:.3f} on the "
                               f"held-out calibration slice < min_auc_calibration {min_auc}")
    calib = _fit_calibration(cal_kind, raw[cal_rows], y[cal_rows])
    prob = _calibrate(calib, raw)
    cuts = np.quantile(prob, quantiles)

    model = {"method": METHOD, "labels": list(BANDS), **recipe,
             "coef_names": ["const"] + recipe["count_columns"] + recipe["numeric_columns"],
             "coef": beta, "coef_cov": cov, "regularized": int(regularized),
             "calibration": calib, "band_quantiles": quantiles, "band_cuts": cuts}
    edges = np.concatenate([[0.0], cuts, [1.0]])
    model["band_descriptions"] = [
        f"{BANDS[b]} purchase intent ({edges[b]:.1%}-{edges[b + 1]:.1%} in 7 days)"
        for b in range(len(BANDS))]

    from sklearn.metrics import brier_score_loss
    quality = {
        "n_fit": int(fit_rows.size), "n_calibration": int(cal_rows.size),
        "positives_train": n_pos, "base_rate_train": float(y.mean()),
        "n_features": int(D.shape[1] - 1), "regularized": int(regularized),
        "auc_train": _auc(y[fit_rows], prob[fit_rows]),
        "auc_calibration": auc_cal,
        "brier_train": float(brier_score_loss(y[fit_rows], prob[fit_rows])),
        "auc_holdout": float("nan"), "brier_holdout": float("nan"),
    }
    holdout = data.extra.get("holdout")
    if holdout is not None:
        Xh, yh, nh, nh_names = _get_block(holdout, len(columns), "holdout")
        Fh, _ = _raw_features(model, Xh, columns, nh, nh_names)
        raw_h = expit(_design(model, Fh) @ beta)
        ph = _calibrate(calib, raw_h)
        bh = np.searchsorted(cuts, ph, side="right")
        quality.update({"n_holdout": int(yh.size), "base_rate_holdout": float(yh.mean()),
                        "mean_pred_holdout": float(ph.mean()),
                        "sd_pred_holdout": float(ph.std()),
                        "auc_holdout": _auc(yh, ph),
                        "auc_holdout_uncalibrated": _auc(yh, raw_h),
                        "brier_holdout": float(brier_score_loss(yh, ph)) if yh.size else float("nan")})
        for b, name in enumerate(BANDS):
            sel = bh == b
            quality[f"holdout_rate_{name}"] = float(yh[sel].mean()) if sel.any() else float("nan")
            quality[f"holdout_pred_{name}"] = float(ph[sel].mean()) if sel.any() else float("nan")
    model["quality"] = quality
    return to_jsonable(model)


# ------------------------------------------------------------------- score
def score(model: dict, data: ScoreInput) -> ScoreResult:
    columns = list(data.columns)
    X = sp.csr_matrix(data.X)
    n = X.shape[0]
    F, idx = _raw_features(model, X, columns, data.extra.get("numeric"),
                           data.extra.get("numeric_columns"))
    D = _design(model, F)
    beta = np.asarray(model["coef"], np.float64)
    cov = np.asarray(model["coef_cov"], np.float64)
    eta = D @ beta
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", D, cov, D), 0.0))
    calib = model["calibration"]
    prob = _calibrate(calib, expit(eta))
    width = _calibrate(calib, expit(eta + Z95 * se)) - _calibrate(calib, expit(eta - Z95 * se))

    cuts = np.asarray(model["band_cuts"], np.float64)
    band = np.searchsorted(cuts, prob, side="right").astype(np.int64)
    edges = np.concatenate([[0.0], cuts, [1.0]])
    band_width = edges[band + 1] - edges[band]
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(band_width > 0, 1.0 - width / band_width, 0.0)
    conf = np.clip(np.nan_to_num(conf, nan=0.0), 0.0, 1.0)

    # contribution: positive part of b_j * log1p(count) / scale_j, at the batch's column index
    n_count = len(model["count_columns"])
    w = beta[1:1 + n_count] / np.asarray(model["scales"], np.float64)[:n_count]
    present = np.flatnonzero(idx >= 0)
    if present.size:
        sub = X[:, idx[present]].tocoo()
        val = np.log1p(np.maximum(sub.data, 0)) * w[present][sub.col]
        pos = val > 0
        contribution = sp.csr_matrix((val[pos], (sub.row[pos], idx[present][sub.col[pos]])),
                                     shape=(n, len(columns)))
    else:
        contribution = sp.csr_matrix((n, len(columns)))
    return ScoreResult(cohort_index=band, confidence=conf,
                       reason=np.full(n, None, dtype=object),
                       contribution=contribution, score=prob)
