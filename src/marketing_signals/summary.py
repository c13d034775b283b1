"""What `make demo` built: every output relation with its row count, and the capture figures."""
from __future__ import annotations

from pathlib import Path

import duckdb


def relation_name(con, name: str) -> str:
    """Schema-qualified name of a model, wherever the target's schema settings put it."""
    schema = con.execute("select table_schema from information_schema.tables where table_name = ?",
                         [name]).fetchone()
    if schema is None:
        raise SystemExit(f"{name} not found: run `make build` (dbt build) first")
    return f'"{schema[0]}"."{name}"'


def summarize(duckdb_path: Path) -> None:
    if not duckdb_path.exists():
        raise SystemExit(f"{duckdb_path} does not exist: run `make demo` first")
    con = duckdb.connect(str(duckdb_path), read_only=True)
    rows = con.execute("""
        select table_schema, table_name, table_type
        from information_schema.tables
        where table_schema not in ('information_schema', 'pg_catalog') and table_schema <> 'raw'
        order by table_schema, table_name
    """).fetchall()
    print(f"\nBuilt in {duckdb_path.resolve()} (open with: duckdb {duckdb_path}):")
    print(f"  {'relation':<58}{'kind':<8}{'rows':>14}")
    for schema, name, kind in rows:
        count = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
        print(f"  {schema + '.' + name:<58}{'view' if kind == 'VIEW' else 'table':<8}{count:>14,}")

    recon = con.execute(f"""
        select sum(raw_rows), sum(accepted_rows), sum(quarantined_rows), sum(unreconciled_rows)
        from {relation_name(con, 'signal_capture_reconciliation')}
    """).fetchone()
    print(f"\nCapture: raw {recon[0]:,} = accepted {recon[1]:,} + quarantined {recon[2]:,}"
          f" (unreconciled {recon[3]:,})")
    present = con.execute("select count(*) filter (where is_present), count(*) "
                          f"from {relation_name(con, 'signal_ingest_coverage')}").fetchone()
    print(f"Signal types present: {present[0]} of {present[1]}")
    print("Quarantine by reason:")
    for reason, n in con.execute(f"select reason_code, count(*) from {relation_name(con, 'signals_quarantine')} "
                                 "group by 1 order by 2 desc").fetchall():
        print(f"  {reason:<28}{n:>10,}")
    _cohort_summary(con)
    _membership_summary(con)
    _streams_summary(con)
    con.close()


def _streams_summary(con) -> None:
    """Observe / Forecast / incidents, when the stream stage was built."""
    exists = con.execute("select count(*) from information_schema.tables where table_name = 'stream_alert_summary'").fetchone()[0]
    if not exists:
        return
    s = con.execute(f"select * from {relation_name(con, 'stream_alert_summary')}").df().iloc[0]
    print(f"\nStreams (as of {str(s['as_of_date'])[:10]}): {int(s['series_observed']):,} series; "
          f"{int(s['anomalies']):,} anomaly windows ({int(s['anomalies_direction_of_concern']):,} in the direction "
          f"of concern) in {int(s['incidents']):,} incidents, {s['alert_reduction_ratio']:.1f} alerts per incident; "
          f"the z-score baseline flags {int(s['zscore_baseline_anomalies']):,} windows; "
          f"{int(s['quarantined_rows']):,} stream rows quarantined")
    models = con.execute(f"select model, count(*) from {relation_name(con, 'stream_models')} group by 1 order by 1").fetchall()
    print("Forecast models: " + ", ".join(f"{m} {n}" for m, n in models))
    top = con.execute(f"""
        select incident_id, onset_date, scope, n_locations, n_streams, lead_stream_id
        from {relation_name(con, 'incidents')} order by onset_date desc limit 5""").fetchall()
    print("Latest incidents:")
    for r in top:
        print(f"  {r[0]}  onset {r[1]}  {r[2]:<9} {r[3]:>3} locations {r[4]:>2} streams  lead {r[5]}")


def _cohort_summary(con) -> None:
    """Coverage of the 13 × 6 method-window grid and the headline quality figures."""
    try:
        coverage = relation_name(con, "cohort_coverage")
        quality = relation_name(con, "cohort_quality")
    except SystemExit:
        return
    as_of = con.execute(f"select max(as_of) from {relation_name(con, 'cohort_run_context')}").fetchone()[0]
    print(f"\nCohorts as of {as_of} (assigned customers per method × window; '-' = not computed, see reason):")
    grid = con.execute(f"select method_id, window_id, assigned_customers, status from {coverage}").fetchall()
    windows = ["24h", "7d", "28d", "90d", "365d", "lifetime"]
    cells = {(m, w): (n if s == "assigned" else None) for m, w, n, s in grid}
    print(f"  {'method':<18}" + "".join(f"{w:>11}" for w in windows))
    for m in sorted({m for m, _ in cells}):
        print(f"  {m:<18}" + "".join(f"{cells.get((m, w)) or '-':>11,}" if cells.get((m, w)) else f"{'-':>11}"
                                     for w in windows))
    for m, w, reason in con.execute(f"select method_id, window_id, reason from {coverage} "
                                    "where status <> 'assigned' order by 1, 2").fetchall():
        print(f"  not computed: {m} × {w}: {reason}")
    rows = con.execute(f"""
        select method_id, metric, value, n_customers from {quality}
        where window_id = 'lifetime' and metric in ('ari_vs_planted_persona', 'ari_vs_planted_communities',
              'exact_match_vs_planted_funnel', 'auc_holdout', 'silhouette', 'stability_ari')
        order by 1, 2""").fetchall()
    if rows:
        print("Quality, lifetime window:")
        for m, metric, value, n in rows:
            print(f"  {m:<18}{metric:<32}{value:>8.3f}  (n={n:,})")


def _membership_summary(con) -> None:
    """Refreshes, transitions by reason and calibration error per method."""
    try:
        log = relation_name(con, "cohort_refresh_log")
        transitions = relation_name(con, "cohort_transitions")
        calibration = relation_name(con, "cohort_calibration")
    except SystemExit:
        return
    print("\nRefreshes (cohort_refresh_log):")
    for as_of, mode, scope, changes, n in con.execute(
            f"select as_of, mode, customers_in_scope, membership_changes, transitions from {log} "
            "order by completed_at").fetchall():
        print(f"  as_of {as_of}  {mode:<12} re-scored {scope:>9,}  changes {changes:>10,}  transitions {n:>10,}")
    print("Transitions by reason:")
    for reason, n in con.execute(f"select reason_code, count(*) from {transitions} group by 1 order by 2 desc").fetchall():
        print(f"  {reason:<28}{n:>12,}")
    rows = con.execute(f"""
        select method_id, count(*) filter (where status = 'calibrated'), max(ece_raw), max(ece_calibrated), sum(n_pairs)
        from {calibration} group by 1 order by 1""").fetchall()
    if rows:
        print("Calibration (held at the next as_of), worst window per method:")
        print(f"  {'method':<18}{'windows':>8}{'ECE raw':>10}{'ECE cal.':>10}{'pairs':>10}")
        for m, k, raw, cal, n in rows:
            fmt = lambda v: f"{v:>10.3f}" if v is not None and v == v else f"{'-':>10}"  # noqa: E731
            print(f"  {m:<18}{k:>8}{fmt(raw)}{fmt(cal)}{int(n or 0):>10,}")
    else:
        print("Calibration: awaiting history (a second snapshot, marketing_signals__calibration_snapshot_hours later)")
