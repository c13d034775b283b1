"""The contract every Python cohort method follows.

A method module exposes two pure functions over numpy / scipy inputs, never over dbt or
DuckDB objects, so the same code runs on DuckDB and inside Snowpark:

``fit(data: FitInput, *, seed: int, options: dict) -> dict``
    Returns the fitted model as a JSON-serialisable dict (lists, floats, ints, strings only).
    It is stored in a table with a model_version and is all ``score`` may use. Required keys:
    ``labels`` (readable label per cohort index) and ``quality`` (dict of numbers, e.g.
    ``silhouette``, ``stability_ari``, ``n_fit``). Raise ``InsufficientData(reason)`` when the
    sample cannot support the method (the reason is recorded, never silently dropped).

``score(model: dict, data: ScoreInput) -> ScoreResult``
    Scores one batch of customers with the stored model only (no refitting).

Matrices hold raw event counts per customer (rows) and feature column (columns); column names
are ``kind:value`` with kind one of ``signal_type``, ``channel``, ``source_system``,
``category`` and ``signal_category`` (``signal_type|category``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


class InsufficientData(Exception):
    """The data cannot support the method for this window; the message is the recorded reason."""


@dataclass
class FitInput:
    """A sample of customers for one window (anchor = as_of)."""
    customer_keys: np.ndarray            # [n] str
    X: sp.csr_matrix                     # [n, p] event counts
    columns: list[str]                   # p names, "kind:value"
    extra: dict = field(default_factory=dict)  # method-specific inputs (sequences, edges, ...)


@dataclass
class ScoreInput:
    customer_keys: np.ndarray
    X: sp.csr_matrix
    columns: list[str]
    extra: dict = field(default_factory=dict)


@dataclass
class ScoreResult:
    """Per-customer result of one batch; arrays aligned with ScoreInput.customer_keys."""
    cohort_index: np.ndarray             # [n] int, -1 = not assigned (see reason)
    confidence: np.ndarray               # [n] float in [0, 1]; NaN where not assigned
    reason: np.ndarray | None = None     # [n] object: why not assigned (None where assigned)
    contribution: np.ndarray | sp.spmatrix | None = None
    # [n, p] non-negative weight of each input column in the assignment; None = the bridge
    # uses the customer's own column shares. Only the largest few per customer are kept.
    score: np.ndarray | None = None      # [n] optional method score (probability, hazard...)


def to_jsonable(obj):
    """numpy arrays and scalars -> lists and Python numbers, recursively."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
