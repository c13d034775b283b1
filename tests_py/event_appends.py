"""Appending events to a generated demo's raw folder, the way a loader would: a new Parquet file
whose rows arrive after the current capture watermark, mixing the hour after the newest event,
late events (occurred long ago), out-of-order events and events whose occurred_at equals an
existing event's, for existing and brand-new customers, in shuffled physical order."""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd


def append_events(raw_dir: Path, n: int, seed: int, new_customer_share: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    events_dir = Path(raw_dir) / "events"
    con = duckdb.connect()
    try:
        existing = con.sql(f"select * from read_parquet('{events_dir}/*.parquet')").df()
    finally:
        con.close()
    watermark = existing["received_at"].max()
    newest = existing["occurred_at"].max()
    rows = existing.sample(n=n, random_state=int(rng.integers(2**31)), replace=True).reset_index(drop=True)
    rows["event_id"] = [f"append{seed}_{i:07d}" for i in range(n)]
    kind = rng.choice(["next_hour", "late", "equal_time", "out_of_order"], size=n, p=[0.4, 0.2, 0.2, 0.2])
    seconds = lambda lo, hi: pd.to_timedelta(rng.uniform(lo, hi, size=n), unit="s")  # noqa: E731
    occurred = np.where(kind == "next_hour", newest + seconds(1, 3600),
               np.where(kind == "late", newest - seconds(86_400, 200 * 86_400),
               np.where(kind == "out_of_order", newest - seconds(0, 3 * 86_400),
                        existing["occurred_at"].sample(n=n, random_state=seed, replace=True).to_numpy())))
    rows["occurred_at"] = pd.to_datetime(occurred)
    rows["received_at"] = watermark + seconds(1, 3600)
    fresh = rng.random(n) < new_customer_share
    rows.loc[fresh, "customer_id"] = [f"new{seed}_{i % 50:03d}" for i in range(int(fresh.sum()))]
    rows = rows.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    rows.to_parquet(events_dir / f"append-{seed}.parquet", index=False)
    return rows
