"""The README's worked example on real data: UCI Online Retail mapped onto the events contract."""
from __future__ import annotations

import duckdb
import pytest

from conftest import CAPTURE_ONLY, SHARED_DATASETS, DbtProject
from marketing_signals.examples import sql_to_parquet

pytestmark = pytest.mark.dbt
RETAIL = SHARED_DATASETS / "online_retail" / "online_retail.parquet"


@pytest.mark.skipif(not RETAIL.exists(), reason=f"real dataset not found at {RETAIL} (shared/datasets is absent)")
def test_online_retail_maps_to_purchase_and_return_signals(tmp_path):
    project = DbtProject(tmp_path, tmp_path / "raw", tmp_path / "retail.duckdb",
                         vars='{"marketing_signals__event_time_floor": "2000-01-01", '
                              '"marketing_signals__streams_enabled": false, '
                              f'"marketing_signals__online_retail_path": "{RETAIL}"}}')
    project.raw_dir = tmp_path / "nothing"  # compile needs no raw tables
    project.dbt("compile", "--select", "online_retail_as_events")
    compiled = tmp_path / "target" / "compiled" / "marketing_signals" / "analyses" / "online_retail_as_events.sql"
    rows = sql_to_parquet(compiled, tmp_path / "raw" / "events")
    project.raw_dir = tmp_path / "raw"
    project.dbt("build", *CAPTURE_ONLY)  # what this test checks; `make example-online-retail` builds all

    staged, quarantine = project.relation("signals_staged"), project.relation("signals_quarantine")
    by_type = dict(project.query(f"select signal_type, count(*) from {staged} group by 1"))
    by_reason = dict(project.query(f"select reason_code, count(*) from {quarantine} group by 1"))
    off = project.query(f"select sum(abs(unreconciled_rows)) from {project.relation('signal_capture_reconciliation')}")

    # expectations computed straight from the source file, independently of the package
    src = duckdb.connect()
    lines, no_customer, cancellations = src.execute(
        f"select count(*), count(*) filter (where CustomerID is null), "
        f"count(*) filter (where InvoiceNo like 'C%' and CustomerID is not null) from read_parquet('{RETAIL}')").fetchone()
    distinct_with_customer = src.execute(
        f"select count(*) from (select distinct * from read_parquet('{RETAIL}') where CustomerID is not null)").fetchone()[0]
    distinct_returns = src.execute(
        f"select count(*) from (select distinct * from read_parquet('{RETAIL}') "
        f"where CustomerID is not null and InvoiceNo like 'C%')").fetchone()[0]

    assert rows == lines == 541_909
    assert off[0][0] == 0
    assert by_reason["missing_customer_id"] == no_customer == 135_080
    assert by_reason["duplicate_event_id"] == (lines - no_customer) - distinct_with_customer
    assert sum(by_type.values()) == distinct_with_customer
    assert by_type["product_return"] == distinct_returns and 0 < distinct_returns <= cancellations
    assert set(by_type) == {"purchase", "product_return"}
