"""Correlate benchmark: all 9 methods on every within-location stream pair of S x L x D (default 30 x 200 x 365).

setup         = synthetic daily panel, seeded: AR(1) + weekly season per series, planted couplings in
                every location (stream 0 -> 1 lag 1, 2 -> 3 lag 3, 4 -> 5 lag 7, 6 -> 7 lag 2
                negative, 8 ~ 9 same day, 12 -> 11 lag 2 i.e. y leads x), 0.05% NaNs, stream 29
                constant in 3 locations; written as .npy; and one tiny correlate_pairs call, so the
                numba kernels are compiled into their on-disk cache (~10-30 s once per install; not timed);
correlate     = rca.correlate.correlate_pairs on all S(S-1)/2 x L pairs (x = lower stream index), all 9
                methods, in one call (wall includes imports, loading, the pair arrays and a check of
                the planted couplings);
reference_loop = the baseline: a per-pair loop of the reference library calls (`reference_pair`:
                numpy corrcoef per lag for the CCF family, statsmodels grangercausalitytests,
                scipy.signal.coherence, dtaidistance dtw.distance (C), plain numpy TE with the same
                permutations and plain numpy windowed cross-recurrence with the same surrogates) on
                `loop_pairs` random pairs; its per-pair time x all pairs is reported next to the
                engine, per method too. tests_py/test_rca_correlate.py checks the engine equals it.
Each step is a child process (wall time and its own peak RSS).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from marketing_signals.bench.harness import measure, report

PLANTED = ((0, 1, 1, 0.8), (2, 3, 3, 0.7), (4, 5, 7, 0.6), (6, 7, 2, -0.7), (8, 9, 0, 0.8), (11, 12, -2, 0.7))
# (x stream, y stream, lag in days with positive = x leads y, coefficient); x < y so each is one pair.


def synthetic_panel(streams: int, locations: int, days: int, seed: int) -> np.ndarray:
    """(locations, streams, days) float array with the PLANTED couplings."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((locations, streams, days))
    ar = np.empty_like(e)
    ar[..., 0] = e[..., 0]
    for t in range(1, days):
        ar[..., t] = 0.5 * ar[..., t - 1] + e[..., t]
    for xs, ys, lag, beta in PLANTED:
        drv, out = (xs, ys) if lag >= 0 else (ys, xs)
        k = abs(lag)
        ar[:, out, k:] += beta * ar[:, drv, :days - k]
    t = np.arange(days)
    season = rng.uniform(0, 0.8, (1, streams, 1)) * np.sin(2 * np.pi * t / 7 + rng.uniform(0, 6.3, (1, streams, 1)))
    level = rng.uniform(2, 6, (locations, streams, 1))
    panel = level + season + ar
    panel[rng.random(panel.shape) < 0.0005] = np.nan
    if streams > 29:
        panel[:3, 29, :] = 4.0
    return panel


def panel_pairs(panel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, y (pairs, days) for every within-location pair i < j, and the stream indexes i, j per pair."""
    L, S, T = panel.shape
    iu, ju = np.triu_indices(S, 1)
    x = panel[:, iu, :].reshape(-1, T)
    y = panel[:, ju, :].reshape(-1, T)
    return x, y, np.tile(iu, L), np.tile(ju, L)


# ----------------------------------------------------------------------------- per-pair reference
def _z(v):
    return (v - v.mean()) / v.std()


def _interp(v):
    v = np.asarray(v, dtype=float)
    ok = ~np.isnan(v)
    if ok.all():
        return v
    t = np.arange(len(v))
    return np.interp(t, t[ok], v[ok])


def reference_pair(x, y, cfg, methods=None, timings: dict | None = None) -> dict:
    """One pair through the reference library calls -> {method: dict(score, aux_score, lag, p_value)}.
    The straightforward per-pair definitions the engine must reproduce. `timings` accumulates seconds
    per method."""
    import time
    import warnings

    from dtaidistance import dtw
    from scipy import signal, stats
    from statsmodels.tsa.stattools import grangercausalitytests

    from marketing_signals.rca import correlate as C

    methods = methods or C.METHODS
    timings = {} if timings is None else timings
    x, y = _interp(x), _interp(y)
    xz, yz = _z(x), _z(y)
    T, L = len(x), cfg.max_lag
    out = {}

    def tick(name, t0):
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0

    if any(m in methods for m in C._CCF_METHODS):
        t0 = time.perf_counter()
        r, n = {}, {}
        for k in range(-L, L + 1):
            n[k] = T - abs(k)
            xs, ys = (xz[:n[k]], yz[k:]) if k >= 0 else (xz[-k:], yz[:n[k]])
            r[k] = np.corrcoef(xs, ys)[0, 1]
        ks = np.arange(-L, L + 1)
        f = 1.0
        if cfg.ccf_effective_n:  # Bartlett: n_eff = n / (1 + 2 sum_j rho_x(j) rho_y(j)), j <= T/5
            f = max(1.0, 1 + 2 * sum(np.dot(xz[:-j], xz[j:]) * np.dot(yz[:-j], yz[j:]) / T ** 2
                                     for j in range(1, T // 5 + 1)))
        rv, nv = np.array([r[k] for k in ks]), np.array([n[k] for k in ks]) / f
        tv = rv * np.sqrt((nv - 2) / (1 - rv ** 2))  # Pearson t; p-values as scipy.stats.pearsonr
        p2 = dict(zip(ks, 2 * stats.t.sf(np.abs(tv), nv - 2)))
        pg = dict(zip(ks, stats.t.sf(tv, nv - 2)))
        pl = dict(zip(ks, stats.t.cdf(tv, nv - 2)))
        best = max(range(1, L + 1), key=lambda k: (abs(r[k]), -k))
        out["lag"] = dict(score=r[best], lag=best, aux_score=T / f, p_value=min(1.0, L * p2[best]))
        best = max(range(-1, -L - 1, -1), key=lambda k: (abs(r[k]), -k))
        out["lead"] = dict(score=r[best], lag=best, aux_score=T / f, p_value=min(1.0, L * p2[best]))
        out["sync"] = dict(score=r[0], lag=0, aux_score=T / f, p_value=pg[0])
        best = min(range(-L, L + 1), key=lambda k: (r[k], k))
        out["anti_correlation"] = dict(score=r[best], lag=best, aux_score=T / f,
                                       p_value=min(1.0, (2 * L + 1) * pl[best]))
        tick("ccf (lag, lead, sync, anti_correlation)", t0)
    if "granger" in methods:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = grangercausalitytests(np.column_stack([y, x]), [cfg.granger_lags])
        F, p = res[cfg.granger_lags][0]["ssr_ftest"][:2]
        out["granger"] = dict(score=F, p_value=p)
        tick("granger", t0)
    if "transfer_entropy" in methods:
        t0 = time.perf_counter()
        te, null = reference_te(x, y, cfg)
        K = len(null)
        out["transfer_entropy"] = dict(score=te, aux_score=te - null.mean(), lag=cfg.te_lag,
                                       p_value=(1 + np.sum(null >= te - 1e-12)) / (K + 1))
        tick("transfer_entropy", t0)
    if "dtw" in methods:
        t0 = time.perf_counter()
        out["dtw"] = dict(score=dtw.distance(xz, yz, window=cfg.dtw_window, use_c=True))
        tick("dtw", t0)
    if "coherence" in methods:
        t0 = time.perf_counter()
        f, coh = signal.coherence(x, y, fs=1.0, nperseg=cfg.coherence_nperseg)
        band = (f >= cfg.coherence_band[0]) & (f <= cfg.coherence_band[1]) & (f > 0) & (f < 0.5)
        _, keff = C.coherence_dof(T, cfg)
        cmax = coh[band].max()
        out["coherence"] = dict(score=coh[band].mean(), aux_score=cmax,
                                p_value=1 - (1 - (1 - cmax) ** (keff - 1)) ** int(band.sum()))
        tick("coherence", t0)
    if "cross_recurrence" in methods:
        t0 = time.perf_counter()
        rr, det, lag = reference_crqa(xz, yz, cfg.recurrence_band, cfg.recurrence_eps, cfg.recurrence_lmin)
        sur = [reference_crqa(xz, np.roll(yz, -s), cfg.recurrence_band, cfg.recurrence_eps,
                              cfg.recurrence_lmin)[1] for s in C.recurrence_shifts(T, cfg)]
        out["cross_recurrence"] = dict(score=det, aux_score=rr, lag=lag,
                                       p_value=(1 + np.sum(np.array(sur) >= det - 1e-12)) / (len(sur) + 1))
        tick("cross_recurrence", t0)
    return out


def reference_te(x, y, cfg) -> tuple[float, np.ndarray]:
    """Plug-in TE x->y in bits from the joint distribution of (y_t, y_{t-1}, x_{t-lag}) on tercile
    symbols, and TE under each of the engine's shared source permutations."""
    def symbols(v):
        q = np.quantile(v, np.arange(1, cfg.te_bins) / cfg.te_bins)
        return np.searchsorted(q, v, side="left")  # v <= q[0] -> 0, ...

    sx, sy = symbols(x), symbols(y)
    T, lag = len(x), cfg.te_lag
    t0 = max(1, lag)
    a, bb, src = sy[t0:], sy[t0 - 1:T - 1], sx[t0 - lag:T - lag]

    B = cfg.te_bins

    def te(c):  # sum p(a,b,c) log2 [p(a,b,c) p(b) / (p(a,b) p(b,c))]
        joint = np.bincount((a * B + bb) * B + c, minlength=B ** 3).reshape(B, B, B) / len(c)
        p_ab, p_bc, p_b = joint.sum(axis=2), joint.sum(axis=0), joint.sum(axis=(0, 2))
        i, j, k = np.nonzero(joint)
        pj = joint[i, j, k]
        return float(np.sum(pj * np.log2(pj * p_b[j] / (p_ab[i, j] * p_bc[j, k]))))

    from marketing_signals.rca.correlate import te_permutations
    return te(src), np.array([te(src[pm]) for pm in te_permutations(T, cfg)])


def reference_crqa(xz, yz, band, eps, lmin) -> tuple[float, float, int]:
    """RR, DET and the densest diagonal of the windowed cross-recurrence matrix R[i, j] = |x_i - y_j| <= eps,
    |i - j| <= band: each diagonal as a numpy slice, DET from its run lengths."""
    T = len(xz)
    rec = inl = cells = 0
    best, best_d = -1, 0
    for d in range(-band, band + 1):
        i0, i1 = max(0, -d), min(T, T - d)
        diag = np.abs(xz[i0:i1] - yz[i0 + d:i1 + d]) <= eps  # R[i, i + d]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], diag.astype(np.int8), [0]])))
        runs = edges[1::2] - edges[::2]  # lengths of the runs of recurrent points
        rec += runs.sum()
        inl += runs[runs >= lmin].sum()
        cells += len(diag)
        if runs.sum() > best:
            best, best_d = runs.sum(), d
    return rec / cells, (inl / rec if rec else 0.0), int(best_d)


# ----------------------------------------------------------------------------- bench steps
SETUP = r"""
import sys, numpy as np
from marketing_signals.bench.correlate import synthetic_panel
from marketing_signals.rca.correlate import correlate_pairs
S, L, D, seed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
np.save(out, synthetic_panel(S, L, D, seed))
correlate_pairs(np.random.default_rng(0).standard_normal((2, D)), np.random.default_rng(1).standard_normal((2, D)))
"""

RUN = r"""
import time
t_start = time.perf_counter()
import sys, json, numpy as np, pandas as pd
from marketing_signals.bench.correlate import panel_pairs, PLANTED
from marketing_signals.rca.correlate import correlate_pairs, CorrelateConfig, METHODS
data, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
x, y, i, j = panel_pairs(np.load(data))
t1 = time.perf_counter()
df = correlate_pairs(x, y, CorrelateConfig())
t2 = time.perf_counter()
# planted couplings: is the expected method significant at the planted lag? (all other pairs: false-positive rate)
planted = np.zeros(len(x), dtype=bool)
hits = {}
for xs, ys, lag, beta in PLANTED:
    sel = (i == xs) & (j == ys)
    planted |= sel
    m = "sync" if lag == 0 else ("anti_correlation" if beta < 0 else ("lag" if lag > 0 else "lead"))
    r = df[(df["method"] == m)].set_index("pair").loc[np.flatnonzero(sel)]
    hits[f"{xs}-{ys} {m} lag {lag}"] = float(((r["lag"] == lag) & r["significant"].fillna(False)).mean())
sig = df.assign(planted=planted[df["pair"].to_numpy()]).groupby(["method", "planted"])["significant"].mean()
share = {f"{m} {'planted' if p else 'other'}": (None if pd.isna(v) else float(v)) for (m, p), v in sig.items()}
reasons = df["reason"].value_counts().to_dict()
json.dump({"pairs": int(len(x)), "days": int(x.shape[1]), "rows": int(len(df)), "import_seconds": t0 - t_start,
           "load_seconds": t1 - t0, "engine_seconds": t2 - t1, "check_seconds": time.perf_counter() - t2,
           "seconds": df.attrs["seconds"], "planted_recovery": hits, "significant_share": share,
           "null_reasons": reasons}, open(out, "w"))
"""

LOOP = r"""
import sys, json, time, numpy as np
from marketing_signals.bench.correlate import reference_pair
from marketing_signals.rca.correlate import CorrelateConfig
data, k, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
panel = np.load(data)
L, S, T = panel.shape
iu, ju = np.triu_indices(S, 1)
P = L * len(iu)
pairs = [(panel[r // len(iu), iu[r % len(iu)]], panel[r // len(iu), ju[r % len(iu)]])
         for r in np.random.default_rng(0).permutation(P)[: (k or P) * 2]]
pairs = [(x, y) for x, y in pairs if np.nanstd(x) > 0 and np.nanstd(y) > 0][: (k or P)]  # skip constant series
cfg, timings = CorrelateConfig(), {}
t0 = time.perf_counter()
for x, y in pairs:
    reference_pair(x, y, cfg, timings=timings)
dt = time.perf_counter() - t0
json.dump({"pairs_measured": len(pairs), "pairs_total": int(P), "seconds": dt, "seconds_per_pair": dt / len(pairs),
           "seconds_per_pair_by_method": {m: s / len(pairs) for m, s in timings.items()}},
          open(out, "w"))
"""


def run(project: Path, work: Path, streams: int = 30, locations: int = 200, days: int = 365,
        seed: int = 42, loop_pairs: int = 300) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"correlate_{streams}x{locations}x{days}.npy"
    py = sys.executable
    rows = [measure("setup (generate, not compared)", [py, "-c", SETUP, str(streams), str(locations), str(days),
                                                       str(seed), str(data)])]
    run_json, loop_json = work / "correlate_run.json", work / "correlate_loop.json"
    rows.append(measure("correlate (9 methods)", [py, "-c", RUN, str(data), str(run_json)]))
    rows.append(measure(f"reference_loop ({loop_pairs or 'all'} pairs)", [py, "-c", LOOP, str(data), str(loop_pairs),
                                                                            str(loop_json)]))
    r = json.loads(run_json.read_text())
    lp = json.loads(loop_json.read_text())
    P = r["pairs"]
    loop_full = lp["seconds_per_pair"] * P
    eng = r["seconds"]
    per_method = {m: {"engine_seconds": eng.get(m), "reference_seconds_all_pairs": s * P,
                      "speedup": (s * P / eng[m]) if eng.get(m) else None}
                  for m, s in lp["seconds_per_pair_by_method"].items()}
    rows[1].detail = (f"{P:,} pairs x {r['days']} days -> {r['rows']:,} rows; engine {r['engine_seconds']:.1f} s ("
                      + ", ".join(f"{k} {v:.1f}" for k, v in eng.items())
                      + f"); outside it: imports {r['import_seconds']:.1f} s, load + pair arrays "
                        f"{r['load_seconds']:.1f} s, planted-coupling check {r['check_seconds']:.1f} s")
    rows[2].detail = (f"{lp['seconds_per_pair'] * 1e3:.1f} ms per pair -> {loop_full:,.0f} s for all {P:,} pairs "
                      f"({loop_full / rows[1].wall_s:,.0f}x correlate); per method, reference all pairs / engine: "
                      + ", ".join(f"{m} {v['reference_seconds_all_pairs']:,.0f}/{v['engine_seconds'] or 0:.1f} s"
                                  for m, v in per_method.items()))
    extra = {"streams": streams, "locations": locations, "days": days, "engine": r, "loop": lp,
             "loop_all_pairs_seconds": loop_full, "per_method": per_method,
             "speedup_vs_per_pair_loop": loop_full / rows[1].wall_s,
             "correlate_budget_seconds": 120, "within_budget": rows[1].wall_s <= 120}
    result = report("correlate", P, rows, baseline="correlate (9 methods)", extra=extra)
    print(f"per-pair reference loop for all {P:,} pairs: {loop_full:,.0f} s = {loop_full / rows[1].wall_s:,.1f}x "
          f"correlate ({rows[1].wall_s:.1f} s; budget 120 s, target >= 50x)")
    print("planted couplings recovered (share of locations):", json.dumps(r["planted_recovery"]))
    return result
