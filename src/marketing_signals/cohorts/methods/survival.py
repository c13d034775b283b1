"""survival: Cox proportional-hazards churn risk (statsmodels PHReg) and Kaplan-Meier retention.

Input (``FitInput.extra["survival"]``): a pandas DataFrame with one row per customer, aligned
with ``customer_keys``:

* ``duration_days`` (float > 0): days from the customer's origin (e.g. last purchase) to the
  lapse event, or to the anchor when censored;
* ``event`` (1 = lapse observed, 0 = censored);
* covariates: every numeric column whose name starts with ``x_`` (bool/int/float).

Rows with a missing / non-positive duration or an event not in {0, 1} are dropped from the fit
(counted in ``quality["n_dropped"]``). Missing covariate values are imputed with the fit-sample
mean (i.e. a standardised value of 0), at fit and at score time. Constant covariates are dropped.
Covariates are standardised with the stored ``means`` / ``scales`` before the fit, so the stored
baseline cumulative hazard is the one of an average customer.

``ScoreInput.extra["survival"]`` must hold the same ``x_`` columns (``duration_days`` / ``event``
are not needed to score).

Score: probability of lapsing within ``horizon_days`` = 1 - S0(h) ** exp(x'b), where
S0(h) = exp(-H0(h)). Bands "low", "medium", "high", "very_high" (cohort_index 0..3 in increasing
risk) are cut at quantiles (``band_quantiles``) of the fit sample's predicted probability.
Confidence = 1 - width of the 95% interval of the predicted probability, from the delta method on
x'b with the coefficient covariance (baseline-hazard uncertainty is not included), clipped 0..1.

Options
    ``horizon_days`` (90)            prediction horizon
    ``band_quantiles`` ([.25,.5,.75]) fit-sample quantiles of predicted risk used as cut points
    ``ties`` ("efron")               PHReg ties handling ("efron" | "breslow")
    ``max_fit`` (20000)              sample cap (random subsample, seeded)
    ``min_rows`` (50), ``min_events`` (20)  below these -> InsufficientData
    ``max_baseline_points`` (500)    baseline cumulative hazard points kept in the model

Also ``retention_curves(durations, events, groups)``: Kaplan-Meier (statsmodels SurvfuncRight)
per group (e.g. acquisition month) sampled at days 0, 7, 14, 30, 60, 90, 180, 365.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..contract import FitInput, InsufficientData, ScoreInput, ScoreResult, to_jsonable

METHOD = "survival"
BANDS = ["low", "medium", "high", "very_high"]
RETENTION_DAYS = (0, 7, 14, 30, 60, 90, 180, 365)
Z95 = 1.959963984540054


def _covariates(df: pd.DataFrame, names: list[str]) -> np.ndarray:
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"{METHOD}: extra['survival'] lacks covariate columns {missing}")
    return np.column_stack([pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
                            for c in names]) if names else np.empty((len(df), 0))


def _standardise(X: np.ndarray, means: np.ndarray, scales: np.ndarray) -> np.ndarray:
    Z = (X - means) / scales
    Z[~np.isfinite(Z)] = 0.0           # missing covariate -> mean
    return Z


def _predict(model: dict, Z: np.ndarray, cumhaz_h: float):
    beta = np.asarray(model["coef"], dtype=np.float64)
    cov = np.asarray(model["coef_cov"], dtype=np.float64)
    eta = Z @ beta
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Z, cov, Z), 0.0))
    def p_event(x):
        return -np.expm1(-cumhaz_h * np.exp(np.clip(x, -50.0, 50.0)))
    prob = p_event(eta)
    width = p_event(eta + Z95 * se) - p_event(eta - Z95 * se)
    if model.get("event", "lapse") == "repurchase":
        prob = 1.0 - prob  # lapse = no repurchase within the horizon
    return prob, width, eta


def cumhaz_at(model: dict, days) -> np.ndarray:
    """Baseline cumulative hazard (step function, subsampled) at ``days``."""
    t = np.asarray(model["baseline_time"], dtype=np.float64)
    h = np.asarray(model["baseline_cumhaz"], dtype=np.float64)
    i = np.searchsorted(t, np.asarray(days, dtype=np.float64), side="right") - 1
    return np.where(i >= 0, h[np.maximum(i, 0)], 0.0)


def _concordance(risk, dur, ev, rng, m=2000) -> float:
    """Harrell's C on a random subsample of at most m customers."""
    if risk.size > m:
        pick = rng.choice(risk.size, m, replace=False)
        risk, dur, ev = risk[pick], dur[pick], ev[pick]
    comparable = (dur[:, None] < dur[None, :]) & (ev[:, None] == 1)
    if not comparable.any():
        return float("nan")
    diff = risk[:, None] - risk[None, :]
    conc = np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0))
    return float(conc[comparable].mean())


def fit(data: FitInput, *, seed: int, options: dict) -> dict:
    from statsmodels.duration.hazard_regression import PHReg

    options = options or {}
    horizon = float(options.get("horizon_days", 90))
    quantiles = [float(q) for q in options.get("band_quantiles", [0.25, 0.5, 0.75])]
    if len(quantiles) != len(BANDS) - 1:
        raise ValueError(f"{METHOD}: band_quantiles needs {len(BANDS) - 1} values")
    ties = str(options.get("ties", "efron"))
    max_fit = int(options.get("max_fit", 20000))
    min_rows = int(options.get("min_rows", 50))
    min_events = int(options.get("min_events", 20))
    max_points = int(options.get("max_baseline_points", 500))
    event_kind = str(options.get("event", "lapse"))
    if event_kind not in ("lapse", "repurchase"):
        raise ValueError(f"{METHOD}: option event must be 'lapse' or 'repurchase'")
    rng = np.random.default_rng(seed)

    df = data.extra.get("survival")
    if df is None:
        raise InsufficientData(f"{METHOD}: no survival table given (extra['survival'] missing)")
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    if len(df) != len(data.customer_keys):
        raise ValueError(f"{METHOD}: extra['survival'] has {len(df)} rows for "
                         f"{len(data.customer_keys)} customer_keys")
    for c in ("duration_days", "event"):
        if c not in df.columns:
            raise ValueError(f"{METHOD}: extra['survival'] lacks column {c!r}")

    dur = pd.to_numeric(df["duration_days"], errors="coerce").to_numpy(dtype=np.float64)
    ev = pd.to_numeric(df["event"], errors="coerce").to_numpy(dtype=np.float64)
    valid = np.isfinite(dur) & (dur > 0) & np.isin(ev, (0.0, 1.0))
    n_dropped = int((~valid).sum())
    rows = np.flatnonzero(valid)
    if rows.size > max_fit:
        rows = np.sort(rng.choice(rows, max_fit, replace=False))
    dur, ev = dur[rows], ev[rows].astype(np.int64)
    n_events = int(ev.sum())
    if rows.size < min_rows:
        raise InsufficientData(f"{METHOD}: {rows.size} customers with a valid duration "
                               f"(min_rows {min_rows})")
    if n_events < min_events:
        raise InsufficientData(f"{METHOD}: {n_events} observed lapse events among {rows.size} "
                               f"customers (min_events {min_events})")
    if dur.max() < horizon:
        raise InsufficientData(f"{METHOD}: longest follow-up {dur.max():.0f} days is shorter "
                               f"than horizon_days {horizon:.0f}")

    names = [c for c in df.columns if str(c).startswith("x_")]
    X = _covariates(df.iloc[rows], names)
    means = np.nanmean(X, axis=0) if names else np.empty(0)
    scales = np.nanstd(X, axis=0) if names else np.empty(0)
    keep = np.isfinite(means) & np.isfinite(scales) & (scales > 1e-12)
    dropped_cov = [c for c, k in zip(names, keep) if not k]
    names = [c for c, k in zip(names, keep) if k]
    if not names:
        raise InsufficientData(f"{METHOD}: no usable (numeric, non-constant) x_ covariate columns")
    means, scales = means[keep], scales[keep]
    Z = _standardise(X[:, keep], means, scales)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = PHReg(dur, Z, status=ev, ties=ties).fit(disp=False)
        beta = np.asarray(res.params, dtype=np.float64)
        cov = np.asarray(res.cov_params(), dtype=np.float64)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise InsufficientData(f"{METHOD}: Cox fit failed ({exc})") from exc
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(cov))):
        raise InsufficientData(f"{METHOD}: Cox fit did not converge to finite coefficients "
                               "(separation or collinear covariates)")
    converged = bool(getattr(res, "mle_retvals", {}).get("converged", True)) and not any(
        "converge" in str(w.message).lower() for w in caught)

    t, H, _ = res.baseline_cumulative_hazard[0]
    t, H = np.asarray(t, np.float64), np.asarray(H, np.float64)
    i_h = np.searchsorted(t, horizon, side="right") - 1
    cumhaz_h = float(H[i_h]) if i_h >= 0 else 0.0
    if t.size > max_points:
        pick = np.unique(np.round(np.linspace(0, t.size - 1, max_points)).astype(np.int64))
        t, H = t[pick], H[pick]

    model = {"coef": beta, "coef_cov": cov, "event": event_kind}
    prob, width, eta = _predict(model, Z, cumhaz_h)
    cuts = np.quantile(prob, quantiles)
    band = np.searchsorted(cuts, prob, side="right")

    if event_kind == "lapse":
        known = (ev == 1) | (dur > horizon)          # lapse status at the horizon is known
        lapsed = (ev == 1) & (dur <= horizon)
    else:                                            # event = repurchase; lapse = none by the horizon
        bought = (ev == 1) & (dur <= horizon)
        known = bought | (dur >= horizon)
        lapsed = ~bought
    band_rate = [float(lapsed[known & (band == b)].mean()) if (known & (band == b)).any()
                 else float("nan") for b in range(len(BANDS))]
    edges = np.concatenate([[0.0], cuts, [1.0]])
    descriptions = [f"{BANDS[b]} lapse risk ({edges[b]:.0%}-{edges[b + 1]:.0%} within "
                    f"{horizon:.0f} days)" for b in range(len(BANDS))]

    quality = {
        "n_fit": int(rows.size),
        "n_events": n_events,
        "n_dropped": n_dropped,
        "event_share": float(ev.mean()),
        "concordance": _concordance(eta, dur, ev, np.random.default_rng(seed)),
        "log_likelihood": float(res.llf),
        "converged": int(converged),
        "mean_predicted_lapse": float(prob.mean()),
        "mean_confidence": float(np.clip(1 - width, 0, 1).mean()),
        **{f"lapse_share_{b}": r for b, r in zip(BANDS, band_rate)},
    }
    return to_jsonable({
        "method": METHOD,
        "labels": list(BANDS),
        "band_descriptions": descriptions,
        "quality": quality,
        "horizon_days": horizon,
        "event": event_kind,
        "covariates": names,
        "dropped_covariates": dropped_cov,
        "means": means,
        "scales": scales,
        "coef": beta,
        "coef_se": np.sqrt(np.diag(cov)),
        "coef_cov": cov,
        "ties": ties,
        "cumhaz_at_horizon": cumhaz_h,
        "baseline_time": t,
        "baseline_cumhaz": H,
        "band_quantiles": quantiles,
        "band_cuts": cuts,
    })


def score(model: dict, data: ScoreInput) -> ScoreResult:
    df = data.extra.get("survival")
    if df is None:
        raise ValueError(f"{METHOD}: score needs extra['survival'] with columns "
                         f"{model['covariates']}")
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    if len(df) != len(data.customer_keys):
        raise ValueError(f"{METHOD}: extra['survival'] has {len(df)} rows for "
                         f"{len(data.customer_keys)} customer_keys")
    Z = _standardise(_covariates(df, model["covariates"]),
                     np.asarray(model["means"], np.float64),
                     np.asarray(model["scales"], np.float64))
    prob, width, _ = _predict(model, Z, float(model["cumhaz_at_horizon"]))
    band = np.searchsorted(np.asarray(model["band_cuts"], np.float64), prob, side="right")
    return ScoreResult(cohort_index=band.astype(np.int64),
                       confidence=np.clip(1.0 - width, 0.0, 1.0),
                       reason=np.full(prob.size, None, dtype=object),
                       score=prob)


def retention_curves(durations, events, groups, days=RETENTION_DAYS) -> pd.DataFrame:
    """Kaplan-Meier retention per group, sampled at ``days``.

    Returns columns ``group, day, survival, at_risk, lower, upper``: survival = KM S(day);
    at_risk = customers still under observation at the day (duration >= day); lower / upper =
    pointwise 95% interval (Greenwood variance, log-log transform). survival and the interval are
    NaN for days beyond the group's longest follow-up (unless S already reached 0).
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    dur = np.asarray(durations, dtype=np.float64)
    ev = np.asarray(events, dtype=np.float64)
    grp = pd.Series(np.asarray(groups, dtype=object))
    ok = np.isfinite(dur) & (dur >= 0) & np.isin(ev, (0.0, 1.0)) & grp.notna().to_numpy()
    days = np.asarray(days, dtype=np.float64)
    out = []
    for g in sorted(grp[ok].unique(), key=str):
        sel = ok & (grp == g).to_numpy()
        d, e = dur[sel], ev[sel]
        at_risk = (d[None, :] >= days[:, None]).sum(axis=1)
        if e.sum() > 0:
            sf = SurvfuncRight(d, e)
            t = np.asarray(sf.surv_times, np.float64)
            s = np.asarray(sf.surv_prob, np.float64)
            se = np.asarray(sf.surv_prob_se, np.float64)
            i = np.searchsorted(t, days, side="right") - 1
            surv = np.where(i >= 0, s[np.maximum(i, 0)], 1.0)
            sse = np.where(i >= 0, se[np.maximum(i, 0)], 0.0)
        else:
            surv, sse = np.ones(days.size), np.zeros(days.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_s = np.log(surv)
            se_ll = sse / (surv * np.abs(log_s))
            lower = np.where((surv > 0) & (surv < 1), surv ** np.exp(Z95 * se_ll), surv)
            upper = np.where((surv > 0) & (surv < 1), surv ** np.exp(-Z95 * se_ll), surv)
        beyond = (days > d.max()) & (surv > 0)
        surv, lower, upper = (np.where(beyond, np.nan, a) for a in (surv, lower, upper))
        out.append(pd.DataFrame({"group": [g] * days.size, "day": days.astype(np.int64),
                                 "survival": surv, "at_risk": at_risk.astype(np.int64),
                                 "lower": lower, "upper": upper}))
    if not out:
        return pd.DataFrame({"group": pd.Series(dtype=object), "day": pd.Series(dtype=np.int64),
                             "survival": pd.Series(dtype=float), "at_risk": pd.Series(dtype=np.int64),
                             "lower": pd.Series(dtype=float), "upper": pd.Series(dtype=float)})
    return pd.concat(out, ignore_index=True)
