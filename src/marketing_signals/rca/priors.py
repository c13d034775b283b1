"""Closed loop: realised root causes recalibrate the cause priors (Dirichlet), versioned.

The registry prior p_c is a Dirichlet with `strength` pseudo-incidents: alpha_c = strength x p_c.
Every realised outcome (an incident review naming the cause) adds one to its cause:
alpha_c += n_c, and the prior mean is alpha_c / sum(alpha). A component is ranked with the
priors of the outcomes known *before its onset* (no outcome informs the ranking of its own
incident), so calibration measured afterwards is out of sample. A prior version is the digest
of the alphas: the same outcomes give the same version.

Outcomes are linked to components by the incident id when the review recorded it
(`subject_id` = the incident_id of `incidents`); otherwise by place and time: the component at
the outcome's location (portfolio components for 'ALL', then any component covering the
location) that ended 2 to 16 days before the review, the largest such.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

DEFAULT_STRENGTH = 20.0
LINK_DAYS = (2, 16)


def dirichlet(registry_prior: pd.Series, counts: pd.Series | None = None,
              strength: float = DEFAULT_STRENGTH) -> pd.DataFrame:
    """One row per cause: alpha, n_outcomes, prior_mean, prior_version."""
    p = registry_prior.astype(float) / registry_prior.astype(float).sum()
    n = (counts if counts is not None else pd.Series(dtype=float)).reindex(p.index).fillna(0.0)
    alpha = strength * p + n
    out = pd.DataFrame({"cause_id": p.index, "registry_prior": p.to_numpy(), "n_outcomes": n.to_numpy(np.int64),
                        "alpha": alpha.to_numpy(), "prior_mean": (alpha / alpha.sum()).to_numpy()})
    out["prior_version"] = version(out["alpha"].to_numpy(), out["cause_id"])
    return out


def version(alpha: np.ndarray, cause_ids) -> str:
    h = hashlib.sha256("|".join(f"{c}:{a:.6f}" for c, a in zip(cause_ids, alpha)).encode())
    return "pv_" + h.hexdigest()[:12]


def priors_before(registry_prior: pd.Series, linked: pd.DataFrame, at: pd.Series,
                  strength: float = DEFAULT_STRENGTH) -> tuple[pd.DataFrame, list[str]]:
    """Priors for ranking at each time in `at` from the outcomes observed strictly before it.
    linked: observed_at, cause_id. Returns (one row per `at`, a column per cause; versions)."""
    causes = registry_prior.index
    base = registry_prior.astype(float) / registry_prior.astype(float).sum()
    ts = pd.to_datetime(linked["observed_at"]).to_numpy() if len(linked) else np.array([], "datetime64[ns]")
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    c_ix = pd.Index(causes).get_indexer(linked["cause_id"].to_numpy()[order]) if len(linked) else np.zeros(0, int)
    keep = c_ix >= 0
    ts, c_ix = ts[keep], c_ix[keep]
    cum = np.zeros((ts.size + 1, len(causes)))
    if ts.size:
        cum[1:] = np.cumsum(np.eye(len(causes))[c_ix], axis=0)
    k = np.searchsorted(ts, pd.to_datetime(at).to_numpy(), side="left")   # outcomes strictly before
    alpha = strength * base.to_numpy()[None, :] + cum[k]
    versions = [version(a, causes) for a in alpha]
    return pd.DataFrame(alpha / alpha.sum(axis=1, keepdims=True), columns=causes), versions


def link_outcomes(outcomes: pd.DataFrame, components: pd.DataFrame) -> pd.DataFrame:
    """outcomes: outcome_id, outcome_type, subject_id, location_id, label, observed_at.
    components: component, incident_id, kind, location_id, locations (list), end_date, size.
    Returns outcome_id, component, cause_id, observed_at, link ('incident_id' | 'place_and_time')."""
    o = outcomes[outcomes["outcome_type"] == "incident_root_cause"].copy()
    if o.empty or components.empty:
        return pd.DataFrame(columns=["outcome_id", "component", "cause_id", "observed_at", "link"])
    o["observed_at"] = pd.to_datetime(o["observed_at"])
    direct = o.merge(components[["incident_id", "component", "size"]], left_on="subject_id", right_on="incident_id")
    direct = direct.sort_values(["outcome_id", "size"], ascending=[True, False]).drop_duplicates("outcome_id")
    rest = o[~o["outcome_id"].isin(direct["outcome_id"])]
    comp = components.copy()
    comp["end_date"] = pd.to_datetime(comp["end_date"])
    rows = []
    for r in rest.itertuples(index=False):  # outcomes are few (one per reviewed incident)
        lo, hi = r.observed_at - pd.Timedelta(days=LINK_DAYS[1]), r.observed_at - pd.Timedelta(days=LINK_DAYS[0])
        c = comp[(comp["end_date"] >= lo.normalize()) & (comp["end_date"] <= hi)]
        if r.location_id == "ALL":
            cand = c[c["kind"] == "portfolio"]
        else:
            cand = c[(c["kind"] == "local") & (c["location_id"] == r.location_id)]
            if cand.empty:
                cand = c[c["locations"].apply(lambda v: r.location_id in v)]
        if len(cand):
            best = cand.sort_values(["size", "end_date"], ascending=[False, False]).iloc[0]
            rows.append((r.outcome_id, best["component"], r.label, r.observed_at, "place_and_time"))
    linked = pd.DataFrame(rows, columns=["outcome_id", "component", "cause_id", "observed_at", "link"])
    d = direct.assign(cause_id=direct["label"], link="incident_id")[["outcome_id", "component", "cause_id", "observed_at", "link"]]
    return pd.concat([d, linked], ignore_index=True)


def calibration(hypotheses: pd.DataFrame, linked: pd.DataFrame, bins: int = 5) -> dict:
    """How well the posteriors of linked components match their realised causes: AC@1, AC@3,
    the Brier score of the top-1 posterior, the mean posterior of the realised cause and a
    reliability table (top-1 posterior bin -> share correct)."""
    if linked.empty:
        return {"n": 0}
    h = hypotheses.dropna(subset=["rank"])
    top = h[h["rank"] == 1][["component", "cause_id", "posterior"]].rename(columns={"cause_id": "top_cause", "posterior": "top_posterior"})
    m = linked.merge(top, on="component").merge(h[["component", "cause_id", "rank", "posterior"]], on=["component", "cause_id"], how="left")
    correct = (m["top_cause"] == m["cause_id"]).to_numpy(float)
    edges = np.linspace(0, 1, bins + 1)
    b = np.clip(np.digitize(m["top_posterior"], edges) - 1, 0, bins - 1)
    rel = [{"bin": f"{edges[k]:.1f}-{edges[k + 1]:.1f}", "n": int((b == k).sum()),
            "mean_posterior": float(m["top_posterior"][b == k].mean()) if (b == k).any() else None,
            "share_correct": float(correct[b == k].mean()) if (b == k).any() else None} for k in range(bins)]
    return {"n": int(len(m)), "ac_at_1": float(correct.mean()), "ac_at_3": float((m["rank"] <= 3).mean()),
            "brier_top1": float(np.mean((m["top_posterior"] - correct) ** 2)),
            "mean_posterior_of_realised": float(m["posterior"].fillna(0).mean()), "reliability": rel}
