"""Causal-evidence tier of each root-cause hypothesis.

Tiers are ordinal; a hypothesis gets the highest whose test it passes (each needs the one below):

0 co-occurrence — the cause's symptoms and the incident coincide (every ranked hypothesis).
1 temporal precedence — the cause's root symptom moved no later than its other observed
  symptoms (at least two observed), or the cause's context event (a budget edit, a tag deploy…)
  started no later than the onset.
2 predictive — Granger causality (F-test) or transfer entropy (permutation test) from the root
  symptom's series to another observed symptom's series is significant at the incident's
  locations (Correlate, `correlate.py`), 8 weeks before the onset to a week after the end.
3 identified — DoWhy: the effect of the incident (treatment: affected location × after the
  onset) on that downstream symptom is identified by the back-door criterion given the
  adjustment set (the same day's mean at unaffected locations — a time shock —, the location's
  pre-onset mean, day of week, and a trend when no location is unaffected), estimated by linear
  regression with a 95% interval that excludes zero in the signature's direction, and three
  refuters pass (placebo treatment, random common cause, data subset: none significant). The
  assumptions are recorded with the estimate.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .hypotheses import Evidence, Network

TIER_NAMES = {0: "co-occurrence", 1: "temporal precedence", 2: "predictive", 3: "identified"}


@dataclass(frozen=True)
class TierConfig:
    min_posterior: float = 0.10        # hypotheses below get tier 0 without tests
    clear_z: float = 3.0               # an observed symptom: |effect| >= clear_z SE, signature direction
    history_days: int = 56             # Granger/TE series: this many days before the onset...
    after_days: int = 7                # ...to this many after the incident's end
    alpha: float = 0.05
    identify_min_posterior: float = 0.8  # DoWhy only for hypotheses this probable (cost)...
    identify_max: int = 200            # ...and at most this many per pass, most probable first
    refuter_simulations: int = 10
    pre_days: int = 28                 # DoWhy panel: days before the onset
    seed: int = 0


def _observed_symptoms(net: Network, ev: Evidence, i: int, c: int, cfg: TierConfig) -> np.ndarray:
    """Stream indices of cause c's signature observed in incident i (clear, right direction)."""
    sig = net.is_symptom[c]
    e, se = ev.effect[i], ev.se[i]
    ok = sig & ~np.isnan(e) & (np.abs(np.nan_to_num(e)) >= cfg.clear_z * se) & (np.sign(np.nan_to_num(e)) == np.sign(net.mu[c]))
    return np.flatnonzero(ok)


def _series(E: np.ndarray, weights: np.ndarray, s: int, lo: int, hi: int) -> np.ndarray:
    """Mean daily effect of stream s over the weighted locations, days [lo, hi)."""
    w = weights / max(weights.sum(), 1e-12)
    x = E[s][:, lo:hi]
    ok = ~np.isnan(x)
    num = (np.where(ok, x, 0.0) * w[:, None]).sum(axis=0)
    den = (ok * w[:, None]).sum(axis=0)
    with np.errstate(all="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)


class _Ols:
    """DoWhy's linear-regression estimator with statsmodels fitted on a positional design
    (DoWhy 0.12 reads `params[0]` positionally, which pandas 3 no longer allows)."""

    @staticmethod
    def make():
        import statsmodels.api as sm
        from dowhy.causal_estimators.linear_regression_estimator import LinearRegressionEstimator

        class Ols(LinearRegressionEstimator):
            def _build_model(self, data):
                features = pd.DataFrame(np.asarray(self._build_features(data), float))
                y = np.asarray(data[self._target_estimand.outcome_variable[0]], float)
                return features, sm.OLS(y, features).fit()
        return Ols


def identify(E: np.ndarray, affected: np.ndarray, s: int, onset: int, end: int, sign: float,
             cfg: TierConfig = TierConfig()) -> dict:
    """DoWhy back-door identification and estimate of the incident's effect on stream s.

    E: (S, L, T) daily log-ratio effects; affected: (L,) bool. Returns a dict with the estimate,
    its interval, each refuter's result, the adjustment set, the assumptions and `passed`."""
    from dowhy import CausalModel

    S, L, T = E.shape
    lo, hi = max(0, onset - cfg.pre_days), min(T, end + 1)
    if hi - lo < 10 or onset <= lo:
        return {"passed": False, "reason": "too few days around the incident"}
    y = E[s][:, lo:hi]                                                            # (L, D)
    days = np.arange(lo, hi)
    post = (days >= onset)[None, :].repeat(L, 0)
    treat = affected[:, None] & post
    control = ~affected
    adjust = ["location_pre_mean", "day_of_week"]
    with np.errstate(all="ignore"):
        pre_mean = np.nanmean(np.where(post, np.nan, y), axis=1)
    frame = {"Y": y, "D": treat.astype(float), "location_pre_mean": np.repeat(pre_mean[:, None], y.shape[1], 1),
             "day_of_week": np.repeat((days % 7)[None, :], L, 0).astype(float)}
    if control.sum() >= 2:
        with np.errstate(all="ignore"):
            shock = np.nanmean(y[control], axis=0)
        frame["control_mean_same_day"] = np.repeat(shock[None, :], L, 0)
        adjust.append("control_mean_same_day")
        design = "difference against unaffected locations"
    else:
        frame["trend"] = np.repeat((days - lo)[None, :].astype(float), L, 0)
        frame["post"] = post.astype(float)
        adjust += ["trend"]
        design = "interrupted time series (no unaffected location)"
    df = pd.DataFrame({k: v.ravel() for k, v in frame.items()}).dropna()
    if df["D"].nunique() < 2 or len(df) < 20:
        return {"passed": False, "reason": "treatment does not vary"}
    warnings.filterwarnings("ignore", module="dowhy")
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    model = CausalModel(data=df, treatment="D", outcome="Y", common_causes=adjust)
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    estimand.set_identifier_method("backdoor")
    est_cls = _Ols.make()
    estimator = est_cls(estimand, confidence_intervals=True)
    estimator.fit(df)
    estimate = estimator.estimate_effect(df, treatment_value=1.0, control_value=0.0)
    ci = np.asarray(estimate.get_confidence_intervals(), float).ravel()
    value = float(estimate.value)
    directional = bool(np.sign(value) == np.sign(sign) and (ci[0] > 0 or ci[1] < 0))
    np.random.seed(cfg.seed)  # DoWhy's refuters draw from the global numpy generator
    refuters = {}
    for name, kw in (("placebo_treatment_refuter", {"placebo_type": "permute"}), ("random_common_cause", {}),
                     ("data_subset_refuter", {"subset_fraction": 0.8})):
        r = model.refute_estimate(estimand, estimate, method_name=name, num_simulations=cfg.refuter_simulations, **kw)
        res = r.refutation_result or {}
        refuters[name] = {"new_effect": float(np.asarray(r.new_effect, float).ravel()[0]),
                          "p_value": float(res.get("p_value", np.nan)),
                          "passed": not bool(res.get("is_statistically_significant", False))}
    # the placebo must also be small next to the estimate (a permuted treatment has no effect)
    refuters["placebo_treatment_refuter"]["passed"] &= abs(refuters["placebo_treatment_refuter"]["new_effect"]) < 0.5 * abs(value)
    passed = directional and all(r["passed"] for r in refuters.values())
    return {"passed": passed, "estimate": value, "ci_95": [float(ci[0]), float(ci[1])], "design": design,
            "estimand": "ATE of the incident (affected location x after onset) on the symptom's daily log-ratio",
            "identification": "back-door", "adjustment_set": adjust,
            "assumptions": ["no unobserved confounder of incident timing and the symptom beyond the adjustment set",
                            "unaffected locations share the same day's shocks" if "control_mean_same_day" in adjust
                            else "no concurrent shock other than the trend",
                            "no interference between locations (SUTVA)"],
            "refuters": refuters, "n_rows": int(len(df))}


def tiers(net: Network, ev: Evidence, post: np.ndarray, E: np.ndarray, weights: np.ndarray,
          ends: np.ndarray, cfg: TierConfig = TierConfig(), log=None) -> pd.DataFrame:
    """Causal-evidence tier per incident × cause (rows for the hypotheses at or above
    min_posterior; every other pair is tier 0). weights: (I, L) the incidents' locations;
    ends: (I,) last anomalous day. Columns: incident, cause_id, causal_evidence_tier,
    precedence, predictive (JSON), identification (JSON)."""
    from .correlate import CorrelateConfig, correlate_pairs

    S, L, T = E.shape
    ccfg = CorrelateConfig(alpha=cfg.alpha, seed=cfg.seed)
    rows, tests = [], []
    C = len(net.cause_ids) - 1
    ctx_of = {}
    for i, c in zip(*np.nonzero(post[:, :C] >= cfg.min_posterior)):
        obs = _observed_symptoms(net, ev, i, c, cfg)
        root = _root_index(net, c)
        lags = ev.lag[i]
        precedes = root in obs and obs.size >= 2 and lags[root] <= lags[obs[obs != root]].min()
        ctx = ctx_of.setdefault(i, {t for t, _, day in ev.context_ids[i] if day <= ev.onset[i]})
        ctx_first = bool(net.cause_ctx[c]) and net.cause_ctx[c] in ctx
        tier = 1 if (precedes or ctx_first) else 0
        rows.append([int(ev.incident[i]), i, c, tier, bool(precedes), bool(ctx_first), None, None])
        if tier == 1 and root in obs and obs.size >= 2:
            lo = max(0, int(ev.onset[i]) - cfg.history_days)
            hi = min(T, int(ends[i]) + cfg.after_days + 1)
            x = _series(E, weights[i], root, lo, hi)
            for s in obs[obs != root]:
                tests.append((len(rows) - 1, int(s), x, _series(E, weights[i], s, lo, hi)))
    # predictive: one vectorised Correlate call over every (root, downstream) pair, grouped by length
    by_len: dict[int, list] = {}
    for t in tests:
        by_len.setdefault(t[2].size, []).append(t)
    best: dict[int, tuple] = {}
    for n, group in by_len.items():
        try:
            res = correlate_pairs(np.stack([g[2] for g in group]), np.stack([g[3] for g in group]), ccfg,
                                  methods=("granger", "transfer_entropy"))
        except ValueError:  # too short for the tests
            continue
        res = res.set_index(["pair", "method"])
        for k, (row, s, _, _) in enumerate(group):
            g, te = res.loc[(k, "granger")], res.loc[(k, "transfer_entropy")]
            sig = bool(g["significant"]) or bool(te["significant"])
            p = min(float(g["p_value"]) if pd.notna(g["p_value"]) else 1.0, float(te["p_value"]) if pd.notna(te["p_value"]) else 1.0)
            if sig and (row not in best or p < best[row][1]):
                best[row] = (s, p, {"target_stream": None, "granger_f": _f(g["score"]), "granger_p": _f(g["p_value"]),
                                    "transfer_entropy_bits": _f(te["score"]), "transfer_entropy_p": _f(te["p_value"])})
    for row, (s, p, info) in best.items():
        info["target_stream"] = ev.streams[s]
        rows[row][3] = 2
        rows[row][6] = info
    # identified: DoWhy on the most probable predictive hypotheses (bounded: ~1 s each)
    todo = sorted((row for row in best if post[rows[row][1], rows[row][2]] >= cfg.identify_min_posterior),
                  key=lambda row: -post[rows[row][1], rows[row][2]])
    for k, row in enumerate(todo):
        s, p, info = best[row]
        i, c = rows[row][1], rows[row][2]
        if k >= cfg.identify_max:
            rows[row][7] = {"passed": False, "reason": f"not tried: more than {cfg.identify_max} candidates in this pass"}
            continue
        res = identify(E, weights[i] > 0, s, int(ev.onset[i]), int(ends[i]), float(np.sign(net.mu[c, s])), cfg)
        res["target_stream"] = ev.streams[s]
        rows[row][7] = res
        if res.get("passed"):
            rows[row][3] = 3
    out = pd.DataFrame(rows, columns=["incident", "i", "c", "causal_evidence_tier", "temporal_precedence",
                                      "context_precedes", "predictive", "identification"])
    out["cause_id"] = [net.cause_ids[c] for c in out["c"]]
    out["predictive"] = [json.dumps(_rounded(v)) if v is not None else None for v in out["predictive"]]
    out["identification"] = [json.dumps(_rounded(v)) if v is not None else None for v in out["identification"]]
    return out.drop(columns=["i", "c"])


def _root_index(net: Network, c: int) -> int:
    """The cause's root symptom (registry), else its strongest one."""
    return int(net.root_stream[c]) if net.root_stream[c] >= 0 else int(np.argmax(np.abs(net.mu[c])))


def _rounded(v, digits: int = 6):
    """Floats to `digits` significant digits: the JSON is identical across reruns (BLAS sums
    differ in the last bits between runs)."""
    if isinstance(v, dict):
        return {k: _rounded(x, digits) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_rounded(x, digits) for x in v]
    if isinstance(v, float) and np.isfinite(v):
        return float(f"{v:.{digits}g}")
    return v


def _f(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)
