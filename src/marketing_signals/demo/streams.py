"""Stream metrics with planted incidents, context events, subscriber acks and outcomes.

Driven by the registries in seeds/: registry_streams.csv (levels, noise, seasonality,
bounded ratios), registry_root_causes.csv (scope, context type) and
registry_root_cause_signatures.csv (stream, direction, lag range, strength). Adding a stream
or a cause is a CSV row; nothing here names one.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import profiles as P
from .util import US_PER_DAY, US_PER_HOUR, US_PER_SECOND, dict_array, fixed_width_strings, timestamps

CLEAN_BASELINE_DAYS = 60
LOCATION_INCIDENTS_PER_100_LOCATIONS = 3
MIN_INCIDENTS_PER_CAUSE = 4
PORTFOLIO_COVERAGE = (0.30, 1.00)
DURATION_DAYS = (3, 10)
CONTEXT_SHARE = 0.80
OUTCOME_SHARE = 0.70
LABEL_SHARE = 0.02
ACK_DAYS = 14

_CONTEXT_SOURCE = {
    "algorithm_update": "search_status_feed", "promo_end": "promo_calendar",
    "price_change": "pricing_system", "outage": "status_page", "tag_deploy": "tag_manager",
    "weather": "weather_api", "local_event": "events_calendar", "press": "press_monitor",
    "legal_notice": "legal_tracker", "budget_change": "ads_change_history",
    "creative_change": "ads_change_history",
}
_CONTEXT_TEXT = {
    "algorithm_update": "Search engine ranking update announced",
    "promo_end": "Promotion period ended",
    "price_change": "Shelf and online prices updated",
    "outage": "Vendor status page reports a service disruption",
    "tag_deploy": "Tag manager container published",
    "weather": "Severe weather warning for the area",
    "local_event": "Road closure / local event near the store",
    "press": "Press coverage mentioning the brand",
    "legal_notice": "Regulatory or legal notice received",
    "budget_change": "Campaign budget edited",
    "creative_change": "Ad creative replaced",
}
# Context types that concern the whole portfolio when they appear as noise.
_PORTFOLIO_CONTEXT = {"algorithm_update", "outage", "tag_deploy", "press", "legal_notice", "promo_end"}
_NOISE_CONTEXT_WEIGHTS = {"promo_end": 3, "tag_deploy": 3, "weather": 3, "price_change": 1,
                          "budget_change": 1, "creative_change": 1, "local_event": 1, "press": 0.5,
                          "algorithm_update": 0.5, "outage": 0.5, "legal_notice": 0.2}


# ------------------------------------------------------------------------------ registries
@dataclass
class Registries:
    streams: list[dict]
    causes: list[dict]
    signatures: list[dict]


def default_registry_dir() -> Path:
    """<repo>/seeds, where the repo root is the parent of src/."""
    return Path(__file__).resolve().parents[3] / "seeds"


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


def load_registries(registry_dir: Path | str | None = None) -> Registries:
    d = Path(registry_dir) if registry_dir else default_registry_dir()
    names = ("registry_streams.csv", "registry_root_causes.csv", "registry_root_cause_signatures.csv")
    missing = [n for n in names if not (d / n).exists()]
    if missing:
        raise FileNotFoundError(f"registry files missing in {d}: {', '.join(missing)} "
                                "(pass --registry-dir to point at the seeds folder)")
    streams, causes, sigs = (_read_csv(d / n) for n in names)
    stream_ids = {s["stream_id"] for s in streams}
    cause_ids = {c["cause_id"] for c in causes}
    for s in sigs:
        if s["stream_id"] not in stream_ids or s["cause_id"] not in cause_ids:
            raise ValueError(f"signature row refers to an unknown stream or cause: {s}")
    return Registries(streams, causes, sigs)


def _is_true(v: str) -> bool:
    return v.strip().lower() in ("true", "1", "yes", "t")


# ------------------------------------------------------------------------------ incidents
def plan_incidents(rng: np.random.Generator, reg: Registries, n_locations: int, days: int) -> dict:
    """Schedule incidents without overlaps at a location (loop over incidents, not rows)."""
    L, D = n_locations, days
    stream_idx = {s["stream_id"]: i for i, s in enumerate(reg.streams)}
    sigs_by_cause: dict[str, list[dict]] = {}
    for s in reg.signatures:
        sigs_by_cause.setdefault(s["cause_id"], []).append(s)
    n_loc_incidents = max(MIN_INCIDENTS_PER_CAUSE,
                          math.ceil(LOCATION_INCIDENTS_PER_100_LOCATIONS * L / 100))
    todo = []
    for ci, c in enumerate(reg.causes):
        portfolio = c["scope"] == "portfolio"
        todo += [(ci, portfolio)] * (MIN_INCIDENTS_PER_CAUSE if portfolio else n_loc_incidents)
    # Portfolio coverage is drawn in [30%, hi]: hi shrinks below 100% only when the history is
    # too short for the planned incidents to fit at ~60% occupancy without overlaps.
    mid_fp = {c["cause_id"]: 0.0 for c in reg.causes}
    for s in reg.signatures:
        mid_fp[s["cause_id"]] = max(mid_fp[s["cause_id"]], (int(s["lag_min_days"]) + int(s["lag_max_days"])) / 2)
    fp_avg = float(np.mean(list(mid_fp.values()))) + sum(DURATION_DAYS) / 2 + 1
    n_port = sum(1 for _, p in todo if p)
    n_loc = len(todo) - n_port
    capacity = 0.6 * L * (D - CLEAN_BASELINE_DAYS) - n_loc * fp_avg
    mean_cov = capacity / max(n_port * fp_avg * L, 1.0)
    cov_hi = float(np.clip(2 * mean_cov - PORTFOLIO_COVERAGE[0], PORTFOLIO_COVERAGE[0], PORTFOLIO_COVERAGE[1]))
    # portfolio incidents first (they need many free locations), random order within
    todo_arr = np.array(todo, dtype=np.int64).reshape(-1, 2)
    order = np.lexsort((rng.random(len(todo_arr)), -todo_arr[:, 1]))
    occupied = np.zeros((L, D), dtype=bool)
    incidents, symptoms, skipped = [], [], []
    for ci, portfolio in todo_arr[order]:
        cause = reg.causes[ci]
        sigs = sigs_by_cause.get(cause["cause_id"], [])
        dur = int(rng.integers(DURATION_DAYS[0], DURATION_DAYS[1] + 1))
        lags = np.array([rng.integers(int(s["lag_min_days"]), int(s["lag_max_days"]) + 1) for s in sigs],
                        dtype=np.int64)
        footprint = int(lags.max(initial=0)) + dur + 1
        last_onset = D - footprint
        if last_onset <= CLEAN_BASELINE_DAYS:
            raise ValueError(f"--days {D} is too short to plant incidents")
        # free[l, o] = location l has no incident within [o, o + footprint)
        csum = np.concatenate([np.zeros((L, 1), np.int64), np.cumsum(occupied, axis=1)], axis=1)
        onsets = np.arange(CLEAN_BASELINE_DAYS, last_onset + 1)
        free = (csum[:, onsets + footprint] - csum[:, onsets]) == 0
        if portfolio:
            need = math.ceil(PORTFOLIO_COVERAGE[0] * L)
            ok = np.flatnonzero(free.sum(axis=0) >= need)
        else:
            ok = np.flatnonzero(free.any(axis=0))
        if ok.size == 0:  # only with short histories: skip rather than overlap
            skipped.append(cause["cause_id"])
            continue
        o_i = int(ok[rng.integers(0, ok.size)])
        onset = int(onsets[o_i])
        free_locs = np.flatnonzero(free[:, o_i])
        if portfolio:
            want = math.ceil(rng.uniform(PORTFOLIO_COVERAGE[0], cov_hi) * L)
            locs = np.sort(rng.choice(free_locs, min(want, free_locs.size), replace=False))
        else:
            locs = free_locs[rng.integers(0, free_locs.size, 1)]
        occupied[locs, onset:onset + footprint] = True
        inc_no = len(incidents)
        incidents.append((inc_no, ci, bool(portfolio), int(locs[0]), onset, dur, locs.size))
        for s, lag in zip(sigs, lags, strict=True):
            sign = 1.0 if s["direction"] == "up" else -1.0
            symptoms.append((inc_no, stream_idx[s["stream_id"]], locs, sign, int(lag),
                             onset + int(lag), dur, float(s["strength"])))
    # order incidents by onset for readable ids
    inc = np.array(incidents, dtype=np.int64).reshape(-1, 7)
    by_onset = np.lexsort((inc[:, 0], inc[:, 4]))
    renumber = np.empty(len(inc), np.int64)
    renumber[by_onset] = np.arange(len(inc))
    inc = inc[by_onset]
    inc[:, 0] = np.arange(len(inc))
    if not symptoms:
        symptoms = [(0, 0, np.zeros(0, np.int64), 1.0, 0, 0, 0, 0.0)]
        renumber = np.zeros(1, np.int64)
    sym = {
        "incident": np.concatenate([np.full(x[2].size, renumber[x[0]]) for x in symptoms]),
        "stream": np.concatenate([np.full(x[2].size, x[1]) for x in symptoms]),
        "location": np.concatenate([x[2] for x in symptoms]),
        "sign": np.concatenate([np.full(x[2].size, x[3]) for x in symptoms]),
        "lag": np.concatenate([np.full(x[2].size, x[4]) for x in symptoms]),
        "start": np.concatenate([np.full(x[2].size, x[5]) for x in symptoms]),
        "duration": np.concatenate([np.full(x[2].size, x[6]) for x in symptoms]),
        "strength": np.concatenate([np.full(x[2].size, x[7]) for x in symptoms]),
    }
    o = np.lexsort((sym["location"], sym["stream"], sym["incident"]))
    sym = {k: v[o] for k, v in sym.items()}
    if skipped:
        warnings.warn(f"history too short to plant every incident without overlaps; skipped "
                      f"{len(skipped)}: {dict(Counter(skipped))}", stacklevel=2)
    return {"incidents": inc, "symptoms": sym, "occupied": occupied, "skipped": skipped}


# ------------------------------------------------------------------------------ streams
def _seasonality(rng, kind: str, family: str, day_dates: np.ndarray) -> np.ndarray:
    d = np.asarray(day_dates, dtype="datetime64[D]")
    dow = (d.astype(np.int64) + 3) % 7
    months = d.astype("datetime64[M]")
    dom = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
    doy = (d - d.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)
    f = np.ones(d.size)
    if kind in ("weekly", "weekly_monthly", "annual_weekly"):
        if family in ("offline", "commerce", "reputation"):
            pattern = np.array([-0.6, -0.5, -0.4, -0.2, 0.2, 1.0, 0.5])
        else:
            pattern = np.array([0.3, 0.35, 0.3, 0.25, 0.0, -0.6, -0.6])
        pattern = pattern - pattern.mean()
        f = f * (1.0 + rng.uniform(0.12, 0.3) * pattern[dow])
    if kind == "weekly_monthly":
        bump = np.select([(dom == 1) | (dom == 15), (dom == 2) | (dom == 16)], [1.0, 0.5], 0.0)
        f = f * (1.0 + rng.uniform(0.15, 0.35) * (bump - bump.mean()))
    if kind == "annual_weekly":
        peak = np.exp(-(((doy - 340) / 22.0) ** 2)) + 0.5 * np.exp(-(((doy - 200) / 40.0) ** 2))
        f = f * (1.0 + rng.uniform(0.2, 0.45) * (peak - peak.mean()))
    return f


def stream_metrics(rng: np.random.Generator, reg: Registries, loc_weight: np.ndarray,
                   start_day: np.datetime64, days: int, inc: dict) -> pa.Table:
    """One row per stream × location × day (values float64; bounded ratios in [0, 1])."""
    S, L, D = len(reg.streams), loc_weight.size, days
    day_dates = start_day + np.arange(D)
    size = loc_weight * L  # mean 1
    values = np.empty((S, L, D))
    for si, s in enumerate(reg.streams):  # loop over registry rows (~35), arrays inside
        base = float(s["base_level"])
        cv = float(s["noise_cv"])
        bounded = _is_true(s.get("is_bounded_ratio", "false"))
        extensive = s.get("unit") == "count" or s.get("metric") == "revenue"
        loc_f = (size * rng.lognormal(0, 0.1, L)) if extensive else rng.lognormal(0, 0.06 if not bounded else 0.01, L)
        season = _seasonality(rng, s.get("seasonality", "none"), s.get("stream_family", ""), day_dates)
        slope = rng.uniform(-0.05, 0.15) + rng.normal(0, 0.03, L)
        trend = 1.0 + slope[:, None] * (np.arange(D) / D)[None, :]
        level = base * loc_f[:, None] * season[None, :] * trend
        if bounded:  # logit-normal around the base: noise shrinks near the bound, never saturates
            b = np.clip(base * loc_f, 1e-3, 1 - 1e-3)
            logit = np.log(b / (1 - b))[:, None] + np.log(season)[None, :] + (slope[:, None] * (np.arange(D) / D)[None, :])
            values[si] = 1.0 / (1.0 + np.exp(-(logit + cv / (1.0 - b[:, None]) * rng.standard_normal((L, D)))))
        else:
            values[si] = level * rng.lognormal(-cv * cv / 2, cv, (L, D))
    # incidents: multiplicative shift with a short ramp in and out
    sym = inc["symptoms"]
    if sym["incident"].size:
        dur = sym["duration"]
        k = np.arange(dur.sum()) - np.repeat(np.cumsum(dur) - dur, dur)
        rep = np.repeat(np.arange(dur.size), dur)
        ramp = np.minimum(1.0, np.minimum((k + 1) / 2.0, (dur[rep] - k) / 1.5))
        day = sym["start"][rep] + k
        keep = day < D
        factor = np.maximum(1.0 + sym["sign"][rep] * sym["strength"][rep] * ramp, 0.02)
        np.multiply.at(values, (sym["stream"][rep][keep], sym["location"][rep][keep], day[keep]), factor[keep])
    for si, s in enumerate(reg.streams):
        if _is_true(s.get("is_bounded_ratio", "false")):
            np.clip(values[si], 0.0, 1.0, out=values[si])
        elif s.get("unit") == "count":
            np.round(values[si], 0, out=values[si])
            np.maximum(values[si], 0.0, out=values[si])
        elif s.get("unit") == "stars":
            np.clip(values[si], 1.0, 5.0, out=values[si])
        elif s.get("unit") == "position":
            np.maximum(values[si], 1.0, out=values[si])
        else:
            np.round(values[si], 4, out=values[si])
    stream_codes = np.repeat(np.arange(S), L * D)
    loc_codes = np.tile(np.repeat(np.arange(L), D), S)
    day_codes = np.tile(np.arange(D), S * L)
    dates = (start_day.astype(np.int64) + day_codes).astype(np.int32)
    return pa.table({
        "stream_id": dict_array(stream_codes.astype(np.int32), [s["stream_id"] for s in reg.streams]),
        "location_id": dict_array(loc_codes.astype(np.int32), fixed_width_strings("L", np.arange(1, L + 1), 3)),
        "period_start": pa.array(dates, pa.int32()).cast(pa.date32()),
        "value": pa.array(values.reshape(-1)),
    })


def _incident_location(a: np.ndarray, loc_names: pa.Array) -> pa.Array:
    """The incident's location id, or 'ALL' for portfolio-scope incidents."""
    located = loc_names.take(pa.array(a[:, 3].astype(np.int64)))
    return pc.if_else(pa.array(a[:, 2] == 1, pa.bool_()), pa.scalar("ALL"), located)


def incident_truth(reg: Registries, inc: dict, start_day: np.datetime64, n_locations: int):
    """truth/incidents and truth/incident_symptoms tables."""
    a = inc["incidents"]
    loc_names = fixed_width_strings("L", np.arange(1, n_locations + 1), 3)
    inc_ids = fixed_width_strings("INC", np.arange(1, len(a) + 1), 5)
    loc_col = _incident_location(a, loc_names)
    start_i = start_day.astype(np.int64)
    incidents = pa.table({
        "incident_id": inc_ids,
        "cause_id": pa.array([reg.causes[i]["cause_id"] for i in a[:, 1]], pa.string()),
        "location_id": loc_col,
        "onset_date": pa.array((start_i + a[:, 4]).astype(np.int32), pa.int32()).cast(pa.date32()),
        "duration_days": pa.array(a[:, 5].astype(np.int64)),
        "n_locations": pa.array(a[:, 6].astype(np.int64)),
    })
    s = inc["symptoms"]
    symptoms = pa.table({
        "incident_id": inc_ids.take(pa.array(s["incident"])),
        "stream_id": pa.array([st["stream_id"] for st in reg.streams], pa.string()).take(pa.array(s["stream"])),
        "location_id": loc_names.take(pa.array(s["location"])),
        "direction": pa.array(np.where(s["sign"] > 0, "up", "down"), pa.string()),
        "lag_days": pa.array(s["lag"].astype(np.int64)),
        "start_date": pa.array((start_i + s["start"]).astype(np.int32), pa.int32()).cast(pa.date32()),
        "end_date": pa.array((start_i + s["start"] + s["duration"] - 1).astype(np.int32), pa.int32()).cast(pa.date32()),
        "strength": pa.array(s["strength"].astype(np.float64)),
    })
    return incidents, symptoms


# ------------------------------------------------------------------------------ context events
def context_events(rng: np.random.Generator, reg: Registries, inc: dict, n_locations: int,
                   start_us: int, days: int) -> pa.Table:
    a = inc["incidents"]
    ctx_types = sorted(_CONTEXT_TEXT)
    ctype_of_cause = np.array([ctx_types.index(c["context_type"]) if c["context_type"] in _CONTEXT_TEXT else -1
                               for c in reg.causes], dtype=np.int64)
    # incident-linked context events (~80% of incidents whose cause has a context type)
    ct = ctype_of_cause[a[:, 1]] if len(a) else np.zeros(0, np.int64)
    emit = (ct >= 0) & (rng.random(ct.size) < CONTEXT_SHARE)
    e_type = ct[emit]
    e_loc = np.where(a[emit, 2] == 1, -1, a[emit, 3])
    e_start = (start_us + a[emit, 4] * US_PER_DAY
               + (rng.uniform(-18, 12, e_type.size) * US_PER_HOUR).astype(np.int64))
    # unrelated noise context events away from incident footprints
    occ = inc["occupied"]
    n_noise = max(20, int(1.5 * e_type.size))
    w = np.array([_NOISE_CONTEXT_WEIGHTS.get(t, 1.0) for t in ctx_types])
    cand_type = np.searchsorted(np.cumsum(w) / w.sum(), rng.random(4 * n_noise), side="right").clip(0, len(ctx_types) - 1)
    is_port = np.isin(np.array(ctx_types)[cand_type], list(_PORTFOLIO_CONTEXT)) & (rng.random(cand_type.size) < 0.7)
    cand_loc = np.where(is_port, -1, rng.integers(0, n_locations, cand_type.size))
    cand_day = rng.integers(0, days, cand_type.size)
    lo, hi = np.clip(cand_day - 3, 0, days), np.clip(cand_day + 4, 0, days)
    cs = np.concatenate([np.zeros((n_locations, 1)), np.cumsum(occ, axis=1)], axis=1)
    # portfolio-wide noise avoids days when a portfolio incident (>= 30% of locations) runs
    any_cs = np.concatenate([[0], np.cumsum(occ.mean(axis=0) >= 0.25)])
    at = np.maximum(cand_loc, 0)
    busy = np.where(cand_loc >= 0, cs[at, hi] - cs[at, lo] > 0, any_cs[hi] - any_cs[lo] > 0)
    keep = np.flatnonzero(~busy)[:n_noise]
    n_type = cand_type[keep]
    n_loc = cand_loc[keep]
    n_start = start_us + cand_day[keep] * US_PER_DAY + (rng.random(keep.size) * US_PER_DAY).astype(np.int64)

    typ = np.concatenate([e_type, n_type])
    loc = np.concatenate([e_loc, n_loc])
    starts = np.concatenate([e_start, n_start])
    is_linked = np.concatenate([np.ones(e_type.size, bool), np.zeros(n_type.size, bool)])
    dur_h = np.where(np.array(ctx_types)[typ] == "promo_end", 0.0, rng.uniform(1, 72, typ.size))
    ends = starts + (dur_h * US_PER_HOUR).astype(np.int64)
    order = np.lexsort((~is_linked, starts))
    typ, loc, starts, ends = typ[order], loc[order], starts[order], ends[order]
    loc_names = fixed_width_strings("L", np.arange(1, n_locations + 1), 3)
    return pa.table({
        "context_event_id": fixed_width_strings("ctx", np.arange(1, typ.size + 1), 6),
        "context_type": dict_array(typ, ctx_types).cast(pa.string()),
        "location_id": dict_array(np.maximum(loc, 0), loc_names, loc < 0).cast(pa.string()),
        "starts_at": timestamps(starts),
        "ends_at": timestamps(ends),
        "description": dict_array(typ, [_CONTEXT_TEXT[t] for t in ctx_types]).cast(pa.string()),
        "source_system": dict_array(typ, [_CONTEXT_SOURCE[t] for t in ctx_types]).cast(pa.string()),
    })


# ------------------------------------------------------------------------------ subscriber acks
def subscriber_acks(rng: np.random.Generator, n_customers: int, end_us: int) -> pa.Table:
    """Reverse-ETL sync runs every 15-60 minutes per subscriber over the last ~14 days."""
    window_start = end_us - ACK_DAYS * US_PER_DAY
    parts = []
    for si in range(len(P.SUBSCRIBERS)):  # 8 subscribers; arrays inside
        interval_min = rng.uniform(15, 60)
        n = int(ACK_DAYS * 24 * 60 / interval_min) + 2
        gaps = interval_min * rng.uniform(0.8, 1.2, n) * 60 * US_PER_SECOND
        started = window_start + np.cumsum(gaps).astype(np.int64) - int(gaps[0] * rng.random())
        started = started[started < end_us]
        n = started.size
        u = rng.random(n)
        status = np.where(u < 0.02, 1, np.where(u < 0.05, 2, 0))  # success, failed, partial
        run_s = rng.lognormal(np.log(90), 0.5, n) * np.where(status == 1, 0.3, 1.0)
        completed = started + (run_s * US_PER_SECOND).astype(np.int64)
        target = started - (rng.uniform(60, 300, n) * US_PER_SECOND).astype(np.int64)
        prev_start = np.concatenate([[window_start - int(interval_min * 60 * US_PER_SECOND)], target[:-1]])
        partial = prev_start + ((target - prev_start) * rng.uniform(0.3, 0.8, n)).astype(np.int64)
        cursor = np.where(status == 0, target, np.where(status == 2, partial, np.iinfo(np.int64).min))
        cursor[0] = max(cursor[0], window_start - int(interval_min * 60 * US_PER_SECOND))
        cursor = np.maximum.accumulate(cursor)  # failed runs keep the previous cursor
        rate = max(n_customers, 1) * 0.002 * interval_min / 60.0
        records = np.where(status == 1, 0,
                           rng.poisson(rate * np.where(status == 2, 0.5, 1.0), n)).astype(np.int64)
        parts.append((np.full(n, si), started, completed, status, records, cursor))
    sub = np.concatenate([p[0] for p in parts])
    started = np.concatenate([p[1] for p in parts])
    order = np.lexsort((sub, started))
    cols = [np.concatenate([p[i] for p in parts])[order] for i in range(6)]
    return pa.table({
        "sync_run_id": fixed_width_strings("sr", np.arange(1, order.size + 1), 7),
        "subscriber_id": dict_array(cols[0], P.SUBSCRIBERS).cast(pa.string()),
        "sync_started_at": timestamps(cols[1]),
        "sync_completed_at": timestamps(cols[2]),
        "status": dict_array(cols[3], ["success", "failed", "partial"]).cast(pa.string()),
        "records_acknowledged": pa.array(cols[4], pa.int64()),
        "acknowledged_through": timestamps(cols[5]),
    })


# ------------------------------------------------------------------------------ outcomes
def incident_outcomes(rng: np.random.Generator, reg: Registries, inc: dict, n_locations: int, start_us: int,
                      days: int):
    """Incident reviews: ~70% of incidents get their realised cause 2-14 days after they end
    (if that is before the end of the data). Returns (incident rows, observed_at µs, incident
    ids, location ids, cause ids)."""
    a = inc["incidents"]
    end_us = start_us + days * US_PER_DAY
    observed = start_us + (a[:, 4] + a[:, 5]) * US_PER_DAY + (rng.uniform(2, 14, len(a)) * US_PER_DAY).astype(np.int64)
    pick = (rng.random(len(a)) < OUTCOME_SHARE) & (observed < end_us)
    ia = a[pick]
    loc_names = fixed_width_strings("L", np.arange(1, n_locations + 1), 3)
    cause_ids = pa.array([c["cause_id"] for c in reg.causes], pa.string()).take(pa.array(ia[:, 1]))
    return ia, observed[pick], fixed_width_strings("INC", ia[:, 0] + 1, 5), _incident_location(ia, loc_names), cause_ids


def outcomes(rng: np.random.Generator, reg: Registries, inc: dict, plan, start_us: int,
             days: int) -> pa.Table:
    """Realised root causes of ~70% of incidents and validated persona labels of ~2% of customers."""
    ia, observed_at, inc_ids, inc_loc, cause_ids = incident_outcomes(rng, reg, inc, plan.n_locations, start_us, days)
    loc_names = fixed_width_strings("L", np.arange(1, plan.n_locations + 1), 3)

    N = plan.n_customers
    n_lab = int(round(LABEL_SHARE * N))
    cust = np.sort(rng.choice(N, n_lab, replace=False)) if n_lab else np.zeros(0, np.int64)
    obs_day = np.maximum(plan.span_start[cust], days - 180) + (
        rng.random(cust.size) * (plan.span_end[cust] - np.maximum(plan.span_start[cust], days - 180))).astype(np.int64)
    obs_day = np.clip(obs_day, 0, days - 1)
    lab_obs = start_us + obs_day * US_PER_DAY + (rng.random(cust.size) * US_PER_DAY).astype(np.int64)
    sw = plan.switch_day[cust]
    ch = plan.change_us[cust]
    persona = np.where(((sw >= 0) & (obs_day >= sw)) | ((ch >= 0) & (lab_obs >= ch)),
                       plan.persona1[cust], plan.persona0[cust])
    cust_ids = fixed_width_strings("c", cust + 1, plan.cust_width)

    n_i, n_c = len(ia), cust.size
    return pa.table({
        "outcome_id": fixed_width_strings("o", np.arange(1, n_i + n_c + 1), 7),
        "outcome_type": pa.array(["incident_root_cause"] * n_i + ["cohort_label"] * n_c, pa.string()),
        "subject_id": pa.concat_arrays([inc_ids, cust_ids]),
        "location_id": pa.concat_arrays([inc_loc, loc_names.take(pa.array(plan.home_loc[cust].astype(np.int64)))]),
        "label": pa.concat_arrays([cause_ids, pa.array(P.PERSONAS, pa.string()).take(pa.array(persona.astype(np.int64)))]),
        "observed_at": timestamps(np.concatenate([observed_at, lab_obs])),
        "source_system": pa.array(["incident_review"] * n_i + ["crm_survey"] * n_c, pa.string()),
    })
