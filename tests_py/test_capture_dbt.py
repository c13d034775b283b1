"""Signal capture end to end: real `dbt build` on generated data with planted bad input."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from conftest import CAPTURE_ONLY, DbtProject

pytestmark = pytest.mark.dbt

GENERATED_DEFECTS = [
    "missing_event_id", "malformed_event_id", "missing_customer_id", "malformed_customer_id",
    "unknown_signal_type", "missing_occurred_at", "occurred_in_future", "occurred_before_floor",
    "unparseable_properties", "negative_amount", "duplicate_event_id",
]


def fingerprint(project: DbtProject, model: str) -> tuple[int, str]:
    """Row count and an order-independent digest of every column of every row."""
    rel = project.relation(model)
    return project.query(
        f"select count(*), md5(coalesce(string_agg(md5(cast(t as varchar)), '' order by md5(cast(t as varchar))), '')) "
        f"from {rel} t")[0]


def test_all_25_signal_types_are_staged(built_project):
    staged = built_project.relation("signals_staged")
    types = {r[0] for r in built_project.query(f"select distinct signal_type from {staged}")}
    registry = {r[0] for r in built_project.query(
        f"select signal_type from {built_project.relation('registry_signal_types')}")}
    assert len(registry) == 25
    assert types == registry


def test_every_bad_input_category_is_quarantined_with_its_reason(built_project, small_demo):
    quarantine = built_project.relation("signals_quarantine")
    by_reason = dict(built_project.query(f"select reason_code, count(*) from {quarantine} group by 1"))
    truth = pq.read_table(small_demo / "truth" / "injected_defects.parquet").to_pandas()
    injected = truth["defect"].value_counts().to_dict()
    for category in GENERATED_DEFECTS:
        assert injected.get(category, 0) > 0, f"generator injected no {category}"
        assert by_reason.get(category, 0) == injected[category], (category, by_reason.get(category), injected[category])
    # the very rows the generator broke carry the reason it planted
    con = duckdb.connect(str(built_project.db_path), read_only=True)
    # row by row, for every defect whose row has an id to find it by
    identifiable = truth["event_id"].fillna("").str.len().gt(0) & (truth["defect"] != "duplicate_event_id")
    assert identifiable.sum() > 0.7 * len(truth)
    con.register("truth", truth[identifiable])
    missed = con.execute(f"""
        select t.defect, t.event_id from truth t
        where not exists (select 1 from {quarantine} q where q.event_id = t.event_id and q.reason_code = t.defect)
    """).fetchall()
    con.close()
    assert missed == []


def test_reconciliation_is_exact(built_project):
    recon = built_project.relation("signal_capture_reconciliation")
    raw, accepted, quarantined, pending, off = built_project.query(
        f"select sum(raw_rows), sum(accepted_rows), sum(quarantined_rows), sum(pending_rows), "
        f"sum(abs(unreconciled_rows)) from {recon}")[0]
    assert pending == 0 and off == 0
    assert raw == accepted + quarantined
    raw_files = ds.dataset(built_project.raw_dir / "events", format="parquet").count_rows()
    assert raw == raw_files


def _expect_reconciliation_failure(project: DbtProject) -> None:
    project.dbt("run", "--select", "signal_capture_reconciliation")
    result = project.dbt("test", "--select", "signal_capture_reconciliation", check=False)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "all_zero_signal_capture_reconciliation_unreconciled_rows" in result.stdout
    assert "FAIL 1" in result.stdout


def test_reconciliation_fails_when_a_quarantined_row_is_lost(built_project, tmp_path):
    broken = built_project.copy(tmp_path)
    exceptions = broken.relation("signal_capture_exceptions")
    con = duckdb.connect(str(broken.db_path))
    con.execute(f"delete from {exceptions} where (event_key, capture_ordinal) in (select event_key, capture_ordinal "
                f"from {exceptions} where disposition = 'quarantined' order by event_key limit 1)")
    con.close()
    _expect_reconciliation_failure(broken)


def test_reconciliation_fails_when_an_accepted_row_is_lost(built_project, tmp_path):
    """With signals_staged materialised as a table, deleting one accepted row fails the test."""
    broken = built_project.copy(tmp_path)
    broken.vars = '{"marketing_signals__staged_materialization": "table"}'
    broken.dbt("run", "--select", "signals_staged")
    staged = broken.relation("signals_staged")
    con = duckdb.connect(str(broken.db_path))
    con.execute(f"delete from {staged} where event_id = (select min(event_id) from {staged})")
    con.close()
    _expect_reconciliation_failure(broken)


def test_rerun_without_new_data_changes_nothing(built_project, tmp_path):
    project = built_project.copy(tmp_path)
    before = {m: fingerprint(project, m) for m in ("signals_staged", "signals_quarantine", "signal_capture_exceptions")}
    project.dbt("build", *CAPTURE_ONLY)
    after = {m: fingerprint(project, m) for m in before}
    assert before == after


def test_identity_resolution_matches_planted_people(built_project, small_demo):
    truth = pq.read_table(small_demo / "truth" / "identity.parquet").to_pandas()
    con = duckdb.connect(str(built_project.db_path), read_only=True)
    con.register("truth", truth)
    staged = built_project.relation("signals_staged")
    wrong = con.execute(f"""
        select count(*) from (select distinct customer_id, customer_key from {staged}) s
        join truth t using (customer_id)
        where s.customer_key <> t.person_key
    """).fetchone()[0]
    linked = con.execute(f"select count(*) from {built_project.relation('identity_customer_map')}").fetchone()[0]
    multi = con.execute("select count(*) from truth where customer_id <> person_key").fetchone()[0]
    con.close()
    assert multi > 0 and linked > 0
    assert wrong == 0


def test_ingest_health_covers_every_type_and_day(built_project):
    coverage = built_project.relation("signal_ingest_coverage")
    present, total = built_project.query(f"select count(*) filter (where is_present), count(*) from {coverage}")[0]
    assert (present, total) == (25, 25)
    daily = built_project.relation("signal_ingest_health_daily")
    days, types, rows = built_project.query(
        f"select count(distinct received_date), count(distinct signal_type), count(*) from {daily}")[0]
    assert types == 25 and rows == days * 25
    # generated volumes are seasonal but regular: the same-weekday baseline keeps false alarms rare
    statuses = dict(built_project.query(f"select health_status, count(*) from {daily} group by 1"))
    assert statuses.get("ok", 0) > 0.9 * sum(v for k, v in statuses.items() if k != "insufficient_history")


def test_incremental_append_equals_full_refresh(small_demo, tmp_path):
    """Capture in two loads (second one late and out of order) equals one full build."""
    events = ds.dataset(small_demo / "raw" / "events", format="parquet").to_table()
    received = events.column("received_at").to_pandas()
    cut = received.quantile(0.8)
    before_cut = (received < cut).to_numpy(copy=True)
    # a third of the rows received in the day before the cut are loaded late, with the second batch
    late = ((received >= cut - pd.Timedelta(hours=24)) & (received < cut)).to_numpy(copy=True)
    late &= np.arange(len(late)) % 3 == 0
    in_first = before_cut & ~late
    first = events.filter(pa.array(in_first))
    # the second batch arrives out of order (and holds the rows without received_at)
    second = events.filter(pa.array(~in_first))
    second = second.take(pa.array(np.random.default_rng(0).permutation(second.num_rows)))
    assert first.num_rows > 0 and second.num_rows > 0 and late.sum() > 0

    def raw_tree(root: Path, tables: list) -> Path:
        for sub in ("stream_metrics", "context_events", "subscriber_acks", "outcomes"):
            shutil.copytree(small_demo / "raw" / sub, root / sub)
        (root / "events").mkdir(parents=True)
        for i, t in enumerate(tables):
            pq.write_table(t, root / "events" / f"part-{i:05d}.parquet")
        return root

    incremental_raw = raw_tree(tmp_path / "inc_raw", [first])
    inc = DbtProject(tmp_path / "inc", incremental_raw, tmp_path / "inc.duckdb")
    inc.dbt("build", *CAPTURE_ONLY)
    pq.write_table(second, incremental_raw / "events" / "part-00001.parquet")
    inc.dbt("build", *CAPTURE_ONLY)

    full = DbtProject(tmp_path / "full", raw_tree(tmp_path / "full_raw", [events]), tmp_path / "full.duckdb")
    full.dbt("build", *CAPTURE_ONLY)
    for model in ("signal_capture_exceptions", "signals_staged", "signals_quarantine", "identity_customer_map"):
        assert fingerprint(inc, model) == fingerprint(full, model), model
