"""Root-stream localisation (issue 7): which of a set of anomalous series started the cascade.

Input everywhere is a float array `values` of shape (N series, T periods), oldest period first
(a 1-D array is one series). `onset` is the index of the first period of the anomaly (the
periods before it are the reference); when it is unknown `detect_onset` estimates it.

* `detect_onset(values)` — one common change point for all series: the least-squares common
  break in mean of Bai (2010, "Common breaks in means and variances for panel data", J.
  Econometrics 157) on robust-standardised series. Each series is centred on its median and
  divided by a scale from its first differences (1.4826 * MAD(diff) / sqrt 2, which a level
  shift does not inflate), clipped at +-`clip`, and the break maximises the summed between-
  segment sum of squares sum_i tau (T - tau) / T * (mean_i after - mean_i before)^2. This is
  the Gaussian maximum-likelihood single mean-shift estimator with known unit variances; BARO
  uses multivariate Bayesian online change-point detection instead (Adams & MacKay 2007),
  which we do not reimplement. One pass of cumulative sums, O(N T). When the series break at
  different times (a cascade) the common break lands inside the cascade, weighted towards
  the larger shifts (on the planted cascades of the tests: typically 1-3 periods after the root's
  onset); `localise` tolerates that through its guard band and per-series onsets.
* `baro_scores(values, onset)` — the BARO baseline (Pham, Ha and Zhang, FSE 2024; RCAEval's
  `baro`): per series a RobustScaler (median, IQR; an IQR of 0 becomes 1 as in scikit-learn)
  fitted on the pre-onset periods (plus optional separate `reference` periods), score =
  max |z| over the periods from the onset on. RCAEval ranks by the signed max; the absolute
  value (`absolute=True`, the default) also catches drops.
* `localise(values, onset)` — our ranker, one row per series (columns in `COLUMNS`):

  1. **Reference and robust z.** Median and scale from the periods before `onset - slack`
     (plus the optional `reference` periods): IQR / 1.349, else 1.4826 MAD, else the sd (a
     mostly constant reference), floored at `rel_floor` x the largest |reference value|. The
     `slack` periods before the onset are a guard band: an onset estimated up to `slack`
     periods late does not put the root's first anomalous periods into its own reference.
     |z| is capped at `z_clip`, and at `z_degenerate` for a series whose reference had no
     spread at all (it moved, but by how many "sd" is unknowable).
  2. **Magnitude** = max |z| from `onset - slack` on (BARO's statistic with the guard band).
     **Gate** in [0, 1]: log1p(magnitude) placed linearly between log1p(`gate_z`) and the
     largest log1p(magnitude) of the incident — how anomalous the series is, relative to the
     incident, so quiet series get no timing or graph credit from noise.
  3. **Per-series onset** = the least-squares single break of the sign-aligned z (clipped at
     +-`z_timing_clip`) between `onset - pre_window` and the series' own peak, so a pulse that
     later recovers still has its rise located, not its fall.
  4. **Temporal precedence**, soft: p_i = sum_j gate_j sigmoid((onset_j - onset_i) / `tau_temp`)
     / sum_j gate_j over the other series j. The earliest series gets p near 1, simultaneous
     ones 0.5. The per-series onsets do not depend on the global onset beyond the window
     edges, so a +-2 period error in it leaves the order unchanged.
  5. **Explained by an earlier series** (Granger-style): on first differences of the clipped z
     (the innovations of a level series), r2(j -> i) = max over lags 1..`max_lag` of
     corr(dz_i[t], dz_j[t - l])^2 on [onset - pre_window, T). A symptom downstream of j is
     predicted by j's past and j is not predicted by the symptom's past, so
     explained_i = max_j gate_j * max(0, r2(j -> i) - r2(i -> j)).
  6. **Structural prior (optional).** `graph` says which `groups` of series (e.g. services, or
     streams) can drive which. A single-root propagation model scores each group g by the
     log-likelihood ratio of "g is the root" against "nothing here is caused":
     sum over groups d reachable from g of [q_d log(rho_h / eps) + (1 - q_d) log((1 - rho_h)
     / (1 - eps))] with rho_h = rho * graph_decay^(hops - 1), plus the same term for g itself
     with rho_self; q = the group's gate (its most anomalous series); groups without a
     scorable series are left out. A root is rewarded for anomalous descendants and
     penalised for quiet ones; an anomalous series with an anomalous possible cause upstream
     loses to that cause, which covers it and its descendants. `upstream` (strongest
     anomalous ancestor, decayed per hop) and `coverage` (share of the other groups' anomaly
     that is downstream) are reported as evidence.
  7. **Score** = log1p(magnitude) + gate_i (w_prec (2 p_i - 1) - w_expl explained_i)
     + w_graph * graph log-likelihood ratio (0 without a graph).

NaNs: medians and quantiles ignore them; a series with fewer than `min_reference` finite
reference values, or none after the onset, cannot be scored (score -inf, last, `usable`
False). For the time-ordered steps (per-series onsets, lagged correlations, `detect_onset`)
each series is linearly interpolated over its own gaps and held flat beyond its first / last
finite value. Constant series have no spread: their scale is the floor, their z is capped at
`z_degenerate`, and they score log1p(0) = 0 unless they move after the onset.

Everything is vectorised over series. The pairwise terms (4, 5) are computed only among the
K series with gate > 0, O(K^2 T); the graph terms are O(G^2) per hop of the longest path over
G groups. 100 series x 400 periods, all anomalous, takes about 20-30 ms here.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

COLUMNS = ("name", "group", "score", "rank", "onset", "magnitude", "gate", "precedence", "explained",
           "explained_by", "graph_evidence", "upstream", "coverage", "usable")


@dataclass(frozen=True)
class LocaliseConfig:
    """Parameters of `localise`; defaults are for series of tens to hundreds of periods."""
    slack: int = 2             # guard band (periods) before the onset; tolerated onset error
    min_reference: int = 5     # fewer finite reference periods: the series is not scored
    pre_window: int = 20       # periods before the onset scanned for per-series onsets / lags
    z_clip: float = 1000.0     # |z| cap (constant references give huge z)
    rel_floor: float = 0.01    # scale floor as a share of the largest |reference value|
    z_degenerate: float = 10.0  # |z| cap for series whose reference had no spread at all
    gate_z: float = 3.0        # |z| at which a series starts to count as anomalous
    tau_temp: float = 1.0      # softness (periods) of the precedence sigmoid
    max_lag: int = 5           # Granger-style lags 1..max_lag
    w_prec: float = 1.0        # weight of precedence
    w_expl: float = 1.0        # weight of explained-by-an-earlier-series
    rho: float = 0.5           # graph: P(a descendant one hop from the root is anomalous)
    graph_decay: float = 0.7   # graph: rho shrinks by this factor per extra hop
    rho_self: float = 0.9      # graph: P(the root itself looks anomalous)
    eps: float = 0.1           # graph: P(a series unaffected by the root looks anomalous)
    w_graph: float = 1.0       # graph: weight of the log-likelihood ratio in the score
    z_timing_clip: float = 32.0  # |z| clip for per-series onsets and lagged correlations


# ----------------------------------------------------------------------------- helpers
def _as_2d(values) -> np.ndarray:
    if isinstance(values, pd.DataFrame):
        values = values.to_numpy()
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"values must be (N series, T periods); got shape {x.shape}")
    return x


def _reference_2d(reference, n: int) -> np.ndarray:
    r = _as_2d(reference)
    if r.shape[0] != n:
        raise ValueError(f"reference must be (N={n}, R); got {r.shape}")
    return r


def _interpolate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation over each row's NaN gaps, flat beyond its ends. Returns (filled, has_data)."""
    out = x.copy()
    finite = np.isfinite(x)
    has = finite.any(axis=1)
    T = x.shape[1]
    if finite[has].all():
        return out, has
    t = np.arange(T)
    # positions of the previous / next finite value per cell
    idx = np.where(finite, t, -1)
    prev = np.maximum.accumulate(idx, axis=1)
    idx2 = np.where(finite, t, T)
    nxt = np.minimum.accumulate(idx2[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(x.shape[0])[:, None]
    first = np.where(has, finite.argmax(axis=1), 0)[:, None]
    last = np.where(has, T - 1 - finite[:, ::-1].argmax(axis=1), 0)[:, None]
    p = np.where(prev < 0, first, prev)
    n = np.where(nxt >= T, last, nxt)
    xp, xn = x[rows, p], x[rows, n]
    span = (n - p).astype(np.float64)
    w = np.where(span > 0, (t[None, :] - p) / np.where(span > 0, span, 1.0), 0.0)
    filled = xp + w * (xn - xp)
    out = np.where(finite, x, filled)
    out[~has] = 0.0
    return out, has


def _nan_quantiles(x: np.ndarray, qs) -> np.ndarray:
    """Row-wise quantiles ignoring NaNs (linear interpolation, numpy's default); (len(qs), N).

    All-NaN rows give NaN. Vectorised: np.nanpercentile loops over rows in Python when NaNs
    are present.
    """
    N = x.shape[0]
    s = np.sort(x, axis=1)                          # NaNs sort last
    n = np.isfinite(s).sum(axis=1)
    out = np.full((len(qs), N), np.nan)
    ok = n > 0
    if not ok.any():
        return out
    rows = np.arange(N)[ok]
    for k, q in enumerate(qs):
        pos = q * (n[ok] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n[ok] - 1)
        frac = pos - lo
        out[k, ok] = s[rows, lo] + frac * (s[rows, hi] - s[rows, lo])
    return out


def _robust_center_scale(ref: np.ndarray, level: np.ndarray, rel_floor: float
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and a robust sd per row of ref (NaN-aware): IQR / 1.349, else 1.4826 MAD, else the
    sd (a mostly constant reference), floored at rel_floor * level. Also returns `degenerate`:
    the reference had no spread at all, so the scale is the floor."""
    if ref.shape[1]:
        q25, med, q75 = _nan_quantiles(ref, (0.25, 0.5, 0.75))
        mad = _nan_quantiles(np.abs(ref - med[:, None]), (0.5,))[0]
    else:
        q25 = med = q75 = mad = np.full(ref.shape[0], np.nan)
    scale = (q75 - q25) / 1.349
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.4826 * mad)
    if ref.shape[1] > 1:
        with np.errstate(all="ignore"):
            cnt = np.isfinite(ref).sum(axis=1)
            mean = np.where(cnt > 0, np.nansum(ref, axis=1) / np.maximum(cnt, 1), np.nan)
            sd = np.sqrt(np.nansum((ref - mean[:, None]) ** 2, axis=1) / np.maximum(cnt - 1, 1))
        sd = np.where(cnt > 1, sd, np.nan)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, sd)   # mostly-constant reference
    floor = rel_floor * np.where(np.isfinite(level), level, 0.0)
    floor = np.maximum(floor, 1e-12)
    degenerate = ~(np.isfinite(scale) & (scale > floor))
    scale = np.where(np.isfinite(scale), np.maximum(scale, floor), floor)
    return med, scale, degenerate


def _ls_break(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares single mean break of each row y[i, lo_i:hi_i] (hi exclusive).

    Returns (tau, stat): tau is the first index of the second segment (lo_i < tau <= hi_i - 1),
    stat the between-segment sum of squares n1 n2 / n (mean2 - mean1)^2. Rows with fewer than
    two points get tau = lo and stat 0.
    """
    N, T = y.shape
    c = np.concatenate([np.zeros((N, 1)), np.cumsum(y, axis=1)], axis=1)   # c[:, k] = sum y[:, :k]
    rows = np.arange(N)
    s_lo = c[rows, lo][:, None]
    s_hi = c[rows, hi][:, None]
    k = np.arange(T + 1)[None, :]
    n1 = (k - lo[:, None]).astype(np.float64)
    n2 = (hi[:, None] - k).astype(np.float64)
    n = (hi - lo).astype(np.float64)[:, None]
    valid = (n1 >= 1) & (n2 >= 1)
    with np.errstate(all="ignore"):
        m1 = (c - s_lo) / n1
        m2 = (s_hi - c) / n2
        stat = np.where(valid, n1 * n2 / np.where(n > 0, n, 1.0) * (m2 - m1) ** 2, -np.inf)
    tau = stat.argmax(axis=1)
    best = stat[rows, tau]
    none = ~np.isfinite(best)
    tau = np.where(none, lo, tau)
    best = np.where(none, 0.0, best)
    return tau, best


# ----------------------------------------------------------------------------- onset
def detect_onset(values, *, min_size: int = 3, clip: float = 8.0) -> int:
    """Common change point of the (N, T) series: the index of the first period after the break.

    Least-squares common break in mean (Bai 2010) on series centred on their median, scaled by
    1.4826 MAD(first differences) / sqrt(2) and clipped at +-clip. Both segments have at least
    `min_size` periods. NaNs are interpolated per series; all-NaN and constant series carry no
    information and are left out.
    """
    x = _as_2d(values)
    N, T = x.shape
    if T < 2 * min_size:
        raise ValueError(f"need at least {2 * min_size} periods, got {T}")
    filled, has = _interpolate(x)
    filled = filled[has]
    if filled.shape[0] == 0:
        return T // 2
    med = np.median(filled, axis=1)
    d = np.diff(filled, axis=1)
    sd = 1.4826 * np.median(np.abs(d - np.median(d, axis=1, keepdims=True)), axis=1) / np.sqrt(2.0)
    # series whose differences are mostly zero (steps, counts): fall back to the sd of differences
    sd = np.where(sd > 0, sd, np.std(d, axis=1) / np.sqrt(2.0))
    keep = sd > 0
    if not keep.any():
        return T // 2
    z = np.clip((filled[keep] - med[keep, None]) / sd[keep, None], -clip, clip)
    c = np.concatenate([np.zeros((z.shape[0], 1)), np.cumsum(z, axis=1)], axis=1)
    k = np.arange(min_size, T - min_size + 1)
    m1 = c[:, k] / k
    m2 = (c[:, [T]] - c[:, k]) / (T - k)
    stat = (k * (T - k) / T * (m2 - m1) ** 2).sum(axis=0)
    return int(k[int(np.argmax(stat))])


# ----------------------------------------------------------------------------- BARO
def baro_scores(values, onset: int, *, reference=None, absolute: bool = True) -> np.ndarray:
    """BARO's score per series: max |z| after the onset, z from a RobustScaler fitted before it.

    median / IQR of values[:, :onset] (NaN-aware), plus the (N, R) `reference` periods when
    given; an IQR of 0 is replaced by 1 (scikit-learn's RobustScaler does the same, so constant
    series are scored in raw units); NaNs after the onset are ignored. A series with no finite
    value before or after the onset scores 0. `absolute=False` gives RCAEval's signed max.
    """
    x = _as_2d(values)
    T = x.shape[1]
    onset = int(onset)
    lo_onset = 0 if reference is not None else 1
    if not lo_onset <= onset < T:
        raise ValueError(f"onset must be in [{lo_onset}, {T - 1}], got {onset}")
    ref, post = x[:, :onset], x[:, onset:]
    if reference is not None:
        ref = np.concatenate([_reference_2d(reference, x.shape[0]), ref], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q25, med, q75 = _nan_quantiles(ref, (0.25, 0.5, 0.75))
        iqr = q75 - q25
        iqr = np.where(np.isfinite(iqr) & (iqr != 0), iqr, 1.0)
        z = (post - med[:, None]) / iqr[:, None]
        if absolute:
            z = np.abs(z)
        s = np.nanmax(np.where(np.isfinite(z), z, -np.inf), axis=1)
    return np.where(np.isfinite(s), s, 0.0)


# ----------------------------------------------------------------------------- graph
def _graph_matrix(graph, groups: list, index: dict) -> np.ndarray:
    """(G, G) boolean adjacency, A[a, b] = group a can drive group b."""
    G = len(groups)
    A = np.zeros((G, G), dtype=bool)
    if isinstance(graph, pd.DataFrame):
        M = graph.reindex(index=groups, columns=groups).to_numpy(dtype=np.float64)
        A = np.isfinite(M) & (M != 0)
    elif isinstance(graph, dict):
        for a, bs in graph.items():
            for b in bs:
                if a in index and b in index:
                    A[index[a], index[b]] = True
    else:
        M = np.asarray(graph)
        if M.shape != (G, G):
            raise ValueError(f"graph array must be ({G}, {G}) in group order, got {M.shape}")
        A = M.astype(bool)
    np.fill_diagonal(A, False)
    return A


def _hop_distances(A: np.ndarray) -> np.ndarray:
    """D[a, b] = fewest hops from a to b (inf if unreachable), by repeated boolean products."""
    G = A.shape[0]
    D = np.full((G, G), np.inf)
    reach = A.copy()
    frontier = A.copy()
    hop = 1
    D[A] = 1
    Af = A.astype(np.float64)
    while frontier.any() and hop < G:
        hop += 1
        nxt = (frontier.astype(np.float64) @ Af) > 0
        new = nxt & ~reach
        np.fill_diagonal(new, False)
        D[new] = hop
        reach |= new
        frontier = new
    return D


# ----------------------------------------------------------------------------- ranker
def localise(values, onset: int | None = None, *, names=None, groups=None, graph=None, reference=None,
             config: LocaliseConfig = LocaliseConfig()) -> pd.DataFrame:
    """Rank series as the root of the anomaly; one row per series, best first (columns `COLUMNS`).

    values: (N, T). onset: first anomalous period (default `detect_onset(values)`).
    names: N labels (default 0..N-1). groups: N group labels (e.g. the service of each metric;
    default: each series its own group). graph: which groups can drive which — a DataFrame
    adjacency (index = driver, columns = driven, non-zero = edge), a dict {driver: [driven]},
    or a (G, G) array in the order of first appearance in `groups`; labels missing from the
    graph have no edges. reference: optional (N, R) normal periods (not contiguous with
    `values`, e.g. an earlier quiet week) added to the pre-onset periods for the median and
    scale only; the timing terms use `values` alone (then onset may be 0).

    Columns: name, group; score (higher = more likely the root; -inf when not usable); rank
    (1 = root; ties keep input order); onset (the series' own change point, period index into
    `values`); magnitude (max |z| from onset - slack on); gate (0..1, how anomalous within the
    incident); precedence (0..1, 1 = changed before the other anomalous series, 0.5 = at the
    same time or not anomalous); explained (0..1, how much better an earlier series' changes
    predict its changes than the reverse) and explained_by (that series' name or None);
    graph_evidence (the weighted log-likelihood-ratio term of the score, 0 without a graph);
    upstream (0..1, the strongest anomaly among its group's possible causes, decayed per hop)
    and coverage (0..1, share of the other groups' anomaly that its group can reach), both 0
    without a graph; usable (False: not enough finite reference or post-onset data).
    """
    cfg = config
    x = _as_2d(values)
    N, T = x.shape
    if names is None:
        names = list(range(N))
    names = list(names)
    if len(names) != N:
        raise ValueError("names must have one label per series")
    if onset is None:
        onset = detect_onset(x)
    onset = int(onset)
    lo_onset = 0 if reference is not None else 1
    if not lo_onset <= onset < T:
        raise ValueError(f"onset must be in [{lo_onset}, {T - 1}], got {onset}")

    ref_end = max(lo_onset, onset - cfg.slack)
    ref = x[:, :ref_end]
    if reference is not None:
        ref = np.concatenate([_reference_2d(reference, N), ref], axis=1)
    filled, has = _interpolate(x)
    level = np.max(np.where(np.isfinite(ref), np.abs(ref), 0.0), axis=1) if ref.shape[1] else np.zeros(N)
    med, scale, degenerate = _robust_center_scale(ref, level, cfg.rel_floor)
    usable = (np.isfinite(med) & (np.isfinite(ref).sum(axis=1) >= cfg.min_reference)
              & np.isfinite(x[:, ref_end:]).any(axis=1))
    med = np.where(usable, med, 0.0)
    cap = np.where(degenerate, min(cfg.z_degenerate, cfg.z_clip), cfg.z_clip)[:, None]
    z_raw = (x - med[:, None]) / scale[:, None]
    z_raw = np.clip(z_raw, -cap, cap)
    z_raw[~usable] = np.nan
    zf = np.clip((filled - med[:, None]) / scale[:, None], -cap, cap)
    zf[~usable] = 0.0

    # 2. magnitude and the sign of the peak
    post = np.abs(z_raw[:, ref_end:])
    post = np.where(np.isfinite(post), post, -np.inf)
    peak_rel = post.argmax(axis=1)
    mag = post[np.arange(N), peak_rel]
    mag = np.where(np.isfinite(mag), mag, 0.0)
    mag[~usable] = 0.0
    peak = ref_end + peak_rel
    sign = np.sign(zf[np.arange(N), peak])
    sign = np.where(sign == 0, 1.0, sign)

    # gate: log-linear between gate_z and the incident's largest magnitude
    lm = np.log1p(mag)
    lo_g, hi_g = np.log1p(cfg.gate_z), max(np.log1p(mag.max()), np.log1p(cfg.gate_z) + 1e-9)
    gate = np.clip((lm - lo_g) / (hi_g - lo_g), 0.0, 1.0)
    gate[~usable] = 0.0

    # 3. per-series onset: LS break of sign-aligned, moderately clipped z on [lo, peak]
    win_lo = max(0, onset - cfg.pre_window)
    y = np.clip(zf * sign[:, None], -cfg.z_timing_clip, cfg.z_timing_clip)
    lo = np.full(N, win_lo)
    hi = np.minimum(np.maximum(peak + 1, win_lo + 2), T)
    tau, _ = _ls_break(y, lo, hi)
    tau = tau.astype(np.float64)
    tau[~usable] = np.nan

    # 4.-5. pairwise terms, only among series with gate > 0 (a zero-gate series has no weight
    # as a comparator or explainer, and its own timing terms are multiplied by its gate)
    prec = np.full(N, 0.5)
    expl = np.zeros(N)
    explained_by: list = [None] * N
    act = np.flatnonzero(gate > 0)
    if act.size >= 2:
        # 4. precedence
        ta = np.where(np.isfinite(tau[act]), tau[act], onset)
        wa = gate[act]
        diff = (ta[None, :] - ta[:, None]) / cfg.tau_temp          # [i, j] = tau_j - tau_i
        sig = 1.0 / (1.0 + np.exp(-np.clip(diff, -50, 50)))
        W = np.broadcast_to(wa[None, :], (act.size, act.size)).copy()
        np.fill_diagonal(W, 0.0)
        wsum = W.sum(axis=1)
        prec[act] = np.where(wsum > 0, (W * sig).sum(axis=1) / np.where(wsum > 0, wsum, 1.0), 0.5)

        # 5. Granger-style: lagged correlation of first differences on [win_lo, T)
        dz = np.diff(y[act, win_lo:], axis=1)
        n_lag = min(cfg.max_lag, max(dz.shape[1] - 2, 0))
        r2 = np.zeros((act.size, act.size))                        # r2[j, i] = j -> i
        for lag in range(1, n_lag + 1):
            a = dz[:, :-lag]                                         # source j at t - lag
            b = dz[:, lag:]                                          # target i at t
            a = a - a.mean(axis=1, keepdims=True)
            b = b - b.mean(axis=1, keepdims=True)
            na = np.sqrt((a * a).sum(axis=1))
            nb = np.sqrt((b * b).sum(axis=1))
            with np.errstate(all="ignore"):
                c = np.einsum("jt,it->ji", a, b) / np.outer(na, nb)
            c = np.where(np.isfinite(c), c, 0.0)
            r2 = np.maximum(r2, c * c)
        net = np.clip(r2 - r2.T, 0.0, None) * wa[:, None]          # [j, i]
        np.fill_diagonal(net, 0.0)
        expl[act] = net.max(axis=0)
        best = net.argmax(axis=0)
        for k, i in enumerate(act):
            if expl[i] > 0:
                explained_by[i] = names[act[best[k]]]

    # 6. graph
    if groups is None:
        groups = names
    groups = list(groups)
    if len(groups) != N:
        raise ValueError("groups must have one label per series")
    glist = list(dict.fromkeys(groups))
    gindex = {g: k for k, g in enumerate(glist)}
    gid = np.array([gindex[g] for g in groups])
    upstream = np.zeros(N)
    coverage = np.zeros(N)
    evidence = np.zeros(N)
    if graph is not None:
        G = len(glist)
        A = _graph_matrix(graph, glist, gindex)
        D = _hop_distances(A)                                       # [a, b]: hops a -> b
        reach = np.isfinite(D)
        q = np.zeros(G)                                             # group gate = max of its series
        np.maximum.at(q, gid, gate)
        observed = np.zeros(G, dtype=bool)                          # has a scorable series
        observed[gid[usable]] = True
        with np.errstate(all="ignore"):
            rho = np.where(reach, cfg.rho * cfg.graph_decay ** (D - 1), 0.0)
            up_g = np.where(reach, q[:, None] * cfg.graph_decay ** (D - 1), 0.0).max(axis=0)
            hit = np.log(np.maximum(rho, 1e-12) / cfg.eps)           # descendant anomalous
            miss = np.log((1.0 - rho) / (1.0 - cfg.eps))             # descendant quiet
        use = reach & observed[None, :]
        ev_g = np.where(use, q[None, :] * hit + (1.0 - q[None, :]) * miss, 0.0).sum(axis=1)
        own_g = q * np.log(cfg.rho_self / cfg.eps) + (1.0 - q) * np.log((1.0 - cfg.rho_self) / (1.0 - cfg.eps))
        others = q.sum() - q
        cov_g = np.where(others > 0, (use * q[None, :]).sum(axis=1) / np.where(others > 0, others, 1.0), 0.0)
        upstream, coverage, evidence = up_g[gid], cov_g[gid], cfg.w_graph * (ev_g + own_g)[gid]

    score = lm + gate * (cfg.w_prec * (2 * prec - 1) - cfg.w_expl * expl) + evidence
    score = np.where(usable, score, -np.inf)

    order = np.lexsort((np.arange(N), -score))
    rank = np.empty(N, dtype=np.int64)
    rank[order] = np.arange(1, N + 1)
    out = pd.DataFrame({
        "name": names, "group": groups, "score": score, "rank": rank, "onset": tau, "magnitude": mag,
        "gate": gate, "precedence": prec, "explained": expl, "explained_by": explained_by,
        "graph_evidence": evidence, "upstream": upstream, "coverage": coverage, "usable": usable,
    }, columns=list(COLUMNS))
    return out.sort_values("rank", kind="stable").reset_index(drop=True)
