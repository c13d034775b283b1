"""dbt-snowflake against fakesnow (DuckDB behind the Snowflake connector), in one process.

    python -m marketing_signals.snowflake.fakesnow_dbt --db-path DIR [--load-raw RAW_DIR] -- \\
        build --target fakesnow --vars '{"marketing_signals__raw_parquet_dir": "", ...}'

Needs dbt-snowflake 1.11.x, fakesnow and the Snowflake connector (not installed by `make venv`
yet: see docs/DECISIONLOG.md, "The Snowflake path: first fakesnow build"). `--load-raw` loads a
generated demo's Parquet folders into MARKETING_SIGNALS.RAW first.

Two shims for fakesnow gaps, neither a change to the SQL Snowflake runs:
* fakesnow has no IS_OBJECT: a DuckDB macro with Snowflake's meaning is added per connection;
* fakesnow cannot create qualified TEMPORARY relations (dbt-snowflake stages incremental
  changes in one): they are created as ordinary relations (dbt drops them afterwards).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_TEMPORARY = re.compile(r"create\s+or\s+replace\s+temporary\s+(view|table)", re.I)
IS_OBJECT = "create or replace temp macro is_object(v) as coalesce(json_type(v::json) = 'OBJECT', false)"


def install_shims() -> None:
    import fakesnow.conn as fconn
    import fakesnow.cursor as fcur

    init, execute = fconn.FakeSnowflakeConnection.__init__, fcur.FakeSnowflakeCursor.execute
    if getattr(init, "_marketing_signals_shim", False):
        return

    def init_with_shims(self, *a, **k):
        init(self, *a, **k)
        self._duck_conn.execute(IS_OBJECT)

    def execute_with_shims(self, command, *a, **k):
        if isinstance(command, str):
            command = _TEMPORARY.sub(lambda m: f"create or replace {m.group(1)}", command)
        return execute(self, command, *a, **k)

    init_with_shims._marketing_signals_shim = True
    fconn.FakeSnowflakeConnection.__init__ = init_with_shims
    fcur.FakeSnowflakeCursor.execute = execute_with_shims


def load_raw(raw_dir: Path, database: str = "MARKETING_SIGNALS", schema: str = "RAW") -> dict[str, int]:
    """Each Parquet folder of raw_dir as a table (upper-case names); call inside fakesnow.patch()."""
    import pandas as pd
    import pyarrow.parquet as pq
    import snowflake.connector
    from snowflake.connector.pandas_tools import write_pandas

    con = snowflake.connector.connect(database=database, schema=schema)
    con.cursor().execute(f"create database if not exists {database}")
    con.cursor().execute(f"create schema if not exists {database}.{schema}")
    loaded = {}
    for folder in sorted(p for p in Path(raw_dir).iterdir() if p.is_dir()):
        df = pq.read_table(folder).to_pandas()
        df.columns = [c.upper() for c in df.columns]
        for c in df.columns:  # fakesnow's write_pandas knows object strings and ns timestamps
            dtype = str(df[c].dtype)
            if isinstance(df[c].dtype, pd.CategoricalDtype) or dtype in ("str", "string"):
                df[c] = df[c].astype(object)
            elif dtype.startswith("datetime64"):
                df[c] = df[c].astype("datetime64[ns, UTC]" if "UTC" in dtype else "datetime64[ns]")
        ok, _, n, _ = write_pandas(con, df, folder.name.upper(), auto_create_table=True, overwrite=True,
                                   use_logical_type=True)
        if not ok:
            raise RuntimeError(f"fakesnow: loading {folder} failed")
        loaded[folder.name] = n
    con.close()
    return loaded


def main(argv=None) -> int:
    import fakesnow
    from dbt.cli.main import dbtRunner

    argv = list(sys.argv[1:] if argv is None else argv)
    dbt_args = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(prog="python -m marketing_signals.snowflake.fakesnow_dbt")
    ap.add_argument("--db-path", required=True, help="folder for fakesnow's database files")
    ap.add_argument("--load-raw", default=None, help="a demo's raw/ folder to load first")
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    Path(a.db_path).mkdir(parents=True, exist_ok=True)
    install_shims()
    with fakesnow.patch(db_path=a.db_path):
        if a.load_raw:
            for name, n in load_raw(Path(a.load_raw)).items():
                print(f"[fakesnow] loaded {name}: {n:,} rows")
        result = dbtRunner().invoke(dbt_args) if dbt_args else None
    return 0 if result is None or result.success else 1


if __name__ == "__main__":
    sys.exit(main())
