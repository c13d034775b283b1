"""Per-window count matrices built from the long bucket table (cohort_signal_buckets).

One `BucketBatch` holds the bucket rows of a set of customers (a fitting sample or a scoring
batch) and builds, for any window at any anchor, a CSR matrix of event counts per customer ×
feature column. Columns are ``kind:value``; kinds are the bucket table's dimensions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

KINDS = ("signal_type", "channel", "source_system", "category", "signal_category")
BUCKET_COLUMNS = ("customer_key", "signal_type", "channel", "source_system", "category",
                  "time_bucket", "event_count", "amount_sum", "first_occurred_at")


@dataclass(frozen=True)
class WindowSpec:
    window_id: str
    anchor_id: str
    anchor_offset_hours: int
    buckets: frozenset
    hours: int | None  # window length; None = lifetime (open-ended)


def window_specs(window_buckets: pd.DataFrame) -> dict[tuple[str, str], WindowSpec]:
    """(window_id, anchor_id) -> WindowSpec, from the cohort_window_buckets table."""
    out = {}
    for (w, a), g in window_buckets.groupby(["window_id", "anchor_id"]):
        offset = int(g["anchor_offset_hours"].iloc[0])
        hours = None if g["hours_ago_to"].isna().any() else int(g["hours_ago_to"].max()) - offset
        out[(w, a)] = WindowSpec(w, a, offset, frozenset(int(b) for b in g["time_bucket"]), hours)
    return out


class BucketBatch:
    """Bucket rows of a set of customers, indexed for fast per-window matrices."""

    def __init__(self, table: pa.Table, bucket_bounds: pd.DataFrame):
        df = table.to_pandas()
        codes, keys = pd.factorize(df["customer_key"], sort=True)
        self.customer_keys = np.asarray(keys, dtype=object)
        self.n = len(self.customer_keys)
        self.cust = codes.astype(np.int64)
        self.bucket = df["time_bucket"].to_numpy(np.int64)
        self.count = df["event_count"].to_numpy(np.float64)
        self.amount = df["amount_sum"].fillna(0.0).to_numpy(np.float64)
        self.first_at = df["first_occurred_at"]
        flag = df["flag"].to_numpy(bool) if "flag" in df else np.ones(len(df), bool)
        self.flag = np.bincount(self.cust, weights=flag, minlength=self.n) > 0
        # each kind factorised once: integer codes per row (-1 = null) and the distinct values
        self.codes, self.uniques = {}, {}
        for kind in ("signal_type", "channel", "source_system", "category"):
            c, u = pd.factorize(df[kind])
            self.codes[kind], self.uniques[kind] = c.astype(np.int64), np.asarray(u, dtype=object)
        # signal_category = signal_type|category, combined from the two codes (null category -> -1)
        n_cat = len(self.uniques["category"])
        t, c = self.codes["signal_type"], self.codes["category"]
        combo = np.where((c >= 0) & (t >= 0), t * max(n_cat, 1) + c, -1)
        present, inverse = np.unique(combo, return_inverse=True)
        valid = present >= 0
        self.codes["signal_category"] = np.where(combo >= 0, inverse - (~valid).sum(), -1).astype(np.int64)
        self.uniques["signal_category"] = np.array(
            [f"{self.uniques['signal_type'][x // max(n_cat, 1)]}|{self.uniques['category'][x % max(n_cat, 1)]}"
             for x in present[valid]], dtype=object)
        types = self.uniques["signal_type"]
        self.is_purchase = (self.codes["signal_type"] >= 0) & (
            np.append(types == "purchase", False)[self.codes["signal_type"]])
        # hours_ago_from / hours_ago_to per bucket number
        self._bounds = bucket_bounds.drop_duplicates("time_bucket").set_index("time_bucket")

    # ------------------------------------------------------------------ selection
    def rows_in(self, spec: WindowSpec) -> np.ndarray:
        return np.isin(self.bucket, np.fromiter(spec.buckets, dtype=np.int64))

    def rows_aged(self, hours_from: int, hours_to: int) -> np.ndarray:
        """Rows whose bucket lies entirely within [hours_from, hours_to) hours before as_of."""
        b = self._bounds
        ok = b.index[(b["hours_ago_from"] >= hours_from) & (b["hours_ago_to"].notna())
                     & (b["hours_ago_to"] <= hours_to)]
        return np.isin(self.bucket, ok.to_numpy(np.int64))

    # ------------------------------------------------------------------ matrices
    def columns(self, spec: WindowSpec, kinds=KINDS) -> list[str]:
        rows = self.rows_in(spec)
        cols = []
        for kind in kinds:
            present = np.unique(self.codes[kind][rows])
            cols += [f"{kind}:{x}" for x in sorted(self.uniques[kind][present[present >= 0]])]
        return cols

    def matrix(self, spec: WindowSpec, columns: list[str], weights: str = "count") -> sp.csr_matrix:
        """[n customers, len(columns)] sums of event_count (or amount) in the window."""
        rows = self.rows_in(spec)
        data = (self.count if weights == "count" else self.amount)[rows]
        cust = self.cust[rows]
        index = {c: i for i, c in enumerate(columns)}
        parts_r, parts_c, parts_v = [], [], []
        for kind in KINDS:
            # batch value code -> output column (-1 = not a model column)
            lookup = np.array([index.get(f"{kind}:{u}", -1) for u in self.uniques[kind]] + [-1],
                              dtype=np.int64)
            col = lookup[self.codes[kind][rows]]  # code -1 indexes the trailing -1
            ok = col >= 0
            parts_r.append(cust[ok])
            parts_c.append(col[ok])
            parts_v.append(data[ok])
        m = sp.coo_matrix((np.concatenate(parts_v), (np.concatenate(parts_r), np.concatenate(parts_c))),
                          shape=(self.n, len(columns)))
        return m.tocsr()

    def signal_totals(self, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
        """Per customer: events in the window and distinct signal types among them."""
        rows = self.rows_in(spec)
        events = np.bincount(self.cust[rows], weights=self.count[rows], minlength=self.n)
        n_types = len(self.uniques["signal_type"]) + 1
        per_type = np.bincount(self.cust[rows] * n_types + self.codes["signal_type"][rows] + 1,
                               minlength=self.n * n_types).reshape(self.n, n_types)
        distinct = (per_type[:, 1:] > 0).sum(axis=1)
        return events, distinct

    def purchases(self, hours_from: int, hours_to: int) -> np.ndarray:
        """Purchase events per customer aged [hours_from, hours_to) before as_of."""
        rows = self.rows_aged(hours_from, hours_to) & self.is_purchase
        return np.bincount(self.cust[rows], weights=self.count[rows], minlength=self.n)

    def first_purchase_time(self, hours_from: int, hours_to: int) -> pd.Series:
        """Earliest purchase time per customer among rows aged [hours_from, hours_to)."""
        rows = self.rows_aged(hours_from, hours_to) & self.is_purchase
        s = pd.Series(self.first_at[rows].to_numpy(), index=self.cust[rows])
        out = s.groupby(level=0).min()
        return out.reindex(np.arange(self.n))

    def first_event_time(self, spec: WindowSpec) -> pd.Series:
        """Earliest event per customer in the window."""
        rows = self.rows_in(spec)
        s = pd.Series(self.first_at[rows].to_numpy(), index=self.cust[rows])
        return s.groupby(level=0).min().reindex(np.arange(self.n))

    def last_event_time(self, spec: WindowSpec, signal_type: str | None = None) -> pd.Series:
        """Latest event (first_occurred_at of the newest bucket is a lower bound) per customer."""
        rows = self.rows_in(spec)
        if signal_type is not None:
            rows &= np.append(self.uniques["signal_type"] == signal_type, False)[self.codes["signal_type"]]
        s = pd.Series(self.first_at[rows].to_numpy(), index=self.cust[rows])
        return s.groupby(level=0).max().reindex(np.arange(self.n))
