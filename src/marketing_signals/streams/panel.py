"""Long stream metrics -> a dense panel (series x day) on the log scale, with calendars.

A series is one stream at one location, plus one portfolio series per stream (location
'ALL': the sum over locations for extensive metrics, the mean for rates and prices, from the
registry's `portfolio_rollup`; a day where fewer than 80% of the locations reported has no
portfolio value, and a sum is scaled up from the reporting locations). Missing days stay NaN (the filter carries its states over
them); duplicated (stream, location, day) rows are an error upstream (staging dedups them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import ets

PORTFOLIO = "ALL"
RATIO_EPS = 1e-4
MIN_PORTFOLIO_SHARE = 0.8
SERIES_COLUMNS = ["stream_id", "location_id"]


@dataclass
class Panel:
    series: pd.DataFrame         # one row per series: stream_id, location_id, + registry columns
    days: pd.DatetimeIndex       # T consecutive days
    values: np.ndarray           # (n, T) raw values, NaN where missing
    y: np.ndarray                # (n, T) transformed: log(value + offset), or logit for bounded ratios
    offset: np.ndarray           # (n,)
    is_ratio: np.ndarray         # (n,) bool: logit scale

    @property
    def n(self) -> int:
        return self.values.shape[0]

    @property
    def is_count(self) -> np.ndarray:
        return (self.series["unit"] == "count").to_numpy()

    def back(self, y: np.ndarray) -> np.ndarray:
        """Transformed scale -> the stream's unit (rows aligned with the panel's series)."""
        shape = (-1, *([1] * (y.ndim - 1)))
        off = self.offset.reshape(shape)
        with np.errstate(over="ignore"):
            return np.where(self.is_ratio.reshape(shape), 1.0 / (1.0 + np.exp(-y)), np.exp(y) - off)


def log_offset(unit: pd.Series, values: np.ndarray) -> np.ndarray:
    """Counts: +1 (zeros happen); other units: 1% of the series' median (keeps log finite)."""
    with np.errstate(all="ignore"):
        med = np.nanmedian(np.where(values > 0, values, np.nan), axis=1)
    small = np.nan_to_num(0.01 * med, nan=1e-3)
    return np.where(unit.to_numpy() == "count", 1.0, np.maximum(small, 1e-6))


def build_panel(metrics: pd.DataFrame, streams: pd.DataFrame, *, with_portfolio: bool = True,
                start: str | pd.Timestamp | None = None, end: str | pd.Timestamp | None = None) -> Panel:
    """metrics: stream_id, location_id, period_start (date), value. streams: the registry."""
    m = metrics[["stream_id", "location_id", "period_start", "value"]].copy()
    m["period_start"] = pd.to_datetime(m["period_start"])
    m = m[m["stream_id"].isin(streams["stream_id"])]
    lo = pd.Timestamp(start) if start is not None else m["period_start"].min()
    hi = pd.Timestamp(end) if end is not None else m["period_start"].max()
    days = pd.date_range(lo, hi, freq="D")
    m = m[(m["period_start"] >= lo) & (m["period_start"] <= hi)]
    s_codes, s_uni = pd.factorize(m["stream_id"].astype(str), sort=True)
    l_codes, l_uni = pd.factorize(m["location_id"].astype(str), sort=True)
    key_uni, row = np.unique(s_codes.astype(np.int64) * len(l_uni) + l_codes, return_inverse=True)
    keys = pd.DataFrame({"stream_id": np.asarray(s_uni)[key_uni // max(len(l_uni), 1)],
                         "location_id": np.asarray(l_uni)[key_uni % max(len(l_uni), 1)]})
    col = ((m["period_start"] - lo).dt.days).to_numpy()
    values = np.full((len(keys), len(days)), np.nan)
    values[row, col] = m["value"].to_numpy(dtype=np.float64)
    if with_portfolio and len(keys):
        reg = streams.set_index("stream_id")
        rows, labels = [], []
        for sid, grp in keys.groupby("stream_id", sort=True):
            block = values[grp.index.to_numpy()]
            how = str(reg.at[sid, "portfolio_rollup"]) if "portfolio_rollup" in reg.columns else "mean"
            reported = (~np.isnan(block)).sum(axis=0)
            with np.errstate(all="ignore"):
                # a sum over the reporting locations, scaled up to all of them (a missing
                # location is not a drop); no portfolio value when fewer than 80% reported
                agg = np.nansum(block, axis=0) * block.shape[0] / reported if how == "sum" else np.nanmean(block, axis=0)
            agg[reported < MIN_PORTFOLIO_SHARE * block.shape[0]] = np.nan
            rows.append(agg)
            labels.append((sid, PORTFOLIO))
        values = np.vstack([values, np.vstack(rows)])
        keys = pd.concat([keys, pd.DataFrame(labels, columns=SERIES_COLUMNS)], ignore_index=True)
    series = keys.merge(streams, on="stream_id", how="left", validate="many_to_one")
    offset = log_offset(series["unit"], values)
    is_ratio = series.get("is_bounded_ratio", pd.Series(False, index=series.index)).astype(str).str.lower().isin(
        ["true", "1", "t", "yes"]).to_numpy()
    with np.errstate(all="ignore"):
        p = np.clip(values, RATIO_EPS, 1 - RATIO_EPS)
        y = np.where(is_ratio[:, None], np.log(p / (1 - p)), np.log(np.maximum(values, 0.0) + offset[:, None]))
    return Panel(series, days, values, y, offset, is_ratio)


def concern_sign(direction: pd.Series) -> np.ndarray:
    return direction.map({"up": 1.0, "down": -1.0}).fillna(0.0).to_numpy()


# ------------------------------------------------------------------ calendars
def day_of_month_calendar(panel: Panel) -> ets.Calendar:
    """Day-of-month effects for streams whose registry seasonality includes a monthly cycle."""
    monthly = panel.series["seasonality"].astype(str).str.contains("monthly").to_numpy()
    dom = panel.days.day.to_numpy()
    keys = np.where(monthly[:, None], dom[None, :], 0).astype(np.int16)
    return ets.Calendar(keys, 31, rate=0.3)


def event_calendar(panel: Panel, holidays: pd.DataFrame | None, promos: pd.DataFrame | None) -> ets.Calendar | None:
    """Holidays (one effect per holiday name) and promo periods (one effect per location).

    holidays: holiday_date, holiday_name. promos: location_id ('ALL' = every location),
    starts_on, ends_on (dates, inclusive). A promo day outranks a holiday on the same day.
    """
    n, T = panel.values.shape
    keys = np.zeros((n, T), np.int16)
    names: list[str] = []
    if holidays is not None and len(holidays):
        h = holidays.copy()
        h["holiday_date"] = pd.to_datetime(h["holiday_date"])
        h = h[h["holiday_date"].isin(panel.days)]
        names = sorted(h["holiday_name"].unique())
        pos = panel.days.get_indexer(h["holiday_date"])
        keys[:, pos] = (1 + np.searchsorted(names, h["holiday_name"].to_numpy())).astype(np.int16)[None, :]
    promo_key = len(names) + 1
    if promos is not None and len(promos):
        loc = panel.series["location_id"].to_numpy()
        for r in promos.itertuples(index=False):
            a = panel.days.searchsorted(pd.Timestamp(r.starts_on))
            b = panel.days.searchsorted(pd.Timestamp(r.ends_on), side="right")
            if b <= a:
                continue
            rows = np.ones(n, bool) if r.location_id == PORTFOLIO else (loc == r.location_id) | (loc == PORTFOLIO)
            keys[rows, a:b] = promo_key
    if not keys.any():
        return None
    return ets.Calendar(keys, promo_key, rate=0.5)
