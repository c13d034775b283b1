"""Density-based cohorts (scikit-learn DBSCAN) on PCA-reduced Hellinger features.

fit: Hellinger features (features.hellinger) of a subsample of <= ``max_fit_rows`` (20000)
customers, PCA to ``pca_dims`` (8) dimensions, DBSCAN(eps, min_samples=20).
eps = ``options["eps"]`` or the ``eps_quantile`` (default 0.3) quantile of every sampled
customer's distance to its min_samples-th nearest neighbour (itself included, as DBSCAN
counts it). Why a low quantile and not the knee of the sorted k-distance curve: behaviour
groups overlap, so the knee (a high quantile, 0.7-0.9 on the demo data) links every group into
one giant cluster (purity 0.19-0.33); the 0.3 quantile keeps the dense cores of the groups
apart (purity >= 0.99 on the demo data and the test personas) at the price of ~35-50% noise.
Clusters smaller than ``min_cluster_size`` (default max(min_samples, 0.5% of the sample)) are
returned to noise. The k-distance quantiles are stored in quality.

Stored: eps, PCA mean/components, up to ``max_core_points`` (5000) core points with their
cluster (sampled per cluster in proportion to its core count, at least one each).

score: sklearn NearestNeighbors over the stored core points. Nearest core farther than eps ->
cohort -1 with reason "dbscan_noise: farther than eps=<eps> from every core point". Otherwise
the nearest core's cluster, with confidence 1.0 when the distance is <= eps/2 (proxy for "the
customer would itself be a core point": half-eps from a core means the core's eps-ball
neighbours are mostly within the customer's own eps-ball) and, for border points,
share x (1 - (d1 - eps/2) / eps) in [0.5*share, 1): share = the fraction of the (up to) 10
nearest core points within eps that belong to the assigned cluster (the registry's "share of
eps-neighbours in the assigned cluster"), damped linearly with the distance.
Subsampling the cores can turn a few border points of the fit into noise at scoring time.

Options: eps, eps_quantile (0.3), min_samples (20), pca_dims (8), max_fit_rows (20000),
max_core_points (5000), min_cluster_size, stability_rows (5000), min_fit_events (1), kinds,
min_customers (registry floor, >= 100).
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.cluster import DBSCAN
from sklearn.neighbors import NearestNeighbors

from ..contract import FitInput, InsufficientData, ScoreInput, ScoreResult, to_jsonable
from . import features as F

METHOD = "dbscan"
MIN_ROWS = 100
N_NEIGHBOURS = 10


def _dbscan(Y: np.ndarray, eps: float, min_samples: int, min_size: int):
    """DBSCAN labels (small clusters -> -1, clusters renumbered by size) and the core mask."""
    db = DBSCAN(eps=eps, min_samples=min_samples).fit(Y)
    lab = db.labels_.copy()
    core = np.zeros(len(Y), dtype=bool)
    core[db.core_sample_indices_] = True
    sizes = np.bincount(lab[lab >= 0]) if (lab >= 0).any() else np.zeros(0, np.int64)
    keep = np.flatnonzero(sizes >= min_size)
    keep = keep[np.argsort(-sizes[keep], kind="stable")]
    remap = np.full(sizes.size + 1, -1, dtype=np.int64)
    remap[keep] = np.arange(keep.size)
    lab = np.where(lab >= 0, remap[np.maximum(lab, 0)], -1)
    core &= lab >= 0
    return lab, core


def _assign(cores: np.ndarray, core_labels: np.ndarray, eps: float, Y: np.ndarray):
    """Scoring rule: nearest core within eps -> its cluster (see module docstring)."""
    n_nb = min(N_NEIGHBOURS, len(cores))
    dist, nb = NearestNeighbors(n_neighbors=n_nb).fit(cores).kneighbors(Y)
    d1 = dist[:, 0]
    lab = core_labels[nb[:, 0]]
    inside = dist <= eps
    same = inside & (core_labels[nb] == lab[:, None])
    share = same.sum(axis=1) / np.maximum(inside.sum(axis=1), 1)
    conf = np.where(d1 <= eps / 2, 1.0, share * (1.0 - (d1 - eps / 2) / eps))
    assigned = d1 <= eps
    return np.where(assigned, lab, -1), np.where(assigned, np.clip(conf, 0.0, 1.0), np.nan)


def fit(data: FitInput, *, seed: int, options: dict) -> dict:
    options = dict(options or {})
    kinds, columns, Z_all, _ = F.hellinger_fit_input(
        METHOD, data, options, F.min_rows(options, MIN_ROWS))
    rng = np.random.default_rng(seed)
    Z = Z_all[F.sample_rows(Z_all.shape[0], int(options.get("max_fit_rows", 20000)), rng)]
    Z = Z.astype(np.float64)
    n = Z.shape[0]
    min_samples = int(options.get("min_samples", 20))
    min_size = int(options.get("min_cluster_size", max(min_samples, math.ceil(0.005 * n))))
    pca = F.pca_fit(Z, int(options.get("pca_dims", 8)), seed)
    Y = F.pca_apply(Z, pca)

    kdist = NearestNeighbors(n_neighbors=min_samples).fit(Y).kneighbors(Y)[0][:, -1]
    qs = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
    kq = dict(zip(qs, np.quantile(kdist, qs)))
    if options.get("eps") is not None:
        eps = float(options["eps"])
    else:
        eps = float(np.quantile(kdist, float(options.get("eps_quantile", 0.3))))
    if not eps > 0:
        raise InsufficientData(f"{METHOD}: eps={eps:g} (the sample is too concentrated: "
                               f"{min_samples} or more customers share identical features)")
    labels, core = _dbscan(Y, eps, min_samples, min_size)
    k = int(labels.max()) + 1
    if k == 0:
        raise InsufficientData(f"{METHOD}: no dense cluster of >= {min_size} customers at "
                               f"eps={eps:.4g}, min_samples={min_samples}; all {n} sampled "
                               "customers are noise")

    # core points to store: per cluster in proportion to its core count, at least one each
    cap = int(options.get("max_core_points", 5000))
    core_idx = np.flatnonzero(core)
    if core_idx.size > cap:
        keep = []
        for c in range(k):
            m = core_idx[labels[core_idx] == c]
            take = max(1, int(round(cap * m.size / core_idx.size)))
            keep.append(np.sort(rng.choice(m, size=min(take, m.size), replace=False)))
        core_idx = np.sort(np.concatenate(keep))
    cores, core_labels = Y[core_idx], labels[core_idx]

    profiles = F.cluster_means(Z, labels, k)
    overall = Z.mean(axis=0)

    def fit_predict(train, ev, s):
        lab, cr = _dbscan(Y[train], eps, min_samples, min_size)
        if not cr.any():
            return np.full(ev.size, -1)
        return _assign(Y[train][cr], lab[cr], eps, Y[ev])[0]

    quality = {
        "silhouette": F.silhouette(Y, labels, seed),
        "stability_ari": F.bootstrap_stability(fit_predict, n, seed,
                                               int(options.get("stability_rows", 5000))),
        "n_fit": n,
        "n_sample": int(Z_all.shape[0]),
        "k": k,
        "eps": eps,
        "min_samples": min_samples,
        "min_cluster_size": min_size,
        "noise_share": float((labels < 0).mean()),
        "core_share": float(core.mean()),
        "n_core_points_stored": int(core_idx.size),
        "k_distance_quantiles": {f"q{int(q * 100):02d}": v for q, v in kq.items()},
        "pca_explained_variance": float(np.sum(pca["explained_variance_ratio"])),
        "cohort_sizes": np.bincount(labels[labels >= 0], minlength=k),
    }
    return to_jsonable({
        "method": METHOD,
        "model_format": 1,
        "seed": seed,
        "options": options,
        "kinds": list(kinds),
        "columns": columns,
        "k": k,
        "eps": eps,
        "min_samples": min_samples,
        "pca": {"mean": pca["mean"], "components": pca["components"]},
        "core_points": cores,
        "core_labels": core_labels,
        "profiles": profiles,
        "overall_mean": overall,
        "labels": F.kind_balanced_labels(profiles, overall, columns),
        "quality": quality,
    })


def score(model: dict, data: ScoreInput) -> ScoreResult:
    Z, active, value_columns = F.hellinger_score_input(model, data)
    idx, conf, reason = F.not_assigned(Z.shape[0])
    eps = float(model["eps"])
    if active.any():
        Y = F.pca_apply(Z[active].astype(np.float64), model["pca"])
        lab, c = _assign(np.asarray(model["core_points"], dtype=np.float64),
                         np.asarray(model["core_labels"], dtype=np.int64), eps, Y)
        idx[active], conf[active] = lab, c
        noise = np.zeros(Z.shape[0], dtype=bool)
        noise[np.flatnonzero(active)[lab < 0]] = True
        reason[noise] = f"dbscan_noise: farther than eps={eps:.4g} from every core point"
    reason[~active] = F.no_events_reason(METHOD, model["kinds"])
    weights = np.maximum(np.asarray(model["profiles"])
                         - np.asarray(model["overall_mean"])[None, :], 0.0)
    contrib = F.contribution(Z, weights, idx, value_columns, len(data.columns))
    return ScoreResult(cohort_index=idx, confidence=conf, reason=reason, contribution=contrib)
