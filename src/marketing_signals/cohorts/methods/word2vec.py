"""Sequence-embedding cohorts: gensim Word2Vec on event sequences + scikit-learn KMeans.

fit needs ``data.extra["sequences"]``: one token list per customer (any order of customers;
the sequences only train the embeddings), tokens ``signal_type`` or ``signal_type|category``.
Word2Vec(vector_size=32, window=5, min_count=5, sg=0 (CBOW; skip-gram measured no better and
2-3x slower), epochs=5, workers=1, seed=seed).

Customer vector (fit and score, computed from X only, so scoring needs no sequences): one
token per event as in features.event_token_counts -- ``signal_category:x|y`` columns give
token ``x|y``, ``signal_type:x`` gives ``x`` for the events of type x not already counted
through an in-vocabulary ``x|y`` token -- count-weighted mean of the token embeddings,
L2-normalised. KMeans on the fitted customers' vectors; k from ``options["k"]`` or
features.choose_k over ``k_range`` (4..12; criterion "silhouette" by default -- on these
unit-length vectors it found the planted k where the inertia elbow stopped one short --, or
"elbow").

score: nearest centroid (Euclidean, as KMeans); confidence = cosine similarity to the
assigned centroid floored at 0; contribution of a token = its share of the customer's
in-vocabulary events x cosine(token embedding, centroid) floored at 0, on its input column.
Customers without an in-vocabulary token -> -1 with a reason.

stability_ari refits KMeans on two bootstrap resamples of the customer vectors (the Word2Vec
embedding is not retrained).

Options: vector_size (32), window (5), min_count (5), sg (0), epochs (5), negative (5), k,
k_range, criterion ("silhouette"), n_init (10), select_rows (20000), stability_rows (20000),
min_fit_events (1), min_customers (registry floor, >= 50).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from gensim.models import Word2Vec
from sklearn.cluster import KMeans

from ..contract import FitInput, InsufficientData, ScoreInput, ScoreResult, to_jsonable
from . import features as F

METHOD = "word2vec"
MIN_ROWS = 50


def _vectors(C: sp.csr_matrix, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count-weighted mean embedding per row of the token counts C, L2-normalised; and the
    mask of rows with at least one in-vocabulary token."""
    tot = np.asarray(C.sum(axis=1)).ravel()
    V = np.asarray(C @ E) / np.maximum(tot, 1e-12)[:, None]
    norm = np.linalg.norm(V, axis=1)
    active = (tot > 0) & (norm > 0)
    V = V / np.where(norm > 0, norm, 1.0)[:, None]
    return V, active


def _unit(A: np.ndarray) -> np.ndarray:
    nrm = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.where(nrm > 0, nrm, 1.0)


def fit(data: FitInput, *, seed: int, options: dict) -> dict:
    options = dict(options or {})
    floor = F.min_rows(options, MIN_ROWS)
    F.require_rows(METHOD, data.X.shape[0], floor)
    seqs = (data.extra or {}).get("sequences")
    if seqs is None or len(seqs) == 0:
        raise InsufficientData(f"{METHOD}: data.extra['sequences'] (one token list per "
                               "customer) is missing or empty")
    sentences = [[str(t) for t in s] for s in seqs if len(s) > 0]
    n_tokens = sum(len(s) for s in sentences)
    F.require_rows(METHOD, n_tokens, 100, "event tokens in the sequences")
    w2v = Word2Vec(sentences, vector_size=int(options.get("vector_size", 32)),
                   window=int(options.get("window", 5)), min_count=int(options.get("min_count", 5)),
                   sg=int(options.get("sg", 0)), negative=int(options.get("negative", 5)),
                   epochs=int(options.get("epochs", 5)), workers=1, seed=seed)
    vocab = list(w2v.wv.index_to_key)
    if len(vocab) < 2:
        raise InsufficientData(f"{METHOD}: {len(vocab)} tokens occur >= min_count times; "
                               "needs >= 2")
    E = np.asarray(w2v.wv.vectors, dtype=np.float64)

    columns = list(data.columns)
    C = F.event_token_counts(data.X, columns, vocab)
    V, active = _vectors(C, E)
    tot = np.asarray(C.sum(axis=1)).ravel()
    rows = np.flatnonzero(active & (tot >= float(options.get("min_fit_events", 1))))
    F.require_rows(METHOD, rows.size, floor,
                   "customers with in-vocabulary event tokens in the sample")
    Vf = V[rows]
    n = Vf.shape[0]
    if F.distinct_rows(Vf, 2) < 2:
        raise InsufficientData(f"{METHOD}: all {n} customer vectors are identical")
    rng = np.random.default_rng(seed)
    n_init = int(options.get("n_init", 10))

    selection: dict = {}
    if options.get("k") is not None:
        k = int(options["k"])
    else:
        sel = Vf[F.sample_rows(n, int(options.get("select_rows", 20000)), rng)]
        k, selection = F.choose_k(
            sel, lambda kk: KMeans(kk, n_init=3, random_state=seed).fit_predict(sel),
            F.k_range(options, n), seed,
            options.get("criterion", "silhouette"))
    if k < 2 or F.distinct_rows(Vf, k) < k:
        raise InsufficientData(f"{METHOD}: fewer than k={k} distinct customer vectors among {n}")
    km = KMeans(k, n_init=n_init, random_state=seed).fit(Vf)
    centroids = km.cluster_centers_.astype(np.float64)

    # readable labels: tokens whose share in the cohort most exceeds their overall share
    Cf = sp.csr_matrix(C[rows])
    S = sp.diags(1.0 / np.asarray(Cf.sum(axis=1)).ravel()) @ Cf
    onehot = sp.csr_matrix((np.ones(n), (km.labels_, np.arange(n))), shape=(k, n))
    sizes = np.maximum(np.bincount(km.labels_, minlength=k), 1)
    profiles = np.asarray((onehot @ S).todense()) / sizes[:, None]
    overall = np.asarray(S.mean(axis=0)).ravel()
    labels = F.cohort_labels(profiles, overall, vocab, top=2, suffix="sequences")

    def fit_predict(train, ev, s):
        return KMeans(k, n_init=n_init, random_state=s).fit(Vf[train]).predict(Vf[ev])

    quality = {
        "silhouette": F.silhouette(Vf, km.labels_, seed),
        "stability_ari": F.bootstrap_stability(fit_predict, n, seed,
                                               int(options.get("stability_rows", 20000))),
        "n_fit": n,
        "n_without_vocab": int(data.X.shape[0] - active.sum()),
        "k": k,
        **selection,
        "vocab_size": len(vocab),
        "n_sequences": len(sentences),
        "n_tokens": n_tokens,
        "mean_confidence": float(np.maximum((Vf * _unit(centroids)[km.labels_]).sum(1), 0).mean()),
        "cohort_sizes": np.bincount(km.labels_, minlength=k),
    }
    return to_jsonable({
        "method": METHOD,
        "model_format": 1,
        "seed": seed,
        "options": options,
        "vocab": vocab,
        "embeddings": E,
        "k": k,
        "centroids": centroids,
        "labels": labels,
        "quality": quality,
    })


def score(model: dict, data: ScoreInput) -> ScoreResult:
    vocab = list(model["vocab"])
    columns = list(data.columns)
    E = np.asarray(model["embeddings"], dtype=np.float64)
    Cn = np.asarray(model["centroids"], dtype=np.float64)
    C = F.event_token_counts(data.X, columns, vocab)
    V, active = _vectors(C, E)
    n = V.shape[0]
    idx, conf, reason = F.not_assigned(n)
    reason[~active] = (f"{METHOD}: no event token of the model's vocabulary "
                       f"({len(vocab)} tokens)")
    lab = F.sq_distances(V[active], Cn).argmin(axis=1)
    U = _unit(Cn)
    idx[active] = lab
    conf[active] = np.clip((V[active] * U[lab]).sum(axis=1), 0.0, 1.0)
    # contribution: token share x cos(token embedding, assigned centroid)^+
    tot = np.asarray(C.sum(axis=1)).ravel()
    S = sp.diags(np.divide(1.0, tot, out=np.zeros_like(tot), where=tot > 0)) @ C
    cos = np.maximum(_unit(E) @ U.T, 0.0)              # [V, k]
    contrib = F.contribution_sparse(S, cos.T, idx, F.token_columns(columns, vocab), len(columns))
    return ScoreResult(cohort_index=idx, confidence=conf, reason=reason, contribution=contrib)
