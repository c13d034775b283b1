"""Event rows: drawn per chunk of customers, landed as one Parquet part per received month.

Two steps, both run in worker processes:
  1. `generate_chunk` draws and defects one chunk's rows and spools them as an Arrow IPC file
     of record batches that each hold one received month (a month may span a few batches).
  2. `write_month` merges one month's batches from every chunk (in chunk order), sorts them by
     received_at and writes `part-YYYY-MM.parquet` (rows with no received_at: `part-unknown`).
So every part holds one month of arrivals from the whole customer range, in landing order,
like a loader's time-partitioned appends. Chunk output depends only on (seed, chunk index) and
the chunk's slice of the plan; the merge only on the chunk outputs: files are byte-identical
whatever the worker count.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import profiles as P
from .util import (
    US_PER_DAY, US_PER_HOUR, US_PER_SECOND, cum_tables, dict_array, fixed_width_strings,
    parquet_writer, sample_rows, timestamps,
)

EVENTS_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("customer_id", pa.string()), ("signal_type", pa.string()),
    ("occurred_at", pa.timestamp("us")), ("received_at", pa.timestamp("us")),
    ("source_system", pa.string()), ("channel", pa.string()), ("location_id", pa.string()),
    ("jurisdiction", pa.string()), ("amount", pa.float64()), ("properties", pa.string()),
])
DEFECTS_SCHEMA = pa.schema([("event_id", pa.string()), ("customer_id", pa.string()),
                            ("signal_type", pa.string()), ("defect", pa.string())])

# Parquet layout: dictionary pages for the low-cardinality strings, min/max statistics for
# the timestamps only (string statistics cost more than they help), delta-coded timestamps.
DICTIONARY_COLUMNS = ["customer_id", "signal_type", "source_system", "channel", "location_id",
                      "jurisdiction", "properties"]
STATISTICS_COLUMNS = ["occurred_at", "received_at"]
DELTA_COLUMNS = ["occurred_at", "received_at"]
ROW_GROUP_ROWS = 1 << 18      # ~4 days of arrivals per row group at 1M customers
UNKNOWN_MONTH = np.iinfo(np.int64).max   # month key of rows without received_at
EVENT_ID_WIDTH = 10           # "e" + 10 digits
LATE_SHARE = 0.01
MAX_AMOUNT = 25_000.0         # well below the capture layer's max_abs_amount
N_SKU_PER_CATEGORY = 1000
FLOOR_LO_US = 0                                   # 1970-01-01
FLOOR_HI_US = 1_293_840_000 * US_PER_SECOND       # 2011-01-01


@dataclass
class ChunkTask:
    """Everything a worker needs for one chunk (plain arrays: cheap to pickle)."""

    index: int
    seed: int
    spool_path: str              # Arrow IPC file: one record batch per received month
    lo: int                      # first customer index of the chunk
    start_us: int
    days: int
    cust_width: int
    n_locations: int
    event_id_offset: int
    defect_rate: float
    home_loc: np.ndarray
    sec_loc: np.ndarray
    jurisdiction: np.ndarray
    persona0: np.ndarray
    persona1: np.ndarray
    switch_day: np.ndarray
    span_start: np.ndarray
    span_end: np.ndarray
    max_stage: np.ndarray
    n_pre: np.ndarray
    n_post: np.ndarray
    spend: np.ndarray
    fav_category: np.ndarray
    s_cust: np.ndarray
    s_type: np.ndarray
    s_time: np.ndarray
    s_a: np.ndarray
    s_b: np.ndarray
    # planted persona changes (plan.plant_persona_changes); change_us == -1: none
    change_us: np.ndarray
    rate_from_day: np.ndarray
    n_mid: np.ndarray
    fav_category1: np.ndarray
    spend1: np.ndarray


CHUNK_STREAM = 1  # spawn-key namespace of chunk seeds (0 is the global plan)


def chunk_rng(seed: int, index: int) -> np.random.Generator:
    """The chunk's generator: SeedSequence(seed) child number `index` of stream CHUNK_STREAM."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CHUNK_STREAM, index)))


def _mix_cum() -> np.ndarray:
    """Cumulative type mixes per (persona, max stage): later-stage types removed."""
    rows = []
    for p in range(P.N_PERSONAS):
        for stage in range(len(P.STAGES)):
            w = P.PERSONA_MIX[p] * (P.TYPE_STAGE <= stage)
            rows.append(w / w.sum())
    return cum_tables(np.array(rows))


def _commerce_props() -> pa.Array:
    """The 20,000 {"sku","category"} objects: sku S<cc><iii> belongs to category cc."""
    codes = np.arange(P.N_CATEGORIES * N_SKU_PER_CATEGORY)
    head = fixed_width_strings('{"sku":"S', codes, 5, '","category":"')
    cats = pa.array(P.CATEGORIES).take(pa.array(codes // N_SKU_PER_CATEGORY))
    return pc.binary_join_element_wise(head, cats, pa.scalar('"}'), "")


def _pref_props() -> list[str]:
    return [f'{{"channel":"{c}","frequency":"{f}"}}' for c in P.PREF_CHANNELS for f in P.PREF_FREQUENCIES]


def _consent_props() -> list[str]:
    return [f'{{"purpose":"{p}","state":"{s}"}}' for p in P.CONSENT_PURPOSES for s in P.CONSENT_STATES]


class _Ticker:
    """CPU-time checkpoints, printed when MARKETING_SIGNALS_GEN_TIMING is set (profiling aid)."""

    def __init__(self) -> None:
        self.on = bool(os.environ.get("MARKETING_SIGNALS_GEN_TIMING"))
        self.t = time.process_time()

    def __call__(self, label: str) -> None:
        if self.on:
            now = time.process_time()
            print(f"  {label:<12} {now - self.t:6.3f}s", file=sys.stderr)
            self.t = now


def generate_chunk(task: ChunkTask) -> dict:
    tick = _Ticker()
    rng = chunk_rng(task.seed, task.index)
    D, start_us = task.days, task.start_us
    n_c = task.home_loc.size

    # ------------------------------------------------------------ behavioural rows
    # Segments of constant persona over whole days [s, e): every customer's first one,
    # background switchers' second one, then planted changes' two recent ones, which start
    # or end at the change time inside a day (their rows on that day are squeezed into the
    # right part of it below). Without planted changes the last two groups are empty.
    switch_local = np.flatnonzero(task.switch_day >= 0)
    changed = np.flatnonzero(task.change_us >= 0)
    change_day = (task.change_us[changed] - start_us) // US_PER_DAY
    first_end = np.where(task.switch_day >= 0, task.switch_day, task.span_end)
    first_end[changed] = task.rate_from_day[changed]
    seg_cust = np.concatenate([np.arange(n_c), switch_local, changed, changed])
    seg_persona = np.concatenate([task.persona0, task.persona1[switch_local],
                                  task.persona0[changed], task.persona1[changed]]).astype(np.int64)
    seg_s = np.concatenate([task.span_start, task.switch_day[switch_local],
                            task.rate_from_day[changed], change_day]).astype(np.int64)
    seg_e = np.concatenate([first_end, task.span_end[switch_local], change_day + 1,
                            task.span_end[changed]]).astype(np.int64)
    seg_n = np.concatenate([task.n_pre, task.n_post[switch_local], task.n_mid[changed],
                            task.n_post[changed]]).astype(np.int64)
    seg_fav = np.concatenate([task.fav_category, task.fav_category[switch_local],
                              task.fav_category[changed], task.fav_category1[changed]]).astype(np.int64)
    seg_spend = np.concatenate([task.spend, task.spend[switch_local], task.spend[changed],
                                task.spend1[changed]]).astype(np.float64)
    n_whole = n_c + switch_local.size          # segments made of whole days only
    seg_lo = start_us + seg_s * US_PER_DAY     # exact bounds [lo, hi) in microseconds
    seg_hi = start_us + seg_e * US_PER_DAY
    seg_hi[n_whole: n_whole + changed.size] = task.change_us[changed]
    seg_lo[n_whole + changed.size:] = task.change_us[changed]
    first_sub_row = int(seg_n[:n_whole].sum())  # rows of the planted segments come last
    ev_seg = np.repeat(np.arange(seg_cust.size), seg_n)
    n_reg = ev_seg.size
    cust = seg_cust[ev_seg]
    persona = seg_persona[ev_seg]
    stage = task.max_stage.astype(np.int64)[cust]

    etype = sample_rows(_mix_cum(), persona * len(P.STAGES) + stage, rng.random(n_reg))
    # the first event of every customer reaches the planted max stage
    first = (np.cumsum(seg_n) - seg_n)[:n_c]
    has_anchor = (task.max_stage > 0) & (task.n_pre > 0)
    anchor_rows = first[has_anchor]
    etype[anchor_rows] = P.STAGE_ANCHOR[task.max_stage[has_anchor]]
    is_anchor = np.zeros(n_reg, dtype=bool)
    is_anchor[anchor_rows] = True

    tick("types")
    # day with calendar seasonality, inside the segment's active span [s, e)
    day_dates = np.datetime64(start_us, "us").astype("datetime64[D]") + np.arange(D)
    w = P.calendar_weights(day_dates)
    cw = np.concatenate([np.zeros((P.N_TYPES, 1)), np.cumsum(w, axis=1)], axis=1)
    cw /= cw[:, -1:]
    s, e = seg_s[ev_seg], seg_e[ev_seg]
    c_lo = cw[etype, s]
    u = c_lo + rng.random(n_reg) * (cw[etype, e] - c_lo)
    day = sample_rows(cw[:, 1:], etype, u, guide_size=8192)
    day = np.clip(day, s, e - 1)
    del s, e, c_lo, u

    tick("days")
    hour = sample_rows(cum_tables(P.HOUR_WEIGHTS), P.TYPE_HOUR_GROUP[etype].astype(np.int64),
                       rng.random(n_reg))
    occurred = (start_us + day * US_PER_DAY + hour * US_PER_HOUR
                + (rng.random(n_reg) * US_PER_HOUR).astype(np.int64))
    if first_sub_row < n_reg:
        # planted-change segments: map each row's time of day onto the part of its day that
        # lies inside the segment (identity on whole days), so no event crosses the change
        r = slice(first_sub_row, n_reg)
        d0 = start_us + day[r] * US_PER_DAY
        a = np.maximum(seg_lo[ev_seg[r]], d0)
        b = np.minimum(seg_hi[ev_seg[r]], d0 + US_PER_DAY)
        frac = (occurred[r] - d0) / US_PER_DAY
        occurred[r] = np.minimum(a + (frac * (b - a)).astype(np.int64), b - 1)
    del day, hour

    tick("hours")
    # channel / source option by type and persona
    oc = P.OPTION_CUM[etype, persona]
    ur = rng.random(n_reg)
    opt = (ur >= oc[:, 0]).astype(np.int64) + (ur >= oc[:, 1])
    del oc, ur

    tick("channel")
    # location: store visits and inbound calls of multi-location customers use a secondary one
    loc = task.home_loc.astype(np.int64)[cust]
    n_sec = (task.sec_loc >= 0).sum(axis=1)
    roam = (P.IS_ROAMING[etype]
            & (n_sec[cust] > 0) & (rng.random(n_reg) < 0.3))
    rc = cust[roam]
    slot = (rng.random(rc.size) * n_sec[rc]).astype(np.int64)
    loc[roam] = task.sec_loc[rc, slot]

    tick("location")
    # amounts: heavy-tailed purchases, refunds, loyalty redemptions
    amount = np.full(n_reg, np.nan)
    for tname, sign in (("purchase", 1.0), ("product_return", -1.0)):
        rows = np.flatnonzero(etype == P.T[tname])
        base = rng.lognormal(3.6, 0.75, rows.size) * seg_spend[ev_seg[rows]]
        tail = rng.random(rows.size) < 0.04
        base = np.where(tail, base * (1.0 + rng.pareto(1.3, rows.size)) * 3.0, base)
        if sign < 0:
            base = base * rng.uniform(0.3, 1.0, rows.size)
        amount[rows] = sign * np.round(np.clip(base, 1.0, MAX_AMOUNT), 2)
    rows = np.flatnonzero(etype == P.T["loyalty_redeem"])
    amount[rows] = np.round(np.clip(rng.lognormal(2.3, 0.6, rows.size), 1.0, 500.0), 2)

    tick("amounts")
    # properties: sku/category objects for commerce types, preference objects
    n_commerce = P.N_CATEGORIES * N_SKU_PER_CATEGORY
    pref_base, consent_base = n_commerce, n_commerce + 9
    props = np.full(n_reg, -1, dtype=np.int64)
    commerce = P.IS_COMMERCE[etype]
    rows = np.flatnonzero(commerce)
    fav = seg_fav[ev_seg[rows]]
    other = sample_rows(cum_tables(P.PERSONA_CATEGORY), persona[rows], rng.random(rows.size))
    cat = np.where(rng.random(rows.size) < 0.45, fav, other)
    item = (N_SKU_PER_CATEGORY * rng.random(rows.size) ** 3).astype(np.int64)
    props[rows] = cat * N_SKU_PER_CATEGORY + item
    rows = np.flatnonzero(etype == P.T["preference_change"])
    props[rows] = pref_base + rng.integers(0, 9, rows.size)
    del rows, fav, other, cat, item, commerce

    tick("props")
    # ------------------------------------------------------------ structural rows
    s_cust = task.s_cust - task.lo
    n_s = s_cust.size
    s_type = task.s_type.astype(np.int64)
    s_time = task.s_time
    s_sw = task.switch_day[s_cust]
    s_day = (s_time - start_us) // US_PER_DAY
    s_ch = task.change_us[s_cust]
    s_new = ((s_sw >= 0) & (s_day >= s_sw)) | ((s_ch >= 0) & (s_time >= s_ch))
    s_persona = np.where(s_new, task.persona1[s_cust], task.persona0[s_cust]).astype(np.int64)
    oc = P.OPTION_CUM[s_type, s_persona]
    ur = rng.random(n_s)
    s_opt = (ur >= oc[:, 0]).astype(np.int64) + (ur >= oc[:, 1])
    s_props = np.full(n_s, -1, dtype=np.int64)
    is_consent = s_type == P.T["consent_change"]
    s_props[is_consent] = consent_base + task.s_a[is_consent] * 2 + task.s_b[is_consent]
    special = np.flatnonzero(~is_consent)
    extra_base = consent_base + 6
    s_props[special] = extra_base + np.arange(special.size)
    special_strings = _special_props(task, s_type[special], task.s_a[special], task.s_b[special])

    tick("structural")
    # ------------------------------------------------------------ assemble valid rows
    cust = np.concatenate([cust, s_cust]).astype(np.int32)
    etype = np.concatenate([etype, s_type]).astype(np.int16)
    occurred = np.concatenate([occurred, s_time])
    opt = np.concatenate([opt, s_opt]).astype(np.int8)
    loc = np.concatenate([loc, task.home_loc.astype(np.int64)[s_cust]]).astype(np.int16)
    amount = np.concatenate([amount, np.full(n_s, np.nan)])
    props = np.concatenate([props, s_props]).astype(np.int32)
    is_candidate = np.concatenate([~is_anchor, np.zeros(n_s, dtype=bool)])
    n = cust.size

    delay = rng.lognormal(np.log(30.0), 0.9, n) * US_PER_SECOND
    late = rng.random(n) < LATE_SHARE
    delay = np.where(late, delay + rng.uniform(1, 72, n) * US_PER_HOUR, delay)
    received = occurred + delay.astype(np.int64)
    del delay, late

    tick("received")
    # landing order: by arrival day (a linear-time radix sort); event ids follow it
    order = np.argsort(((received - start_us) // US_PER_DAY).astype(np.int16), kind="stable")
    cust, etype, occurred, received = cust[order], etype[order], occurred[order], received[order]
    opt, loc, amount, props, is_candidate = opt[order], loc[order], amount[order], props[order], is_candidate[order]
    del order
    tick("sort")
    source = P.OPTION_SOURCE[etype, opt]
    channel = P.OPTION_CHANNEL[etype, opt]
    del opt
    jur = task.jurisdiction[cust]
    eid = np.arange(n, dtype=np.int64)   # index into the id pool; base ids first
    valid_ids = fixed_width_strings("e", task.event_id_offset + 1 + eid, EVENT_ID_WIDTH)
    cust_dict = fixed_width_strings("c", task.lo + 1 + np.arange(n_c), task.cust_width)
    tick("ids")

    # ------------------------------------------------------------ injected bad input
    d = _inject_defects(rng, task, n, is_candidate, etype, props, n_commerce, cust,
                        occurred, received, amount, eid, valid_ids, cust_dict)
    (eid, eid_null, id_pool, cust, cust_null, cust_dict, etype, type_dict, occurred,
     occ_null, received, amount, props, props_extra, dup_rows, dup_redeliver, defect_rows,
     defect_codes) = d
    tick("defects")

    # ------------------------------------------------------------ Arrow table
    loc_dict = fixed_width_strings("L", np.arange(1, task.n_locations + 1), 3)
    props_dict = pa.concat_arrays([
        _commerce_props(), pa.array(_pref_props() + _consent_props(), pa.string()),
        special_strings, props_extra,
    ])
    event_id = id_pool.take(pa.array(eid, mask=eid_null))
    source_dict = pa.array(P.SOURCES, pa.string())
    table = pa.Table.from_arrays([
        event_id,
        dict_array(cust, cust_dict, cust_null),
        dict_array(etype, type_dict),
        timestamps(occurred, occ_null),
        timestamps(received),
        dict_array(source, source_dict),
        dict_array(channel, P.CHANNELS),
        dict_array(loc, loc_dict),
        dict_array(jur, P.JURISDICTIONS),
        pa.array(amount, mask=np.isnan(amount)),
        dict_array(props, props_dict, props < 0),
    ], names=EVENTS_SCHEMA.names)
    # duplicates: copies of valid rows appended at the end; half of them are re-deliveries
    # (later received_at, source_system changed), so the original always wins the tie-break
    if dup_rows.size:
        dups = table.take(pa.array(dup_rows))
        later = (rng.uniform(5 * 60, 48 * 3600, dup_rows.size) * US_PER_SECOND).astype(np.int64)
        new_received = received[dup_rows] + np.where(dup_redeliver, later, 0)
        new_source = np.where(dup_redeliver, P.SOURCES.index("redelivery_queue"), source[dup_rows])
        dups = dups.set_column(4, "received_at", timestamps(new_received))
        dups = dups.set_column(5, "source_system", dict_array(new_source.astype(np.int8), source_dict))
        table = pa.concat_tables([table, dups])
        defect_rows = np.concatenate([defect_rows, n + np.arange(dup_rows.size)])
        defect_codes = np.concatenate([defect_codes, np.full(dup_rows.size, P.DEFECTS.index("duplicate_event_id"))])
    tick("arrow")
    dt = table.take(pa.array(defect_rows))
    defects = pa.table({
        "event_id": dt["event_id"].cast(pa.string()),
        "customer_id": dt["customer_id"].cast(pa.string()),
        "signal_type": dt["signal_type"].cast(pa.string()),
        "defect": dict_array(defect_codes, P.DEFECTS).cast(pa.string()),
    })
    type_counts = np.bincount(np.where(etype < P.N_TYPES, etype, P.N_TYPES), minlength=P.N_TYPES + 1)
    tick("truth")
    months = _spool_by_month(table, Path(task.spool_path))
    tick("spool")
    return {"index": task.index, "rows": table.num_rows, "valid_rows": n, "months": months,
            "defects": defects, "type_counts": type_counts[: P.N_TYPES]}


# ---------------------------------------------------------------------------- month parts
def _received_keys(col) -> np.ndarray:
    """received_at as int64 microseconds, nulls mapped to UNKNOWN_MONTH (they sort last)."""
    return pc.fill_null(col.cast(pa.int64()), UNKNOWN_MONTH).to_numpy()


def _month_keys(received: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of int64 microsecond timestamps (UNKNOWN_MONTH stays as is)."""
    unknown = received == UNKNOWN_MONTH
    m = np.where(unknown, 0, received).view("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    return np.where(unknown, UNKNOWN_MONTH, m)


def month_label(month: int) -> str:
    if month == UNKNOWN_MONTH:
        return "unknown"
    return str(np.datetime64(int(month), "M"))           # YYYY-MM


def _spool_by_month(table: pa.Table, path: Path) -> list[int]:
    """Write the chunk as an IPC file of single-month record batches; returns each batch's
    month key. Rows are already in arrival-day order (duplicates appended), so months form a
    few runs that are written as they are; `write_month` does the exact sort."""
    batches, months = [], []
    for batch in table.to_batches():
        month = _month_keys(_received_keys(batch.column("received_at")))
        cuts = np.flatnonzero(month[1:] != month[:-1]) + 1
        if cuts.size > 4 * np.unique(month).size + 8:   # not grouped: group it
            order = np.argsort(month, kind="stable")
            batch, month = batch.take(pa.array(order)), month[order]
            cuts = np.flatnonzero(month[1:] != month[:-1]) + 1
        for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [month.size]])):
            if b > a:
                batches.append(batch.slice(int(a), int(b - a)))
                months.append(int(month[a]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        for batch in batches:
            w.write_batch(batch)
    return months


@dataclass
class MonthTask:
    """One month's part: its batches in each chunk's spool file, in chunk order."""

    month: int
    parts: list            # [(spool_path, [batch_index, ...])]
    out_path: str
    row_group_rows: int = ROW_GROUP_ROWS


def write_month(task: MonthTask) -> dict:
    """Merge one month of arrivals from every chunk, sort by received_at, write the part.

    Row groups of `row_group_rows` rows, each with its own compact dictionaries (only the
    values it uses, as any writer produces), so received_at min/max per row group cover a few
    days and customer_id dictionaries stay proportional to the row group.
    """
    sources = [pa.memory_map(p, "r") for p, _ in task.parts]
    try:
        batches = []
        for src, (_, indices) in zip(sources, task.parts):
            reader = pa.ipc.open_file(src)
            batches.extend(_compact_batch(reader.get_batch(i)) for i in indices)
        # small per-batch dictionaries first: unifying the chunks' full ones costs 3x more
        table = pa.Table.from_batches(batches).unify_dictionaries()
        received = _received_keys(table.column("received_at"))
        order = np.argsort(received, kind="stable")   # ties keep chunk order
        table = table.take(pa.array(order)).combine_chunks()
        del batches
    finally:
        for src in sources:
            src.close()
    out = Path(task.out_path)
    tmp = out.with_name(out.name + ".tmp")
    n = table.num_rows
    with parquet_writer(tmp, table.schema, dictionary=DICTIONARY_COLUMNS,
                        statistics=STATISTICS_COLUMNS, delta=DELTA_COLUMNS) as w:
        for a in range(0, n, task.row_group_rows):
            rg = table.slice(a, min(task.row_group_rows, n - a))
            cols = [_compact(c.chunk(0)) if pa.types.is_dictionary(c.type) else c for c in rg.columns]
            w.write_table(pa.Table.from_arrays(cols, schema=table.schema), row_group_size=rg.num_rows)
    os.replace(tmp, out)
    return {"month": task.month, "rows": n}


def _compact_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    cols = [_compact(c) if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(cols, schema=batch.schema)


def _compact(arr: pa.DictionaryArray) -> pa.DictionaryArray:
    """The same values with a dictionary reduced to the entries in use (order kept)."""
    if len(arr.dictionary) == 0:   # all null (e.g. no properties in a small month): nothing to do
        return arr
    idx = arr.indices
    valid = None
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        codes = pc.fill_null(idx, 0).to_numpy()
        used_codes = codes[valid]
    else:
        codes = idx.to_numpy()
        used_codes = codes
    used = np.zeros(len(arr.dictionary), dtype=bool)
    used[used_codes] = True
    remap = (np.cumsum(used) - 1).astype(codes.dtype)
    new = pa.array(remap[codes], type=idx.type, mask=None if valid is None else ~valid)
    return pa.DictionaryArray.from_arrays(new, arr.dictionary.take(pa.array(np.flatnonzero(used))))


def _special_props(task: ChunkTask, stype, a, b) -> pa.Array:
    """referral_sent / identity_link / identity_unlink property objects, row by row."""
    w = task.cust_width
    is_ref = stype == P.T["referral_sent"]
    ref = fixed_width_strings('{"referred_customer_id":"c', a + 1, w, '"}')
    link_head = fixed_width_strings('{"linked_customer_id":"c', a + 1, w, '","match_type":"')
    match = pa.array(P.MATCH_TYPES).take(pa.array(np.where(is_ref, 0, b)))
    link = pc.binary_join_element_wise(link_head, match, pa.scalar('"}'), "")
    return pc.if_else(pa.array(is_ref), ref, link)


def _inject_defects(rng, task, n, is_candidate, etype, props, n_commerce, cust, occurred,
                    received, amount, eid, valid_ids, cust_dict):
    """Corrupt a share of rows per defect category, each row breaking exactly one rule."""
    rate = task.defect_rate
    k = 0 if rate <= 0 else max(1, int(round(rate * n)))
    taken = ~is_candidate.copy()
    picks = {}
    eligibility = {
        "negative_amount": etype == P.T["purchase"],
        "unparseable_properties": (props >= 0) & (props < n_commerce),
        "unknown_signal_type": P.MISSPELLING_CODE[np.minimum(etype, P.N_TYPES - 1)] >= 0,
    }
    for name in tuple(eligibility) + tuple(d for d in P.DEFECTS if d not in eligibility):
        ok = ~taken
        if name in eligibility:
            ok &= eligibility[name]
        pool = np.flatnonzero(ok)
        m = min(k, pool.size)
        chosen = np.sort(rng.choice(pool, m, replace=False)) if m else pool[:0]
        taken[chosen] = True
        picks[name] = chosen

    id_pool_parts = [valid_ids]
    next_id = n
    eid_null = np.zeros(n, dtype=bool)
    # missing_event_id: half null, half empty string
    r = picks["missing_event_id"]
    half = rng.random(r.size) < 0.5
    eid_null[r[half]] = True
    id_pool_parts.append(pa.array([""], pa.string()))
    eid[r[~half]] = next_id
    next_id += 1
    # malformed_event_id: space inside, '#' prefix, or longer than 128 characters
    r = picks["malformed_event_id"]
    src = valid_ids.take(pa.array(r))
    variant = rng.integers(0, 3, r.size)
    spaced = pc.binary_join_element_wise(pc.utf8_slice_codeunits(src, 0, 4), pa.scalar(" "),
                                         pc.utf8_slice_codeunits(src, 4), "")
    hashed = pc.binary_join_element_wise(pa.scalar("#"), src, "")
    longer = pc.binary_join_element_wise(src, pa.scalar("-" * 120), "")
    bad = pc.case_when(pc.make_struct(pa.array(variant == 0), pa.array(variant == 1)),
                       spaced, hashed, longer)
    id_pool_parts.append(bad)
    eid[r] = next_id + np.arange(r.size)
    next_id += r.size
    id_pool = pa.concat_arrays(id_pool_parts)

    # customer ids: null / empty / malformed via dictionary extension
    n_c = len(cust_dict)
    cust_null = np.zeros(n, dtype=bool)
    r = picks["missing_customer_id"]
    half = rng.random(r.size) < 0.5
    cust_null[r[half]] = True
    cust[r[~half]] = n_c
    r = picks["malformed_customer_id"]
    src = cust_dict.take(pa.array(cust[r]))
    variant = rng.integers(0, 3, r.size)
    spaced = pc.binary_join_element_wise(pc.utf8_slice_codeunits(src, 0, 3), pa.scalar(" "),
                                         pc.utf8_slice_codeunits(src, 3), "")
    hashed = pc.binary_join_element_wise(pa.scalar("cust#"), src, "")
    email = pc.binary_join_element_wise(src, pa.scalar("@example.com"), "")
    bad = pc.case_when(pc.make_struct(pa.array(variant == 0), pa.array(variant == 1)),
                       spaced, hashed, email)
    cust[r] = n_c + 1 + np.arange(r.size)
    cust_dict = pa.concat_arrays([cust_dict, pa.array([""], pa.string()), bad])

    # unknown signal types: misspellings appended to the type dictionary
    r = picks["unknown_signal_type"]
    etype[r] = P.MISSPELLING_CODE[etype[r]]
    type_dict = pa.array(P.SIGNAL_TYPES + P.MISSPELLED_TYPES, pa.string())

    # timestamps
    occ_null = np.zeros(n, dtype=bool)
    occ_null[picks["missing_occurred_at"]] = True
    r = picks["occurred_in_future"]
    occurred[r] = received[r] + (rng.uniform(2, 30, r.size) * US_PER_DAY).astype(np.int64)
    r = picks["occurred_before_floor"]
    occurred[r] = rng.integers(FLOOR_LO_US, FLOOR_HI_US, r.size)

    # truncated JSON text
    r = picks["unparseable_properties"]
    src = pa.array(_commerce_props()).take(pa.array(props[r]))
    cut = rng.integers(0, 3, r.size)
    bad = pc.case_when(pc.make_struct(pa.array(cut == 0), pa.array(cut == 1)),
                       pc.utf8_slice_codeunits(src, 0, 12), pc.utf8_slice_codeunits(src, 0, 21),
                       pc.utf8_slice_codeunits(src, 0, 30))
    props_extra_base = n_commerce + 9 + 6 + int((task.s_type != P.T["consent_change"]).sum())
    props[r] = props_extra_base + np.arange(r.size)

    r = picks["negative_amount"]
    amount[r] = -np.abs(amount[r])

    dup = picks["duplicate_event_id"]
    dup_redeliver = rng.random(dup.size) < 0.5
    defect_rows = np.concatenate([picks[name] for name in P.DEFECTS if name != "duplicate_event_id"])
    defect_codes = np.concatenate([np.full(picks[name].size, P.DEFECTS.index(name))
                                   for name in P.DEFECTS if name != "duplicate_event_id"])
    return (eid, eid_null, id_pool, cust, cust_null, cust_dict, etype, type_dict, occurred,
            occ_null, received, amount, props, bad, dup, dup_redeliver, defect_rows, defect_codes)
