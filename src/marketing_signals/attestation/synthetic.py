"""Synthetic attestation candidates with realistic field values, for tests and the throughput benchmark."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json

import numpy as np
import pandas as pd

from .schema import CANDIDATE_COLUMNS

_KINDS = ("cohort_assignment", "membership_change", "suppression", "consent_check")
_DECISIONS = ("include", "exclude", "suppress", "allow", "hold")
_OPS = ("insert", "update", "delete", None)
_METHODS = ("rfm", "kmeans", "gmm", "hdbscan", "lda", "leiden", "survival", "intent", "word2vec", None)
_RETENTION = (("P3Y", 3), ("P6Y", 6), ("P10Y", 10))


def synthetic_candidates(n: int, seed: int = 0, *, start: str = "2026-10-01", run_id: str = "run-0001",
                         id_prefix: str = "att") -> pd.DataFrame:
    """n candidate records (CANDIDATE_COLUMNS): per-record ids, digests, scores and rationale JSON,
    templated Art. 22 / ADMT / custody / attestor JSON, ~10% nulls in the nullable columns."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start).value // 1000
    micros = np.sort(t0 + rng.integers(0, 86_400_000_000, n))
    decided = pd.to_datetime(micros, unit="us")
    subs = rng.integers(1, 5_000_000, n)
    kinds = rng.integers(0, len(_KINDS), n)
    decisions = rng.integers(0, len(_DECISIONS), n)
    ops = rng.integers(0, len(_OPS), n)
    methods = rng.integers(0, len(_METHODS), n)
    conf = np.round(rng.random(n), 6)
    conf_null = rng.random(n) < 0.1
    sub_null = rng.random(n) < 0.05
    ret = rng.integers(0, len(_RETENTION), n)
    recency = rng.integers(0, 400, n)
    freq = rng.integers(1, 60, n)
    monetary = np.round(rng.gamma(2.0, 40.0, n), 2)
    rules_a = rng.integers(1, 30, n)
    rules_b = rng.integers(30, 60, n)
    art22 = [json.dumps({"automated": True, "legal_or_similar_effect": bool(k % 2), "human_review": "on_request",
                         "contest_channel": "privacy@example.com"}) for k in range(len(_KINDS))]
    admt = [json.dumps({"ccpa_admt": True, "opt_out_honoured": True, "pre_use_notice": f"notice-v{k}"})
            for k in range(3)]
    custody = json.dumps({"source": "raw/events", "run_id": run_id, "pipeline": "dbt", "rows_in": int(n)})
    attestor = json.dumps({"engine": "marketing_signals", "version": "0.2.0", "host_role": "dbt-python-model"})
    day0 = _dt.date.fromisoformat(start[:10])
    rows = {
        "attestation_id": [f"{id_prefix}-{seed:04d}-{i:09d}" for i in range(n)],
        "record_kind": [_KINDS[k] for k in kinds],
        "decision": [_DECISIONS[k] for k in decisions],
        "op": [_OPS[k] for k in ops],
        "subject_digest": [hashlib.sha256(b"subscriber:%d" % s).hexdigest() for s in subs],
        "subscriber_id": [None if z else f"S{s:08d}" for s, z in zip(subs.tolist(), sub_null.tolist())],
        "method_id": [_METHODS[k] for k in methods],
        "window_id": ["w2026-10"] * n,
        "cohort_id": [f"c{(s % 40):02d}" for s in subs.tolist()],
        "confidence": np.where(conf_null, np.nan, conf),
        "decided_at": decided,
        "rule_ids": [f"R{a:02d}|R{b:02d}" for a, b in zip(rules_a.tolist(), rules_b.tolist())],
        "rationale_json": [
            '{"score":%s,"features":{"recency_days":%d,"frequency":%d,"monetary":%s},"rules":["R%02d","R%02d"]}'
            % (c, r, f, m, a, b)
            for c, r, f, m, a, b in zip(conf.tolist(), recency.tolist(), freq.tolist(), monetary.tolist(),
                                        rules_a.tolist(), rules_b.tolist())],
        "art22_json": [art22[k] for k in kinds],
        "admt_json": [admt[k % 3] for k in decisions],
        "custody_json": [custody] * n,
        "attestor_json": [attestor] * n,
        "retention_class": [_RETENTION[k][0] for k in ret],
        "retention_until": [day0.replace(year=day0.year + _RETENTION[k][1]) for k in ret],
    }
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
