"""Demo data generator: raw sources plus planted ground truth, deterministic by seed.

    from marketing_signals.demo import generate
    manifest = generate("data/demo", customers=100_000, seed=42)

Layout written under `out_dir`:
    raw/events/part-YYYY-MM.parquet  events by received month (all customers interleaved, rows in
                                     received_at order; `part-unknown` if received_at is null)
    raw/<table>/part-00000.parquet   stream_metrics, context_events, subscriber_acks, outcomes
    truth/<name>.parquet             planted truth, one file each:
        customers          one row per customer: persona (the INITIAL persona), current_persona
                           (the persona at the end of the data: after the switch / planted change
                           for customers who have one, else = persona), home location,
                           jurisdiction, planned events, first/last active date
        persona_history    one row per customer and persona period: persona, valid_from,
                           valid_to (null = open; background switches and planted changes)
        persona_changes    planted persona changes only (persona_change_share > 0; no rows
                           otherwise): customer_id, from_persona, to_persona, changed_at,
                           days_before_end, activity_boosted, rate_from, events_per_28d_before,
                           events_per_28d_after (see below)
        funnel, communities, identity, consent, locations, incidents, incident_symptoms,
        injected_defects
    manifest.json                    seed, sizes, row counts, generator version, wall seconds, and
                                     the period: start_date .. end_date (exclusive), i.e. events
                                     occur in [start_date 00:00, end_date 00:00) (UTC, naive
                                     timestamps like every other timestamp)

Persona changes. Always, ~8% of customers switch persona at a day boundary in the last 120
days to a random other persona (background switches: persona_history / customers only). With
`persona_change_share` > 0, that share of customers additionally gets a PLANTED change
(plan.plant_persona_changes): customers with no background switch, active to the end, planted
funnel stage "purchase" and not "lapsing" change once, at `changed_at` strictly inside the day
(end - d, end - d + 1] (days), d = `days_before_end` taken round-robin from
`persona_change_days_before_end` (equal groups per d), to the behaviourally farthest persona
(profiles.PERSONA_CHANGE_TARGET: mean total-variation distance of type, channel and category
mixes). From changed_at on, their events follow the new persona entirely: type mix, channels,
categories (favourite redrawn), spend level and activity rate. From `rate_from` (= end -
max(d) - 56 days) to the end their rate is at least 12 behavioural events per 28 days on both
sides of the change (`activity_boosted` = raised above the customer's own rate;
events_per_28d_before/after = the planned rates). With share 0 nothing is drawn and every
other file is byte-identical to a run without the option.

Random streams: numpy SeedSequence(seed) with spawn keys (0,) plan, (1, k) event chunk k,
(2,) incidents, (3,) context events, (4,) subscriber acks, (5,) outcomes, (6,) stream values,
(7,) planted persona changes.
Event chunks have a fixed size (`chunk_customers`); each is spooled (`.spool/`, removed at the
end) as single-month batches, then every month's batches are merged in chunk order and sorted
by received_at into one part, so the files are byte-identical for any worker count (see
events.py). Workers
are `spawn`ed processes: scripts calling generate(workers > 1) need the usual
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from .. import __version__
from . import profiles as P
from .events import (
    ROW_GROUP_ROWS, ChunkTask, DEFECTS_SCHEMA, MonthTask, generate_chunk, month_label, write_month,
)
from .plan import Plan, build_plan, plant_persona_changes
from .streams import (
    context_events, incident_truth, load_registries, outcomes, plan_incidents, stream_metrics,
    subscriber_acks,
)
from .util import US_PER_DAY, dict_array, fixed_width_strings, timestamps, write_parquet

GENERATOR_VERSION = f"{__version__}+gen2"   # gen2: events partitioned by received month
DEFAULT_CHUNK_CUSTOMERS = 50_000
RAW_TABLES = ("events", "stream_metrics", "context_events", "subscriber_acks", "outcomes")
SPOOL_DIR = ".spool"
EVENT_ROW_GROUP_ROWS = ROW_GROUP_ROWS
_PLAN_KEY, _INCIDENTS_KEY, _CONTEXT_KEY, _ACKS_KEY, _OUTCOMES_KEY, _VALUES_KEY = 0, 2, 3, 4, 5, 6
_CHANGES_KEY = 7
DEFAULT_PERSONA_CHANGE_DAYS = (55, 27)


def _rng(seed: int, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


def generate(
    out_dir: str | Path,
    customers: int = 100_000,
    seed: int = 42,
    *,
    end_date: str | date = "2026-11-01",
    days: int = 730,
    defect_rate: float = 0.0005,
    workers: int = 2,
    registry_dir: str | Path | None = None,
    chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS,
    progress: bool = True,
    persona_change_share: float = 0.0,
    persona_change_days_before_end: tuple[int, ...] | list[int] = DEFAULT_PERSONA_CHANGE_DAYS,
) -> dict:
    """Generate the demo dataset under `out_dir`; returns the manifest (also written as JSON).

    `end_date` is exclusive; events occur in [end_date - days, end_date). `defect_rate` is the
    share of events injected for EACH defect category. `workers` only changes speed, never
    the output. `persona_change_share` of the customers get a planted persona change
    `d` days before the end, d from `persona_change_days_before_end` (module docstring).
    """
    t0 = time.perf_counter()
    if customers < 1:
        raise ValueError("customers must be >= 1")
    if days < 120:
        raise ValueError("days must be >= 120 (60 clean baseline days plus incidents)")
    if not 0 <= defect_rate < 0.05:
        raise ValueError("defect_rate must be in [0, 0.05)")
    if not 0 <= persona_change_share < 1:
        raise ValueError("persona_change_share must be in [0, 1)")
    change_days = tuple(int(d) for d in persona_change_days_before_end)
    if persona_change_share > 0:
        from .plan import CHANGE_HISTORY_DAYS, CHANGE_RATE_LEAD_DAYS
        longest = days - CHANGE_RATE_LEAD_DAYS - CHANGE_HISTORY_DAYS
        if not change_days or min(change_days) < 1 or max(change_days) > longest:
            raise ValueError(f"persona_change_days_before_end must be non-empty, in [1, {longest}]")
    out = Path(out_dir)
    end = date.fromisoformat(end_date) if isinstance(end_date, str) else end_date
    start = end - timedelta(days=days)
    start_day = np.datetime64(start.isoformat(), "D")
    start_us = int(start_day.astype("datetime64[us]").astype(np.int64))
    end_us = start_us + days * US_PER_DAY
    reg = load_registries(registry_dir)

    spool = out / SPOOL_DIR
    for sub in ("raw", "truth", SPOOL_DIR):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "manifest.json").unlink(missing_ok=True)
    for t in RAW_TABLES:
        (out / "raw" / t).mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)

    plan = build_plan(_rng(seed, _PLAN_KEY), customers, days, start_us)
    if persona_change_share > 0:
        plant_persona_changes(_rng(seed, _CHANGES_KEY), plan, persona_change_share, change_days)
    tasks = _chunk_tasks(plan, seed, spool, chunk_customers, defect_rate)
    planned_rows = int(plan.n_events.sum() + plan.s_cust.size)

    bar = _progress(progress, planned_rows, "events")
    results: list[dict] = []

    def done(res: dict) -> None:
        results.append(res)
        bar.update(res["valid_rows"])

    n_workers = max(1, min(int(workers), len(tasks)))
    pool = None
    try:
        if n_workers > 1:
            pool = mp.get_context("spawn").Pool(n_workers)
            pending = [pool.apply_async(generate_chunk, (t,), callback=done) for t in tasks]
        else:
            for t in tasks:
                done(generate_chunk(t))
        counts = _write_side_tables(reg, plan, seed, out, start_day, start_us, end_us, days)
        incidents_skipped = counts.pop("incidents_skipped")
        counts.update(_write_customer_truth(plan, out))
        if pool is not None:
            for p in pending:
                p.get()
        bar.close()
        results.sort(key=lambda r: r["index"])
        month_tasks = _month_tasks(results, spool, out)
        bar = _progress(progress, int(sum(r["rows"] for r in results)), "parts")
        if pool is not None:
            pending = [pool.apply_async(write_month, (t,), callback=lambda r: bar.update(r["rows"]))
                       for t in month_tasks]
            for p in pending:
                p.get()
            pool.close()
            pool.join()
        else:
            for t in month_tasks:
                bar.update(write_month(t)["rows"])
    finally:
        if pool is not None:
            pool.terminate()
        bar.close()
        shutil.rmtree(spool, ignore_errors=True)

    defects = pa.concat_tables([r["defects"] for r in results]) if results else DEFECTS_SCHEMA.empty_table()
    write_parquet(defects, out / "truth" / "injected_defects.parquet")
    type_counts = np.sum([r["type_counts"] for r in results], axis=0)
    defect_counts = {d: 0 for d in P.DEFECTS}
    for d, c in zip(*np.unique(defects["defect"].to_numpy(zero_copy_only=False), return_counts=True)):
        defect_counts[str(d)] = int(c)
    counts["raw/events"] = int(sum(r["rows"] for r in results))
    counts["truth/injected_defects"] = defects.num_rows

    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "customers": customers,
        "days": days,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "defect_rate": defect_rate,
        "persona_change_share": persona_change_share,
        "persona_change_days_before_end": list(change_days),
        "chunk_customers": chunk_customers,
        "chunks": len(tasks),
        "workers": n_workers,
        "n_locations": plan.n_locations,
        "counts": dict(sorted(counts.items())),
        "incidents_skipped": incidents_skipped,
        "event_types": {t: int(c) for t, c in zip(P.SIGNAL_TYPES, type_counts)},
        "defects": defect_counts,
        "layout": {t: f"raw/{t}/*.parquet" for t in RAW_TABLES},
        "events_partitioning": "received_month",
        "event_parts": [Path(t.out_path).name for t in month_tasks],
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        class _Null:
            def update(self, n): ...
            def close(self): ...
        return _Null()
    from tqdm import tqdm
    return tqdm(total=total, unit="ev", unit_scale=True, desc=desc, smoothing=0.1)


def _chunk_tasks(plan: Plan, seed: int, spool: Path, chunk_customers: int, defect_rate: float) -> list[ChunkTask]:
    N = plan.n_customers
    bounds = np.arange(0, N + chunk_customers, chunk_customers).clip(max=N)
    bounds = np.unique(bounds)
    s_bounds = np.searchsorted(plan.s_cust, bounds)
    ev_cum = np.concatenate([[0], np.cumsum(plan.n_events, dtype=np.int64)])
    offsets = ev_cum[bounds] + s_bounds  # valid rows before each chunk
    tasks = []
    for k in range(bounds.size - 1):  # loop over chunks
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        sl, sh = int(s_bounds[k]), int(s_bounds[k + 1])
        tasks.append(ChunkTask(
            index=k, seed=seed, spool_path=str(spool / f"chunk-{k:05d}.arrow"),
            lo=lo, start_us=plan.start_us, days=plan.days, cust_width=plan.cust_width,
            n_locations=plan.n_locations, event_id_offset=int(offsets[k]), defect_rate=defect_rate,
            home_loc=plan.home_loc[lo:hi], sec_loc=plan.sec_loc[lo:hi],
            jurisdiction=plan.jurisdiction[lo:hi], persona0=plan.persona0[lo:hi],
            persona1=plan.persona1[lo:hi], switch_day=plan.switch_day[lo:hi],
            span_start=plan.span_start[lo:hi], span_end=plan.span_end[lo:hi],
            max_stage=plan.max_stage[lo:hi], n_pre=plan.n_pre[lo:hi], n_post=plan.n_post[lo:hi],
            spend=plan.spend[lo:hi], fav_category=plan.fav_category[lo:hi],
            s_cust=plan.s_cust[sl:sh], s_type=plan.s_type[sl:sh], s_time=plan.s_time[sl:sh],
            s_a=plan.s_a[sl:sh], s_b=plan.s_b[sl:sh],
            change_us=plan.change_us[lo:hi], rate_from_day=plan.rate_from_day[lo:hi],
            n_mid=plan.n_mid[lo:hi], fav_category1=plan.fav_category1[lo:hi],
            spend1=plan.spend1[lo:hi],
        ))
    return tasks


def _month_tasks(results: list[dict], spool: Path, out: Path) -> list[MonthTask]:
    """One task per received month, its slices listed in chunk order (results are sorted)."""
    parts: dict[int, list] = {}
    for r in results:
        path = str(spool / f"chunk-{r['index']:05d}.arrow")
        mine: dict[int, list] = {}
        for i, m in enumerate(r["months"]):
            mine.setdefault(m, []).append(i)
        for m, indices in mine.items():
            parts.setdefault(m, []).append((path, indices))
    return [MonthTask(month=m, parts=parts[m],
                      out_path=str(out / "raw" / "events" / f"part-{month_label(m)}.parquet"),
                      row_group_rows=EVENT_ROW_GROUP_ROWS)
            for m in sorted(parts)]


def _write_side_tables(reg, plan: Plan, seed: int, out: Path, start_day, start_us: int,
                       end_us: int, days: int) -> dict:
    inc = plan_incidents(_rng(seed, _INCIDENTS_KEY), reg, plan.n_locations, days)
    counts: dict = {}
    tables = {
        "raw/stream_metrics": stream_metrics(_rng(seed, _VALUES_KEY), reg, plan.loc_weight,
                                             start_day, days, inc),
        "raw/context_events": context_events(_rng(seed, _CONTEXT_KEY), reg, inc, plan.n_locations,
                                             start_us, days),
        "raw/subscriber_acks": subscriber_acks(_rng(seed, _ACKS_KEY), plan.n_customers, end_us),
        "raw/outcomes": outcomes(_rng(seed, _OUTCOMES_KEY), reg, inc, plan, start_us, days),
    }
    counts["incidents_skipped"] = len(inc["skipped"])
    incidents, symptoms = incident_truth(reg, inc, start_day, plan.n_locations)
    tables["truth/incidents"] = incidents
    tables["truth/incident_symptoms"] = symptoms
    for name, table in tables.items():
        kind, tname = name.split("/")
        path = out / kind / tname / "part-00000.parquet" if kind == "raw" else out / kind / f"{tname}.parquet"
        write_parquet(table, path)
        counts[name] = table.num_rows
    return counts


def _write_customer_truth(plan: Plan, out: Path) -> dict:
    N = plan.n_customers
    idx = np.arange(N, dtype=np.int64)
    cid = fixed_width_strings("c", idx + 1, plan.cust_width)
    loc_names = fixed_width_strings("L", np.arange(1, plan.n_locations + 1), 3)
    span_from = plan.start_us + plan.span_start.astype(np.int64) * US_PER_DAY
    sw = np.flatnonzero((plan.switch_day >= 0) | (plan.change_us >= 0))
    sw_us = np.where(plan.change_us[sw] >= 0, plan.change_us[sw],
                     plan.start_us + plan.switch_day[sw].astype(np.int64) * US_PER_DAY)
    valid_to = np.zeros(N, np.int64)
    valid_to[sw] = sw_us
    has_to = np.zeros(N, bool)
    has_to[sw] = True
    ph_order = np.argsort(np.concatenate([idx, sw]), kind="stable")
    ph = pa.table({
        "customer_id": pa.concat_arrays([cid, cid.take(pa.array(sw))]),
        "persona": dict_array(np.concatenate([plan.persona0, plan.persona1[sw]]), P.PERSONAS).cast(pa.string()),
        "valid_from": timestamps(np.concatenate([span_from, sw_us])),
        "valid_to": timestamps(np.concatenate([valid_to, np.zeros(sw.size, np.int64)]),
                               mask=np.concatenate([~has_to, np.ones(sw.size, bool)])),
    }).take(pa.array(ph_order))

    stage = plan.max_stage.astype(np.int64)
    funnel = pa.table({
        "customer_id": cid,
        "max_stage_reached": dict_array(stage, P.STAGES).cast(pa.string()),
        "drop_off_stage": dict_array(np.minimum(stage + 1, 4), P.STAGES, stage >= 4).cast(pa.string()),
    })

    rg = np.flatnonzero(plan.referral_group >= 0)
    ig = np.flatnonzero(plan.identity_group >= 0)
    communities = pa.table({
        "customer_id": pa.concat_arrays([cid.take(pa.array(rg)), cid.take(pa.array(ig))]),
        "community_id": pa.concat_arrays([
            fixed_width_strings("R", plan.referral_group[rg].astype(np.int64) + 1, 6),
            fixed_width_strings("I", plan.identity_group[ig].astype(np.int64) + 1, 6)]),
        "community_type": pa.array(["referral"] * rg.size + ["identity"] * ig.size, pa.string()),
    })
    identity = pa.table({"customer_id": cid, "person_key": cid.take(pa.array(plan.person_key))})

    n_p = len(P.CONSENT_PURPOSES)
    changed = plan.consent_changed_us.reshape(-1)
    consent = pa.table({
        "customer_id": cid.take(pa.array(np.repeat(idx, n_p))),
        "jurisdiction": dict_array(np.repeat(plan.jurisdiction, n_p), P.JURISDICTIONS).cast(pa.string()),
        "purpose": dict_array(np.tile(np.arange(n_p), N), P.CONSENT_PURPOSES).cast(pa.string()),
        "state": dict_array(plan.consent_state.reshape(-1), P.CONSENT_STATES).cast(pa.string()),
        "changed_at": timestamps(np.maximum(changed, 0), mask=changed < 0),
    })

    n_sec = (plan.sec_loc >= 0).sum(axis=1)
    current = plan.current_persona
    customers = pa.table({
        "customer_id": cid,
        "persona": dict_array(plan.persona0, P.PERSONAS).cast(pa.string()),
        "current_persona": dict_array(current, P.PERSONAS).cast(pa.string()),
        "home_location_id": loc_names.take(pa.array(plan.home_loc.astype(np.int64))),
        "jurisdiction": dict_array(plan.jurisdiction, P.JURISDICTIONS).cast(pa.string()),
        "n_secondary_locations": pa.array(n_sec.astype(np.int64)),
        "planned_events": pa.array(plan.n_events.astype(np.int64)),
        "first_active_date": pa.array((plan.start_us // US_PER_DAY + plan.span_start).astype(np.int32)).cast(pa.date32()),
        "last_active_date": pa.array((plan.start_us // US_PER_DAY + plan.span_end - 1).astype(np.int32)).cast(pa.date32()),
    })
    locations = pa.table({
        "location_id": loc_names,
        "jurisdiction": dict_array(plan.loc_jurisdiction, P.JURISDICTIONS).cast(pa.string()),
        "weight": pa.array(plan.loc_weight),
    })
    ch = np.flatnonzero(plan.change_us >= 0)
    rate_from_us = plan.start_us + plan.rate_from_day[ch].astype(np.int64) * US_PER_DAY
    persona_changes = pa.table({
        "customer_id": cid.take(pa.array(ch)),
        "from_persona": dict_array(plan.persona0[ch], P.PERSONAS).cast(pa.string()),
        "to_persona": dict_array(plan.persona1[ch], P.PERSONAS).cast(pa.string()),
        "changed_at": timestamps(plan.change_us[ch]),
        "days_before_end": pa.array(plan.change_days_before_end[ch].astype(np.int64)),
        "activity_boosted": pa.array(plan.boosted[ch]),
        "rate_from": timestamps(rate_from_us),
        "events_per_28d_before": pa.array(np.round(plan.rate_before[ch], 3)),
        "events_per_28d_after": pa.array(np.round(plan.rate_after[ch], 3)),
    })
    tables = {"persona_history": ph, "funnel": funnel, "communities": communities,
              "identity": identity, "consent": consent, "customers": customers,
              "locations": locations, "persona_changes": persona_changes}
    for name, t in tables.items():
        write_parquet(t, out / "truth" / f"{name}.parquet")
    return {f"truth/{k}": v.num_rows for k, v in tables.items()}
