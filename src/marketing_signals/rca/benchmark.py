"""Generator fault benchmark: does the ranker name the planted cause of each planted incident?

Two protocols on the same generated demo; AC@k is the share of planted incidents whose cause
is among the top k of the 25 registry causes.

* **Fault cases** (the RCAEval protocol, Pham et al. 2025): every planted incident is handed
  to the ranker with its planted locations and onset (where and when, not what), every stream
  of those locations as evidence. This is the acceptance protocol: the ranker's accuracy,
  independent of what Observe detects.
* **End to end** (as on call): run Observe over every stream, group the anomaly windows into
  incidents and components, rank every component, and match each planted incident to the
  component holding most of its planted symptoms (same stream and location, overlapping in
  time). Two denominators: every planted incident (an undetected one is a miss) and the
  detected ones.

In both, the ranking is repeated with the onset moved by -2 and +2 days (onset-error
robustness), and a BARO-style baseline ranks the same cases in the same run: BARO's
RobustScaler z (median / IQR before the onset, max |z| after it, Pham et al. 2024) ranks the
streams of the case's locations, and causes are ranked by the position of their root symptom
stream (ties: registry prior).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import hypotheses as H
from . import pipeline as RP
from .localise import baro_scores


def load_registry(registry_dir: Path | str) -> H.CauseRegistry:
    d = Path(registry_dir)
    return H.CauseRegistry.from_frames(pd.read_csv(d / "registry_root_causes.csv"),
                                       pd.read_csv(d / "registry_root_cause_signatures.csv"))


def observe_demo(demo_dir: Path | str, registry_dir: Path | str, log=print) -> dict:
    """Observe over a generated demo folder: the inputs the ranker needs, plus the truth."""
    demo_dir = Path(demo_dir)
    return _observe(pd.read_parquet(demo_dir / "raw" / "stream_metrics"), pd.read_parquet(demo_dir / "raw" / "context_events"),
                    pd.read_parquet(demo_dir / "truth" / "incidents.parquet"),
                    pd.read_parquet(demo_dir / "truth" / "incident_symptoms.parquet"),
                    pd.read_parquet(demo_dir / "raw" / "outcomes"), Path(registry_dir), log)


def streams_only_demo(n_locations: int = 20, days: int = 730, seed: int = 0,
                      registry_dir: Path | str | None = None, end_date: str = "2026-11-01", log=print) -> dict:
    """The generator's stream side only (no customers, no events): metrics with planted
    incidents, context events, incident reviews and the truth, observed like `observe_demo`.
    For tests and quick benchmarks; `run_benchmark` uses full demos."""
    from ..demo import streams as G

    registry_dir = Path(registry_dir) if registry_dir else G.default_registry_dir()
    reg = G.load_registries(registry_dir)
    rng = np.random.default_rng(seed)
    start_day = np.datetime64(end_date, "D") - days
    start_us = int(start_day.astype("datetime64[us]").astype(np.int64))
    loc_weight = rng.lognormal(0, 0.5, n_locations)
    inc = G.plan_incidents(rng, reg, n_locations, days)
    metrics = G.stream_metrics(rng, reg, loc_weight / loc_weight.sum(), start_day, days, inc).to_pandas()
    ctx = G.context_events(rng, reg, inc, n_locations, start_us, days).to_pandas()
    ia, observed, inc_ids, inc_loc, cause_ids = G.incident_outcomes(rng, reg, inc, n_locations, start_us, days)
    outcomes = pd.DataFrame({"outcome_id": [f"o{k:06d}" for k in range(1, len(ia) + 1)],
                             "outcome_type": "incident_root_cause", "subject_id": inc_ids.to_pylist(),
                             "location_id": inc_loc.to_pylist(), "label": cause_ids.to_pylist(),
                             "observed_at": pd.to_datetime(observed, unit="us")})
    truth, symptoms = (t.to_pandas() for t in G.incident_truth(reg, inc, start_day, n_locations))
    return _observe(metrics, ctx, truth, symptoms, outcomes, registry_dir, log)


def _observe(metrics, ctx, truth, symptoms, outcomes, registry_dir: Path, log) -> dict:
    from ..streams import incidents as I
    from ..streams import pipeline as PL
    from ..streams.panel import build_panel

    for c in ("stream_id", "location_id"):
        metrics[c] = metrics[c].astype(str)
    registry = pd.read_csv(registry_dir / "registry_streams.csv")
    holidays = pd.read_csv(registry_dir / "registry_holidays.csv")
    panel = build_panel(metrics, registry)
    res = PL.run(panel, holidays=holidays[holidays["country"] == "US"], with_observations=False, log=log)
    w = res.anomalies.merge(panel.series[["stream_id", "location_id"]], left_on="series", right_index=True)
    inc, _ = I.group(w[["stream_id", "location_id", "onset", "end", "anomaly_score"]])
    w["incident"] = inc.to_numpy()
    return {"panel": panel, "fitted": res.filter.fitted, "flagged": res.flagged, "anomalies": w.reset_index(drop=True),
            "ctx": ctx, "truth": truth, "symptoms": symptoms, "outcomes": outcomes}


def match_truth(obs: dict, member_component: np.ndarray) -> pd.DataFrame:
    """Planted incidents with the component holding most of their planted symptoms (NaN: none)."""
    a = obs["anomalies"].assign(component=member_component)
    sym = obs["symptoms"].copy()
    day0 = obs["panel"].days[0]
    sym["s"] = (pd.to_datetime(sym["start_date"]) - day0).dt.days
    sym["e"] = (pd.to_datetime(sym["end_date"]) - day0).dt.days
    m = a.merge(sym[["incident_id", "stream_id", "location_id", "s", "e"]], on=["stream_id", "location_id"])
    m = m[(m["onset"] <= m["e"] + 3) & (m["end"] >= m["s"] - 1)]
    cnt = m.groupby(["incident_id", "component"]).size().reset_index(name="n_symptoms_matched")
    best = cnt.sort_values(["incident_id", "n_symptoms_matched", "component"], ascending=[True, False, True])
    best = best.drop_duplicates("incident_id")
    return obs["truth"].merge(best, on="incident_id", how="left")


def ranks_of_truth(truth: pd.DataFrame, hyp: pd.DataFrame) -> np.ndarray:
    """Rank (1 = top) of each planted cause among the registry causes of its component; 0 = missed."""
    r = hyp.dropna(subset=["rank"]).set_index(["component", "cause_id"])["rank"]
    out = np.zeros(len(truth), np.int64)
    for k, (c, cause) in enumerate(zip(truth["component"], truth["cause_id"])):
        if pd.notna(c) and (int(c), cause) in r.index:
            out[k] = int(r.loc[(int(c), cause)])
    return out


def baro_hypotheses(obs: dict, result: RP.RcaResult, reg: H.CauseRegistry, onset_shift: int = 0,
                    pre_days: int = 28, post_days: int = 10) -> pd.DataFrame:
    """BARO-style baseline ranks for every component (component, cause_id, rank)."""
    panel = obs["panel"]
    _, streams, locations, index = H.effect_array(panel, obs["fitted"])  # (stream, location) -> series row
    Y = np.where(index[..., None] >= 0, panel.y[np.maximum(index, 0)], np.nan)          # (S, L, T)
    T = Y.shape[2]
    members = obs["anomalies"].assign(incident=result.member_component)
    comps = result.components.sort_values("component")
    W, _ = H.incident_locations(members, locations)                                       # (I, L)
    onset = comps["onset"].to_numpy().astype(np.int64) + onset_shift
    days = onset[:, None] - pre_days + np.arange(pre_days + post_days)[None, :]          # (I, D)
    valid = (days >= 0) & (days < T)
    Yd = np.where(valid[None, None], Y[:, :, np.clip(days, 0, T - 1)], np.nan)           # (S, L, I, D)
    ok = ~np.isnan(Yd)
    num = np.einsum("il,slid->isd", W, np.where(ok, Yd, 0.0))
    den = np.einsum("il,slid->isd", W, ok.astype(float))
    with np.errstate(all="ignore"):
        vals = np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)                    # (I, S, D)
    root = {r.cause_id: r.stream_id for r in reg.signatures.itertuples(index=False)
            if str(r.is_root_symptom).lower() in ("true", "1")}
    prior = reg.causes.set_index("cause_id")["prior"].astype(float)
    causes = [c for c in reg.cause_ids if c != H.UNEXPLAINED]
    s_ix = {v: i for i, v in enumerate(streams)}
    root_ix = np.array([s_ix.get(root.get(c), -1) for c in causes])
    rows = []
    for k, comp in enumerate(comps["component"]):
        score = baro_scores(vals[k], pre_days)
        stream_rank = np.empty(len(streams), np.int64)
        stream_rank[np.argsort(-score, kind="stable")] = np.arange(len(streams))
        key = np.where(root_ix >= 0, stream_rank[np.maximum(root_ix, 0)], len(streams))
        order = np.lexsort((-prior.reindex(causes).to_numpy(), key))
        rows += [(comp, causes[j], pos + 1) for pos, j in enumerate(order)]
    return pd.DataFrame(rows, columns=["component", "cause_id", "rank"])


def accuracy(ranks: np.ndarray, detected: np.ndarray | None = None) -> dict:
    r = np.asarray(ranks)
    if detected is not None:
        r = r[detected]
    hit = lambda k: float(np.mean((r >= 1) & (r <= k))) if r.size else float("nan")  # noqa: E731
    return {"ac_at_1": hit(1), "ac_at_3": hit(3), "ac_at_5": hit(5), "n": int(r.size)}


def evaluate(obs: dict, reg: H.CauseRegistry, *, priors: pd.Series | None = None, onset_errors=(-2, 2),
             rank_cfg: H.RankConfig = H.RankConfig(), log=print) -> dict:
    """Every planted incident of one demo: ranks by ours (at onset errors 0 and ±k) and BARO."""
    out = {}
    t0 = time.perf_counter()
    res = RP.run(obs["panel"], obs["fitted"], obs["flagged"], obs["anomalies"], obs["ctx"], reg, priors=priors,
                 rank_cfg=rank_cfg, with_tiers=False, log=log)
    rank_seconds = res.timings["rank_seconds"]
    truth = match_truth(obs, res.member_component)
    truth["rank"] = ranks_of_truth(truth, res.hypotheses)
    for err in onset_errors:
        shifted = RP.run(obs["panel"], obs["fitted"], obs["flagged"], obs["anomalies"], obs["ctx"], reg,
                         priors=priors, rank_cfg=rank_cfg, with_tiers=False, onset_shift=err, log=lambda *_: None)
        truth[f"rank_onset{err:+d}"] = ranks_of_truth(truth, shifted.hypotheses)
    truth["rank_baro"] = ranks_of_truth(truth, baro_hypotheses(obs, res, reg))
    out["truth"] = truth
    out["n_components"] = int(len(res.components))
    out["rank_seconds"] = rank_seconds
    out["rank_seconds_per_component"] = rank_seconds / max(len(res.components), 1)
    out["seconds"] = time.perf_counter() - t0
    out["result"] = res
    return out


def fault_cases(obs: dict, window_days: int = 7) -> pd.DataFrame:
    """Every planted incident as a fault case (the RCAEval protocol): the ranker is told where
    and when (the planted locations and onset), not what. One anomaly row per stream and
    planted location, from the onset for `window_days`; Observe's windows are not used, so an
    incident Observe missed is still a case. The planted duration and symptoms are not used."""
    panel = obs["panel"]
    day0 = panel.days[0]
    truth = obs["truth"].reset_index(drop=True)
    onset = (pd.to_datetime(truth["onset_date"]) - day0).dt.days.to_numpy()
    locs = obs["symptoms"].groupby("incident_id")["location_id"].unique()
    streams = sorted(panel.series["stream_id"].unique())
    rows = [(k, s, loc, int(onset[k]))
            for k, inc in enumerate(truth["incident_id"]) for loc in sorted(locs[inc]) for s in streams]
    a = pd.DataFrame(rows, columns=["incident", "stream_id", "location_id", "onset"])
    return a.assign(end=a["onset"] + window_days - 1, anomaly_score=1.0)


def evaluate_fault_cases(obs: dict, reg: H.CauseRegistry, *, priors: pd.Series | None = None,
                         onset_errors=(-2, 2), rank_cfg: H.RankConfig = H.RankConfig(), log=print) -> dict:
    """Every planted incident ranked as a fault case (see fault_cases): ours at onset errors 0
    and ±k, and BARO."""
    t0 = time.perf_counter()
    cases = fault_cases(obs)
    truth = obs["truth"].reset_index(drop=True).copy()

    def ranks(result, hypotheses=None) -> np.ndarray:  # a case's component holds most of its rows
        comp = pd.Series(result.member_component).groupby(cases["incident"].to_numpy()).agg(lambda v: v.mode().iloc[0])
        return ranks_of_truth(truth.assign(component=comp.reindex(range(len(truth))).to_numpy()),
                              result.hypotheses if hypotheses is None else hypotheses)

    res = RP.run(obs["panel"], obs["fitted"], obs["flagged"], cases, obs["ctx"], reg, priors=priors,
                 rank_cfg=rank_cfg, with_tiers=False, log=log)
    truth["rank"] = ranks(res)
    truth["component"] = 0  # every case reaches the ranker
    for err in onset_errors:
        shifted = RP.run(obs["panel"], obs["fitted"], obs["flagged"], cases, obs["ctx"], reg, priors=priors,
                         rank_cfg=rank_cfg, with_tiers=False, onset_shift=err, log=lambda *_: None)
        truth[f"rank_onset{err:+d}"] = ranks(shifted)
    truth["rank_baro"] = ranks(res, baro_hypotheses(obs | {"anomalies": cases}, res, reg))
    return {"truth": truth, "n_components": int(len(res.components)), "rank_seconds": res.timings["rank_seconds"],
            "seconds": time.perf_counter() - t0, "result": res}


def summarise(truth: pd.DataFrame, onset_errors=(-2, 2)) -> dict:
    detected = truth["component"].notna().to_numpy()
    s = {"planted_incidents": int(len(truth)), "detected": int(detected.sum()),
         "ours_end_to_end": accuracy(truth["rank"]), "ours_detected": accuracy(truth["rank"], detected),
         "baro_end_to_end": accuracy(truth["rank_baro"]), "baro_detected": accuracy(truth["rank_baro"], detected)}
    for err in onset_errors:
        s[f"ours_detected_onset{err:+d}"] = accuracy(truth[f"rank_onset{err:+d}"], detected)
    worst = min(s[f"ours_detected_onset{e:+d}"]["ac_at_1"] for e in onset_errors) if onset_errors else float("nan")
    s["ac_at_1_drop_with_onset_error"] = s["ours_detected"]["ac_at_1"] - worst
    per = truth.assign(detected=detected).groupby("cause_id").apply(lambda g: pd.Series({
        "incidents": len(g), "detected": int(g["detected"].sum()),
        "ac_at_1": float((g["rank"] == 1)[g["detected"]].mean()) if g["detected"].any() else float("nan"),
        "ac_at_3": float(((g["rank"] >= 1) & (g["rank"] <= 3))[g["detected"]].mean()) if g["detected"].any() else float("nan"),
        "baro_ac_at_1": float((g["rank_baro"] == 1)[g["detected"]].mean()) if g["detected"].any() else float("nan"),
    }), include_groups=False)
    s["per_cause"] = per.reset_index().to_dict(orient="records")
    return s


def run_benchmark(seeds=(45, 46, 47), customers: int = 100_000, registry_dir: Path | str | None = None,
                  work_dir: Path | str | None = None, log=print) -> dict:
    """Generate one demo per seed, run both protocols on each, pool the planted incidents."""
    from ..demo.generator import generate
    from ..demo.streams import default_registry_dir

    registry_dir = Path(registry_dir) if registry_dir else default_registry_dir()
    reg = load_registry(registry_dir)
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="rca_bench_")
        work_dir = tmp.name
    truths = {"fault_cases": [], "end_to_end": []}
    per_seed = {}
    for seed in seeds:
        d = Path(work_dir) / f"demo_{seed}"
        log(f"[rca-eval] seed {seed}: generating {customers:,} customers")
        generate(out_dir=d, customers=customers, seed=seed, progress=False)
        obs = observe_demo(d, registry_dir, log=log)
        runs = {"fault_cases": evaluate_fault_cases(obs, reg, log=log), "end_to_end": evaluate(obs, reg, log=log)}
        per_seed[seed] = {}
        for protocol, ev in runs.items():
            t = ev["truth"].assign(seed=seed)
            truths[protocol].append(t)
            s = summarise(t)
            per_seed[seed][protocol] = {"ac": {k: v for k, v in s.items() if k != "per_cause"},
                                        "components": ev["n_components"],
                                        "rank_seconds_per_component": ev["rank_seconds"] / max(ev["n_components"], 1)}
            log(f"[rca-eval] seed {seed} {protocol}: AC@1 {s['ours_detected']['ac_at_1']:.3f} "
                f"AC@3 {s['ours_detected']['ac_at_3']:.3f} (BARO {s['baro_detected']['ac_at_1']:.3f} / "
                f"{s['baro_detected']['ac_at_3']:.3f}) on {s['detected']} of {s['planted_incidents']} planted incidents")
    if tmp is not None:
        tmp.cleanup()
    return {"seeds": list(seeds), "customers": customers,
            "pooled": {p: summarise(pd.concat(t, ignore_index=True)) for p, t in truths.items()},
            "per_seed": per_seed}


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="marketing-signals rca-eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[45, 46, 47])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--registry-dir", default=None)
    ap.add_argument("--json", default=None, help="write the full report here")
    a = ap.parse_args(argv)
    rep = run_benchmark(a.seeds, a.customers, a.registry_dir)
    for protocol, p in rep["pooled"].items():
        print(f"== {protocol}")
        print(json.dumps({k: v for k, v in p.items() if k != "per_cause"}, indent=2))
        print(pd.DataFrame(p["per_cause"]).round(3).to_string(index=False))
    if a.json:
        Path(a.json).write_text(json.dumps(rep, indent=2, default=float))
    return 0
