"""Demo generator: determinism, exact raw schemas, and every planted truth checked against
the raw rows it is supposed to explain."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketing_signals.cli import main as cli_main
from marketing_signals.demo import generate
from marketing_signals.demo import generator as G
from marketing_signals.demo import profiles as P
from marketing_signals.demo.events import MonthTask, _compact, _spool_by_month, write_month
from marketing_signals.demo.streams import load_registries
from marketing_signals.demo.util import fixed_width_strings, sample_rows

CUSTOMERS = 3000
CHUNK = 1000          # three chunks, so worker count and chunk seeding are exercised
SEED = 7
ID_RE = "[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"

RAW_SCHEMAS = {
    "events": pa.schema([
        ("event_id", pa.string()), ("customer_id", pa.string()), ("signal_type", pa.string()),
        ("occurred_at", pa.timestamp("us")), ("received_at", pa.timestamp("us")),
        ("source_system", pa.string()), ("channel", pa.string()), ("location_id", pa.string()),
        ("jurisdiction", pa.string()), ("amount", pa.float64()), ("properties", pa.string()),
    ]),
    "stream_metrics": pa.schema([
        ("stream_id", pa.string()), ("location_id", pa.string()), ("period_start", pa.date32()),
        ("value", pa.float64()),
    ]),
    "context_events": pa.schema([
        ("context_event_id", pa.string()), ("context_type", pa.string()), ("location_id", pa.string()),
        ("starts_at", pa.timestamp("us")), ("ends_at", pa.timestamp("us")),
        ("description", pa.string()), ("source_system", pa.string()),
    ]),
    "subscriber_acks": pa.schema([
        ("sync_run_id", pa.string()), ("subscriber_id", pa.string()),
        ("sync_started_at", pa.timestamp("us")), ("sync_completed_at", pa.timestamp("us")),
        ("status", pa.string()), ("records_acknowledged", pa.int64()),
        ("acknowledged_through", pa.timestamp("us")),
    ]),
    "outcomes": pa.schema([
        ("outcome_id", pa.string()), ("outcome_type", pa.string()), ("subject_id", pa.string()),
        ("location_id", pa.string()), ("label", pa.string()), ("observed_at", pa.timestamp("us")),
        ("source_system", pa.string()),
    ]),
}


def _gen(out: Path, workers: int, seed: int = SEED) -> dict:
    return generate(out, customers=CUSTOMERS, seed=seed, workers=workers,
                    chunk_customers=CHUNK, progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "two_workers"
    manifest = _gen(out, workers=2)
    return out, manifest


@pytest.fixture(scope="module")
def con(data):
    out, _ = data
    c = duckdb.connect()
    for t in RAW_SCHEMAS:
        c.execute(f"create view {t} as select * from read_parquet('{out}/raw/{t}/*.parquet')")
    for f in (out / "truth").glob("*.parquet"):
        c.execute(f"create view truth_{f.stem} as select * from read_parquet('{f}')")
    types = ", ".join(f"'{t}'" for t in P.SIGNAL_TYPES)
    # one flag per quarantine rule, evaluated independently (mirrors the capture layer)
    c.execute(f"""
        create view checked as
        select *,
            (event_id is null or trim(event_id) = '') as r_missing_event_id,
            (trim(event_id) <> '' and not regexp_full_match(event_id, '{ID_RE}')) as r_malformed_event_id,
            (customer_id is null or trim(customer_id) = '') as r_missing_customer_id,
            (trim(customer_id) <> '' and not regexp_full_match(customer_id, '{ID_RE}')) as r_malformed_customer_id,
            (lower(trim(signal_type)) not in ({types})) as r_unknown_signal_type,
            (occurred_at is null) as r_missing_occurred_at,
            coalesce(occurred_at > received_at + interval 24 hour, false) as r_occurred_in_future,
            coalesce(occurred_at < timestamp '2015-01-01', false) as r_occurred_before_floor,
            (properties is not null
             and coalesce(json_type(try_cast(properties as json)) <> 'OBJECT', true)) as r_unparseable_properties,
            coalesce(signal_type = 'purchase' and amount < 0, false) as r_negative_amount
        from events
    """)
    rules = [f"coalesce(r_{d}, false)::int" for d in P.DEFECTS if d != "duplicate_event_id"]
    c.execute(f"create view flagged as select *, {' + '.join(rules)} as n_rules from checked")
    # valid = passes every rule; duplicates are resolved by the earliest received_at
    c.execute("""
        create view valid as
        select * from flagged where n_rules = 0
        qualify row_number() over (partition by event_id order by received_at, occurred_at) = 1
    """)
    return c


def _one(con, sql):
    return con.execute(sql).fetchone()


# --------------------------------------------------------------------------- layout, schemas
def test_layout_and_manifest(data):
    out, manifest = data
    for t in RAW_SCHEMAS:
        parts = sorted((out / "raw" / t).glob("*.parquet"))
        assert parts, t
        assert all(p.name.startswith("part-") for p in parts)
    # events: one part per received month, 2024-11 .. 2026-10 plus late arrivals in 2026-11
    events = sorted(p.name for p in (out / "raw" / "events").iterdir())
    months = [str(m) for m in np.arange(np.datetime64("2024-11"), np.datetime64("2026-12"))]
    assert events == [f"part-{m}.parquet" for m in months]
    assert manifest["event_parts"] == events and manifest["events_partitioning"] == "received_month"
    assert not (out / ".spool").exists()
    m = json.loads((out / "manifest.json").read_text())
    assert m["seed"] == SEED and m["customers"] == CUSTOMERS
    assert m["generator_version"] and m["wall_seconds"] > 0
    assert m["counts"]["raw/events"] == sum(
        pq.read_metadata(p).num_rows for p in (out / "raw" / "events").glob("*.parquet"))
    for name in ("persona_history", "funnel", "communities", "identity", "consent", "incidents",
                 "incident_symptoms", "injected_defects"):
        assert (out / "truth" / f"{name}.parquet").exists(), name


def test_raw_schemas_exact(data):
    out, _ = data
    for t, schema in RAW_SCHEMAS.items():
        for part in (out / "raw" / t).glob("*.parquet"):
            assert pq.read_schema(part).remove_metadata() == schema, (t, pq.read_schema(part))


def test_id_formats(con):
    assert _one(con, "select count(*) from valid where not regexp_full_match(event_id, 'e[0-9]{10}')") == (0,)
    assert _one(con, "select count(*) from valid where not regexp_full_match(customer_id, 'c[0-9]{7}')") == (0,)
    assert _one(con, "select max(length(event_id)), max(length(customer_id)) from valid") == (11, 8)
    n_loc = _one(con, "select count(distinct location_id) from valid")[0]
    assert n_loc == 10 and _one(con, "select min(location_id), max(location_id) from valid") == ("L001", "L010")


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_files_whatever_the_workers(data, tmp_path):
    out, manifest = data
    other = tmp_path / "one_worker"
    m1 = _gen(other, workers=1)
    assert m1["counts"] == manifest["counts"] and m1["event_parts"] == manifest["event_parts"]
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert files == sorted(p.relative_to(other) for p in other.rglob("*")
                           if p.is_file() and p.name != "manifest.json")
    assert len([f for f in files if f.parts[:2] == ("raw", "events")]) == len(manifest["event_parts"])
    for rel in files:   # byte-identical: same rows, same order, same row groups and encodings
        assert (out / rel).read_bytes() == (other / rel).read_bytes(), rel


def test_different_seed_differs(data, tmp_path):
    out, _ = data
    m = _gen(tmp_path / "s8", workers=1, seed=SEED + 1)
    a = pq.read_table(out / "raw" / "events" / "part-2025-03.parquet")
    b = pq.read_table(tmp_path / "s8" / "raw" / "events" / "part-2025-03.parquet")
    assert not a.equals(b)
    assert m["seed"] == SEED + 1


def test_events_land_by_received_month_with_customers_interleaved(data):
    """Each events part holds exactly one received month, in received_at order, with
    customers of every chunk interleaved (not one chunk after another)."""
    out, _ = data
    for f in sorted((out / "raw" / "events").glob("*.parquet")):
        month = f.stem.removeprefix("part-")
        t = pq.read_table(f, columns=["customer_id", "received_at"])
        recv = t["received_at"].to_numpy()
        assert t.num_rows and t["received_at"].null_count == 0
        assert (recv.astype("datetime64[M]") == np.datetime64(month)).all(), f.name
        assert (np.diff(recv.astype(np.int64)) >= 0).all(), f.name
        ids = [c for c in t["customer_id"].to_pylist() if c and len(c) == 8 and c[1:].isdigit()]
        chunk = (np.array([int(c[1:]) for c in ids]) - 1) // CHUNK
        assert len(set(chunk)) >= 2, f.name
        if month not in ("2026-11",):   # full months: every chunk, and mixed within the file
            assert set(chunk) == set(range(CUSTOMERS // CHUNK)), f.name
            assert (np.diff(chunk) != 0).mean() > 0.3, f.name
        stats = pq.read_metadata(f).row_group(0).column(4).statistics
        assert stats.has_min_max and str(stats.min)[:7] == month


def test_event_row_groups_are_time_ranges(tmp_path, monkeypatch):
    """Small row groups: consecutive, non-overlapping received_at ranges with their own
    compact dictionaries, so a reader can skip old row groups by statistics."""
    monkeypatch.setattr(G, "EVENT_ROW_GROUP_ROWS", 500)
    out = tmp_path / "rg"
    generate(out, customers=600, seed=3, workers=1, chunk_customers=200, progress=False)
    multi = 0
    for f in sorted((out / "raw" / "events").glob("*.parquet")):
        md = pq.read_metadata(f)
        multi += md.num_row_groups > 1
        rows = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        assert rows[:-1] == [500] * (len(rows) - 1) and 0 < rows[-1] <= 500
        rg = [md.row_group(i).column(4).statistics for i in range(md.num_row_groups)]
        assert all(s.has_min_max for s in rg)
        assert all(a.max <= b.min for a, b in zip(rg, rg[1:])), f.name
        pf = pq.ParquetFile(f, read_dictionary=["customer_id", "properties"])
        for i in range(md.num_row_groups):   # dictionary pages hold only the values in use
            for col in pf.read_row_group(i, columns=["customer_id", "properties"]).columns:
                arr = col.chunk(0)
                assert len(arr.dictionary) == len(arr.drop_null().unique()), (f.name, i)
    assert multi >= 20
    # the same rows as with the default (single) row group per part
    ref = tmp_path / "rg_ref"
    monkeypatch.setattr(G, "EVENT_ROW_GROUP_ROWS", 1 << 18)
    generate(ref, customers=600, seed=3, workers=1, chunk_customers=200, progress=False)
    for f in sorted((out / "raw" / "events").glob("*.parquet")):
        assert pq.read_table(f).equals(pq.read_table(ref / "raw" / "events" / f.name)), f.name


def test_rows_without_received_at_go_to_an_unknown_part(data, tmp_path):
    out, _ = data
    src = pq.read_table(out / "raw" / "events" / "part-2025-03.parquet").slice(0, 300)
    src = src.set_column(1, "customer_id", src["customer_id"].dictionary_encode())
    null = np.zeros(src.num_rows, bool)
    null[::7] = True
    src = src.set_column(4, "received_at", pa.array(src["received_at"].to_numpy(), mask=null))
    spool = tmp_path / "spool.arrow"
    months = _spool_by_month(src, spool)
    unknown = np.iinfo(np.int64).max
    assert set(months) == {int(np.datetime64("2025-03", "M").astype(np.int64)), unknown}
    parts = {}
    for m in set(months):
        path = tmp_path / f"part-{m}.parquet"
        write_month(MonthTask(month=m, parts=[(str(spool), [i for i, x in enumerate(months) if x == m])],
                              out_path=str(path)))
        parts[m] = pq.read_table(path)
    assert parts[unknown].num_rows == parts[unknown]["received_at"].null_count == null.sum()
    assert sum(t.num_rows for t in parts.values()) == src.num_rows
    assert sorted(pa.concat_tables(parts.values())["event_id"].to_pylist(), key=str) == \
        sorted(src["event_id"].to_pylist(), key=str)


def test_all_null_dictionary_column_with_empty_dictionary():
    """A row group whose dictionary column is all null after compaction (e.g. no properties
    in a small late-arrival month; crashed 2000 customers with seed 11) is kept as it is."""
    arr = pa.DictionaryArray.from_arrays(pa.array([None, None], pa.int32()), pa.array([], pa.string()))
    out = _compact(arr)
    assert out.null_count == 2 and len(out.dictionary) == 0


def test_regeneration_removes_stale_parts(tmp_path):
    out = tmp_path / "regen"
    generate(out, customers=300, seed=1, workers=1, progress=False)
    stale = out / "raw" / "events" / "part-09999.parquet"
    stale.write_bytes(b"old")
    (out / "truth" / "obsolete.parquet").write_bytes(b"old")
    generate(out, customers=300, seed=1, workers=1, progress=False)
    assert not stale.exists() and not (out / "truth" / "obsolete.parquet").exists()


def test_cli_generate(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli_main(["generate", "--customers", "400", "--seed", "3", "--out", str(out),
                   "--workers", "1", "--days", "365", "--end-date", "2026-01-01", "--no-progress"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["customers"] == 400 and printed["events"] > 0
    m = json.loads((out / "manifest.json").read_text())
    assert (m["start_date"], m["end_date"]) == ("2025-01-01", "2026-01-01")
    c = duckdb.connect()
    lo, hi = c.execute(f"""select min(occurred_at), max(occurred_at) from '{out}/raw/events/*.parquet'
                       where occurred_at >= '2015-01-01' and occurred_at <= received_at""").fetchone()
    assert str(lo) >= "2025-01-01" and str(hi) < "2026-01-01"


# --------------------------------------------------------------------------- event realism
def test_all_signal_types_present(con):
    types = {r[0] for r in con.execute("select distinct signal_type from valid").fetchall()}
    assert types == set(P.SIGNAL_TYPES)


def test_mix_purchases_rarer_than_views(con):
    n, views, purchases = _one(con, """
        select count(*), count(*) filter (where signal_type in ('page_view', 'product_view')),
               count(*) filter (where signal_type = 'purchase') from valid""")
    assert 40 <= n / CUSTOMERS <= 65
    assert 0.30 <= views / n <= 0.50
    assert 0.015 <= purchases / n <= 0.04
    assert purchases * 5 < views


def test_amounts(con):
    rows = dict(con.execute("""
        select signal_type, [count(*), count(amount), min(amount), max(amount)] from valid
        where signal_type in ('purchase', 'product_return', 'loyalty_redeem') group by 1""").fetchall())
    assert rows["purchase"][0] == rows["purchase"][1] and rows["purchase"][2] > 0
    assert rows["product_return"][3] < 0
    assert rows["loyalty_redeem"][2] > 0
    assert _one(con, """select count(*) from valid where amount is not null
                        and signal_type not in ('purchase', 'product_return', 'loyalty_redeem')""") == (0,)
    p50, p99, mx = _one(con, "select median(amount), quantile_cont(amount, 0.99), max(amount) from valid where signal_type = 'purchase'")
    assert p99 / p50 > 6 and mx / p50 > 30 and mx < 1_000_000


def test_weekly_and_payday_seasonality(con):
    sat, weekday = _one(con, """
        select avg(n) filter (where dow = 6), avg(n) filter (where dow between 1 and 4) from (
            select dayofweek(occurred_at) dow, occurred_at::date d, count(*) n from valid
            where signal_type = 'store_visit' group by all)""")
    assert sat > 1.4 * weekday
    payday, other = _one(con, """
        select avg(share) filter (where dom in (1, 15)), avg(share) filter (where dom not in (1, 2, 15, 16)) from (
            select day(occurred_at) dom, occurred_at::date d,
                   count(*) filter (where signal_type = 'purchase') / count(*) share
            from valid group by all)""")
    assert payday > 1.25 * other


def test_received_after_occurred_with_late_tail(con):
    n, neg, late, med = _one(con, """
        select count(*), count(*) filter (where received_at < occurred_at),
               count(*) filter (where received_at > occurred_at + interval 1 hour),
               median(epoch(received_at) - epoch(occurred_at)) from valid""")
    assert neg == 0 and 0.005 < late / n < 0.02 and 10 < med < 90


def test_properties_shapes(con):
    bad = _one(con, """
        select count(*) from valid where
            (signal_type in ('product_view', 'add_to_cart', 'purchase')
             and not regexp_full_match(properties, '\\{"sku":"S[0-9]{5}","category":"[a-z_]+"\\}'))
         or (signal_type = 'preference_change' and (properties->>'channel' not in ('email', 'sms', 'push')
             or properties->>'frequency' not in ('daily', 'weekly', 'monthly')))
         or (signal_type = 'consent_change' and (properties->>'purpose' not in ('marketing', 'profiling', 'sale_share')
             or properties->>'state' not in ('granted', 'withdrawn')))
         or (signal_type = 'referral_sent' and not regexp_full_match(properties->>'referred_customer_id', 'c[0-9]{7}'))
         or (signal_type in ('identity_link', 'identity_unlink')
             and not regexp_full_match(properties->>'linked_customer_id', 'c[0-9]{7}'))
         or (signal_type in ('email_open', 'store_visit', 'app_open') and properties is not null)""")
    assert bad == (0,)


def test_locations_and_jurisdictions(con):
    # one jurisdiction per customer, equal to the home location's; online events carry home
    assert _one(con, """select count(*) from (select customer_id from valid group by 1
                        having count(distinct jurisdiction) > 1)""") == (0,)
    assert _one(con, """
        select count(*) from valid v join truth_customers c using (customer_id)
        where v.jurisdiction <> c.jurisdiction
           or (v.signal_type not in ('store_visit', 'call_inbound') and v.location_id <> c.home_location_id)""") == (0,)
    shares = dict(con.execute("select jurisdiction, count(*) / sum(count(*)) over () from truth_locations group by 1").fetchall())
    assert shares == pytest.approx({"EU": 0.2, "UK": 0.1, "US-CA": 0.2, "US-CO": 0.1, "US-OTHER": 0.4})
    multi = _one(con, "select avg((n_secondary_locations > 0)::int) from truth_customers")[0]
    assert 0.15 < multi < 0.35
    roaming = _one(con, """select count(*) from valid v join truth_customers c using (customer_id)
                           where v.location_id <> c.home_location_id""")[0]
    assert roaming > 0


# --------------------------------------------------------------------------- personas
def _shares(con, where=""):
    rows = con.execute(f"""
        select v.customer_id, signal_type, count(*) from valid v join truth_customers c using (customer_id)
        where signal_type not in ('referral_sent', 'identity_link', 'identity_unlink', 'consent_change') {where}
        group by all""").fetchall()
    cust = sorted({r[0] for r in rows})
    ci = {c: i for i, c in enumerate(cust)}
    x = np.zeros((len(cust), P.N_TYPES))
    for c, t, n in rows:
        x[ci[c], P.T[t]] = n
    return cust, x


def test_persona_mixes_distinct_and_recoverable(con):
    personas = dict(con.execute("select customer_id, persona from truth_customers where persona = current_persona").fetchall())
    cust, x = _shares(con, "and c.persona = c.current_persona")
    keep = x.sum(1) >= 20
    cust = [c for c, k in zip(cust, keep) if k]
    x = x[keep] / x[keep].sum(1, keepdims=True)
    y = np.array([P.PERSONAS.index(personas[c]) for c in cust])
    rng = np.random.default_rng(0)
    train = rng.random(len(y)) < 0.5
    centroids = np.stack([x[train & (y == p)].mean(0) for p in range(P.N_PERSONAS)])
    # mixes differ clearly: every pair of persona centroids is far apart in L1
    gaps = [np.abs(centroids[a] - centroids[b]).sum() for a in range(8) for b in range(a + 1, 8)]
    assert min(gaps) > 0.25
    # ...and a nearest-centroid rule recovers held-out customers' personas
    pred = ((x[~train, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (pred == y[~train]).mean() > 0.75
    # but not trivially: every persona still uses the common browse types
    assert (centroids[:, P.T["page_view"]] > 0.05).all()


def test_persona_switches(con):
    ph = con.execute("select customer_id, persona, valid_from, valid_to from truth_persona_history").fetchall()
    per_cust = Counter(r[0] for r in ph)
    switched = [c for c, n in per_cust.items() if n == 2]
    assert 0.05 < len(switched) / CUSTOMERS < 0.11
    assert max(per_cust.values()) == 2 and len(per_cust) == CUSTOMERS
    # open row per customer, switch inside the last 120 days
    assert _one(con, "select count(*) from truth_persona_history where valid_to is null") == (CUSTOMERS,)
    assert _one(con, """select count(*) from truth_persona_history where valid_to is not null
                        and valid_to < timestamp '2026-11-01' - interval 120 day""") == (0,)
    # events after the switch follow the new persona's mix
    cust_all, x_all = _shares(con, "and c.persona = c.current_persona")
    pers = dict(con.execute("select customer_id, persona from truth_customers").fetchall())
    y_all = np.array([P.PERSONAS.index(pers[c]) for c in cust_all])
    xs = x_all / np.maximum(x_all.sum(1, keepdims=True), 1)
    centroids = np.stack([xs[y_all == p].mean(0) for p in range(P.N_PERSONAS)])
    cust, x = _shares(con, """and c.persona <> c.current_persona and v.occurred_at >= (
        select valid_from from truth_persona_history h where h.customer_id = v.customer_id and h.valid_to is null)""")
    keep = x.sum(1) >= 10
    cur = dict(con.execute("select customer_id, current_persona from truth_customers").fetchall())
    new = np.array([P.PERSONAS.index(cur[c]) for c in cust])
    xp = x[keep] / x[keep].sum(1, keepdims=True)
    pred = ((xp[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert keep.sum() >= 50 and (pred == new[keep]).mean() > 0.5


# --------------------------------------------------------------------------- funnel
def test_funnel_respected(con):
    stage_of = {t: P.STAGES[s] for t, s in zip(P.SIGNAL_TYPES, P.TYPE_STAGE) if s > 0}
    case = " ".join(f"when '{t}' then {P.STAGES.index(s)}" for t, s in stage_of.items())
    con.execute(f"""create or replace temp view observed_stage as
        select customer_id, max(case signal_type {case} else 0 end) as observed from valid group by 1""")
    stage_case = " ".join(f"when '{s}' then {i}" for i, s in enumerate(P.STAGES))
    beyond, reached, n = _one(con, f"""
        select count(*) filter (where o.observed > (case f.max_stage_reached {stage_case} end)),
               count(*) filter (where o.observed = (case f.max_stage_reached {stage_case} end)),
               count(*)
        from truth_funnel f join observed_stage o using (customer_id)""")
    assert beyond == 0
    assert reached == n      # the planted max stage is actually reached
    dist = dict(con.execute("select max_stage_reached, count(*) from truth_funnel group by 1").fetchall())
    assert set(dist) == set(P.STAGES) and dist["purchase"] > dist["cart"]
    assert _one(con, """select count(*) from truth_funnel where (max_stage_reached = 'purchase') <> (drop_off_stage is null)
                        or (max_stage_reached = 'cart' and drop_off_stage <> 'purchase')""") == (0,)


# --------------------------------------------------------------------------- defects
def test_every_defect_category_injected_with_the_right_count(con, data):
    _, manifest = data
    truth = dict(con.execute("select defect, count(*) from truth_injected_defects group by 1").fetchall())
    assert set(truth) == set(P.DEFECTS)
    n_valid = _one(con, "select count(*) from valid")[0]
    chunks = CUSTOMERS // CHUNK
    for d, n in truth.items():
        # round(rate * chunk rows) per chunk and category
        assert abs(n - 0.0005 * n_valid) <= chunks, (d, n)
        assert manifest["defects"][d] == n
    # each raw row breaks at most one rule, and the rule counts match the truth exactly
    assert _one(con, "select max(n_rules) from flagged") == (1,)
    for d in P.DEFECTS:
        if d == "duplicate_event_id":
            continue
        assert _one(con, f"select count(*) from flagged where r_{d}") == (truth[d],), d
    # duplicates: extra copies of valid ids; the later copy never precedes the original
    extra = _one(con, """select sum(n - 1) from (select event_id, count(*) n from flagged
                         where n_rules = 0 group by 1 having n > 1)""")[0]
    assert extra == truth["duplicate_event_id"]
    assert _one(con, """select count(*) from (select event_id, count(distinct received_at) k,
                        count(distinct source_system) s from flagged where n_rules = 0
                        group by 1 having count(*) > 1) where k <> s""") == (0,)
    # the truth rows carry what was written
    assert _one(con, f"""select count(*) from truth_injected_defects where defect = 'malformed_customer_id'
                         and regexp_full_match(customer_id, '{ID_RE}')""") == (0,)
    assert _one(con, """select count(*) from truth_injected_defects where defect = 'missing_event_id'
                        and coalesce(event_id, '') <> ''""") == (0,)
    bad_types = {r[0] for r in con.execute(
        "select distinct signal_type from truth_injected_defects where defect = 'unknown_signal_type'").fetchall()}
    assert bad_types and bad_types <= set(P.MISSPELLED_TYPES)


def test_defect_rate_zero(tmp_path):
    m = generate(tmp_path / "clean", customers=300, seed=2, workers=1, defect_rate=0.0, progress=False)
    assert sum(m["defects"].values()) == 0
    assert m["counts"]["truth/injected_defects"] == 0


# --------------------------------------------------------------------------- identity, referral, consent
def test_identity_truth_matches_link_events(con):
    events = con.execute("""
        select least(customer_id, properties->>'linked_customer_id') a,
               greatest(customer_id, properties->>'linked_customer_id') b, signal_type
        from valid where signal_type in ('identity_link', 'identity_unlink')
        qualify row_number() over (partition by a, b order by occurred_at desc, received_at desc) = 1
    """).fetchall()
    live = [(a, b) for a, b, t in events if t == "identity_link"]
    unlinked = [(a, b) for a, b, t in events if t == "identity_unlink"]
    assert unlinked, "some wrong links must be undone"
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in live:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    truth = dict(con.execute("select customer_id, person_key from truth_identity").fetchall())
    assert len(truth) == CUSTOMERS
    for c in list(parent):
        groupmin = find(c)
        assert truth[c] == groupmin, c
    linked = set(parent)
    assert all(truth[c] == c for c in truth if c not in linked)
    groups = Counter(truth.values())
    multi = sum(1 for n in groups.values() if n > 1)
    assert 0.03 < multi / len(groups) < 0.07
    assert set(groups.values()) <= {1, 2, 3}
    # wrong links point at strangers and are always undone later
    for a, b in unlinked:
        assert truth[a] != truth[b]
    ident = dict(con.execute("select customer_id, community_id from truth_communities where community_type = 'identity'").fetchall())
    assert set(ident) == {c for c in truth if groups[truth[c]] > 1}


def test_referral_edges_stay_in_communities(con):
    comm = dict(con.execute("select customer_id, community_id from truth_communities where community_type = 'referral'").fetchall())
    assert 0.12 < len(comm) / CUSTOMERS < 0.18
    sizes = Counter(comm.values())
    assert min(sizes.values()) >= 3 and max(sizes.values()) <= 14
    edges = con.execute("select customer_id, properties->>'referred_customer_id' from valid where signal_type = 'referral_sent'").fetchall()
    assert all(a in comm for a, _ in edges)
    inside = sum(comm.get(b) == comm[a] for a, b in edges)
    assert 0.90 < inside / len(edges) < 0.99
    assert all(a != b for a, b in edges)


def test_consent_truth_matches_events(con):
    last = {(c, p): (s, t) for c, p, s, t in con.execute("""
        select customer_id, properties->>'purpose', properties->>'state', occurred_at from valid
        where signal_type = 'consent_change'
        qualify row_number() over (partition by customer_id, properties->>'purpose' order by occurred_at desc) = 1
    """).fetchall()}
    rows = con.execute("select customer_id, jurisdiction, purpose, state, changed_at from truth_consent").fetchall()
    assert len(rows) == CUSTOMERS * 3
    for c, j, p, s, t in rows:
        if (c, p) in last:
            assert (s, t) == last[(c, p)], (c, p)
        else:
            assert t is None and s == ("withdrawn" if j in ("EU", "UK") else "granted")
    optin = [r for r in rows if r[1] in ("EU", "UK")]
    granted = sum(r[3] == "granted" for r in optin) / len(optin)
    assert 0.5 < granted < 0.65
    us_withdrawn = [r for r in rows if r[1].startswith("US")]
    assert 0.01 < sum(r[3] == "withdrawn" for r in us_withdrawn) / len(us_withdrawn) < 0.06


# --------------------------------------------------------------------------- streams and incidents
def test_incidents_per_cause_and_no_overlap(con):
    reg = load_registries()
    per_cause = dict(con.execute("select cause_id, count(*) from truth_incidents group by 1").fetchall())
    assert set(per_cause) == {c["cause_id"] for c in reg.causes}
    assert min(per_cause.values()) >= 4
    assert sum(per_cause.values()) >= 100
    scope = {c["cause_id"]: c["scope"] for c in reg.causes}
    for inc_id, cause, loc, n in con.execute("select incident_id, cause_id, location_id, n_locations from truth_incidents").fetchall():
        if scope[cause] == "portfolio":
            assert loc == "ALL" and n >= 3
        else:
            assert loc != "ALL" and n == 1
    # windows [onset, last symptom end] never overlap at one location; first 60 days clean
    spans = con.execute("""
        select s.location_id, i.incident_id, min(i.onset_date) a, max(s.end_date) b
        from truth_incident_symptoms s join truth_incidents i using (incident_id) group by all
    """).fetchall()
    by_loc: dict[str, list] = {}
    for loc, _, a, b in spans:
        by_loc.setdefault(loc, []).append((a, b))
    for loc, ws in by_loc.items():
        ws.sort()
        for (a1, b1), (a2, _) in zip(ws, ws[1:]):
            assert a2 > b1, loc
    assert str(_one(con, "select min(onset_date) from truth_incidents")[0]) >= "2024-12-31"
    # symptom lags inside the registry's range
    sig = {(s["cause_id"], s["stream_id"]): (int(s["lag_min_days"]), int(s["lag_max_days"])) for s in reg.signatures}
    for cause, stream, lag in con.execute("""select cause_id, stream_id, lag_days from truth_incident_symptoms
                                         join truth_incidents using (incident_id)""").fetchall():
        lo, hi = sig[(cause, stream)]
        assert lo <= lag <= hi


def test_stream_metrics_grid_bounds_and_planted_shifts(con):
    reg = load_registries()
    n_streams = len(reg.streams)
    assert _one(con, "select count(*), count(distinct stream_id), count(distinct location_id), count(distinct period_start) from stream_metrics") == (
        n_streams * 10 * 730, n_streams, 10, 730)
    bounded = [s["stream_id"] for s in reg.streams if s["is_bounded_ratio"] == "true"]
    assert bounded
    lo, hi = _one(con, f"select min(value), max(value) from stream_metrics where stream_id in (select unnest({bounded}))")
    assert 0 <= lo and hi <= 1
    assert _one(con, "select count(*) from stream_metrics where value is null or isnan(value) or value < 0") == (0,)
    # each root-symptom shift is visible against the 4 weeks before the incident
    rows = con.execute("""
        with s as (
            select s.*, i.cause_id from truth_incident_symptoms s join truth_incidents i using (incident_id)
        )
        select s.direction, s.strength,
            avg(m.value) filter (where m.period_start between s.start_date + 1 and s.end_date - 1) during,
            avg(m.value) filter (where m.period_start between s.start_date - 35 and s.start_date - 8) before
        from s join stream_metrics m on m.stream_id = s.stream_id and m.location_id = s.location_id
        where s.strength >= 0.3
        group by s.incident_id, s.stream_id, s.location_id, s.direction, s.strength
    """).fetchall()
    right = [(d == "up") == (during > before) for d, _, during, before in rows if during is not None and before]
    assert len(right) > 50 and np.mean(right) > 0.9


def test_context_events(con):
    reg = load_registries()
    allowed = {c["context_type"] for c in reg.causes if c["context_type"]}
    types = {r[0] for r in con.execute("select distinct context_type from context_events").fetchall()}
    assert types <= allowed | {"promo_end", "tag_deploy", "weather"}
    assert _one(con, "select count(*) from context_events where ends_at < starts_at") == (0,)
    # ~80% of incidents whose cause has a context type get a matching one near onset
    linked, total = _one(con, """
        with r as (select cause_id, context_type from read_csv_auto(?) where context_type is not null)
        select count(*) filter (where exists (
                   select 1 from context_events c where c.context_type = r.context_type
                   and (c.location_id = i.location_id or (c.location_id is null and i.location_id = 'ALL'))
                   and c.starts_at between i.onset_date - interval 1 day and i.onset_date + interval 1 day)),
               count(*)
        from truth_incidents i join r using (cause_id)""".replace("?", f"'{Path(__file__).parents[1] / 'seeds' / 'registry_root_causes.csv'}'"))
    assert total > 0 and 0.6 < linked / total <= 1.0
    noise = _one(con, "select count(*) from context_events")[0] - linked
    assert noise >= 20


def test_subscriber_acks(con):
    subs = {r[0] for r in con.execute("select distinct subscriber_id from subscriber_acks").fetchall()}
    assert subs == set(P.SUBSCRIBERS)
    n, failed, span_days = _one(con, """select count(*), count(*) filter (where status = 'failed'),
                                        date_diff('day', min(sync_started_at), max(sync_started_at)) from subscriber_acks""")
    assert 0.005 < failed / n < 0.05 and 12 <= span_days <= 14
    assert _one(con, """select count(*) from (select *, lag(acknowledged_through) over (partition by subscriber_id order by sync_started_at) prev
                        from subscriber_acks) where acknowledged_through < prev or acknowledged_through > sync_started_at
                        or sync_completed_at < sync_started_at or (status = 'failed' and records_acknowledged <> 0)""") == (0,)
    gaps = _one(con, """select min(g), max(g) from (select date_diff('minute', lag(sync_started_at) over (partition by subscriber_id order by sync_started_at), sync_started_at) g from subscriber_acks)""")
    assert gaps[0] >= 10 and gaps[1] <= 75


def test_outcomes(con):
    truth = dict(con.execute("select incident_id, cause_id from truth_incidents").fetchall())
    rc = con.execute("select subject_id, label, observed_at from outcomes where outcome_type = 'incident_root_cause'").fetchall()
    assert all(truth[s] == label for s, label, _ in rc)
    assert 0.55 < len(rc) / len(truth) < 0.8
    labels = con.execute("""select o.subject_id, o.label, h.persona from outcomes o join truth_persona_history h
                        on h.customer_id = o.subject_id and o.observed_at >= h.valid_from
                        and (h.valid_to is null or o.observed_at < h.valid_to)
                        where outcome_type = 'cohort_label'""").fetchall()
    assert len(labels) == round(0.02 * CUSTOMERS)
    assert all(label == persona for _, label, persona in labels)


# --------------------------------------------------------------------------- planted persona changes
CHANGE_CUSTOMERS = 2000
CHANGE_SHARE = 0.2
CHANGE_DAYS = (55, 27)
END = np.datetime64("2026-11-01T00:00:00", "us")    # generate()'s default end_date (exclusive)
BEHAVIOUR_TYPES = tuple(t for t in P.SIGNAL_TYPES if t not in P.STRUCTURAL_TYPES)
PERSONA_CHANGES_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("from_persona", pa.string()), ("to_persona", pa.string()),
    ("changed_at", pa.timestamp("us")), ("days_before_end", pa.int64()), ("activity_boosted", pa.bool_()),
    ("rate_from", pa.timestamp("us")), ("events_per_28d_before", pa.float64()),
    ("events_per_28d_after", pa.float64()),
])


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    """(out, manifest, con): 2000 customers, 20% planted changes, plus the same run without."""
    root = tmp_path_factory.mktemp("changes")
    kw = dict(customers=CHANGE_CUSTOMERS, seed=SEED, workers=1, progress=False)
    manifest = generate(root / "share", persona_change_share=CHANGE_SHARE,
                        persona_change_days_before_end=CHANGE_DAYS, **kw)
    generate(root / "base", **kw)
    c = duckdb.connect()
    for name in ("share", "base"):
        c.execute(f"create view {name}_events as select * from read_parquet('{root / name}/raw/events/*.parquet')")
        for f in (root / name / "truth").glob("*.parquet"):
            c.execute(f"create view {name}_{f.stem} as select * from read_parquet('{f}')")
    c.execute(f"create view outcomes as select * from read_parquet('{root}/share/raw/outcomes/*.parquet')")
    return root / "share", manifest, c


def test_persona_change_share_zero_changes_nothing(data, tmp_path):
    """share 0 (explicit, with a days list) = the run without the options, byte for byte;
    the persona_changes truth is written with its schema and no rows."""
    out, manifest = data
    other = tmp_path / "share0"
    m = generate(other, customers=CUSTOMERS, seed=SEED, workers=1, chunk_customers=CHUNK, progress=False,
                 persona_change_share=0.0, persona_change_days_before_end=(40, 10))
    assert m["counts"] == manifest["counts"] and m["counts"]["truth/persona_changes"] == 0
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert files == sorted(p.relative_to(other) for p in other.rglob("*")
                           if p.is_file() and p.name != "manifest.json")
    for rel in files:
        assert (out / rel).read_bytes() == (other / rel).read_bytes(), rel
    t = pq.read_table(out / "truth" / "persona_changes.parquet")
    assert t.num_rows == 0 and t.schema.remove_metadata() == PERSONA_CHANGES_SCHEMA
    assert manifest["persona_change_share"] == 0.0
    assert (manifest["start_date"], manifest["end_date"]) == ("2024-11-01", "2026-11-01")


def test_planted_persona_changes_truth(changed):
    out, manifest, c = changed
    t = pq.read_table(out / "truth" / "persona_changes.parquet")
    assert t.schema.remove_metadata() == PERSONA_CHANGES_SCHEMA
    assert manifest["counts"]["truth/persona_changes"] == t.num_rows == round(CHANGE_SHARE * CHANGE_CUSTOMERS)
    assert manifest["persona_change_days_before_end"] == list(CHANGE_DAYS)
    rows = t.to_pylist()
    assert len({r["customer_id"] for r in rows}) == len(rows)
    # equal groups by d, each change strictly inside day (end - d, end - d + 1]
    assert Counter(r["days_before_end"] for r in rows) == {d: len(rows) // len(CHANGE_DAYS) for d in CHANGE_DAYS}
    day = np.timedelta64(1, "D")
    for r in rows:
        at = np.datetime64(r["changed_at"], "us")
        assert END - r["days_before_end"] * day < at <= END - (r["days_before_end"] - 1) * day, r
        # the farthest other persona, never lapsing
        assert r["from_persona"] != r["to_persona"] != "lapsing"
        assert r["to_persona"] == P.PERSONAS[P.PERSONA_CHANGE_TARGET[P.PERSONAS.index(r["from_persona"])]]
        assert np.datetime64(r["rate_from"], "us") == END - (max(CHANGE_DAYS) + 56) * day
        assert min(r["events_per_28d_before"], r["events_per_28d_after"]) >= 12 - 1e-6
    assert np.mean([r["activity_boosted"] for r in rows]) > 0.5    # the demo's own rate is ~2 / 28 days
    # every from persona but lapsing is represented; targets are far apart
    assert {r["from_persona"] for r in rows} == set(P.PERSONAS) - {"lapsing"}
    assert min(P.PERSONA_DISTANCE[P.PERSONAS.index(r["from_persona"]), P.PERSONAS.index(r["to_persona"])]
               for r in rows) > 0.5
    # customers: persona = before, current_persona = after; active to the end, purchase stage,
    # no background switch (exactly two persona periods, split at changed_at)
    bad = _one(c, """
        select count(*) from share_persona_changes p
        join share_customers c using (customer_id) join share_funnel f using (customer_id)
        where c.persona <> p.from_persona or c.current_persona <> p.to_persona
           or c.last_active_date <> date '2026-10-31' or f.max_stage_reached <> 'purchase'
           or (select count(*) from share_persona_history h where h.customer_id = p.customer_id) <> 2
           or not exists (select 1 from share_persona_history h where h.customer_id = p.customer_id
                          and h.persona = p.from_persona and h.valid_to = p.changed_at)
           or not exists (select 1 from share_persona_history h where h.customer_id = p.customer_id
                          and h.persona = p.to_persona and h.valid_from = p.changed_at and h.valid_to is null)""")
    assert bad == (0,)
    # survey labels (outcomes) follow the persona valid at observation time
    labels = c.execute("""select o.label = h.persona from outcomes o join share_persona_history h
                          on h.customer_id = o.subject_id and o.observed_at >= h.valid_from
                          and (h.valid_to is null or o.observed_at < h.valid_to)
                          where outcome_type = 'cohort_label'""").fetchall()
    assert len(labels) == round(0.02 * CHANGE_CUSTOMERS) and all(x for (x,) in labels)


def test_planted_changes_leave_the_base_plan_alone(changed):
    """Planting draws from its own random stream: every other customer's truth is the same
    as in the run without changes (the background switches included)."""
    _, _, c = changed
    cols = "customer_id, persona, current_persona, home_location_id, jurisdiction, planned_events, first_active_date"
    for table, key in (("customers", cols), ("persona_history", "*"), ("funnel", "*"), ("consent", "*")):
        diff = _one(c, f"""select count(*) from (
            (select {key} from share_{table} where customer_id not in (select customer_id from share_persona_changes)
             except all select {key} from base_{table})
            union all
            (select {key} from base_{table} where customer_id not in (select customer_id from share_persona_changes)
             except all select {key} from share_{table}))""")
        assert diff == (0,), table
    n_bg = _one(c, "select count(*) from base_customers where persona <> current_persona")[0]
    assert n_bg == _one(c, """select count(*) from share_customers where persona <> current_persona
                             and customer_id not in (select customer_id from share_persona_changes)""")[0] > 0


def _change_mixes(c):
    """Per switcher, behavioural type and channel counts before (from rate_from) and after
    changed_at: x[side, customer, type], ch[side, customer, channel]; from/to persona codes."""
    types = ", ".join(f"'{t}'" for t in BEHAVIOUR_TYPES)
    rows = c.execute(f"""
        select p.customer_id, p.from_persona, p.to_persona, (e.occurred_at >= p.changed_at)::int,
               e.signal_type, e.channel, count(*)
        from share_events e join share_persona_changes p using (customer_id)
        where e.signal_type in ({types}) and e.occurred_at >= p.rate_from
          and e.occurred_at < timestamp '2026-11-01' and e.occurred_at <= e.received_at
        group by all""").fetchall()
    cust = sorted({r[0] for r in rows})
    ci = {x: i for i, x in enumerate(cust)}
    x = np.zeros((2, len(cust), P.N_TYPES))
    ch = np.zeros((2, len(cust), len(P.CHANNELS)))
    frm, to = np.zeros(len(cust), np.int64), np.zeros(len(cust), np.int64)
    for cid, f, t, side, stype, chan, n in rows:
        i = ci[cid]
        frm[i], to[i] = P.PERSONAS.index(f), P.PERSONAS.index(t)
        x[side, i, P.T[stype]] += n
        ch[side, i, P.CHANNELS.index(chan)] += n
    return x, ch, frm, to


def test_planted_changes_switch_behaviour(changed):
    """After changed_at a switcher's type + channel mix is closer to the to-persona's profile
    than to the from-persona's; before it, the other way round (so the check fails if the
    switch were not applied: the after-events would look like the before-events)."""
    _, _, c = changed
    x, ch, frm, to = _change_mixes(c)
    assert x.shape[1] == round(CHANGE_SHARE * CHANGE_CUSTOMERS)
    closer_to_new = []
    for side in (0, 1):
        n = x[side].sum(1)
        keep = n >= 8
        assert keep.mean() > 0.9, side
        xs, cs = x[side][keep] / n[keep, None], ch[side][keep] / n[keep, None]
        f, t = frm[keep], to[keep]
        d_to = np.abs(xs - P.PERSONA_MIX[t]).sum(1) + np.abs(cs - P.PERSONA_CHANNEL_MIX[t]).sum(1)
        d_from = np.abs(xs - P.PERSONA_MIX[f]).sum(1) + np.abs(cs - P.PERSONA_CHANNEL_MIX[f]).sum(1)
        closer_to_new.append((d_to < d_from).mean())
    before, after = closer_to_new
    assert after >= 0.9 and before <= 0.1, (before, after)     # measured 1.00 and 0.00


def test_planted_changes_switch_at_the_exact_time(changed):
    """Within 12 hours either side of changed_at (pooled over switchers), events before it are
    typical of the from-persona and events after it of the to-persona: the switch happens at
    the stated time, not at a day boundary (measured 0.14 vs 0.72; 0.37 vs 0.45 when the rows
    of the change day are not split at the change time)."""
    _, _, c = changed
    rows = c.execute("""
        select p.from_persona, p.to_persona, e.signal_type, (e.occurred_at >= p.changed_at)::int
        from share_events e join share_persona_changes p using (customer_id)
        where e.occurred_at between p.changed_at - interval 12 hour and p.changed_at + interval 12 hour
          and e.occurred_at <= e.received_at""").fetchall()
    rows = [r for r in rows if r[2] in BEHAVIOUR_TYPES]
    f = np.array([P.PERSONAS.index(r[0]) for r in rows])
    t = np.array([P.PERSONAS.index(r[1]) for r in rows])
    k = np.array([P.T[r[2]] for r in rows])
    after = np.array([r[3] for r in rows], bool)
    typical_of_new = P.PERSONA_MIX[t, k] > P.PERSONA_MIX[f, k]
    assert (~after).sum() >= 100 and after.sum() >= 100
    assert typical_of_new[~after].mean() < 0.25 and typical_of_new[after].mean() > 0.6, (
        typical_of_new[~after].mean(), typical_of_new[after].mean())


def test_planted_changes_switch_categories_and_keep_windows_busy(changed):
    _, _, c = changed
    top3 = {p: [P.CATEGORIES[k] for k in np.argsort(-P.PERSONA_CATEGORY[i])[:3]] for i, p in enumerate(P.PERSONAS)}
    fav = " union all ".join(f"select '{p}' persona, unnest({cats}) category" for p, cats in top3.items())
    before, after = _one(c, f"""
        with fav as ({fav})
        select avg((f.category is not null)::int) filter (where e.occurred_at < p.changed_at),
               avg((f.category is not null)::int) filter (where e.occurred_at >= p.changed_at)
        from share_events e join share_persona_changes p using (customer_id)
        left join fav f on f.persona = p.to_persona and f.category = e.properties->>'category'
        where e.signal_type in ('page_view', 'product_view', 'site_search', 'add_to_cart', 'purchase')
          and e.occurred_at >= p.rate_from and e.occurred_at <= e.received_at
          and json_valid(e.properties)""")
    assert after > 0.5 and before < 0.2, (before, after)
    # each of the three 28-day windows ending at end - 56, end - 28, end holds a clear mix
    types = ", ".join(f"'{t}'" for t in BEHAVIOUR_TYPES)
    for k in (2, 1, 0):
        mean, median = _one(c, f"""
            select avg(n), median(n) from (
                select p.customer_id, count(e.customer_id) n from share_persona_changes p
                left join share_events e on e.customer_id = p.customer_id and e.signal_type in ({types})
                     and e.occurred_at >= timestamp '2026-11-01' - interval {28 * (k + 1)} day
                     and e.occurred_at < timestamp '2026-11-01' - interval {28 * k} day
                group by 1)""")
        assert mean >= 12 and median >= 10, (k, mean, median)


def test_cli_persona_change_options(tmp_path, capsys):
    """The CLI options reach generate(); several chunks and workers give the same files."""
    out = tmp_path / "cli"
    rc = cli_main(["generate", "--customers", "600", "--seed", "5", "--out", str(out), "--workers", "2",
                   "--chunk-customers", "200", "--days", "365", "--end-date", "2026-01-01", "--no-progress",
                   "--persona-change-share", "0.15", "--persona-change-days-before-end", "40,20,10"])
    assert rc == 0
    capsys.readouterr()
    t = pq.read_table(out / "truth" / "persona_changes.parquet").to_pylist()
    assert Counter(r["days_before_end"] for r in t) == {40: 30, 20: 30, 10: 30}
    end = np.datetime64("2026-01-01T00:00:00", "us")
    assert all(end - r["days_before_end"] * np.timedelta64(1, "D") < np.datetime64(r["changed_at"], "us")
               <= end - (r["days_before_end"] - 1) * np.timedelta64(1, "D") for r in t)
    ref = tmp_path / "api"
    generate(ref, customers=600, seed=5, workers=1, chunk_customers=200, days=365, end_date="2026-01-01",
             progress=False, persona_change_share=0.15, persona_change_days_before_end=[40, 20, 10])
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert any(f.name == "persona_changes.parquet" for f in files)
    for rel in files:
        assert (out / rel).read_bytes() == (ref / rel).read_bytes(), rel
    with pytest.raises(SystemExit):
        cli_main(["generate", "--persona-change-days-before-end", "40,x"])
    capsys.readouterr()


def test_persona_change_arguments_checked(tmp_path):
    with pytest.raises(ValueError, match="persona_change_share"):
        generate(tmp_path / "x", customers=50, persona_change_share=1.0, progress=False)
    with pytest.raises(ValueError, match="persona_change_days_before_end"):
        generate(tmp_path / "x", customers=50, days=365, persona_change_share=0.1,
                 persona_change_days_before_end=(300,), progress=False)
    with pytest.raises(ValueError, match="persona_change_days_before_end"):
        generate(tmp_path / "x", customers=50, persona_change_share=0.1,
                 persona_change_days_before_end=(0,), progress=False)


# --------------------------------------------------------------------------- helpers
def test_fixed_width_strings_and_sampler():
    assert fixed_width_strings("c", np.array([1, 9_999_999]), 7).to_pylist() == ["c0000001", "c9999999"]
    assert fixed_width_strings("x", np.array([5]), 3, "!").to_pylist() == ["x005!"]
    rng = np.random.default_rng(0)
    w = rng.random((6, 30)) ** 3
    w[:, 4] = 0
    cum = np.cumsum(w, 1) / w.sum(1, keepdims=True)
    row = rng.integers(0, 6, 50_000)
    u = rng.random(row.size)
    got = sample_rows(cum, row, u, guide_size=16)
    want = np.array([np.searchsorted(cum[r], x, side="right") for r, x in zip(row, u)])
    assert (got == want).all() and not (got == 4).any()
