"""Stable cohort ids across refits of the cluster-type methods (output_kind cluster / topic /
community).

A refit numbers its clusters arbitrarily, so the cohort index a method returns means nothing
from one fit to the next. Each fitted model therefore carries ``cohort_ids``: the stable id of
every cohort index, and the bridge writes ``cohort_id = "<method>:<stable id>"``.

The rule (``align_cohorts``), for one method × window:

* first fit: ``cohort_ids = [0, 1, ..., k-1]`` (the ids are the indices, as before);
* refit: the fitting sample is scored with the previous and the new model; over the customers
  both assign, the contingency table (previous index × new index) is matched one-to-one by
  ``scipy.optimize.linear_sum_assignment``, maximising the total overlap. A new cohort takes
  the matched previous cohort's stable id when the overlap is at least ``min_share`` (1/2) of
  the smaller of the two cohorts' sizes among the compared customers; every other new cohort
  (unmatched, empty overlap or too small an overlap) gets a fresh id, numbered upwards from
  the highest id any earlier fit of the method × window ever used, in new-index order, so a
  retired id is never given to another cohort.

Pure numpy / scipy, no I/O. Deterministic: the result depends only on the contingency table
(not on the order of the customers), and ties are broken by scipy's deterministic solver.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

MIN_SHARE = 0.5
# output_kind values whose cohort indices are arbitrary (ordinal bands are not aligned)
ALIGNED_KINDS = ("cluster", "topic", "community")


@dataclass(frozen=True)
class Alignment:
    cohort_ids: list[int]      # stable id of each new cohort index
    diagnostics: dict          # JSON-serialisable: pairs, overlaps, fresh / retired ids, shares


def n_cohorts(fitted: dict) -> int:
    """Number of cohort indices a fitted model can return (its labels; k / n_cohorts if larger)."""
    return max(len(fitted.get("labels") or []), int(fitted.get("k") or 0), int(fitted.get("n_cohorts") or 0))


def cohort_ids_of(fitted: dict) -> list[int]:
    """The stable ids of a fitted model: its ``cohort_ids``, or its indices (models fitted
    before alignment existed, and the first fit)."""
    ids = fitted.get("cohort_ids")
    return [int(i) for i in ids] if ids is not None else list(range(n_cohorts(fitted)))


def first_fit_ids(k: int) -> list[int]:
    return list(range(int(k)))


def contingency(previous_index, new_index, n_previous: int, n_new: int) -> np.ndarray:
    """[n_previous, n_new] counts of customers by (previous index, new index); customers either
    model leaves unassigned (index < 0, or out of range) are not counted."""
    p = np.asarray(previous_index, dtype=np.int64).ravel()
    q = np.asarray(new_index, dtype=np.int64).ravel()
    if p.shape != q.shape:
        raise ValueError(f"previous_index and new_index differ in length: {p.size} != {q.size}")
    ok = (p >= 0) & (p < n_previous) & (q >= 0) & (q < n_new)
    flat = np.bincount(p[ok] * n_new + q[ok], minlength=n_previous * n_new)
    return flat.reshape(n_previous, n_new).astype(np.int64)


def align_cohorts(previous_index, new_index, *, previous_ids, n_new: int, id_high: int | None = None,
                  min_share: float = MIN_SHARE) -> Alignment:
    """Stable ids for the ``n_new`` cohorts of a refit.

    previous_index, new_index: cohort index of the same customers (aligned arrays, -1 =
    unassigned) under the previous and the new model. previous_ids: the previous model's stable
    id per index. id_high: the highest id ever used by earlier fits of this method × window
    (defaults to max(previous_ids)); fresh ids start above it and above max(previous_ids)."""
    previous_ids = [int(i) for i in previous_ids]
    n_prev, n_new = len(previous_ids), int(n_new)
    C = contingency(previous_index, new_index, n_prev, n_new)
    prev_size, new_size = C.sum(axis=1), C.sum(axis=0)
    n_compared = int(C.sum())
    high = max([-1, *previous_ids] + ([int(id_high)] if id_high is not None else []))

    ids: list[int | None] = [None] * n_new
    pairs = []
    if n_prev and n_new and n_compared:
        rows, cols = linear_sum_assignment(C, maximize=True)
        for i, j in sorted(zip(rows.tolist(), cols.tolist()), key=lambda rc: rc[1]):
            overlap = int(C[i, j])
            smaller = int(min(prev_size[i], new_size[j]))
            kept = overlap > 0 and overlap >= min_share * smaller
            if kept:
                ids[j] = previous_ids[i]
            pairs.append({"previous_index": i, "previous_id": previous_ids[i], "new_index": j,
                          "overlap": overlap, "previous_size": int(prev_size[i]),
                          "new_size": int(new_size[j]),
                          "overlap_share_of_smaller": round(overlap / smaller, 6) if smaller else 0.0,
                          "kept": bool(kept)})
    fresh = []
    for j in range(n_new):
        if ids[j] is None:
            high += 1
            ids[j] = high
            fresh.append({"new_index": j, "id": high, "new_size": int(new_size[j])})
    cohort_ids = [int(i) for i in ids]
    retired = sorted(set(previous_ids) - set(cohort_ids))

    # share of compared customers whose stable id is unchanged, with and without alignment
    prev_id_arr = np.asarray(previous_ids, dtype=np.int64).reshape(n_prev, 1)
    same = prev_id_arr == np.asarray(cohort_ids, dtype=np.int64).reshape(1, n_new)
    same_raw = prev_id_arr == np.arange(n_new, dtype=np.int64).reshape(1, n_new)
    unchanged = int(C[same].sum()) if n_compared else 0
    unchanged_raw = int(C[same_raw].sum()) if n_compared else 0
    diagnostics = {
        "n_compared": n_compared,
        "min_share": float(min_share),
        "pairs": pairs,
        "fresh": fresh,
        "retired_ids": retired,
        "cohort_ids": cohort_ids,
        "id_high": int(high),      # >= every id kept or issued: the next refit's floor
        "unchanged_share": round(unchanged / n_compared, 6) if n_compared else None,
        "unchanged_share_by_index": round(unchanged_raw / n_compared, 6) if n_compared else None,
    }
    return Alignment(cohort_ids, diagnostics)
