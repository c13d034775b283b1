"""Does every compiled SQL model parse as Snowflake SQL? (sqlglot, read="snowflake")

    python -m marketing_signals.snowflake.sqlglot_check TARGET_PATH [--tests]

TARGET_PATH is the --target-path of a dbt-snowflake run (e.g. the fakesnow build of
`make test-snowflake`): its manifest.json names the SQL models, target/compiled holds their
compiled SELECT. `dbt compile` alone against fakesnow does not get that far (some models run
introspective queries on upstream tables while compiling), so the check reads a build's output.
A model fails when sqlglot raises, or when the text only parses as an opaque command (sqlglot's
fallback for statements it does not understand) instead of a query. --tests checks the data
and unit tests of the run too. sqlglot checks syntax only: it does not know whether a function
exists or what it returns (the fakesnow build runs the SQL for that).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def compiled_sql_models(target_path: Path, resource_types=("model",)) -> dict[str, Path | None]:
    """name -> compiled SQL file (None when the run did not compile it) of every SQL model (or
    other node of `resource_types`, e.g. "test", "unit_test") in the run's manifest."""
    manifest = json.loads((Path(target_path) / "manifest.json").read_text())
    out: dict[str, Path | None] = {}
    for node in [*manifest["nodes"].values(), *manifest.get("unit_tests", {}).values()]:
        if node["resource_type"] not in resource_types or (node.get("language") or "sql") != "sql":
            continue
        # dbt writes compiled SQL at compiled/<package>/<original file>, and a test defined in a
        # yml file under that yml path (generic: its node path's file name; unit: its name)
        base = Path(target_path) / "compiled" / node["package_name"] / node["original_file_path"]
        file_name = f"{node['name']}.sql" if node["resource_type"] == "unit_test" else Path(node["path"]).name
        path = base if base.is_file() else next(base.rglob(file_name), None) if base.is_dir() else None
        out[node["name"]] = path if path is not None and path.is_file() else None
    return dict(sorted(out.items()))


def snowflake_parse_error(sql: str) -> str | None:
    """None when `sql` parses as one Snowflake query, else why not."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, ParseError

    try:
        statements = [s for s in sqlglot.parse(sql, read="snowflake", error_level=ErrorLevel.RAISE) if s is not None]
    except ParseError as e:
        return "; ".join(str(err.get("description")) + f" (line {err.get('line')}, col {err.get('col')})"
                         for err in e.errors) or str(e)
    if len(statements) != 1:
        return f"{len(statements)} statements, expected one query"
    if not isinstance(statements[0], exp.Query):
        return f"parses as {type(statements[0]).__name__}, not a query"
    return None


def unparsable_models(target_path: Path, resource_types=("model",)) -> dict[str, str]:
    """Every SQL model (node of `resource_types`) of the run whose compiled SQL is missing or
    does not parse as Snowflake SQL."""
    failures = {}
    for name, path in compiled_sql_models(target_path, resource_types).items():
        if path is None:
            failures[name] = "no compiled SQL in this run"
        elif (error := snowflake_parse_error(path.read_text())) is not None:
            failures[name] = error
    return failures


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    kinds = ("model", "test", "unit_test") if "--tests" in args else ("model",)
    args = [a for a in args if a != "--tests"]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    nodes = compiled_sql_models(Path(args[0]), kinds)
    failures = unparsable_models(Path(args[0]), kinds)
    for name, why in failures.items():
        print(f"{name}: {why}")
    print(f"{len(nodes) - len(failures)} of {len(nodes)} compiled {' / '.join(kinds)} nodes parse as Snowflake SQL")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
