"""Correlate (issue 7): nine lead/lag and coupling statistics for many aligned series pairs at once.

`correlate_pairs(x, y)` takes P pairs of aligned daily series (source x, target y; arrays of
shape (P, T)) and returns one row per pair x method. Nothing loops over pairs in Python:

* the pairs are first reduced to their distinct series (a pair panel of S streams x L locations
  has S*L distinct series but S*(S-1)/2*L pairs), so per-series work (interpolation, z-scores,
  TE symbols) runs once per series;
* CCF (lag, lead, sync, anti_correlation): one batched dot product per lag on chunks of pairs;
* granger: batched OLS on the normal equations (one (2p+1)^2 Gram matrix per pair from a
  batched matmul, then a batched Cholesky); equals statsmodels' ssr F-test;
* coherence: scipy.signal.coherence's own formula, `csd(x, y)` on chunks of stacked pairs over
  `welch` of each distinct series;
* dtw: dtaidistance's C code, one `distance_matrix_fast` call (OpenMP) per connected group of
  series (e.g. all stream pairs of one location), with its Sakoe-Chiba window;
* transfer_entropy and cross_recurrence: numba kernels, parallel over pairs (TE: over the pairs'
  x series, whose permuted bitsets are shared), with the permutation / surrogate loops inside.

Each statistic is checked against a per-pair reference (statsmodels, scipy, dtaidistance or a
plain numpy loop) in tests_py/test_rca_correlate.py. Methods, estimators and score meanings:
docs/correlate.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
from numba import types
from numba.extending import intrinsic
from scipy import signal, stats

METHODS = ("lag", "lead", "sync", "anti_correlation", "granger", "transfer_entropy", "dtw", "coherence",
           "cross_recurrence")
_CCF_METHODS = ("lag", "lead", "sync", "anti_correlation")
COLUMNS = ("pair", "method", "score", "aux_score", "lag", "p_value", "ci_low", "ci_high", "significant", "reason")


@dataclass(frozen=True)
class CorrelateConfig:
    """Parameters; every default is for daily series of about a year."""
    max_lag: int = 7                 # CCF lags scanned: 1..max_lag (lag, lead), -max_lag..max_lag (anti)
    ccf_effective_n: bool = True     # CCF tests on Bartlett's effective sample size (autocorrelation)
    granger_lags: int = 7            # fixed VAR order p of the Granger test (one week of daily lags)
    te_bins: int = 3                 # TE: plug-in estimator on equiprobable (tercile) symbols, history 1
    te_lag: int = 1                  # TE source lag: x[t - te_lag] -> y[t], conditioned on y[t - 1]
    te_permutations: int = 100       # TE null: source time index shuffled (shared across pairs), seeded
    dtw_window: int = 8              # dtaidistance window: |i - j| < dtw_window (warping up to 7 days)
    coherence_nperseg: int = 64      # Welch segment length (Hann, 50% overlap: scipy's defaults)
    coherence_band: tuple[float, float] = (1 / 32, 0.5)  # cycles/day, inclusive; DC, Nyquist bins dropped
    recurrence_eps: float = 0.2      # recurrence threshold |x_i - y_j| <= eps on z-scored series
    recurrence_band: int = 7         # windowed CRQA: only cells with |i - j| <= band
    recurrence_lmin: int = 2         # shortest diagonal line counted by DET
    recurrence_surrogates: int = 19  # DET null: circular shifts of y (shared across pairs), seeded
    alpha: float = 0.05
    seed: int = 0
    chunk_pairs: int = 1024          # pairs per batch in the numpy paths (memory, not results)


# ----------------------------------------------------------------------------- public entry
def correlate_pairs(x: np.ndarray, y: np.ndarray, config: CorrelateConfig = CorrelateConfig(),
                    methods=METHODS) -> pd.DataFrame:
    """All requested methods for P aligned pairs (x[i] is the source, y[i] the target).

    x, y: float arrays of shape (P, T) (a 1-D pair is taken as P = 1). NaNs are linearly
    interpolated (ends: nearest value). A pair whose x or y is all-NaN or constant gets null
    scores, significant=False and a `reason`. Infinite values raise ValueError.
    Returns the long frame described in COLUMNS, rows ordered by pair then method; per-method
    wall seconds are in `frame.attrs["seconds"]`.
    """
    cfg = config
    methods = tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown methods {unknown}; choose from {METHODS}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x, y = x[None, :], y.reshape(1, -1)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape (P, T); got {x.shape} and {y.shape}")
    P, T = x.shape
    check_length(T, cfg, methods)
    if np.isinf(x).any() or np.isinf(y).any():
        raise ValueError("x or y contains infinite values")

    if P == 0:
        return _assemble(0, methods, {m: _empty(0, np.empty(0, dtype=object)) for m in methods})
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    U, a, b = _distinct_series(x, y)
    raw, z, bad = _prepare(U)
    reason = np.full(P, None, dtype=object)
    for side, idx in (("y", b), ("x", a)):  # x's reason wins when both are bad
        r = bad[idx]
        hit = r != None  # noqa: E711 (element-wise)
        reason[hit] = np.char.add(f"{side}_", r[hit].astype(str)).astype(object)
    ok = np.flatnonzero(reason == None)  # noqa: E711
    av, bv = a[ok], b[ok]
    seconds["prepare"] = time.perf_counter() - t0

    out = {m: _empty(P, reason) for m in methods}

    def put(method, res):
        o = out[method]
        for k, v in res.items():
            o[k][ok] = v

    if any(m in methods for m in _CCF_METHODS):
        t = time.perf_counter()
        for m, res in _ccf_methods(z, av, bv, cfg).items():
            if m in methods:
                put(m, res)
        seconds["ccf (lag, lead, sync, anti_correlation)"] = time.perf_counter() - t
    for m, fn, src in (("granger", _granger, z), ("transfer_entropy", _transfer_entropy, raw),
                       ("dtw", _dtw, z), ("coherence", _coherence, raw), ("cross_recurrence", _cross_recurrence, z)):
        if m in methods:
            t = time.perf_counter()
            put(m, fn(src, av, bv, cfg))
            seconds[m] = time.perf_counter() - t

    t = time.perf_counter()
    frame = _assemble(P, methods, out)
    seconds["assemble"] = time.perf_counter() - t
    frame.attrs["seconds"] = seconds
    return frame


def check_length(T: int, cfg: CorrelateConfig, methods=METHODS) -> None:
    """Raise ValueError when T days are too few for the configured methods."""
    need = {"lag": 2 * cfg.max_lag + 4, "lead": 2 * cfg.max_lag + 4, "sync": 4,
            "anti_correlation": 2 * cfg.max_lag + 4,
            "granger": 3 * cfg.granger_lags + 2,  # statsmodels: T > 3p + 1
            "transfer_entropy": max(cfg.te_lag, 1) + 2 * cfg.te_bins ** 3,
            "dtw": 2, "coherence": cfg.coherence_nperseg,
            "cross_recurrence": 2 * (2 * cfg.recurrence_band + 1) + max(cfg.recurrence_surrogates, 1)}
    short = {m: need[m] for m in methods if T < need[m]}
    if short:
        raise ValueError(f"series of {T} days are too short for {short} (days needed per method)")
    if cfg.max_lag < 1 or cfg.granger_lags < 1 or cfg.te_lag < 1 or cfg.te_bins < 2 or cfg.dtw_window < 1:
        raise ValueError("max_lag, granger_lags, te_lag, dtw_window must be >= 1 and te_bins >= 2")


def te_permutations(T: int, cfg: CorrelateConfig) -> np.ndarray:
    """The shared source permutations of the TE test: (te_permutations, T - max(1, te_lag)) int64."""
    n = T - max(1, cfg.te_lag)
    rng = np.random.default_rng([cfg.seed, 1])
    return rng.permuted(np.tile(np.arange(n, dtype=np.int64), (cfg.te_permutations, 1)), axis=1)


def recurrence_shifts(T: int, cfg: CorrelateConfig) -> np.ndarray:
    """The shared circular shifts of y for the DET test, away from the band: in [2w+1, T-2w-1]."""
    lo, hi = 2 * cfg.recurrence_band + 1, T - 2 * cfg.recurrence_band - 1
    rng = np.random.default_rng([cfg.seed, 2])
    k = cfg.recurrence_surrogates
    return np.sort(rng.choice(np.arange(lo, hi + 1), size=k, replace=k > hi - lo + 1)).astype(np.int64)


def te_symbols(u: np.ndarray, bins: int) -> np.ndarray:
    """Equiprobable symbols 0..bins-1 per row: thresholds at the row's 1/bins, 2/bins, ... quantiles
    (ties go to the lower symbol)."""
    q = np.quantile(u, np.arange(1, bins) / bins, axis=-1)  # (bins-1, rows)
    s = np.zeros(u.shape, dtype=np.uint8)
    for qi in q:
        s += u > qi[..., None]
    return s


def coherence_dof(T: int, cfg: CorrelateConfig) -> tuple[int, float]:
    """Segments K of scipy's Welch estimate and the equivalent number of independent segments
    K_eff = K / (1 + 2 sum_j (1 - j/K) rho_j), rho_j the squared window overlap correlation at
    j hops (Welch 1967; Hann, 50% overlap: rho_1 = 0.167, K_eff ~ K / 1.05)."""
    ns = cfg.coherence_nperseg
    hop = ns - ns // 2
    K = 1 + (T - ns) // hop
    w = signal.get_window("hann", ns)
    den = float(np.sum(w * w)) ** 2
    corr = 0.0
    for j in range(1, K):
        if j * hop >= ns:
            break
        corr += (1 - j / K) * float(np.sum(w[: ns - j * hop] * w[j * hop:])) ** 2 / den
    return K, K / (1 + 2 * corr)


def coherence_threshold(T: int, cfg: CorrelateConfig) -> float:
    """Coherence level a single band frequency exceeds with probability alpha/m (Sidak over the m band
    frequencies) under independence: C ~ Beta(1, K_eff - 1), P(C > c) = (1 - c)^(K_eff - 1)."""
    _, keff = coherence_dof(T, cfg)
    f = np.fft.rfftfreq(cfg.coherence_nperseg)
    m = int(np.sum((f >= cfg.coherence_band[0]) & (f <= cfg.coherence_band[1]) & (f > 0) & (f < 0.5)))
    a_each = 1 - (1 - cfg.alpha) ** (1 / m)
    return 1 - a_each ** (1 / (keff - 1))


# ----------------------------------------------------------------------------- preparation
def _distinct_series(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows U of [x; y] (bit-exact, NaNs canonical) and the indexes a, b of x[i], y[i] in U.
    Rows are grouped by a 64-bit multiplicative hash of their bits, then checked bit for bit (a
    collision falls back to an exact np.unique over the rows)."""
    P, T = x.shape
    mult = np.random.default_rng(7).integers(1, 2 ** 63, size=T, dtype=np.uint64) | np.uint64(1)

    def bits(m):
        return np.where(np.isnan(m), np.nan, m).view(np.uint64)  # one NaN bit pattern

    h = np.concatenate([np.concatenate([(bits(m[s:s + 4096]) * mult).sum(axis=1, dtype=np.uint64)
                                        for s in range(0, P, 4096)]) for m in (x, y)])
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.ravel()
    U = np.where((first < P)[:, None], x[np.minimum(first, P - 1)], y[np.maximum(first - P, 0)])
    Ub = bits(U)
    same = all((bits(m[s:s + 4096]) == Ub[inv[off + s:off + min(s + 4096, P)]]).all()
               for off, m in ((0, x), (P, y)) for s in range(0, P, 4096))
    if not same:  # a hash collision: exact distinct rows instead
        stacked = np.concatenate([x, y])
        stacked = np.ascontiguousarray(np.where(np.isnan(stacked), np.nan, stacked))
        _, first, inv = np.unique(stacked.view(np.dtype((np.void, T * 8))).ravel(), return_index=True,
                                  return_inverse=True)
        U = stacked[first]
    inv = inv.ravel().astype(np.int64)
    return np.ascontiguousarray(U), inv[:P], inv[P:]


def _interpolate(u: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaNs along each row; leading/trailing NaNs take the nearest value."""
    nan = np.isnan(u)
    if not nan.any():
        return u
    T = u.shape[1]
    t = np.arange(T)
    prev = np.maximum.accumulate(np.where(nan, -1, t), axis=1)
    nxt = np.minimum.accumulate(np.where(nan, T, t)[:, ::-1], axis=1)[:, ::-1]
    lo = np.clip(np.where(prev < 0, nxt, prev), 0, T - 1)
    hi = np.clip(np.where(nxt >= T, prev, nxt), 0, T - 1)
    rows = np.arange(len(u))[:, None]
    vlo, vhi = u[rows, lo], u[rows, hi]
    w = np.where(hi > lo, (t - lo) / np.maximum(hi - lo, 1), 0.0)
    return np.where(nan, vlo + (vhi - vlo) * w, u)


def _prepare(U: np.ndarray):
    """Interpolated series, z-scores (population sd) and a reason per distinct series
    ('all_nan', 'constant' or None)."""
    all_nan = np.isnan(U).all(axis=1)
    raw = _interpolate(U)
    raw[all_nan] = 0.0
    mu = raw.mean(axis=1, keepdims=True)
    sd = raw.std(axis=1, keepdims=True)
    const = (sd[:, 0] <= 1e-12 * np.abs(raw).max(axis=1)) & ~all_nan
    bad = np.full(len(U), None, dtype=object)
    bad[const] = "constant"
    bad[all_nan] = "all_nan"
    good = bad == None  # noqa: E711
    z = np.zeros_like(raw)
    z[good] = (raw[good] - mu[good]) / sd[good]
    return raw, z, bad


def _empty(P, reason):
    nan = np.full(P, np.nan)
    valid = reason == None  # noqa: E711 (element-wise)
    return {"score": nan.copy(), "aux_score": nan.copy(), "lag": nan.copy(), "p_value": nan.copy(),
            "ci_low": nan.copy(), "ci_high": nan.copy(), "significant": np.where(valid, np.nan, 0.0),
            "reason": reason.copy()}


def _assemble(P: int, methods, out) -> pd.DataFrame:
    M = len(methods)
    order = np.arange(M * P).reshape(M, P).T.ravel()  # pair-major rows

    def col(k):
        return np.concatenate([out[m][k] for m in methods])[order]

    lag, sig = col("lag"), col("significant")
    reason = col("reason")
    return pd.DataFrame({
        "pair": np.repeat(np.arange(P, dtype=np.int64), M),
        "method": pd.array(np.tile(np.array(methods, dtype=object), P), dtype="string"),
        "score": col("score"), "aux_score": col("aux_score"),
        "lag": pd.arrays.IntegerArray(np.nan_to_num(lag).astype(np.int64), np.isnan(lag)),
        "p_value": col("p_value"), "ci_low": col("ci_low"), "ci_high": col("ci_high"),
        "significant": pd.arrays.BooleanArray(sig == 1.0, np.isnan(sig)),
        "reason": pd.array(reason, dtype="string"),
    })


def _chunks(n, size):
    for s in range(0, n, size):
        yield s, min(s + size, n)


# ----------------------------------------------------------------------------- CCF family
def _pearson_t(r, n):
    df = np.maximum(n - 2, 1)
    return r * np.sqrt(df / np.maximum(1 - r * r, 1e-300)), df


def _fisher_ci(r, n, alpha):
    zc = stats.norm.ppf(1 - alpha / 2) / np.sqrt(np.maximum(n - 3, 1))
    fz = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
    return np.tanh(fz - zc), np.tanh(fz + zc)


def ccf_matrix(z: np.ndarray, a: np.ndarray, b: np.ndarray, max_lag: int, chunk: int = 1024) -> np.ndarray:
    """Pearson r of (x[t], y[t + k]) over the overlap, k = -max_lag..max_lag -> (pairs, 2*max_lag+1)."""
    T = z.shape[1]
    lags = np.arange(-max_lag, max_lag + 1)
    R = np.empty((len(a), len(lags)))
    for s, e in _chunks(len(a), chunk):
        X, Y = z[a[s:e]], z[b[s:e]]
        cs = {}
        for nm, v in (("x", X), ("xx", X * X), ("y", Y), ("yy", Y * Y)):
            c = np.zeros((len(v), T + 1))
            np.cumsum(v, axis=1, out=c[:, 1:])
            cs[nm] = c
        for j, k in enumerate(lags):
            n = T - abs(k)
            x0, y0 = (0, k) if k >= 0 else (-k, 0)
            sxy = np.einsum("ij,ij->i", X[:, x0:x0 + n], Y[:, y0:y0 + n])
            mx = (cs["x"][:, x0 + n] - cs["x"][:, x0]) / n
            my = (cs["y"][:, y0 + n] - cs["y"][:, y0]) / n
            vx = (cs["xx"][:, x0 + n] - cs["xx"][:, x0]) / n - mx * mx
            vy = (cs["yy"][:, y0 + n] - cs["yy"][:, y0]) / n - my * my
            with np.errstate(invalid="ignore", divide="ignore"):
                r = (sxy / n - mx * my) / np.sqrt(vx * vy)
            R[s:e, j] = np.where((vx > 1e-12) & (vy > 1e-12), np.clip(r, -1, 1), np.nan)
    return R


def acf(z: np.ndarray, m: int) -> np.ndarray:
    """Autocorrelations at lags 1..m of z-scored rows: sum_t z_t z_{t+j} / T (the biased estimator)."""
    T = z.shape[1]
    f = np.fft.rfft(z, n=2 * T, axis=1)
    return np.fft.irfft(f * f.conj(), n=2 * T, axis=1)[:, 1:m + 1] / T


def _ccf_methods(z, a, b, cfg):
    """Pearson r per lag; t-test p-values and Fisher-z intervals on n_eff = (T - |k|) / f, where
    f = 1 + 2 sum_{j=1}^{T//5} rho_x(j) rho_y(j) (Bartlett; clipped to f >= 1) when ccf_effective_n,
    else f = 1 (the textbook test, which is too liberal for autocorrelated series)."""
    L, T, alpha = cfg.max_lag, z.shape[1], cfg.alpha
    R = ccf_matrix(z, a, b, L, cfg.chunk_pairs)
    f = np.ones(len(a))
    if cfg.ccf_effective_n:
        used, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
        rho = acf(z[used], T // 5)
        for s, e in _chunks(len(a), cfg.chunk_pairs):
            f[s:e] = 1 + 2 * np.einsum("ij,ij->i", rho[inv[s:e]], rho[inv[len(a) + s:len(a) + e]])
        f = np.maximum(f, 1.0)
    lags = np.arange(-L, L + 1)
    rows = np.arange(len(a))
    out = {}

    def pick(cols, key):
        sub = R[:, cols]
        j = np.argmax(np.where(np.isnan(sub), -np.inf, key(sub)), axis=1)
        return sub[rows, j], lags[cols][j]

    for m, cols in (("lag", slice(L + 1, None)), ("lead", slice(0, L))):
        r, k = pick(cols, np.abs)
        t, df = _pearson_t(r, (T - np.abs(k)) / f)
        p = np.minimum(1.0, L * 2 * stats.t.sf(np.abs(t), df))  # Bonferroni over the L lags scanned
        out[m] = (r, k, p)
    r0 = R[:, L]
    t, df = _pearson_t(r0, T / f)
    out["sync"] = (r0, np.zeros(len(a)), stats.t.sf(t, df))  # one-sided: r > 0
    r, k = pick(slice(None), np.negative)
    t, df = _pearson_t(r, (T - np.abs(k)) / f)
    out["anti_correlation"] = (r, k, np.minimum(1.0, (2 * L + 1) * stats.t.cdf(t, df)))  # one-sided r < 0

    res = {}
    for m, (r, k, p) in out.items():
        lo, hi = _fisher_ci(r, (T - np.abs(k)) / f, alpha)
        bad = np.isnan(r)
        res[m] = {"score": r, "lag": np.where(bad, np.nan, k), "p_value": p, "ci_low": lo, "ci_high": hi,
                  "aux_score": T / f,
                  "significant": np.where(bad, 0.0, p <= alpha),
                  "reason": np.where(bad, "degenerate_overlap", None).astype(object)}
    return res


# ----------------------------------------------------------------------------- Granger
def _cholesky(G):
    """Batched lower Cholesky factors; a matrix that is not positive definite gives NaNs."""
    try:
        return np.linalg.cholesky(G)
    except np.linalg.LinAlgError:
        out = np.full_like(G, np.nan)
        for s in range(len(G)):  # only when some matrix fails: find it
            try:
                out[s] = np.linalg.cholesky(G[s])
            except np.linalg.LinAlgError:
                pass
        return out


def _granger(z, a, b, cfg):
    """F-test of "x Granger-causes y" with order p: y_t on const + y_{t-1..t-p} (restricted) vs also
    x_{t-1..t-p} (unrestricted), rows t = p..T-1 (statsmodels' lagmat trim 'both').

    Columns are centred (= the constant). With the Cholesky factor L of the Gram matrix of
    [y lags, x lags, y_t], the last row of L holds the regression of y_t on the earlier columns:
    SSR_u = L[-1,-1]^2 and SSR_r - SSR_u = sum of L[-1, p:2p]^2 (no subtraction of large numbers).
    F = (SSR_r - SSR_u) / p / (SSR_u / (n - 2p - 1)), n = T - p."""
    p, T = cfg.granger_lags, z.shape[1]
    n = T - p
    dfr = n - 2 * p - 1
    F = np.full(len(a), np.nan)
    for s, e in _chunks(len(a), cfg.chunk_pairs):
        X, Y = z[a[s:e]], z[b[s:e]]
        D = np.empty((e - s, 2 * p + 1, n))
        for i in range(1, p + 1):
            D[:, i - 1] = Y[:, p - i:T - i]
            D[:, p + i - 1] = X[:, p - i:T - i]
        D[:, 2 * p] = Y[:, p:]
        D -= D.mean(axis=2, keepdims=True)
        L = _cholesky(D @ D.transpose(0, 2, 1))
        last = L[:, -1]
        ssr_u = last[:, -1] ** 2
        gain = np.sum(last[:, p:2 * p] ** 2, axis=1)
        fit = ssr_u > np.finfo(float).eps * np.sum(last ** 2, axis=1)  # not a perfect fit
        with np.errstate(invalid="ignore", divide="ignore"):
            F[s:e] = np.where(fit, gain / ssr_u * dfr / p, np.nan)
    bad = np.isnan(F)
    pv = stats.f.sf(F, p, dfr)
    return {"score": F, "p_value": pv, "significant": np.where(bad, 0.0, pv <= cfg.alpha),
            "reason": np.where(bad, "singular_or_perfect_fit", None).astype(object)}


# ----------------------------------------------------------------------------- transfer entropy
@intrinsic
def _popcount(typingctx, x):  # pragma: no cover (compiled)
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


@numba.njit(cache=True)
def _te_value(cnt, fixed, tbl, nb, n):  # pragma: no cover (compiled)
    """TE from the (y_t, y_{t-1}, x) cell counts: (S(y+,y,x) + S(y) - S(y+,y) - S(y,x)) / n, S = sum c log2 c."""
    nb2 = nb * nb
    v = fixed
    for cell in range(nb2 * nb):
        v += tbl[cnt[cell]]
    for j in range(nb2):  # (y_{t-1}, x) counts = sums over y_t
        s = 0
        for h in range(nb):
            s += cnt[h * nb2 + j]
        v -= tbl[s]
    return v / n


@numba.njit(parallel=True, cache=True)
def _te_kernel(sym, xg, starts, ys_ids, lag, nb, perms):  # pragma: no cover (compiled)
    """Plug-in TE x->y (bits) per pair and its permutation null (count >= observed, mean).

    Pairs come grouped by their x series (group g: x = sym[xg[g]], pairs starts[g]:starts[g+1]).
    A group of >= 3 pairs builds, once, bitsets of the permuted source per symbol and counts every
    cell of every pair as popcount(y-cell bits & x-symbol bits); a smaller group counts cells directly."""
    G, P, T = xg.shape[0], ys_ids.shape[0], sym.shape[1]
    t0 = max(1, lag)
    n = T - t0
    K = perms.shape[0]
    W = (n + 63) // 64
    nb2, nb3 = nb * nb, nb * nb * nb
    tbl = np.zeros(n + 1)
    for c in range(1, n + 1):
        tbl[c] = c * np.log2(c)
    te = np.empty(P)
    ge = np.zeros(P, dtype=np.int64)
    mean = np.zeros(P)
    for g in numba.prange(G):
        xs = sym[xg[g]]
        src = np.empty(n, dtype=np.int64)
        for i in range(n):
            src[i] = xs[t0 + i - lag]
        bits = starts[g + 1] - starts[g] >= 3
        XB = np.zeros((K + 1 if bits else 0, nb, W), dtype=np.uint64)  # permuted source == c, bit i
        if bits:
            for i in range(n):
                XB[0, src[i], i >> 6] |= np.uint64(1) << np.uint64(i & 63)
            for k in range(K):
                for i in range(n):
                    XB[k + 1, src[perms[k, i]], i >> 6] |= np.uint64(1) << np.uint64(i & 63)
        YB = np.zeros((nb2, W), dtype=np.uint64)
        base = np.empty(n, dtype=np.int64)
        cnt = np.zeros(nb3, dtype=np.int64)
        for q in range(starts[g], starts[g + 1]):
            ys = sym[ys_ids[q]]
            YB[:] = 0
            cab = np.zeros(nb2, dtype=np.int64)
            cb = np.zeros(nb, dtype=np.int64)
            for i in range(n):
                v = ys[t0 + i] * nb + ys[t0 + i - 1]
                base[i] = v * nb
                YB[v, i >> 6] |= np.uint64(1) << np.uint64(i & 63)
                cab[v] += 1
                cb[ys[t0 + i - 1]] += 1
            fixed = 0.0
            for c in cb:
                fixed += tbl[c]
            for c in cab:
                fixed -= tbl[c]
            obs = 0.0
            for k in range(K + 1):
                if bits:
                    for v in range(nb2):
                        for c in range(nb):
                            s = np.uint64(0)
                            for w in range(W):
                                s += _popcount(YB[v, w] & XB[k, c, w])
                            cnt[v * nb + c] = s
                else:
                    cnt[:] = 0
                    for i in range(n):
                        cnt[base[i] + (src[i] if k == 0 else src[perms[k - 1, i]])] += 1
                val = _te_value(cnt, fixed, tbl, nb, n)
                if k == 0:
                    obs = val
                else:
                    mean[q] += val / K
                    if val >= obs - 1e-12:
                        ge[q] += 1
            te[q] = obs
    return te, ge, mean


def _transfer_entropy(raw, a, b, cfg):
    """TE x->y = I(y_t ; x_{t-lag} | y_{t-1}) in bits, plug-in on te_bins equiprobable symbols.
    p = (1 + #{permuted TE >= TE}) / (K + 1); aux_score = TE - mean permuted TE (bias-corrected)."""
    sym = te_symbols(raw, cfg.te_bins)
    perms = te_permutations(raw.shape[1], cfg)
    if len(a) == 0:
        return {}
    order = np.argsort(a, kind="stable")  # group the pairs by x series
    xg, starts = np.unique(a[order], return_index=True)
    te, ge, mean = _te_kernel(sym, xg, np.append(starts, len(a)), b[order], cfg.te_lag, cfg.te_bins, perms)
    te[order], ge[order], mean[order] = te.copy(), ge.copy(), mean.copy()
    K = cfg.te_permutations
    res = {"score": te, "lag": np.full(len(a), float(cfg.te_lag))}
    if K > 0:
        pv = (1 + ge) / (K + 1)
        res |= {"aux_score": te - mean, "p_value": pv, "significant": (pv <= cfg.alpha).astype(float)}
    return res


# ----------------------------------------------------------------------------- DTW
def _dtw(z, a, b, cfg):
    """dtaidistance DTW (C, squared-Euclidean cost, sqrt of the path sum) of the z-scored series with
    window=dtw_window. Pairs are grouped into connected components of the series they use; a
    component whose full triangle is at most 8x its pairs (e.g. all stream pairs of a location) is
    one `distance_matrix_fast` call (OpenMP), any other pair is one `distance_fast` call."""
    from dtaidistance import dtw
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    P = len(a)
    d = np.zeros(P)
    if P == 0:
        return {"score": d}
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    la, lb = inv[:P], inv[P:]
    _, comp = connected_components(coo_matrix((np.ones(P), (la, lb)), shape=(len(nodes),) * 2), directed=False)
    pair_comp = comp[la]
    porder = np.argsort(pair_comp, kind="stable")
    pbounds = np.flatnonzero(np.diff(pair_comp[porder])) + 1
    norder = np.argsort(comp, kind="stable")
    nstart = np.searchsorted(comp[norder], np.arange(comp.max() + 2))
    sparse_pairs = []
    for grp in np.split(porder, pbounds):
        c = pair_comp[grp[0]]
        members = np.sort(norder[nstart[c]:nstart[c + 1]])  # local node ids of the component
        m = len(members)
        if m * (m - 1) // 2 > 8 * len(grp) or m == 2:
            sparse_pairs.append(grp)
            continue
        cond = np.asarray(dtw.distance_matrix_fast(z[nodes[members]], window=cfg.dtw_window, compact=True,
                                                   parallel=True))
        i, j = np.searchsorted(members, la[grp]), np.searchsorted(members, lb[grp])
        i, j = np.minimum(i, j), np.maximum(i, j)
        k = i * m - i * (i + 1) // 2 + (j - i - 1)
        d[grp] = np.where(i == j, 0.0, cond[np.clip(k, 0, len(cond) - 1)])
    if sparse_pairs:
        for q in np.concatenate(sparse_pairs):
            d[q] = 0.0 if a[q] == b[q] else dtw.distance_fast(z[a[q]], z[b[q]], window=cfg.dtw_window)
    return {"score": d}


# ----------------------------------------------------------------------------- coherence
def _coherence(raw, a, b, cfg):
    """scipy.signal.coherence (Welch, Hann, nperseg, 50% overlap, fs = 1/day; computed as scipy does,
    |csd|^2 / welch_x / welch_y, with each series' welch once) averaged over the band
    (score) and its maximum there (aux_score). p = P(max over the m band frequencies >= observed max)
    under independence, each C ~ Beta(1, K_eff - 1) and the frequencies taken as independent. The DC
    and Nyquist bins are never in the band: their cross-spectrum is real, so their null is heavier."""
    if len(a) == 0:
        return {}
    T = raw.shape[1]
    _, keff = coherence_dof(T, cfg)
    lo, hi = cfg.coherence_band
    mean = np.empty(len(a))
    mx = np.empty(len(a))
    m = 0
    ns = cfg.coherence_nperseg
    used, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    _, psd = signal.welch(raw[used], fs=1.0, nperseg=ns, axis=-1)  # once per series, not per pair
    for s, e in _chunks(len(a), cfg.chunk_pairs):
        f, pxy = signal.csd(raw[a[s:e]], raw[b[s:e]], fs=1.0, nperseg=ns, axis=-1)
        C = np.abs(pxy) ** 2 / psd[inv[s:e]] / psd[inv[len(a) + s:len(a) + e]]  # = scipy.signal.coherence
        band = (f >= lo) & (f <= hi) & (f > 0) & (f < 0.5)
        m = int(band.sum())
        mean[s:e] = C[:, band].mean(axis=1)
        mx[s:e] = C[:, band].max(axis=1)
    pv = 1 - (1 - (1 - np.clip(mx, 0, 1)) ** (keff - 1)) ** m
    return {"score": mean, "aux_score": mx, "p_value": pv, "significant": (pv <= cfg.alpha).astype(float)}


# ----------------------------------------------------------------------------- cross-recurrence
@numba.njit(parallel=True, cache=True, fastmath=True)  # fastmath: only -, abs, <= on floats (exact)
def _crqa_kernel(z, a, b, band, eps, lmin, shifts):  # pragma: no cover (compiled)
    """Windowed cross-recurrence: R[i, j] = |x_i - y_j| <= eps on cells |i - j| <= band. RR, DET
    (share of recurrent points on diagonal lines of length >= lmin), the diagonal with most recurrent
    points, and for each circular shift of y the count of surrogate DET >= observed DET."""
    P, T = a.shape[0], z.shape[1]
    S = shifts.shape[0]
    rr = np.empty(P)
    det = np.empty(P)
    best_d = np.empty(P, dtype=np.int64)
    ge = np.zeros(P, dtype=np.int64)
    for q in numba.prange(P):
        x = z[a[q]]
        yy = np.empty(2 * T)  # y twice: a circular shift is a contiguous slice
        yy[:T] = z[b[q]]
        yy[T:] = z[b[q]]
        r = np.zeros(T + 2, dtype=np.int32)  # one diagonal, zero-padded at both ends
        for s in range(S + 1):
            sh = 0 if s == 0 else shifts[s - 1]
            rec = 0
            inl = 0
            cells = 0
            best = -1
            bd = 0
            for d in range(-band, band + 1):
                i0 = max(0, -d)
                i1 = min(T, T - d)
                m = i1 - i0
                xs, ys, rd = x[i0:i1], yy[i0 + d + sh:i1 + d + sh], r[1:m + 1]
                drec = 0
                for k in range(m):  # branch-free, vectorised by LLVM
                    v = np.int32(abs(xs[k] - ys[k]) <= eps)
                    rd[k] = v
                    drec += v
                r[m + 1] = 0
                if lmin == 2:  # a point is on a line >= 2 iff a neighbour on the diagonal is recurrent
                    left, right = r[0:m], r[2:m + 2]
                    for k in range(m):
                        inl += rd[k] & (left[k] | right[k])
                else:
                    run = 0
                    for k in range(m + 1):
                        if r[k + 1]:
                            run += 1
                        else:
                            if run >= lmin:
                                inl += run
                            run = 0
                rec += drec
                cells += m
                if drec > best:
                    best = drec
                    bd = d
            dt = inl / rec if rec > 0 else 0.0
            if s == 0:
                rr[q] = rec / cells
                det[q] = dt
                best_d[q] = bd
            elif dt >= det[q] - 1e-12:
                ge[q] += 1
    return rr, det, best_d, ge


def _cross_recurrence(z, a, b, cfg):
    """score = DET, aux_score = RR, lag = the diagonal with the most recurrent points (x_i ~ y_{i+lag}:
    positive = x leads y); p = (1 + #{shift-surrogate DET >= DET}) / (S + 1)."""
    if len(a) == 0:
        return {}
    shifts = recurrence_shifts(z.shape[1], cfg)
    rr, det, bd, ge = _crqa_kernel(z, a, b, cfg.recurrence_band, float(cfg.recurrence_eps),
                                   cfg.recurrence_lmin, shifts)
    res = {"score": det, "aux_score": rr, "lag": bd.astype(float)}
    if len(shifts):
        pv = (1 + ge) / (len(shifts) + 1)
        res |= {"p_value": pv, "significant": (pv <= cfg.alpha).astype(float)}
    return res
