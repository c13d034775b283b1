"""Root causes for the incidents of one Observe pass: components, posterior, evidence, tiers.

`run` takes what Observe produced (the panel, the pass's baseline, the anomaly windows with
their incident) plus context events and the cause registry, and returns one row per
component × cause. Ranking is vectorised over every component at once; the causal-evidence
tiers (Correlate, DoWhy) run only for the hypotheses worth them (causal.TierConfig).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import causal as CZ
from . import hypotheses as H

CONFIDENCE_TIERS = ((0.8, "high"), (0.5, "medium"), (0.0, "low"))


@dataclass
class RcaResult:
    components: pd.DataFrame      # one row per component (incident, kind, location_id, onset, end, ...)
    hypotheses: pd.DataFrame      # one row per component × cause
    member_component: np.ndarray  # component number of each anomaly row passed in
    timings: dict = field(default_factory=dict)


def confidence_tier(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, float)
    return np.select([p >= t for t, _ in CONFIDENCE_TIERS], [n for _, n in CONFIDENCE_TIERS], "low")


def run(panel, fitted: np.ndarray, flagged: np.ndarray, anomalies: pd.DataFrame, ctx: pd.DataFrame | None,
        reg: H.CauseRegistry, *, priors: pd.Series | pd.DataFrame | None = None, rank_cfg: H.RankConfig = H.RankConfig(),
        tier_cfg: CZ.TierConfig = CZ.TierConfig(), with_tiers: bool = True, onset_shift: int | np.ndarray = 0,
        log=print) -> RcaResult:
    """anomalies: incident, stream_id, location_id, onset, end (day indices into panel.days),
    anomaly_score. priors: cause priors by cause_id, or a callable(components frame) returning
    one row of priors per component in component order (None: the registry's)."""
    t0 = time.perf_counter()
    timings = {}
    a = anomalies.reset_index(drop=True)
    if a.empty:
        empty = pd.DataFrame(columns=["incident", "component", "cause_id"])
        return RcaResult(pd.DataFrame(), empty, np.zeros(0, np.int64), timings)
    comp_of, comp = H.components(a[["incident", "stream_id", "location_id", "onset", "end", "anomaly_score"]],
                                 link_days=3)
    units = comp.rename(columns={"incident": "parent", "component": "incident"})
    members = a.drop(columns=["incident"]).assign(incident=comp_of.to_numpy())
    if callable(priors):
        priors = priors(comp.sort_values("component"))
    cache = H.effect_array(panel, fitted)
    ev = H.gather_evidence(panel, fitted, flagged, members, units, ctx, reg, rank_cfg, onset_shift=onset_shift,
                           E_cache=cache, masked=units["masked_streams"].tolist())
    n_loc = len(cache[2])
    bg = H.context_background(ctx, reg, n_loc, len(panel.days), rank_cfg)
    net = H.build_network(reg, ev, rank_cfg, priors=priors, background=bg)
    post = H.posterior(net, ev)
    timings["rank_seconds"] = time.perf_counter() - t0
    timings["rank_seconds_per_incident"] = timings["rank_seconds"] / max(len(units), 1)
    hyp = H.explain(net, ev, reg, post)
    hyp = hyp.rename(columns={"incident": "component"})
    c_ix = {c: k for k, c in enumerate(reg.cause_ids)}
    i_ix = {v: k for k, v in enumerate(ev.incident)}
    single_prior = net.prior[:, net.single]                                  # (I, C)
    hyp["prior"] = single_prior[hyp["component"].map(i_ix).to_numpy(), hyp["cause_id"].map(c_ix).to_numpy()]
    hyp["confidence_tier"] = confidence_tier(hyp["posterior"])
    if with_tiers:
        t1 = time.perf_counter()
        W, _ = H.incident_locations(members, cache[2])
        ends = units.sort_values("incident")["end"].to_numpy()
        tiers = CZ.tiers(net, ev, post, cache[0], W, ends, tier_cfg)
        tiers = tiers.rename(columns={"incident": "component"})
        hyp = hyp.merge(tiers, on=["component", "cause_id"], how="left")
        timings["tier_seconds"] = time.perf_counter() - t1
    else:
        for c in ("temporal_precedence", "context_precedes", "predictive", "identification"):
            hyp[c] = None
        hyp["causal_evidence_tier"] = 0
    hyp["causal_evidence_tier"] = hyp["causal_evidence_tier"].fillna(0).astype(np.int64)
    comp = comp.copy()
    pos = {v: i for i, v in enumerate(ev.incident)}
    comp["onset_used"] = [int(ev.onset[pos[c]]) for c in comp["component"]]
    comp["n_locations"] = [int(ev.n_locations[pos[c]]) for c in comp["component"]]
    comp["p_unexplained"] = [float(post[pos[c], -1]) for c in comp["component"]]
    comp["context_event_ids"] = [[e for _, e, _ in ev.context_ids[pos[c]]] for c in comp["component"]]
    hyp = hyp.merge(comp[["component", "incident", "kind", "location_id", "onset_used", "n_locations"]],
                    on="component", how="left")
    log(f"[rca] ranked {len(reg.cause_ids) - 1} causes for {len(units)} "
        f"incident components in {timings['rank_seconds']:.1f} s"
        + (f"; causal-evidence tiers in {timings.get('tier_seconds', 0):.1f} s" if with_tiers else ""))
    return RcaResult(comp, hyp, comp_of.to_numpy(), timings)
