"""Root-cause hypotheses: a discrete Bayesian network over the cause registry, solved exactly.

The network has one root node, `Cause` (the 25 registry causes plus `unexplained`, an incident
that no registry cause explains, e.g. a false alarm), and evidence nodes that are children of
`Cause` only:

* `Effect[s]` per stream — the incident's effect on the stream, the mean log-ratio of value to
  the Observe baseline over the best window of the incident's length starting in
  [onset − 2, onset + 9] days, averaged over the incident's locations, in 12 bins;
* `Lag[s]` per stream — where that window starts relative to the onset (observed only where
  the effect is clear, |effect| ≥ 3 standard errors; otherwise marginalised);
* `Scope` — one location, two, several (< 30 %) or ≥ 30 % of locations;
* `Context[k]` per context type — an event of type k at the incident's locations (or
  portfolio-wide) from 2 days before to 1 day after the onset.

CPDs come from the registry (`registry_root_cause_signatures`: stream, direction, lag range,
strength; `registry_root_causes`: scope, context type, prior) and from the data: the
no-signature CPD of an effect is the empirical distribution of the same best-window statistic
on days no anomaly window covers (so the max-over-windows selection is priced in), and context
background rates are the observed rates of unrelated events. Because the evidence nodes are
conditionally independent given `Cause`, the exact posterior is the normalised product of the
prior and the CPD entries, computed for every incident at once in numpy;
`to_pgmpy` builds the same network in pgmpy (tests check the posteriors are equal).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

UNEXPLAINED = "unexplained"
PORTFOLIO = "ALL"
# effect bins (log-ratio edges): 12 states; log(1 - s) for s = .15 .25 .35 .45 .6 .7 .8 is
# -.16 -.29 -.43 -.60 -.92 -1.2 -1.6, log(1 + s) for s = .15 .3 .5 .8 is .14 .26 .41 .59
EFFECT_EDGES = np.array([-1.0, -0.65, -0.42, -0.26, -0.14, -0.05, 0.05, 0.14, 0.26, 0.42, 0.65])
N_EFFECT_BINS = EFFECT_EDGES.size + 1
SCOPE_STATES = ("one_location", "two_locations", "several_locations", "many_locations")


@dataclass(frozen=True)
class RankConfig:
    lag_min: int = -2                 # best-window starts scanned, days relative to the onset
    lag_max: int = 9
    min_duration: int = 3             # incident duration estimate is clipped to this range
    max_duration: int = 10
    ramp_mean: float = 0.85           # mean share of the full shift over a symptom window (ramps)
    effect_spread: float = 0.25       # relative spread of a symptom's size around its signature
    se_inflation: float = 1.3         # residual autocorrelation: effective days < days
    lag_tolerance: int = 1            # days either side of a signature's lag range
    lag_in_range: float = 0.85        # P(lag inside the tolerated range | symptom of the cause)
    lag_min_z: float = 3.0            # a stream's lag is evidence only when |effect| >= this many SE
    context_share: float = 0.80       # P(context event | cause with that context type)
    context_before_days: int = 2
    context_after_days: int = 1
    unexplained_prior: float = 0.20   # prior mass of "no registry cause"
    pair_prior: float = 0.10          # prior mass of two concurrent registry causes
    cpd_floor: float = 0.002          # every CPD entry at least this (one stream never vetoes)
    null_samples: int = 300           # random quiet windows per stream for the empirical null
    scan_durations: bool = True       # also try min_duration-long windows (short symptoms)
    per_stream_locations: bool = True # a stream's effect is averaged where it alarmed (if it did)
    many_locations_share: float = 0.30
    seed: int = 0
    # P(scope state | cause scope); rows: location, portfolio, unexplained
    scope_location: tuple = (0.85, 0.08, 0.05, 0.02)
    scope_portfolio: tuple = (0.06, 0.06, 0.18, 0.70)
    scope_unexplained: tuple = (0.80, 0.10, 0.07, 0.03)

    @property
    def lags(self) -> np.ndarray:
        return np.arange(self.lag_min, self.lag_max + 1)


# ------------------------------------------------------------------------------ registry
@dataclass
class CauseRegistry:
    causes: pd.DataFrame          # registry_root_causes (+ prior used)
    signatures: pd.DataFrame      # registry_root_cause_signatures
    cause_ids: list[str]          # registry order, then UNEXPLAINED
    context_types: list[str]

    @classmethod
    def from_frames(cls, causes: pd.DataFrame, signatures: pd.DataFrame) -> "CauseRegistry":
        causes = causes.copy()
        causes["context_type"] = causes["context_type"].fillna("").astype(str)
        unknown = set(signatures["cause_id"]) - set(causes["cause_id"])
        if unknown:
            raise ValueError(f"signature rows for causes not in registry_root_causes: {sorted(unknown)}")
        ctx = sorted({c for c in causes["context_type"] if c})
        return cls(causes.reset_index(drop=True), signatures.reset_index(drop=True),
                   [*causes["cause_id"].tolist(), UNEXPLAINED], ctx)

    def prior(self, cfg: RankConfig, priors: pd.Series | pd.DataFrame | None = None, n: int = 1) -> np.ndarray:
        """(n, C) cause priors, renormalised so the registry causes share 1 - unexplained_prior:
        the registry's, recalibrated ones keyed by cause_id (Series), or one row per incident
        (DataFrame with a column per cause_id, rows in incident order)."""
        base = self.causes.set_index("cause_id")["prior"].astype(float)
        if isinstance(priors, pd.DataFrame):
            p = priors.reindex(columns=base.index).fillna(base).to_numpy(float)
            if p.shape[0] != n:
                raise ValueError(f"per-incident priors have {p.shape[0]} rows for {n} incidents")
        else:
            p = (priors.reindex(base.index).fillna(base) if priors is not None else base).to_numpy(float)
            p = np.broadcast_to(p, (n, p.size))
        p = p / p.sum(axis=1, keepdims=True) * (1 - cfg.unexplained_prior)
        return np.column_stack([p, np.full(n, cfg.unexplained_prior)])


# ------------------------------------------------------------------------------ components
def components(members: pd.DataFrame, min_locations: int = 3, many_share: float = 0.30,
               link_days: int = 3, strong_score: float = 2.0) -> tuple[pd.Series, pd.DataFrame]:
    """Split each incident into the events it may be made of, before ranking causes.

    Grouping links anomaly windows that share a location, so a portfolio-wide cause and an
    unrelated local one at one of its locations land in the same incident. Within an incident,
    a stream anomalous at >= max(min_locations, many_share x the incident's locations)
    locations belongs to the *portfolio component*; every other anomaly belongs to the *local
    component* of its location (a portfolio-series window of such a stream echoes its one
    location; a wide stream's window more than `link_days` from the stream's median onset is
    local too). Wide streams whose median onset is more than `link_days` after the first wide
    stream's, with a median score >= `strong_score` (a strong new root, not a weak lagged
    symptom), start a second portfolio component: two portfolio causes days apart chain into
    one incident through their shared locations. Each component is ranked on its
    own; the streams of the incident's portfolio component are not evidence for its local
    components (they are explained by the other event).

    members: incident, stream_id, location_id, onset, end, anomaly_score.
    Returns (component number per member row, one row per component: component, incident,
    kind, location_id ('ALL' for portfolio components), onset, end, streams, locations,
    masked_streams)."""
    from ..streams.incidents import incident_onset

    m = members.reset_index(drop=True)
    local = m["location_id"] != PORTFOLIO
    n_inc_locs = m[local].groupby("incident")["location_id"].nunique()
    n_stream_locs = m[local].groupby(["incident", "stream_id"])["location_id"].nunique()
    need = np.maximum(min_locations, np.ceil(many_share * n_inc_locs.reindex(
        n_stream_locs.index.get_level_values(0)).fillna(0).to_numpy()))
    wide = set(n_stream_locs.index[n_stream_locs.to_numpy() >= need])
    is_wide = pd.Series([(i, s) in wide for i, s in zip(m["incident"], m["stream_id"])], index=m.index)
    # a window of a wide stream far from that stream's median onset is a local event of its own
    med = m[is_wide & local].groupby(["incident", "stream_id"])["onset"].median()
    far = np.abs(m["onset"].to_numpy() - np.array([med.get((i, s), np.nan) for i, s in zip(m["incident"], m["stream_id"])])) > link_days
    is_wide &= ~(far & local.to_numpy())
    # a portfolio-series window of a stream that is not wide joins the local component of the
    # one location where that stream moved (the roll-up echoes it); otherwise the portfolio one
    only = m[local].groupby(["incident", "stream_id"])["location_id"].agg(lambda v: v.iloc[0] if v.nunique() == 1 else PORTFOLIO)
    echo = pd.Series([only.get((i, s), PORTFOLIO) for i, s in zip(m["incident"], m["stream_id"])], index=m.index)
    key = np.where(is_wide, PORTFOLIO, np.where(local, m["location_id"], echo)).astype(object)
    # split the portfolio part of an incident at strong later roots
    w = m[is_wide.to_numpy()]
    per = w.groupby(["incident", "stream_id"]).agg(onset=("onset", "median"), score=("anomaly_score", "median")).reset_index()
    part = {}
    for inc, g in per.sort_values(["incident", "onset"]).groupby("incident", sort=False):
        start, k = None, 0
        for s_id, o, sc in g[["stream_id", "onset", "score"]].itertuples(index=False):
            if start is None:
                start = o
            elif o - start > link_days and sc >= strong_score:
                start, k = o, k + 1
            part[(inc, s_id)] = k
    sub = np.array([part.get((i, s), 0) for i, s in zip(m["incident"], m["stream_id"])])
    key = np.where(is_wide & (sub > 0), [f"{PORTFOLIO}#{k}" for k in sub], key)
    comp_key = pd.MultiIndex.from_arrays([m["incident"], key])
    codes, uniq = pd.factorize(comp_key)
    m["component"] = codes
    onset = incident_onset(m.assign(location_id=m["location_id"]), key="component")
    wide_by_inc: dict = {}
    for i, s in wide:
        wide_by_inc.setdefault(i, set()).add(s)
    comp = pd.DataFrame({"component": np.arange(len(uniq)),
                         "incident": [u[0] for u in uniq], "location_id": [u[1] for u in uniq]})
    comp["kind"] = np.where(comp["location_id"].str.startswith(PORTFOLIO), "portfolio", "local")
    comp["location_id"] = np.where(comp["kind"] == "portfolio", PORTFOLIO, comp["location_id"])
    comp["onset"] = onset.reindex(comp["component"]).to_numpy()
    comp["end"] = m.groupby("component")["end"].max().reindex(comp["component"]).to_numpy()
    comp["streams"] = m.groupby("component")["stream_id"].agg(lambda v: sorted(set(v))).reindex(comp["component"]).to_numpy()
    locs = m[local].groupby("component")["location_id"].agg(lambda v: sorted(set(v)))
    comp["locations"] = [locs.get(c, []) for c in comp["component"]]
    comp["masked_streams"] = [sorted(wide_by_inc.get(i, set())) if k == "local" else []
                              for i, k in zip(comp["incident"], comp["kind"])]
    return m["component"], comp


# ------------------------------------------------------------------------------ evidence
@dataclass
class Evidence:
    """Per incident (rows) the observed states of every evidence node."""
    incident: np.ndarray          # (I,) incident numbers
    onset: np.ndarray             # (I,) day index of the onset used
    duration: np.ndarray          # (I,) days
    n_locations: np.ndarray       # (I,) locations the effects are averaged over
    streams: list[str]
    effect: np.ndarray            # (I, S) mean log-ratio over the best window (NaN: no data)
    se: np.ndarray                # (I, S) its standard error
    lag: np.ndarray               # (I, S) best window start, days from the onset
    scope_state: np.ndarray       # (I,) index into SCOPE_STATES, -1 = not informative
    context: np.ndarray           # (I, X) bool
    context_ids: list             # (I,) list of matching context events [(type, id, starts_at)]
    locations: list               # (I,) list of location ids
    null_z: dict = field(default_factory=dict)  # stream -> sorted best-window z under no incident

    @property
    def effect_bin(self) -> np.ndarray:
        return np.searchsorted(EFFECT_EDGES, np.nan_to_num(self.effect), side="right")


def effect_array(panel, fitted: np.ndarray) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
    """(S, L, T) log-ratio of value to the Observe baseline for the local (non-portfolio) series,
    with the stream and location ids and the (S, L) series index (-1 = absent)."""
    series = panel.series.reset_index(drop=True)
    local = series["location_id"] != PORTFOLIO
    streams = sorted(series.loc[local, "stream_id"].unique())
    locations = sorted(series.loc[local, "location_id"].unique())
    s_ix = {s: i for i, s in enumerate(streams)}
    l_ix = {v: i for i, v in enumerate(locations)}
    T = panel.values.shape[1]
    E = np.full((len(streams), len(locations), T), np.nan)
    index = np.full((len(streams), len(locations)), -1, np.int64)
    expected = panel.back(fitted)
    with np.errstate(all="ignore"):
        ratio_effect = np.log(np.maximum(panel.values, 1e-6) / np.maximum(expected, 1e-6))
        log_effect = panel.y - fitted
    eff = np.where(panel.is_ratio[:, None], ratio_effect, log_effect)
    for row in np.flatnonzero(local.to_numpy()):
        s, l = s_ix[series.at[row, "stream_id"]], l_ix[series.at[row, "location_id"]]
        E[s, l] = eff[row]
        index[s, l] = row
    return E, streams, locations, index


def _window_means(A: np.ndarray, starts: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """A: (I, S, W) aggregated effects over a window of days; mean over [start, start + dur)
    for each start (offsets into W) -> (I, S, len(starts)); NaN-aware."""
    ok = ~np.isnan(A)
    c = np.concatenate([np.zeros(A.shape[:2] + (1,)), np.cumsum(np.where(ok, A, 0.0), axis=2)], axis=2)
    n = np.concatenate([np.zeros(A.shape[:2] + (1,)), np.cumsum(ok, axis=2)], axis=2)
    hi = starts[None, :] + duration[:, None]                     # (I, K)
    lo = np.broadcast_to(starts[None, :], hi.shape)
    idx_hi = np.broadcast_to(hi[:, None, :], A.shape[:2] + hi.shape[1:])
    idx_lo = np.broadcast_to(lo[:, None, :], idx_hi.shape)
    tot = np.take_along_axis(c, idx_hi, 2) - np.take_along_axis(c, idx_lo, 2)
    cnt = np.take_along_axis(n, idx_hi, 2) - np.take_along_axis(n, idx_lo, 2)
    with np.errstate(all="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def best_windows(E: np.ndarray, weights: np.ndarray, onset: np.ndarray, duration: np.ndarray,
                 cfg: RankConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For incidents (weights over locations (I, L), or per stream (I, S, L); onset (I,);
    duration (I,)): per stream the mean effect over the best window — start in
    [lag_min, lag_max], length the incident's duration or `min_duration`, the one with the
    largest |mean| x sqrt(length) — its start relative to the onset and its length. (I, S) each."""
    S, L, T = E.shape
    lags = cfg.lags
    W = lags.size + cfg.max_duration
    days = onset[:, None] + cfg.lag_min + np.arange(W)[None, :]            # (I, W)
    valid = (days >= 0) & (days < T)
    Ed = E[:, :, np.clip(days, 0, T - 1)]                                   # (S, L, I, W)
    Ed = np.where(valid[None, None], Ed, np.nan)
    w = weights / np.maximum(weights.sum(axis=-1, keepdims=True), 1e-12)
    okw = ~np.isnan(Ed)
    spec = "isl,sliw->isw" if w.ndim == 3 else "il,sliw->isw"
    num = np.einsum(spec, w, np.where(okw, Ed, 0.0))
    den = np.einsum(spec, w, okw.astype(float))
    with np.errstate(all="ignore"):
        A = np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)         # (I, S, W)
    durations = [duration, np.minimum(duration, cfg.min_duration)] if cfg.scan_durations else [duration]
    best = lag = dur = None
    top = None
    for d in durations:
        means = _window_means(A, np.arange(lags.size), d)                   # (I, S, K)
        score = np.where(np.isnan(means), -1.0, np.abs(means) * np.sqrt(d)[:, None, None])
        k = score.argmax(axis=2)
        m = np.take_along_axis(means, k[..., None], 2)[..., 0]
        sc = np.take_along_axis(score, k[..., None], 2)[..., 0]
        if top is None:
            best, lag, dur, top = m, lags[k], np.broadcast_to(d[:, None], m.shape).copy(), sc
        else:
            better = sc > top
            best, lag = np.where(better, m, best), np.where(better, lags[k], lag)
            dur, top = np.where(better, d[:, None], dur), np.maximum(sc, top)
    return best, lag, dur


def stream_noise(E: np.ndarray, quiet: np.ndarray) -> np.ndarray:
    """Robust per-stream SD of the daily log-ratio on quiet days (S,)."""
    x = np.where(quiet, E, np.nan).reshape(E.shape[0], -1)
    med = np.nanmedian(x, axis=1)
    mad = np.nanmedian(np.abs(x - med[:, None]), axis=1)
    return np.maximum(1.4826 * np.nan_to_num(mad, nan=0.1), 1e-3)


def null_distribution(E: np.ndarray, quiet: np.ndarray, sd: np.ndarray, cfg: RankConfig) -> np.ndarray:
    """Best-window z (effect / SE) at random single-location quiet windows: (S, null_samples),
    sorted per stream. The same statistic as for incidents, so selection bias is priced in."""
    S, L, T = E.shape
    rng = np.random.default_rng(cfg.seed)
    span = cfg.lags.size + cfg.max_duration
    lo, hi = -cfg.lag_min, T - span + cfg.lag_min
    if hi <= lo:
        return np.zeros((S, 1))
    n = cfg.null_samples
    # a window is quiet when no anomaly window touches its span
    q = np.cumsum(np.concatenate([np.zeros((S, L, 1)), ~quiet], axis=2), axis=2)
    out = np.empty((S, n))
    for s in range(S):  # ~35 streams; arrays inside
        loc = rng.integers(0, L, 4 * n)
        t0 = rng.integers(lo, hi, 4 * n)
        busy = q[s, loc, t0 + cfg.lag_min + span] - q[s, loc, t0 + cfg.lag_min] > 0
        loc, t0 = loc[~busy][:n], t0[~busy][:n]
        if loc.size < 10:
            loc, t0 = rng.integers(0, L, n), rng.integers(lo, hi, n)
        dur = rng.integers(cfg.min_duration, cfg.max_duration + 1, loc.size)
        w = np.zeros((loc.size, L))
        w[np.arange(loc.size), loc] = 1.0
        best, _, used = best_windows(E[s:s + 1], w, t0, dur, cfg)
        z = best[:, 0] / (sd[s] * cfg.se_inflation / np.sqrt(used[:, 0]))
        z = np.sort(z[~np.isnan(z)])
        out[s] = np.resize(z, n) if z.size else 0.0
        out[s].sort()
    return out


def incident_locations(members: pd.DataFrame, locations: list[str]) -> tuple[np.ndarray, list]:
    """members: incident, location_id (member anomalies). (I, L) 0/1 weights over the incident's
    local locations; an incident with only portfolio members covers every location."""
    incs = np.sort(members["incident"].unique())
    l_ix = {v: i for i, v in enumerate(locations)}
    W = np.zeros((incs.size, len(locations)))
    pos = {v: i for i, v in enumerate(incs)}
    for inc, loc in members[["incident", "location_id"]].drop_duplicates().itertuples(index=False):
        if loc in l_ix:
            W[pos[inc], l_ix[loc]] = 1.0
    W[W.sum(axis=1) == 0] = 1.0
    locs = [[locations[j] for j in np.flatnonzero(r)] for r in W]
    return W, locs


def context_matrix(ctx: pd.DataFrame, reg: CauseRegistry, days: pd.DatetimeIndex, onset: np.ndarray,
                   locs: list, cfg: RankConfig) -> tuple[np.ndarray, list]:
    """(I, X) bool: a context event of each registry context type at the incident's locations or
    portfolio-wide, starting in [onset - before, onset + after] days."""
    X = reg.context_types
    I = onset.size
    out = np.zeros((I, len(X)), bool)
    ids: list = [[] for _ in range(I)]
    if ctx is None or len(ctx) == 0 or I == 0:
        return out, ids
    c = ctx[ctx["context_type"].isin(X)].copy()
    c["day"] = ((pd.to_datetime(c["starts_at"]).dt.tz_localize(None).dt.floor("D") - days[0]).dt.days).astype(int)
    c["location_id"] = c["location_id"].fillna(PORTFOLIO).astype(str)
    x_ix = {v: i for i, v in enumerate(X)}
    by_day = c.sort_values("day")
    d = by_day["day"].to_numpy()
    for i in range(I):  # incidents (hundreds); a searchsorted slice each
        a = np.searchsorted(d, onset[i] - cfg.context_before_days, side="left")
        b = np.searchsorted(d, onset[i] + cfg.context_after_days, side="right")
        if a == b:
            continue
        win = by_day.iloc[a:b]
        here = win[win["location_id"].isin(locs[i]) | (win["location_id"] == PORTFOLIO)]
        for t, eid, day in here[["context_type", "context_event_id", "day"]].itertuples(index=False):
            out[i, x_ix[t]] = True
            ids[i].append((t, eid, int(day)))
    return out, ids


def context_background(ctx: pd.DataFrame, reg: CauseRegistry, n_locations: int, n_days: int,
                       cfg: RankConfig) -> np.ndarray:
    """(X,) rate of events per location over a context window, from all events: an upper bound
    on the unrelated rate (linked events included), floored."""
    X = reg.context_types
    window = cfg.context_before_days + cfg.context_after_days + 1
    if ctx is None or len(ctx) == 0:
        return np.full(len(X), cfg.cpd_floor)
    loc = ctx["location_id"].fillna(PORTFOLIO).astype(str)
    rate = []
    for t in X:
        m = ctx["context_type"] == t
        per_loc = (m & (loc != PORTFOLIO)).sum() / max(n_locations, 1) + (m & (loc == PORTFOLIO)).sum()
        rate.append(min(0.5, per_loc * window / max(n_days, 1)))
    return np.maximum(np.array(rate), cfg.cpd_floor)


def gather_evidence(panel, fitted: np.ndarray, flagged: np.ndarray, members: pd.DataFrame,
                    incidents: pd.DataFrame, ctx: pd.DataFrame | None, reg: CauseRegistry,
                    cfg: RankConfig = RankConfig(), onset_shift: np.ndarray | int = 0,
                    E_cache: tuple | None = None, masked: list | None = None) -> Evidence:
    """members: incident, stream_id, location_id, onset, end (anomaly windows with their
    incident, or component: any unit to rank); incidents: incident, onset, end (days), sorted
    by incident; masked: per incident, streams that are not evidence. onset_shift perturbs the
    onsets (tests)."""
    E, streams, locations, index = E_cache or effect_array(panel, fitted)
    quiet = ~np.where(index[..., None] >= 0, flagged[np.maximum(index, 0)], True)
    sd = stream_noise(E, quiet)
    inc = incidents.sort_values("incident").reset_index(drop=True)
    W, locs = incident_locations(members[members["incident"].isin(inc["incident"])], locations)
    onset = inc["onset"].to_numpy().astype(np.int64) + onset_shift
    m = members.copy()
    m["len"] = m["end"] - m["onset"] + 1
    dur = m.groupby("incident")["len"].median().reindex(inc["incident"]).fillna(cfg.min_duration).to_numpy()
    dur = np.clip(np.round(dur), cfg.min_duration, cfg.max_duration).astype(np.int64)
    if cfg.per_stream_locations:
        s_ix = {v: i for i, v in enumerate(streams)}
        l_ix = {v: i for i, v in enumerate(locations)}
        u_ix = {v: i for i, v in enumerate(inc["incident"])}
        W3 = np.zeros((len(inc), len(streams), len(locations)))
        mm = members[members["incident"].isin(u_ix) & members["location_id"].isin(l_ix) & members["stream_id"].isin(s_ix)]
        W3[mm["incident"].map(u_ix).to_numpy(), mm["stream_id"].map(s_ix).to_numpy(), mm["location_id"].map(l_ix).to_numpy()] = 1.0
        none = W3.sum(axis=2) == 0
        W3 = np.where(none[..., None], W[:, None, :], W3)
    else:
        W3 = np.broadcast_to(W[:, None, :], (len(inc), len(streams), len(locations)))
    best, lag, used = best_windows(E, W3, onset, dur, cfg)
    nloc_s = W3.sum(axis=2)
    if masked is not None:  # streams explained by another component of the same incident
        s_ix = {v: i for i, v in enumerate(streams)}
        for i, names in enumerate(masked):
            best[i, [s_ix[v] for v in names if v in s_ix]] = np.nan
    nloc = W.sum(axis=1)
    se = sd[None, :] * cfg.se_inflation / np.sqrt(used * nloc_s)
    L = len(locations)
    share = nloc / max(L, 1)
    scope = np.where(nloc <= 1, 0, np.where(nloc == 2, 1, np.where(share < cfg.many_locations_share, 2, 3)))
    if L < 4:
        scope[:] = -1
    context, ids = context_matrix(ctx, reg, panel.days, onset, locs, cfg)
    null = null_distribution(E, quiet, sd, cfg)
    return Evidence(inc["incident"].to_numpy(), onset, dur, nloc, streams, best, se, lag, scope,
                    context, ids, locs, {s: null[i] for i, s in enumerate(streams)})


# ------------------------------------------------------------------------------ network
@dataclass
class Network:
    """The network's parameters. The root node is the incident's *configuration*: one registry
    cause, two concurrent ones (their effects add on the log scale, their context events
    combine as a noisy-OR), or `unexplained`. A cause's posterior is the marginal probability
    that it is at work: the sum over the configurations that contain it."""
    cause_ids: list[str]
    configs: np.ndarray           # (G, 2) cause indices; second = -1 for a single cause
    prior: np.ndarray             # (I, G)
    mu: np.ndarray                # (C, S) expected log effect of each cause on each stream (0: none)
    is_symptom: np.ndarray        # (C, S) bool
    lag: np.ndarray               # (C, S, K) P(best-window start | symptom of the cause)
    scope: np.ndarray             # (G, 4)
    context: np.ndarray           # (I, G, X) P(context event present | configuration)
    null_effect: np.ndarray       # (I, S, B) P(effect bin | not a symptom): the empirical null
    se: np.ndarray                # (I, S)
    cfg: RankConfig
    root_stream: np.ndarray       # (C,) stream index of each cause's root symptom (-1: none)
    cause_ctx: list[str]          # (C,) each cause's context type ('' if none)

    @property
    def single(self) -> np.ndarray:
        """(C,) the configuration index of each cause alone."""
        out = np.empty(len(self.cause_ids), np.int64)
        one = np.flatnonzero(self.configs[:, 1] < 0)
        out[self.configs[one, 0]] = one
        return out


def _bin_probs(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """P(bin) of N(mu, sigma²) for the effect bins; trailing axis B."""
    edges = np.concatenate([[-np.inf], EFFECT_EDGES, [np.inf]])
    return np.diff(norm.cdf((edges - mu[..., None]) / sigma[..., None]), axis=-1)


def _null_bin_probs(null_z: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Empirical null: P(bin) for effect = z * se, z from the sorted null sample (add-one)."""
    n = null_z.size
    edges = EFFECT_EDGES[None, :] / se[:, None]                                   # (I, B-1)
    cnt = np.searchsorted(null_z, edges, side="right")
    cnt = np.concatenate([np.zeros((se.size, 1)), cnt, np.full((se.size, 1), n)], axis=1)
    return (np.diff(cnt, axis=1) + 1.0 / N_EFFECT_BINS) / (n + 1.0)


def _floor(p: np.ndarray, floor: float, n_states: int) -> np.ndarray:
    """Mix a CPD with the uniform distribution so no state is impossible (still sums to 1)."""
    return (1.0 - n_states * floor) * p + floor


def build_network(reg: CauseRegistry, ev: Evidence, cfg: RankConfig = RankConfig(),
                  priors: pd.Series | pd.DataFrame | None = None, background: np.ndarray | None = None,
                  context_share: pd.Series | None = None) -> Network:
    C, S, I = len(reg.cause_ids), len(ev.streams), ev.incident.size
    real = C - 1                                               # the last cause is UNEXPLAINED
    s_ix = {s: i for i, s in enumerate(ev.streams)}
    c_ix = {c: i for i, c in enumerate(reg.cause_ids)}
    K = cfg.lags.size
    mu = np.zeros((C, S))
    lag = np.full((C, S, K), 1.0 / K)
    root = np.full(C, -1, np.int64)
    for r in reg.signatures.itertuples(index=False):
        if r.stream_id not in s_ix:
            continue
        c, si = c_ix[r.cause_id], s_ix[r.stream_id]
        if str(r.is_root_symptom).strip().lower() in ("true", "1", "t", "yes"):
            root[c] = si
        sign = 1.0 if r.direction == "up" else -1.0
        mu[c, si] = np.log(max(1e-3, 1.0 + sign * float(r.strength))) * cfg.ramp_mean
        lo, hi = int(r.lag_min_days) - cfg.lag_tolerance, int(r.lag_max_days) + cfg.lag_tolerance
        inside = (cfg.lags >= lo) & (cfg.lags <= hi)
        lag[c, si] = np.where(inside, cfg.lag_in_range / inside.sum(), 0.0) + (1 - cfg.lag_in_range) / K
    is_symptom = mu != 0
    # configurations: every cause alone, then every pair of registry causes
    pairs = np.array([(a, b) for a in range(real) for b in range(a + 1, real)], np.int64).reshape(-1, 2)
    configs = np.vstack([np.column_stack([np.arange(C), np.full(C, -1)]), pairs])
    p = reg.prior(cfg, priors, I)                              # (I, C), unexplained last
    pair = p[:, pairs[:, 0]] * p[:, pairs[:, 1]]
    if len(pairs):
        pair *= cfg.pair_prior / pair.sum(axis=1, keepdims=True)
    prior = np.concatenate([p * (1 - cfg.pair_prior), pair], axis=1)
    sc = dict(zip(reg.causes["cause_id"], reg.causes["scope"]))
    portfolio = np.array([sc.get(c) == "portfolio" for c in reg.cause_ids])
    either = portfolio[configs[:, 0]] | np.where(configs[:, 1] >= 0, portfolio[np.maximum(configs[:, 1], 0)], False)
    scope = np.where(either[:, None], np.array(cfg.scope_portfolio), np.array(cfg.scope_location))
    scope[configs[:, 0] == real] = cfg.scope_unexplained
    X = len(reg.context_types)
    bg = background if background is not None else np.full(X, 0.01)
    bg_i = 1.0 - (1.0 - bg[None, :]) ** np.maximum(ev.n_locations[:, None], 1)                  # (I, X)
    share = np.zeros((C, X))
    x_ix = {t: i for i, t in enumerate(reg.context_types)}
    for c, cid in enumerate(reg.cause_ids[:real]):
        t = reg.causes.at[c, "context_type"]
        if t:
            share[c, x_ix[t]] = float(context_share.get(cid, cfg.context_share)) if context_share is not None else cfg.context_share
    share_g = 1.0 - (1.0 - share[configs[:, 0]]) * np.where(configs[:, 1:2] >= 0, 1.0 - share[np.maximum(configs[:, 1], 0)], 1.0)
    context = 1.0 - (1.0 - bg_i[:, None, :]) * (1.0 - share_g[None, :, :])
    context = np.clip(context, cfg.cpd_floor, 1 - cfg.cpd_floor)
    null = np.stack([_null_bin_probs(ev.null_z[s], ev.se[:, i]) for i, s in enumerate(ev.streams)], axis=1)
    ctx_of = dict(zip(reg.causes["cause_id"], reg.causes["context_type"]))
    return Network(reg.cause_ids, configs, prior / prior.sum(axis=1, keepdims=True), mu, is_symptom, lag, scope, context,
                   null, ev.se, cfg, root, [ctx_of.get(c, "") for c in reg.cause_ids])


def _config_effect(net: Network, i: np.ndarray | slice = slice(None)):
    """(G, S) expected effect, (I, G, S) SD and (G, S) symptom flag of each configuration."""
    c1, c2 = net.configs[:, 0], net.configs[:, 1]
    has2 = (c2 >= 0)[:, None]
    mu2 = np.where(has2, net.mu[np.maximum(c2, 0)], 0.0)
    mu = net.mu[c1] + mu2
    sym = net.is_symptom[c1] | (has2 & net.is_symptom[np.maximum(c2, 0)])
    spread2 = net.cfg.effect_spread ** 2 * (net.mu[c1] ** 2 + mu2 ** 2)
    sd = np.sqrt((1.2 * net.se[i])[:, None, :] ** 2 + spread2[None])
    return mu, sd, sym


def _config_lag(net: Network) -> np.ndarray:
    """(G, S, K) P(best-window start | configuration): the symptom's cause's lag CPD (the mean
    of both where both list the stream), uniform where neither does."""
    c1, c2 = net.configs[:, 0], net.configs[:, 1]
    has2 = c2 >= 0
    s1 = net.is_symptom[c1]
    s2 = has2[:, None] & net.is_symptom[np.maximum(c2, 0)]
    l1, l2 = net.lag[c1], net.lag[np.maximum(c2, 0)]
    both = (s1 & s2)[..., None]
    return np.where(both, 0.5 * (l1 + l2), np.where(s1[..., None], l1, np.where(s2[..., None], l2, l1)))


def log_likelihood_terms(net: Network, ev: Evidence) -> dict:
    """Per incident × configuration log-likelihood contributions, by evidence node family."""
    cfg = net.cfg
    b = ev.effect_bin                                                                          # (I, S)
    has = ~np.isnan(ev.effect)
    edges = np.concatenate([[-np.inf], EFFECT_EDGES, [np.inf]])
    lo, hi = edges[b], edges[b + 1]                                                            # (I, S)
    mu, sd, sym = _config_effect(net)
    p_sym = norm.cdf((hi[:, None, :] - mu[None]) / sd) - norm.cdf((lo[:, None, :] - mu[None]) / sd)
    p_null = np.take_along_axis(net.null_effect, b[:, :, None], 2)[..., 0]                     # (I, S)
    p = np.where(sym[None], p_sym, p_null[:, None, :])
    eff = np.where(has[:, None, :], np.log(_floor(p, cfg.cpd_floor, N_EFFECT_BINS)), 0.0)     # (I, G, S)
    lag_obs = has & (np.abs(np.nan_to_num(ev.effect)) >= cfg.lag_min_z * ev.se)
    k = np.clip(ev.lag - cfg.lag_min, 0, cfg.lags.size - 1)                                    # (I, S)
    lagp = _config_lag(net)                                                                    # (G, S, K)
    S = k.shape[1]
    lag = np.log(lagp[:, np.arange(S)[None, :], k])                                            # (G, I, S)
    lag = np.where(lag_obs[None], lag, 0.0).transpose(1, 0, 2)
    scope = np.where(ev.scope_state[:, None] >= 0, np.log(net.scope[:, np.maximum(ev.scope_state, 0)].T), 0.0)
    ctx = np.where(ev.context[:, None, :], np.log(net.context), np.log1p(-net.context))        # (I, G, X)
    return {"effect": eff, "lag": lag, "scope": scope, "context": ctx}


def config_posterior(net: Network, ev: Evidence) -> np.ndarray:
    """(I, G) exact posterior over configurations."""
    t = log_likelihood_terms(net, ev)
    logp = (np.log(net.prior) + t["effect"].sum(axis=2) + t["lag"].sum(axis=2)
            + t["scope"] + t["context"].sum(axis=2))
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def posterior(net: Network, ev: Evidence) -> np.ndarray:
    """(I, C) P(cause at work | evidence): marginals over the configurations (`unexplained`
    last: the probability that no registry cause is)."""
    pg = config_posterior(net, ev)
    C = len(net.cause_ids)
    out = np.zeros((pg.shape[0], C))
    np.add.at(out.T, net.configs[:, 0], pg.T)
    two = net.configs[:, 1] >= 0
    np.add.at(out.T, net.configs[two, 1], pg[:, two].T)
    return np.clip(out, 0.0, 1.0)


def to_pgmpy(net: Network, ev: Evidence, i: int):
    """The network of incident i as a pgmpy DiscreteBayesianNetwork (root `Configuration`),
    with the evidence dict; its posterior over Configuration equals config_posterior[i]."""
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    cfg = net.cfg
    G = net.configs.shape[0]
    mu, sd, sym = _config_effect(net, np.array([i]))
    lagp = _config_lag(net)
    root = "Configuration"
    nodes, cpds, evidence = [], [TabularCPD(root, G, net.prior[i].reshape(-1, 1))], {}
    lag_obs = ~np.isnan(ev.effect[i]) & (np.abs(np.nan_to_num(ev.effect[i])) >= cfg.lag_min_z * ev.se[i])
    for s, name in enumerate(ev.streams):
        if np.isnan(ev.effect[i, s]):
            continue
        full = np.where(sym[:, s, None], _bin_probs(mu[:, s], sd[0, :, s]), net.null_effect[i, s][None, :])
        nodes.append(f"Effect_{name}")
        cpds.append(TabularCPD(f"Effect_{name}", N_EFFECT_BINS, _floor(full, cfg.cpd_floor, N_EFFECT_BINS).T,
                               evidence=[root], evidence_card=[G]))
        evidence[f"Effect_{name}"] = int(ev.effect_bin[i, s])
        if lag_obs[s]:
            nodes.append(f"Lag_{name}")
            cpds.append(TabularCPD(f"Lag_{name}", cfg.lags.size, lagp[:, s, :].T, evidence=[root], evidence_card=[G]))
            evidence[f"Lag_{name}"] = int(np.clip(ev.lag[i, s] - cfg.lag_min, 0, cfg.lags.size - 1))
    if ev.scope_state[i] >= 0:
        nodes.append("Scope")
        cpds.append(TabularCPD("Scope", len(SCOPE_STATES), net.scope.T, evidence=[root], evidence_card=[G]))
        evidence["Scope"] = int(ev.scope_state[i])
    for x in range(net.context.shape[2]):
        name = f"Context_{x}"
        nodes.append(name)
        p = net.context[i, :, x]
        cpds.append(TabularCPD(name, 2, np.vstack([1 - p, p]), evidence=[root], evidence_card=[G]))
        evidence[name] = int(ev.context[i, x])
    model = DiscreteBayesianNetwork([(root, n) for n in nodes])
    model.add_cpds(*cpds)
    return model, evidence


# ------------------------------------------------------------------------------ explanation
def explain(net: Network, ev: Evidence, reg: CauseRegistry, post: np.ndarray) -> pd.DataFrame:
    """One row per incident × cause (ranked among the registry causes; `unexplained` is rank
    null), with supporting and counter evidence (JSON lists): each signature symptom whose
    log-likelihood ratio, the cause alone against no incident, is beyond ±1, and the context
    event present or missing."""
    I, C = post.shape
    terms = log_likelihood_terms(net, ev)
    single = net.single
    unexpl = single[-1]
    eff = terms["effect"][:, single, :] - terms["effect"][:, unexpl, :][:, None, :]           # (I, C, S)
    s_ix = {s: i for i, s in enumerate(ev.streams)}
    sig: dict[str, list] = {}
    for r in reg.signatures.itertuples(index=False):
        if r.stream_id in s_ix:
            sig.setdefault(r.cause_id, []).append((s_ix[r.stream_id], r.stream_id, f"{r.direction} {float(r.strength):.0%}"))
    ctype = dict(zip(reg.causes["cause_id"], reg.causes["context_type"]))
    x_ix = {t: i for i, t in enumerate(reg.context_types)}
    effect, lags = ev.effect.tolist(), ev.lag.tolist()
    eff_l = eff.tolist()
    order = np.argsort(-post[:, :-1], axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(C - 1)[None, :].repeat(I, 0), 1)
    rows = []
    for i in range(I):
        for c, cid in enumerate(net.cause_ids):
            sup, con = [], []
            for s, stream_id, expected in sig.get(cid, ()):
                e = effect[i][s]
                if e != e:  # NaN: no data, or explained by another component
                    continue
                llr = eff_l[i][c][s]
                if abs(llr) <= 1:
                    continue
                (sup if llr > 1 else con).append({
                    "kind": "symptom", "stream_id": stream_id, "expected": expected,
                    "observed_change": round(float(np.expm1(e)), 4), "lag_days": int(lags[i][s]), "log_lr": round(llr, 2)})
            t = ctype.get(cid, "")
            if t:
                if ev.context[i, x_ix[t]]:
                    sup += [{"kind": "context_event", "context_type": tt, "context_event_id": eid,
                             "day_offset": int(day - ev.onset[i])} for tt, eid, day in ev.context_ids[i] if tt == t]
                else:
                    con.append({"kind": "context_event_missing", "context_type": t})
            rows.append((int(ev.incident[i]), cid, int(rank[i, c]) + 1 if c < C - 1 else None,
                         float(post[i, c]), json.dumps(sup), json.dumps(con)))
    return pd.DataFrame(rows, columns=["incident", "cause_id", "rank", "posterior",
                                       "supporting_evidence", "counter_evidence"])
