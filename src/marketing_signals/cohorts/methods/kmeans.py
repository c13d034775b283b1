"""k-means cohorts on Hellinger behaviour features (scikit-learn KMeans).

fit: Hellinger features of signal_type + category + channel (features.hellinger); k from
``options["k"]`` or chosen over ``options["k_range"]`` (default 4..12) by features.choose_k on
<= ``select_rows`` rows (KMeans with 3 inits per k; criterion "elbow" = knee of the inertia
curve, default, or "silhouette"); both curves are stored in quality. The final model is
KMeans(k, n_init=``n_init``) on all fitted rows (n_init matters: 1 init reached ARI 0.70
against the demo personas where 10 inits reach 0.82).
score: nearest stored centroid; confidence 1 - d1/d2 (nearest / second-nearest centroid
distance); contribution = customer's Hellinger value x (centroid - global mean) clipped at 0.

Options: k, k_range [lo, hi], criterion ("elbow" | "silhouette"), n_init (10), select_rows
(20000), stability_rows (20000), min_fit_events (1), kinds (["signal_type", "category",
"channel"]), max_iter (300), min_customers (registry floor, >= 50).
"""
from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from ..contract import FitInput, InsufficientData, ScoreInput, ScoreResult, to_jsonable
from . import features as F

METHOD = "kmeans"
MIN_ROWS = 50


def _kmeans(k: int, seed: int, n_init: int, max_iter: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed)


def fit(data: FitInput, *, seed: int, options: dict) -> dict:
    options = dict(options or {})
    kinds, columns, Z, _ = F.hellinger_fit_input(
        METHOD, data, options, F.min_rows(options, MIN_ROWS))
    n = Z.shape[0]
    rng = np.random.default_rng(seed)
    n_init = int(options.get("n_init", 10))
    max_iter = int(options.get("max_iter", 300))

    selection: dict = {}
    if options.get("k") is not None:
        k = int(options["k"])
    else:
        sel = Z[F.sample_rows(n, int(options.get("select_rows", 20000)), rng)]
        k, selection = F.choose_k(
            sel, lambda kk: _kmeans(kk, seed, 3, max_iter).fit_predict(sel),
            F.k_range(options, n), seed,
            options.get("criterion", "elbow"))
    if k < 2 or F.distinct_rows(Z, k) < k:
        raise InsufficientData(f"{METHOD}: fewer than k={k} distinct behaviour mixes among "
                               f"{n} sampled customers")

    km = _kmeans(k, seed, n_init, max_iter).fit(Z)
    centroids = km.cluster_centers_.astype(np.float64)
    overall = Z.mean(axis=0, dtype=np.float64)

    def fit_predict(train, ev, s):
        return _kmeans(k, s, n_init, max_iter).fit(Z[train]).predict(Z[ev])

    quality = {
        "silhouette": F.silhouette(Z, km.labels_, seed),
        "stability_ari": F.bootstrap_stability(fit_predict, n, seed,
                                               int(options.get("stability_rows", 20000))),
        "n_fit": n,
        "k": k,
        "inertia": float(km.inertia_),
        **selection,
        "cohort_sizes": np.bincount(km.labels_, minlength=k),
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
