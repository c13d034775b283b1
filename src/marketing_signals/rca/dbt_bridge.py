"""What the dbt Python models of python_models/rca/ call: one root-cause pass per build.

The pass reuses the stream stage's engine pass (streams.dbt_bridge caches it per input
fingerprint), splits incidents into components, links realised outcomes to components, ranks
every component with the priors of the outcomes known before its onset, and computes the
causal-evidence tiers. Its result is cached like the stream pass, so the four models of one
build share it.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from .. import frames as FR
from ..streams import dbt_bridge as SB
from . import causal as CZ
from . import hypotheses as H
from . import pipeline as RP
from . import priors as PR

_CACHE: dict[str, dict] = {}
_LOCK = threading.Lock()
FINANCIAL_STREAMS = ("receipts_revenue", "receipts_aov")


def _settings(s: dict | None) -> tuple[H.RankConfig, CZ.TierConfig, float]:
    s = s or {}
    rank = H.RankConfig(unexplained_prior=float(s.get("unexplained_prior", 0.2)),
                        pair_prior=float(s.get("pair_prior", 0.1)))
    tier = CZ.TierConfig(identify_min_posterior=float(s.get("identify_min_posterior", 0.8)),
                         identify_max=int(s.get("identify_max", 200)),
                         refuter_simulations=int(s.get("refuter_simulations", 10)))
    return rank, tier, float(s.get("prior_strength", PR.DEFAULT_STRENGTH))


def _component_ids(comp: pd.DataFrame, incident_id: pd.Series) -> pd.Series:
    """Stable id: the incident id and the component's place (ALL, ALL#2 for a later portfolio
    root, or the location)."""
    inc = comp["incident"].map(incident_id)
    k = comp.groupby(["incident", "location_id"]).cumcount()
    place = comp["location_id"] + np.where(k > 0, "#" + (k + 1).astype(str), "")
    return inc + "~" + place


def run(refs: dict, settings: dict | None, rca_settings: dict | None, log=print) -> dict:
    panel, res, as_of, windows = SB.anomaly_windows(refs, settings)
    causes, sigs = SB._df(refs["causes"]), SB._df(refs["signatures"])
    ctx, outcomes = SB._df(refs["context_events"]), SB._df(refs["outcomes"])
    rank_cfg, tier_cfg, strength = _settings(rca_settings)
    key = SB._fingerprint(windows[["anomaly_id", "incident_id"]], causes, sigs, ctx, outcomes,
                          [repr(rank_cfg), repr(tier_cfg), strength, str(as_of)])
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        reg = H.CauseRegistry.from_frames(causes, sigs)
        registry_prior = reg.causes.set_index("cause_id")["prior"].astype(float)
        a = windows.rename(columns={"incident_number": "incident"})
        ctx = ctx.copy()
        if len(ctx):
            ctx["starts_at"] = pd.to_datetime(ctx["starts_at"])
            ctx = ctx[ctx["starts_at"] <= pd.Timestamp(as_of) + pd.Timedelta(days=1)]
        outcomes = outcomes.copy()
        if len(outcomes):
            outcomes["observed_at"] = pd.to_datetime(outcomes["observed_at"])
            outcomes = outcomes[outcomes["observed_at"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
        incident_id = a.drop_duplicates("incident").set_index("incident")["incident_id"]
        days = panel.days
        state: dict = {}

        def priors_for(components: pd.DataFrame) -> pd.DataFrame:
            comp = components.assign(component_id=_component_ids(components, incident_id).to_numpy())
            comp["incident_id"] = comp["incident"].map(incident_id)
            comp["size"] = comp["streams"].str.len()
            comp["end_date"] = days[comp["end"].to_numpy()]
            linked = PR.link_outcomes(outcomes, comp)
            state["linked"] = linked.merge(comp[["component", "component_id", "incident_id"]], on="component", how="left")
            p, versions = PR.priors_before(registry_prior, linked, pd.Series(days[comp["onset"].to_numpy()]), strength)
            state["versions"] = versions
            return p

        result = RP.run(panel, res.filter.fitted, res.flagged, a, ctx, reg, priors=priors_for,
                        rank_cfg=rank_cfg, tier_cfg=tier_cfg, log=log)
        comp = result.components.copy()
        comp["component_id"] = _component_ids(comp, incident_id).to_numpy()
        comp["incident_id"] = comp["incident"].map(incident_id)
        comp["prior_version"] = state.get("versions", [None] * len(comp))
        current = PR.dirichlet(registry_prior, state["linked"]["cause_id"].value_counts() if len(state.get("linked", [])) else None,
                               strength)
        out = {"panel": panel, "as_of": as_of, "result": result, "components": comp, "windows": a,
               "linked": state.get("linked"), "current_priors": current, "registry": reg}
        _CACHE.clear()
        _CACHE[key] = out
        return out


def components(refs, settings, rca_settings) -> pd.DataFrame:
    r = run(refs, settings, rca_settings)
    c, days = r["components"], r["panel"].days
    member_counts = pd.Series(r["result"].member_component).value_counts()
    return pd.DataFrame({
        "component_id": c["component_id"], "incident_id": c["incident_id"], "kind": c["kind"],
        "location_id": c["location_id"], "onset_date": days[c["onset"].to_numpy()].date,
        "end_date": days[c["end"].to_numpy()].date, "n_anomalies": c["component"].map(member_counts).fillna(0).astype(np.int64),
        "n_locations": c["n_locations"].astype(np.int64), "streams": c["streams"].map(",".join),
        "masked_streams": c["masked_streams"].map(",".join), "p_unexplained": c["p_unexplained"],
        "context_event_ids": c["context_event_ids"].map(",".join), "prior_version": c["prior_version"],
        "as_of_date": pd.Timestamp(r["as_of"]).date(),
    })


def hypotheses(refs, settings, rca_settings) -> pd.DataFrame:
    r = run(refs, settings, rca_settings)
    h = r["result"].hypotheses
    c = r["components"].set_index("component")
    reg = r["registry"]
    fam = dict(zip(reg.causes["cause_id"], reg.causes["cause_family"]))
    scope = dict(zip(reg.causes["cause_id"], reg.causes["scope"]))
    root = {x.cause_id: x.stream_id for x in reg.signatures.itertuples(index=False)
            if str(x.is_root_symptom).lower() in ("true", "1")}
    fin = c["streams"].map(lambda v: any(s in FINANCIAL_STREAMS for s in v))
    days = r["panel"].days
    out = pd.DataFrame({
        "component_id": h["component"].map(c["component_id"]).to_numpy(),
        "incident_id": h["component"].map(c["incident_id"]).to_numpy(),
        "as_of_date": pd.Timestamp(r["as_of"]).date(),
        "cause_id": h["cause_id"].to_numpy(),
        "cause_family": h["cause_id"].map(fam).fillna("none").to_numpy(),
        "scope": h["cause_id"].map(scope).fillna("none").to_numpy(),
        "rank": h["rank"].astype("Int64").to_numpy(),
        "posterior": h["posterior"].to_numpy(float), "prior": h["prior"].to_numpy(float),
        "prior_version": h["component"].map(c["prior_version"]).to_numpy(),
        "confidence_tier": h["confidence_tier"].to_numpy(),
        "causal_evidence_tier": h["causal_evidence_tier"].to_numpy(np.int64),
        "location_id": h["component"].map(c["location_id"]).to_numpy(),
        "n_locations": h["component"].map(c["n_locations"]).astype(np.int64).to_numpy(),
        "onset_date": days[h["component"].map(c["onset"]).to_numpy()].date,
        "root_stream_id": h["cause_id"].map(root).to_numpy(),
        "supporting_evidence": h["supporting_evidence"].to_numpy(),
        "counter_evidence": h["counter_evidence"].to_numpy(),
        "predictive_evidence": h["predictive"].to_numpy(),
        "identification": h["identification"].to_numpy(),
        "affects_financial_reporting": h["component"].map(fin).astype(bool).to_numpy(),
    })
    out["hypothesis_id"] = "H" + (out["component_id"] + "|" + out["cause_id"]).map(
        lambda v: hashlib.sha256(v.encode()).hexdigest()[:16])
    out["ranked_at"] = datetime.now(timezone.utc).replace(tzinfo=None)
    return out


def outcomes_linked(refs, settings, rca_settings) -> pd.DataFrame:
    r = run(refs, settings, rca_settings)
    linked = r["linked"]
    cols = ["outcome_id", "component_id", "incident_id", "cause_id", "observed_at", "link"]
    if linked is None or linked.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols}).astype({"observed_at": "datetime64[us]"})
    return linked[cols].reset_index(drop=True)


def cause_priors(refs, settings, rca_settings, session=None, previous=None) -> pd.DataFrame:
    """This build's prior version, unless the table already holds it (append-only)."""
    r = run(refs, settings, rca_settings)
    p = r["current_priors"].copy()
    p["as_of_date"] = pd.Timestamp(r["as_of"]).date()
    p["computed_at"] = datetime.now(timezone.utc).replace(tzinfo=None)
    p = p[["prior_version", "cause_id", "registry_prior", "n_outcomes", "alpha", "prior_mean", "as_of_date", "computed_at"]]
    if previous is not None and session is not None:
        if FR.is_snowpark(session):
            rel = session.table(str(previous)) if not FR.is_snowpark(previous) else previous
            seen = SB._df(rel.select("PRIOR_VERSION").distinct())["prior_version"]
        else:
            seen = session.sql(f"select distinct prior_version from {previous}").df()["prior_version"]
        p = p[~p["prior_version"].isin(seen)]
    return p.reset_index(drop=True)
