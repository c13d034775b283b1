"""Ward hierarchical cohorts (scikit-learn AgglomerativeClustering).

fit: Hellinger features (features.hellinger) of a uniform subsample of <= ``max_fit_rows``
(default 10000; Ward needs O(n^2) memory) customers; one full Ward tree (cached with joblib
Memory in a temporary folder, so cutting it at every k of the search range costs one tree);
k from ``options["k"]`` or features.choose_k over ``k_range`` (default 4..12; criterion
"elbow" of the within-cluster sum of squares, or "silhouette"). The centroids of the cut
clusters are stored. Customers (the fitted ones too) are assigned to the nearest centroid, so
k is selected on that nearest-centroid assignment (what scoring produces), which is far closer
to the truth than the raw tree cut (ARI 0.96 vs 0.69 at k=8 on the test personas). The tree
cut's own silhouette is kept as ``silhouette_tree``.
score: nearest centroid; confidence 1 - d1/d2; contribution as in kmeans.

Options: k, k_range, criterion ("elbow" | "silhouette"), max_fit_rows (10000), stability_rows
(5000), min_fit_events (1), kinds, min_customers (registry floor, >= 50).
"""
from __future__ import annotations

import tempfile

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from ..contract import FitInput, InsufficientData, ScoreInput, ScoreResult, to_jsonable
from . import features as F

METHOD = "hierarchical"
MIN_ROWS = 50


def _ward(k: int, memory=None) -> AgglomerativeClustering:
    return AgglomerativeClustering(n_clusters=k, linkage="ward", memory=memory,
                                   compute_full_tree=True)


def _assign(Z: np.ndarray, tree_labels: np.ndarray, k: int) -> np.ndarray:
    """Nearest-centroid labels for the centroids of a tree cut."""
    return F.nearest_two(Z, F.cluster_means(Z, tree_labels, k))[0]


def fit(data: FitInput, *, seed: int, options: dict) -> dict:
    options = dict(options or {})
    kinds, columns, Z_all, _ = F.hellinger_fit_input(
        METHOD, data, options, F.min_rows(options, MIN_ROWS))
    rng = np.random.default_rng(seed)
    Z = Z_all[F.sample_rows(Z_all.shape[0], int(options.get("max_fit_rows", 10000)), rng)]
    n = Z.shape[0]

    with tempfile.TemporaryDirectory(prefix="ms_ward_") as cache:
        selection: dict = {}
        if options.get("k") is not None:
            k = int(options["k"])
        else:
            k, selection = F.choose_k(
                Z, lambda kk: _assign(Z, _ward(kk, cache).fit_predict(Z), kk),
                F.k_range(options, n), seed, options.get("criterion", "elbow"))
        if k < 2 or F.distinct_rows(Z, k) < k:
            raise InsufficientData(f"{METHOD}: fewer than k={k} distinct behaviour mixes among "
                                   f"{n} sampled customers")
        tree_labels = _ward(k, cache).fit_predict(Z)
    centroids = F.cluster_means(Z, tree_labels, k)
    labels = F.nearest_two(Z, centroids)[0]
    overall = Z.mean(axis=0, dtype=np.float64)

    def fit_predict(train, ev, s):
        lab = _ward(k).fit_predict(Z[train])
        return F.nearest_two(Z[ev], F.cluster_means(Z[train], lab, k))[0]


    quality = {
        "silhouette": F.silhouette(Z, labels, seed),
        "silhouette_tree": F.silhouette(Z, tree_labels, seed),
        "stability_ari": F.bootstrap_stability(fit_predict, n, seed,
                                               int(options.get("stability_rows", 5000))),
        "n_fit": n,
        "n_sample": int(Z_all.shape[0]),
        "k": k,
        **selection,
        "cohort_sizes": np.bincount(labels, minlength=k),
    }
    return to_jsonable({
        "method": METHOD,
        "model_format": 1,
        "seed": seed,
        "options": options,
        "kinds": list(kinds),
        "columns": columns,
        "k": k,
        "centroids": centroids,
        "overall_mean": overall,
        "labels": F.kind_balanced_labels(centroids, overall, columns),
        "quality": quality,
    })


def score(model: dict, data: ScoreInput) -> ScoreResult:
    Z, active, value_columns = F.hellinger_score_input(model, data)
    C = np.asarray(model["centroids"], dtype=np.float64)
    idx, conf, reason = F.not_assigned(Z.shape[0])
    lab, c = F.nearest_two(Z[active], C)
    idx[active], conf[active] = lab, c
    reason[~active] = F.no_events_reason(METHOD, model["kinds"])
    weights = np.maximum(C - np.asarray(model["overall_mean"])[None, :], 0.0)
    contrib = F.contribution(Z, weights, idx, value_columns, len(data.columns))
    return ScoreResult(cohort_index=idx, confidence=conf, reason=reason, contribution=contrib)
