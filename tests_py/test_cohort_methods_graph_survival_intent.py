"""graph_clustering, survival and intent cohort methods on small synthetic data with planted truth.

Pure-Python tests (no dbt): each method is fitted with ``fit(FitInput, seed, options)``, the model
must survive a JSON round trip, and ``score`` is run on a fresh batch.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score, roc_auc_score

from marketing_signals.cohorts.contract import FitInput, InsufficientData, ScoreInput
from marketing_signals.cohorts.methods import graph_clustering, intent, survival


def _roundtrip(model: dict) -> dict:
    return json.loads(json.dumps(model))


def _keys(n: int, prefix: str = "c") -> np.ndarray:
    return np.array([f"{prefix}{i:06d}" for i in range(n)], dtype=object)


# ------------------------------------------------------------------ graph_clustering
def planted_referrals(n_groups: int, seed: int, noise: float = 0.05):
    """Referral groups of 3-12 members as in demo/plan.py `_structural_events`: a directed cycle
    inside each group, Poisson(0.6) extra intra-group referrals per member, 5% of referrals go to
    the first members of the next group."""
    rng = np.random.default_rng(seed)
    size = rng.integers(3, 13, n_groups)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    n = int(size.sum())
    gid = np.repeat(np.arange(n_groups), size)
    pos = np.arange(n) - start[gid]
    n_extra = rng.poisson(0.6, n)
    src = np.concatenate([np.arange(n), np.repeat(np.arange(n), n_extra)])
    g = gid[src]
    step = np.concatenate([np.ones(n, np.int64),
                           1 + rng.integers(0, 1 << 30, n_extra.sum()) % (size[g[n:]] - 1)])
    tgt = start[g] + (pos[src] + step) % size[g]
    other = (start[g] + size[g] + rng.integers(0, 3, src.size)) % n
    other = np.where(gid[other] == g, (start[g] + size[g]) % n, other)
    tgt = np.where(rng.random(src.size) < noise, other, tgt)
    keys = _keys(n)
    edges = pd.DataFrame({"src": keys[src], "dst": keys[tgt], "weight": 1.0})
    return edges, keys, gid


@pytest.fixture(scope="module")
def graph_fit():
    edges, keys, gid = planted_referrals(2000, seed=3)
    data = FitInput(keys[::3], sp.csr_matrix((keys[::3].size, 1)), ["signal_type:referral_sent"],
                    {"edges": edges})
    t0 = time.perf_counter()
    model = graph_clustering.fit(data, seed=11, options={})
    return model, time.perf_counter() - t0, edges, keys, gid, data


def test_graph_recovers_planted_referral_groups(graph_fit):
    model, seconds, edges, keys, gid, _ = graph_fit
    model = _roundtrip(model)
    in_graph = pd.Index(keys).isin(pd.concat([edges.src, edges.dst]).unique())
    batch = np.concatenate([keys, np.array(["not_in_graph"], dtype=object)])
    t0 = time.perf_counter()
    res = graph_clustering.score(model, ScoreInput(batch, sp.csr_matrix((batch.size, 1)),
                                                   ["signal_type:referral_sent"]))
    score_s = time.perf_counter() - t0
    ari = adjusted_rand_score(gid[in_graph], res.cohort_index[:-1][in_graph])
    q = model["quality"]
    print(f"graph: nodes={q['n_nodes']} edges={q['n_edges']} communities={q['n_communities']} "
          f"ARI={ari:.4f} modularity={q['modularity']:.4f} coverage={q['coverage']:.4f} "
          f"resolution={q['resolution']:.1f} fit={seconds:.2f}s score={score_s:.3f}s")
    assert ari >= 0.8
    assert q["n_communities"] == len(model["labels"]) == model["n_cohorts"]
    assert 0.8 <= q["coverage"] <= 1.0 and 0.5 < q["modularity"] <= 1.0
    assert model["labels"][0].startswith("community C000000 (") and "members)" in model["labels"][0]
    assert res.cohort_index[-1] == -1 and np.isnan(res.confidence[-1])
    assert res.reason[-1] == "graph_clustering: no referral or identity edges in this window"
    ok = res.cohort_index >= 0
    assert ((res.confidence[ok] >= 0) & (res.confidence[ok] <= 1)).all()
    assert (res.reason[ok] == None).all()  # noqa: E711 (object array)
    assert res.confidence[ok].mean() > 0.9


def test_graph_deterministic_and_small_communities(graph_fit):
    model, _, _, _, _, data = graph_fit
    assert graph_clustering.fit(data, seed=11, options={}) == model

    edges = pd.DataFrame({"src": ["a", "b", "c", "d", "x", "e", "f", "g", "e"],
                          "dst": ["b", "c", "a", "a", "y", "f", "g", "e", "f"],
                          "weight": [2.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0]})
    keys = np.array(["a", "b", "c", "d", "e", "x", "nobody"], dtype=object)
    small = FitInput(keys, sp.csr_matrix((keys.size, 1)), ["k:v"], {"edges": edges})
    m = _roundtrip(graph_clustering.fit(small, seed=1, options={"min_nodes": 2}))
    res = graph_clustering.score(m, ScoreInput(keys, None, []))
    assert res.cohort_index[-1] == -1 and "no referral or identity edges" in res.reason[-1]
    assert res.cohort_index[5] == -1 and "below min_community_size 3" in res.reason[5]
    assert (res.cohort_index[:5] >= 0).all()
    assert res.cohort_index[0] == res.cohort_index[1] == res.cohort_index[2]
    assert res.cohort_index[4] != res.cohort_index[0]

    with pytest.raises(InsufficientData, match="graph_clustering: no referral"):
        graph_clustering.fit(FitInput(keys, None, [], {"edges": edges.iloc[:0]}), seed=1,
                             options={})
    with pytest.raises(InsufficientData, match="graph_clustering: no community reaches"):
        graph_clustering.fit(small, seed=1, options={"min_nodes": 2, "min_community_size": 50})


# ------------------------------------------------------------------------- survival
def synth_survival(n: int, seed: int) -> pd.DataFrame:
    """Exponential time to lapse; the hazard rises with x_inactivity and x_discount_only."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = (rng.random(n) < 0.4).astype(float)
    x3 = rng.normal(20, 5, n)                                   # no effect
    lam = 0.006 * np.exp(0.9 * x1 + 0.5 * x2)
    t = rng.exponential(1 / lam)
    c = rng.uniform(30, 400, n)
    return pd.DataFrame({"duration_days": np.ceil(np.minimum(t, c)), "event": (t <= c).astype(int),
                         "x_inactivity": x1, "x_discount_only": x2, "x_noise": x3})


@pytest.fixture(scope="module")
def survival_fit():
    df = synth_survival(4000, seed=0)
    data = FitInput(_keys(len(df)), sp.csr_matrix((len(df), 1)), ["k:v"], {"survival": df})
    t0 = time.perf_counter()
    model = survival.fit(data, seed=5, options={"horizon_days": 90})
    return model, time.perf_counter() - t0, df, data


def test_survival_bands_monotone_and_matches_phreg(survival_fit):
    from statsmodels.duration.hazard_regression import PHReg

    model, seconds, df, _ = survival_fit
    model = _roundtrip(model)
    cols = model["covariates"]
    assert cols == ["x_inactivity", "x_discount_only", "x_noise"]
    X = df[cols].to_numpy()
    Z = (X - X.mean(0)) / X.std(0)
    direct = PHReg(df["duration_days"].to_numpy(), Z, status=df["event"].to_numpy(),
                   ties="efron").fit(disp=False)
    np.testing.assert_allclose(model["coef"], direct.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model["coef_se"], direct.bse, rtol=1e-6)
    assert len(model["baseline_time"]) <= 500
    assert model["labels"] == ["low", "medium", "high", "very_high"]

    fresh = synth_survival(100_000, seed=1)
    t0 = time.perf_counter()
    res = survival.score(model, ScoreInput(_keys(len(fresh)), sp.csr_matrix((len(fresh), 1)),
                                           ["k:v"], {"survival": fresh}))
    score_s = time.perf_counter() - t0
    known = ((fresh.event == 1) | (fresh.duration_days > 90)).to_numpy()
    lapsed = ((fresh.event == 1) & (fresh.duration_days <= 90)).to_numpy()
    rates = [lapsed[known & (res.cohort_index == b)].mean() for b in range(4)]
    pred = [res.score[res.cohort_index == b].mean() for b in range(4)]
    q = model["quality"]
    print(f"survival: coef={np.round(model['coef'], 3)} concordance={q['concordance']:.3f} "
          f"lapse share by band={np.round(rates, 3)} predicted={np.round(pred, 3)} "
          f"mean confidence={res.confidence.mean():.3f} fit={seconds:.2f}s score100k={score_s:.3f}s")
    assert np.all(np.diff(rates) > 0)
    assert np.all(np.abs(np.array(rates) - np.array(pred)) < 0.06)
    assert set(np.unique(res.cohort_index)) == {0, 1, 2, 3}
    assert ((res.confidence >= 0) & (res.confidence <= 1)).all()
    assert score_s < 5
    assert q["concordance"] > 0.65 and q["n_fit"] == 4000


def test_survival_missing_covariates_deterministic_and_insufficient(survival_fit):
    model, _, df, data = survival_fit
    assert survival.fit(data, seed=5, options={"horizon_days": 90}) == model
    batch = df.head(3).copy()
    batch.loc[0, "x_noise"] = np.nan
    res = survival.score(model, ScoreInput(_keys(3), None, [], {"survival": batch}))
    assert np.isfinite(res.score).all() and (res.cohort_index >= 0).all()

    censored = df.assign(event=0)
    with pytest.raises(InsufficientData, match="survival: 0 observed lapse events"):
        survival.fit(FitInput(data.customer_keys, None, [], {"survival": censored}), seed=0,
                     options={})
    with pytest.raises(InsufficientData, match="shorter than horizon_days"):
        survival.fit(data, seed=0, options={"horizon_days": 1000})
    with pytest.raises(InsufficientData, match="no usable"):
        survival.fit(FitInput(data.customer_keys, None, [],
                              {"survival": df[["duration_days", "event"]]}), seed=0, options={})


def test_retention_curves_non_increasing():
    df = synth_survival(3000, seed=2)
    groups = np.array(["2024-01", "2024-02", "2024-03"])[np.arange(len(df)) % 3]
    rc = survival.retention_curves(df["duration_days"], df["event"], groups)
    assert list(rc.columns) == ["group", "day", "survival", "at_risk", "lower", "upper"]
    assert len(rc) == 3 * 8 and sorted(rc.group.unique()) == ["2024-01", "2024-02", "2024-03"]
    for _, g in rc.groupby("group"):
        assert g.day.tolist() == [0, 7, 14, 30, 60, 90, 180, 365]
        s = g.survival.dropna().to_numpy()
        assert s[0] == 1.0 and np.all(np.diff(s) <= 0)
        assert np.all(np.diff(g.at_risk.to_numpy()) <= 0)
        ok = g.survival.notna()
        assert (g.lower[ok] <= g.survival[ok] + 1e-12).all()
        assert (g.survival[ok] <= g.upper[ok] + 1e-12).all()


# --------------------------------------------------------------------------- intent
INTENT_COLUMNS = ["signal_type:page_view", "signal_type:add_to_cart", "signal_type:checkout_start",
                  "signal_type:purchase", "signal_type:email_open", "channel:web", "channel:app",
                  "channel:email", "category:shoes", "category:bags", "source_system:web"]


def synth_intent(n: int, seed: int):
    """Counts as of an anchor and purchase in the next 7 days; recent add_to_cart / checkout
    raise the odds, a long time since the last purchase lowers them. channel:email duplicates
    email_open and source_system:web duplicates channel:web (exact collinearity)."""
    rng = np.random.default_rng(seed)
    eng = rng.gamma(1.0, 1.0, n)
    pv, cart = rng.poisson(4 * eng), rng.poisson(0.4 * eng)
    chk, pur = rng.poisson(0.15 * eng), rng.poisson(0.1 * eng)
    eo = rng.poisson(1.5, n)
    app = rng.binomial(pv, 0.4)
    shoes = rng.binomial(pv, 0.5)
    M = np.column_stack([pv, cart, chk, pur, eo, pv - app, app, eo, shoes, pv - shoes, pv - app])
    dsp = np.where(pur > 0, rng.integers(0, 30, n),
                   np.where(rng.random(n) < 0.5, rng.integers(30, 365, n), np.nan)).astype(float)
    eta = (-2.4 + 0.3 * np.log1p(pv) + 1.4 * np.log1p(cart) + 1.8 * np.log1p(chk)
           - 0.3 * np.log1p(np.nan_to_num(dsp, nan=400)))
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return sp.csr_matrix(M), y, dsp[:, None]


def _intent_input(train, holdout, y_train=None):
    X, y, num = train
    Xh, yh, numh = holdout
    block = {"X": X, "y": y if y_train is None else y_train, "numeric": num,
             "numeric_columns": ["days_since_purchase"]}
    return FitInput(_keys(X.shape[0]), X, INTENT_COLUMNS,
                    {"train": block, "holdout": {"X": Xh, "y": yh, "numeric": numh,
                                                 "numeric_columns": ["days_since_purchase"]}})


@pytest.fixture(scope="module")
def intent_data():
    return synth_intent(20_000, seed=0), synth_intent(20_000, seed=1)


def test_intent_planted_signal_auc_and_calibration(intent_data):
    train, holdout = intent_data
    t0 = time.perf_counter()
    model = intent.fit(_intent_input(train, holdout), seed=7, options={})
    fit_s = time.perf_counter() - t0
    model = _roundtrip(model)
    q = model["quality"]
    assert q["regularized"] == 0
    # exact duplicates are dropped by the pivoted QR
    assert "channel:email" not in model["count_columns"] or "signal_type:email_open" not in model["count_columns"]
    assert "source_system:web" not in model["count_columns"] or "channel:web" not in model["count_columns"]
    coef = dict(zip(model["coef_names"], model["coef"]))
    assert coef["signal_type:add_to_cart"] > 0 and coef["signal_type:checkout_start"] > 0
    assert coef["days_since_purchase"] < 0

    bands = ["low", "medium", "high", "very_high"]
    rates = [q[f"holdout_rate_{b}"] for b in bands]
    preds = [q[f"holdout_pred_{b}"] for b in bands]
    print(f"intent: auc_holdout={q['auc_holdout']:.4f} auc_train={q['auc_train']:.4f} "
          f"brier_holdout={q['brier_holdout']:.4f} base={q['base_rate_holdout']:.4f} "
          f"observed by band={np.round(rates, 3)} predicted={np.round(preds, 3)} "
          f"calibration={model['calibration']} fit={fit_s:.2f}s")
    assert q["auc_holdout"] >= 0.75
    assert np.all(np.diff(rates) > 0)
    for r, p in zip(rates, preds):
        assert abs(r - p) <= 0.02 + 0.2 * r
    assert abs(q["mean_pred_holdout"] - q["base_rate_holdout"]) < 0.01

    Xb, yb, numb = synth_intent(100_000, seed=2)
    # columns in a different order + one unknown column: matched by name
    order = np.r_[np.arange(len(INTENT_COLUMNS))[::-1]]
    cols = [INTENT_COLUMNS[i] for i in order] + ["channel:sms"]
    Xs = sp.hstack([Xb[:, order], sp.csr_matrix((Xb.shape[0], 1))]).tocsr()
    t0 = time.perf_counter()
    res = intent.score(model, ScoreInput(_keys(Xs.shape[0]), Xs, cols,
                                         {"numeric": numb, "numeric_columns": ["days_since_purchase"]}))
    score_s = time.perf_counter() - t0
    auc_b = roc_auc_score(yb, res.score)
    shares = np.bincount(res.cohort_index, minlength=4) / res.cohort_index.size
    print(f"intent score100k: {score_s:.3f}s auc={auc_b:.4f} band shares={np.round(shares, 3)} "
          f"confidence by band={[round(float(res.confidence[res.cohort_index == b].mean()), 3) for b in range(4)]}")
    assert score_s < 5 and auc_b >= 0.75
    assert ((res.confidence >= 0) & (res.confidence <= 1)).all()
    assert ((res.score > 0) & (res.score < 1)).all()
    np.testing.assert_allclose(shares, [0.5, 0.3, 0.15, 0.05], atol=0.03)
    C = sp.csr_matrix(res.contribution)
    assert C.shape == Xs.shape and (C.data > 0).all()
    cart_col = cols.index("signal_type:add_to_cart")
    has_cart = np.asarray(Xs[:, cart_col].todense()).ravel() > 0
    assert (np.asarray(C[:, cart_col].todense()).ravel()[has_cart] > 0).all()
    assert C[:, cols.index("channel:sms")].nnz == 0


def test_intent_shuffled_labels_have_no_signal(intent_data):
    """Training labels shuffled: the default fit refuses (no signal on the calibration slice).
    With the guard off, the holdout AUC of one shuffle is a random linear mix of informative
    features scored against the real labels, so it scatters widely around 0.5 (sd ~0.12 here);
    its mean over shuffles is ~0.5 and calibration flattens every such model. With the holdout
    labels shuffled too, there is no information anywhere and the AUC is ~0.5."""
    train, holdout = intent_data
    y_shuf = np.random.default_rng(3).permutation(train[1])
    with pytest.raises(InsufficientData, match="intent: no predictive signal"):
        intent.fit(_intent_input(train, holdout, y_shuf), seed=7, options={})
    aucs, raw_aucs, spreads = [], [], []
    for s in range(8):
        y_s = np.random.default_rng(s).permutation(train[1])
        q = intent.fit(_intent_input(train, holdout, y_s), seed=7,
                       options={"min_auc_calibration": 0.0})["quality"]
        aucs.append(q["auc_holdout"])
        raw_aucs.append(q["auc_holdout_uncalibrated"])
        spreads.append(q["sd_pred_holdout"])
    Xh, yh, numh = holdout
    both = intent.fit(_intent_input(train, (Xh, np.random.default_rng(4).permutation(yh), numh),
                                    y_shuf), seed=7, options={"min_auc_calibration": 0.0})
    real = intent.fit(_intent_input(train, holdout), seed=7, options={})["quality"]
    real_spread = real["sd_pred_holdout"]
    print(f"intent shuffled: holdout AUC per shuffle={np.round(aucs, 3)} mean={np.mean(aucs):.4f} "
          f"(uncalibrated {np.round(raw_aucs, 3)} mean={np.mean(raw_aucs):.4f}); "
          f"both weeks shuffled={both['quality']['auc_holdout']:.4f}; sd of calibrated "
          f"probability max={max(spreads):.4f} vs planted {real_spread:.4f}")
    assert np.mean(aucs) < 0.6 and abs(np.mean(aucs) - 0.5) < 0.1
    assert abs(np.mean(raw_aucs) - 0.5) < 0.1
    assert abs(both["quality"]["auc_holdout"] - 0.5) < 0.05
    assert max(spreads) < 0.25 * real_spread


def test_intent_separation_isotonic_and_insufficient(intent_data):
    (X, y, num), holdout = intent_data
    # a column only a few purchasers have: quasi-complete separation
    rng = np.random.default_rng(9)
    flag = np.zeros(y.size)
    flag[rng.choice(np.flatnonzero(y == 1), 40, replace=False)] = 1
    Xs = sp.hstack([X, sp.csr_matrix(flag[:, None])]).tocsr()
    Xh = holdout[0]
    Xhs = sp.hstack([Xh, sp.csr_matrix((Xh.shape[0], 1))]).tocsr()
    data = FitInput(_keys(y.size), Xs, INTENT_COLUMNS + ["signal_type:gift_card_redeem"],
                    {"train": {"X": Xs, "y": y, "numeric": num},
                     "holdout": {"X": Xhs, "y": holdout[1], "numeric": holdout[2]}})
    m = _roundtrip(intent.fit(data, seed=1, options={"calibration": "isotonic"}))
    assert m["regularized"] == 1 and m["calibration"]["kind"] == "isotonic"
    assert np.isfinite(m["coef"]).all() and np.isfinite(m["coef_cov"]).all()
    assert m["numeric_columns"] == ["num_0"] and m["quality"]["auc_holdout"] >= 0.75
    res = intent.score(m, ScoreInput(_keys(5), Xhs[:5], data.columns, {"numeric": holdout[2][:5]}))
    assert np.isfinite(res.score).all() and ((res.confidence >= 0) & (res.confidence <= 1)).all()
    assert intent.fit(data, seed=1, options={"calibration": "isotonic"}) == m

    few = FitInput(_keys(300), X[:300], INTENT_COLUMNS, {"train": {"X": X[:300], "y": np.zeros(300)}})
    with pytest.raises(InsufficientData, match="intent: 0 purchasers"):
        intent.fit(few, seed=0, options={})
    with pytest.raises(InsufficientData, match="intent: no training anchor"):
        intent.fit(FitInput(_keys(3), X[:3], INTENT_COLUMNS), seed=0, options={})
