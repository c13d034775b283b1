"""Run a compiled SQL file (e.g. a dbt analysis) on DuckDB and write the result as Parquet."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb


def sql_to_parquet(sql_file: Path, out_dir: Path) -> int:
    """Write the query's rows to <out_dir>/part-00000.parquet (replacing the folder); returns the row count."""
    sql = Path(sql_file).read_text()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"COPY ({sql}) TO '{out_dir / 'part-00000.parquet'}' (FORMAT parquet)")
    rows = con.execute(f"select count(*) from read_parquet('{out_dir}/*.parquet')").fetchone()[0]
    con.close()
    return rows
