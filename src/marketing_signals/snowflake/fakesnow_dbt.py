"""dbt-snowflake against fakesnow (DuckDB behind the Snowflake connector), in one process.

    python -m marketing_signals.snowflake.fakesnow_dbt --db-path DIR [--load-raw RAW_DIR] \\
        [--python-outputs DUCKDB_PATH --python-manifest MANIFEST_JSON] -- \\
        build --target fakesnow --vars '{"marketing_signals__raw_parquet_dir": "", ...}'

Needs dbt-snowflake 1.11.x, fakesnow and the Snowflake connector (see docs/DECISIONLOG.md, "The
Snowflake path: first fakesnow build"). `--load-raw` loads a generated demo's Parquet folders
into MARKETING_SIGNALS.RAW first. `make test-snowflake` (tests_py/test_snowflake_fakesnow.py)
drives it: every SQL model, data test and unit test of the package.

Python model outputs stand in from the DuckDB build. dbt-snowflake runs a Python model as a
Snowpark stored procedure, which fakesnow cannot, so the Python models are excluded from the
fakesnow build (`--indirect-selection empty --exclude resource_type:model,path:python_models`
keeps the tests on them). `--python-outputs` copies each Python model's table from a DuckDB
build of the same data (its manifest says which tables those are) into the fakesnow database,
where dbt-snowflake would have created it: <target schema>_<custom schema>.<MODEL>, upper case,
Snowflake column types (load_python_outputs); the SQL models and tests downstream read them.

Shims for fakesnow gaps, each where Snowflake supports the SQL and fakesnow does not run it
as Snowflake does; none changes the SQL dbt sends (the package's Snowflake SQL is unchanged):
1. no IS_OBJECT: a DuckDB macro with Snowflake's meaning is added per connection;
2. no qualified TEMPORARY relations (dbt-snowflake stages incremental changes in one): they
   are created as ordinary relations (dbt drops them afterwards);
3. TO_NUMBER(<text>, 'XXXXXXXX') (hexadecimal format model, emission_hash_unit) raises
   NotImplementedError: read as a '0x' hex literal cast to BIGINT, then NUMBER(38, 0);
4. SUM/AVG/... arguments are all cast to DOUBLE (fakesnow's implicit VARCHAR -> number), so
   SUM(<integer>) was a FLOAT (2.0 in OBJECT_CONSTRUCT) where Snowflake gives NUMBER(38, 0):
   the argument keeps its type (the package never aggregates text);
5. TRIM/LTRIM/RTRIM lost their characters and side (RTRIM(x, '|') ran as TRIM(x)): kept.
Shims 3-5 replace fakesnow 0.12.1 transforms (fakesnow.transforms.to_decimal,
numeric_agg_implicit_cast, trim_cast_varchar); fakesnow is pinned < 0.13.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_TEMPORARY = re.compile(r"create\s+or\s+replace\s+temporary\s+(view|table)", re.I)
IS_OBJECT = "create or replace temp macro is_object(v) as coalesce(json_type(v::json) = 'OBJECT', false)"
_HEX_FORMAT = re.compile(r"[Xx]{1,15}")


def _to_number_hex(to_decimal):
    """fakesnow's TO_NUMBER transform, plus a hexadecimal format ('XXXXXXXX'): fakesnow raises
    NotImplementedError for any format argument; Snowflake reads the text as hex digits."""
    from sqlglot import exp

    def transform(expression):
        if isinstance(expression, exp.ToNumber):
            fmt = expression.args.get("format")
            if fmt is not None and fmt.is_string and _HEX_FORMAT.fullmatch(fmt.name):
                precision, scale = (expression.args.get(k) for k in ("precision", "scale"))
                hex_text = exp.DPipe(this=exp.Literal.string("0x"), expression=exp.Paren(this=expression.this.copy()))
                cast = exp.TryCast if expression.args.get("safe") else exp.Cast
                as_bigint = cast(this=hex_text, to=exp.DataType.build("BIGINT"))
                return cast(this=as_bigint, to=exp.DataType.build(
                    f"DECIMAL({precision.name if precision else 38}, {scale.name if scale else 0})"))
        return to_decimal(expression)

    return transform


def _numeric_agg_keep_type(expression):
    """fakesnow's numeric_agg_implicit_cast without its TRY_CAST(... AS DOUBLE): fakesnow casts
    every SUM/AVG/... argument to DOUBLE (for Snowflake's implicit VARCHAR -> number), so
    SUM(<integer>) came back as a FLOAT (2.0 in OBJECT_CONSTRUCT, '2.0' as text) where Snowflake
    returns NUMBER(38,0). The package never aggregates text (DuckDB would refuse it too), so the
    argument keeps its type; the Snowflake-style column name of an unaliased aggregate stays."""
    from fakesnow.transforms import transforms as t
    from sqlglot import exp

    if isinstance(expression, t._NUMERIC_ONLY_AGGS):
        col_name = None if isinstance(expression.parent, exp.Alias) else t._numeric_agg_col_name(expression, expression.this)
        if col_name and isinstance(expression.parent, exp.Select):
            return exp.alias_(expression, col_name, quoted=True)
    return expression


def _trim_keep_args(expression):
    """fakesnow's trim_cast_varchar (TRIM's input cast to VARCHAR, as Snowflake does implicitly)
    without its bug: it rebuilt TRIM from the input alone, dropping the characters and the side,
    so RTRIM(x, '|') ran as TRIM(x) (blanks, both ends) and every rule_ids list kept its
    trailing '|'."""
    from sqlglot import exp

    if not isinstance(expression, exp.Trim):
        return expression
    operand = expression.this
    if isinstance(operand, exp.Cast) and operand.to.this in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT):
        return expression
    expression.set("this", exp.Cast(this=operand, to=exp.DataType(this=exp.DataType.Type.VARCHAR)))
    return expression


def install_shims() -> None:
    import fakesnow.conn as fconn
    import fakesnow.cursor as fcur
    import fakesnow.transforms as ftransforms

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
    # shims 3-5: the cursor looks its transforms up on fakesnow.transforms at each statement
    ftransforms.to_decimal = _to_number_hex(ftransforms.to_decimal)
    ftransforms.numeric_agg_implicit_cast = _numeric_agg_keep_type
    ftransforms.trim_cast_varchar = _trim_keep_args


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


# DuckDB column type -> the Snowflake type a Snowpark Python model would have created
_SNOWFLAKE_TYPES = {"VARCHAR": "VARCHAR", "BIGINT": "NUMBER(38,0)", "INTEGER": "NUMBER(38,0)",
                    "HUGEINT": "NUMBER(38,0)", "DOUBLE": "FLOAT", "FLOAT": "FLOAT", "BOOLEAN": "BOOLEAN",
                    "DATE": "DATE", "TIMESTAMP": "TIMESTAMP_NTZ", "TIMESTAMP WITH TIME ZONE": "TIMESTAMP_TZ",
                    "JSON": "VARIANT"}


def python_model_relations(manifest_path: Path, target_schema: str = "MAIN") -> list[dict]:
    """Every enabled Python model of a build's manifest.json: its DuckDB relation and the
    (upper-case) schema and table a dbt-snowflake build with target schema `target_schema` would
    give it (dbt's default generate_schema_name: <target schema>_<custom schema>)."""
    import json

    nodes = json.loads(Path(manifest_path).read_text())["nodes"].values()
    out = []
    for node in nodes:
        if node["resource_type"] == "model" and node.get("language") == "python":
            custom = (node["config"].get("schema") or "").strip()
            out.append({"name": node["name"], "duckdb_schema": node["schema"], "duckdb_table": node["alias"],
                        "schema": (f"{target_schema}_{custom}" if custom else target_schema).upper(),
                        "table": node["alias"].upper()})
    return sorted(out, key=lambda r: r["name"])


def load_python_outputs(duckdb_path: Path, manifest_path: Path, database: str = "MARKETING_SIGNALS",
                        target_schema: str = "MAIN") -> dict[str, int]:
    """Copy every Python model's table from a DuckDB build of the same data into the fakesnow
    database, where the fakesnow build (which excludes python_models) finds them as already
    built: same rows, Snowflake column types, upper-case names. Call inside fakesnow.patch()."""
    import duckdb
    import pandas as pd
    import snowflake.connector
    from snowflake.connector.pandas_tools import write_pandas

    src = duckdb.connect(str(duckdb_path), read_only=True)
    con = snowflake.connector.connect(database=database, schema=target_schema)
    con.cursor().execute(f"create database if not exists {database}")
    loaded = {}
    try:
        for rel in python_model_relations(manifest_path, target_schema):
            cols = src.execute("select column_name, data_type from information_schema.columns "
                               "where table_schema = ? and table_name = ? order by ordinal_position",
                               [rel["duckdb_schema"], rel["duckdb_table"]]).fetchall()
            if not cols:
                raise RuntimeError(f"{rel['name']}: no table {rel['duckdb_schema']}.{rel['duckdb_table']} "
                                   f"in {duckdb_path} (build the Python models on DuckDB first)")
            unknown = {t for _, t in cols if t not in _SNOWFLAKE_TYPES}
            if unknown:
                raise RuntimeError(f"{rel['name']}: no Snowflake type for DuckDB {sorted(unknown)}")
            name = f"{database}.{rel['schema']}.{rel['table']}"
            con.cursor().execute(f"create schema if not exists {database}.{rel['schema']}")
            con.cursor().execute(f"create or replace table {name} ("
                                 + ", ".join(f"{c.upper()} {_SNOWFLAKE_TYPES[t]}" for c, t in cols) + ")")
            df = src.execute(f'select * from "{rel["duckdb_schema"]}"."{rel["duckdb_table"]}"').df()
            df.columns = [c.upper() for c in df.columns]
            for c in df.columns:
                if isinstance(df[c].dtype, pd.CategoricalDtype) or str(df[c].dtype) in ("str", "string"):
                    df[c] = df[c].astype(object)
            ok, _, n, _ = write_pandas(con, df, rel["table"], database=database, schema=rel["schema"])
            if not ok:
                raise RuntimeError(f"fakesnow: loading {rel['name']} failed")
            loaded[rel["name"]] = n
    finally:
        src.close()
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
    ap.add_argument("--python-outputs", default=None, metavar="DUCKDB_PATH",
                    help="a DuckDB build of the same data whose Python model tables are copied in first")
    ap.add_argument("--python-manifest", default=None, metavar="MANIFEST_JSON",
                    help="that build's target/manifest.json (which tables are Python models)")
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    Path(a.db_path).mkdir(parents=True, exist_ok=True)
    install_shims()
    with fakesnow.patch(db_path=a.db_path):
        if a.load_raw:
            for name, n in load_raw(Path(a.load_raw)).items():
                print(f"[fakesnow] loaded {name}: {n:,} rows")
        if a.python_outputs:
            if not a.python_manifest:
                ap.error("--python-outputs needs --python-manifest")
            for name, n in load_python_outputs(Path(a.python_outputs), Path(a.python_manifest)).items():
                print(f"[fakesnow] Python model output {name}: {n:,} rows (from the DuckDB build)")
        result = dbtRunner().invoke(dbt_args) if dbt_args else None
    return 0 if result is None or result.success else 1


if __name__ == "__main__":
    sys.exit(main())
