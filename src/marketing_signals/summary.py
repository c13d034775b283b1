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
    con.close()
