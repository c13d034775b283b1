"""marketing-signals: demo data, benchmarks and a build summary for the marketing_signals dbt package.

One entry per sub-command in COMMANDS. Add a sub-command by writing `_add_<name>(parser)` and `_run_<name>(args) -> int` and one
row in COMMANDS; heavy imports stay inside the run functions so `--help` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import NamedTuple


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ----------------------------------------------------------------------------- generate
def _add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--customers", type=int, default=100_000, help="raw customer ids (default 100000, ~50 events each)")
    p.add_argument("--seed", type=int, default=42, help="random seed; same seed, same files (default 42)")
    p.add_argument("--out", default="data/demo", help="output folder (raw/, truth/, manifest.json; default data/demo)")
    p.add_argument("--end-date", default="2026-11-01", help="history end, exclusive, YYYY-MM-DD (default 2026-11-01)")
    p.add_argument("--days", type=int, default=730, help="days of history (default 730)")
    p.add_argument("--defect-rate", type=float, default=0.0005,
                   help="share of events injected per defect category (default 0.0005)")
    p.add_argument("--workers", type=int, default=2, help="worker processes; output does not depend on it (default 2)")
    p.add_argument("--registry-dir", default=None, help="folder with registry_*.csv (default: the repository's seeds/)")
    p.add_argument("--chunk-customers", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--persona-change-share", type=float, default=0.0,
                   help="share of customers with a planted persona change near the end, listed in "
                        "truth/persona_changes.parquet (default 0: none, output unchanged)")
    p.add_argument("--persona-change-days-before-end", type=_int_list, default=(55, 27),
                   help="comma-separated days before the end; planted changes happen inside day "
                        "(end - d, end - d + 1], customers split evenly over the d values (default 55,27)")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from e
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    return values


def _run_generate(args: argparse.Namespace) -> int:
    from .demo import generate
    from .demo.generator import DEFAULT_CHUNK_CUSTOMERS

    manifest = generate(
        args.out, customers=args.customers, seed=args.seed, end_date=args.end_date, days=args.days,
        defect_rate=args.defect_rate, workers=args.workers, registry_dir=args.registry_dir,
        chunk_customers=args.chunk_customers or DEFAULT_CHUNK_CUSTOMERS, progress=not args.no_progress,
        persona_change_share=args.persona_change_share,
        persona_change_days_before_end=args.persona_change_days_before_end,
    )
    summary = {k: manifest[k] for k in ("seed", "customers", "wall_seconds")}
    summary["events"] = manifest["counts"]["raw/events"]
    print(json.dumps(summary))
    return 0


# ----------------------------------------------------------------------------- summary
def _add_summary(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duckdb", default="data/marketing_signals.duckdb", help="DuckDB file dbt built into")


def _run_summary(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .summary import summarize

    summarize(Path(args.duckdb))
    return 0


# ----------------------------------------------------------------------------- sql-to-parquet
def _add_sql_to_parquet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sql", required=True, help="compiled SQL file (e.g. target/compiled/.../analyses/x.sql)")
    p.add_argument("--out", required=True, help="output folder, replaced (e.g. data/mine/raw/events)")


def _run_sql_to_parquet(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .examples import sql_to_parquet

    rows = sql_to_parquet(Path(args.sql), Path(args.out))
    print(f"wrote {rows:,} rows to {args.out}")
    return 0


# ----------------------------------------------------------------------------- bench
BENCHMARKS = ("capture", "cohorts", "membership", "attestation", "streams", "correlate")


def _add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=BENCHMARKS, help="benchmark to run")
    p.add_argument("--customers", type=int, default=1_000_000, help="data size in customers (default 1000000)")
    p.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    p.add_argument("--data", default=None, help="generated data folder to use (default data/bench/<customers>, "
                                                 "generated there when missing)")
    p.add_argument("--work-dir", default=None, help="scratch folder for databases (default bench_results/work)")
    p.add_argument("--skip-double", action="store_true",
                   help="cohorts: skip re-running the Python methods on twice the customers")
    p.add_argument("--methods", default=None,
                   help="membership: comma-separated cohort methods to compute (default: all 13)")
    p.add_argument("--records-per-customer", type=int, default=62,
                   help="attestation: candidate records per customer (default 62)")
    p.add_argument("--streams", type=int, default=30, help="streams, correlate: number of streams (default 30)")
    p.add_argument("--locations", type=int, default=200, help="streams, correlate: number of locations (default 200)")
    p.add_argument("--days", type=int, default=None, help="streams, correlate: days of history (default 730, 365)")
    p.add_argument("--loop-series", type=int, default=300,
                   help="streams: series timed in the per-series statsmodels baseline loop; correlate: pairs "
                        "timed in the per-pair reference loop (0 = all)")


def _run_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .bench import attestation, capture, cohorts, correlate, membership, streams

    project = Path(__file__).resolve().parents[2]
    work = Path(args.work_dir) if args.work_dir else project / "bench_results" / "work"
    data = Path(args.data) if args.data else None
    if args.name == "capture":
        capture.run(args.customers, args.seed, data, project, work)
    elif args.name == "cohorts":
        cohorts.run(args.customers, args.seed, data, project, work, double=not args.skip_double)
    elif args.name == "membership":
        methods = args.methods.split(",") if args.methods else None
        membership.run(args.customers, args.seed, data, project, work, methods=methods)
    elif args.name == "attestation":
        attestation.run(args.customers, args.seed, data, project, work,
                        records_per_customer=args.records_per_customer)
    elif args.name == "streams":
        streams.run(project, work, args.streams, args.locations, args.days or 730, args.seed, args.loop_series)
    elif args.name == "correlate":  # --customers does not apply
        correlate.run(project, work, args.streams, args.locations, args.days or 365, args.seed, args.loop_series)
    return 0


def _add_backtest(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duckdb", default="data/marketing_signals.duckdb", help="database built with an earlier as_of")
    p.add_argument("--horizon-days", type=int, default=90, help="outcome horizon after as_of (default 90)")
    p.add_argument("--json", default=None, help="also write the result to this JSON file")


def _run_backtest(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .cohorts.backtest import backtest, print_backtest

    result = backtest(args.duckdb, args.horizon_days)
    print_backtest(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


# ----------------------------------------------------------------------------- streams
def _add_streams_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo-dir", default="data/demo", help="generated demo folder (raw/ and truth/)")
    p.add_argument("--json", default=None, help="also write the result to this JSON file")


def _run_streams_eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .streams.evaluate import evaluate_demo

    project = Path(__file__).resolve().parents[2]
    result = evaluate_demo(args.demo_dir, project / "seeds")
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


def _add_nab(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nab-dir", default=None, help="NAB folder (default ../shared/datasets/nab next to the repo)")
    p.add_argument("--out", default=None, help="also write the per-file table to this CSV")


def _run_nab(args: argparse.Namespace) -> int:
    from .streams import nab

    argv = (["--nab-dir", args.nab_dir] if args.nab_dir else []) + (["--out", args.out] if args.out else [])
    return nab.main(argv)


def _add_petshop(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=None, help="PetShop dataset folder (default $MARKETING_SIGNALS_PETSHOP_DIR, "
                                                "else ../shared/datasets/petshop/dataset next to the repo)")
    p.add_argument("--json", default=None, help="also write the report and per-issue ranks to this JSON file")


def _run_petshop(args: argparse.Namespace) -> int:
    from .rca import petshop

    argv = (["--root", args.root] if args.root else []) + (["--json", args.json] if args.json else [])
    return petshop.main(argv)


def _add_rca_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", default=[45, 46, 47], help="one generated demo per seed (default 45 46 47)")
    p.add_argument("--customers", type=int, default=100_000, help="customers per demo (sets 20 locations at 100,000)")
    p.add_argument("--json", default=None, help="also write the pooled and per-seed report to this JSON file")


def _run_rca_eval(args: argparse.Namespace) -> int:
    from .rca import benchmark

    return benchmark.main(["--seeds", *map(str, args.seeds), "--customers", str(args.customers)]
                          + (["--json", args.json] if args.json else []))


# ----------------------------------------------------------------------------- verify
def _add_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duckdb", required=True, help="DuckDB file holding the attestation tables (opened read-only)")
    p.add_argument("--schema", default="main_attestation", help="schema of attestation_ledger / "
                                                                "attestation_checkpoints (default main_attestation)")
    p.add_argument("--worm-dir", default="data/worm", help="WORM folder with batches/*.parquet (default data/worm)")
    p.add_argument("--public-key", default=None,
                   help="Ed25519 public key PEM file (default: PEM text in $MARKETING_SIGNALS_VERIFY_KEY, "
                        "else <worm-dir>/public_key.pem)")


def _run_verify(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from .attestation.keys import ENV_VERIFY_KEY
    from .attestation.verify import VerifyUsageError, verify_duckdb

    key_text = None if args.public_key else os.environ.get(ENV_VERIFY_KEY) or None
    key_path = Path(args.public_key) if args.public_key else Path(args.worm_dir) / "public_key.pem"
    try:
        result = verify_duckdb(args.duckdb, args.schema, worm_dir=args.worm_dir, public_key_path=key_path,
                               public_key=key_text.encode() if key_text else None)
    except VerifyUsageError as e:
        print(f"verify: {e}", file=sys.stderr)
        return 2
    s = result.stats
    print(f"records {s['records']:,}  batches {s['batches']:,}  checkpoints {s['checkpoints']:,}")
    if result.ok:
        print("OK: hash chain, Merkle roots, signed checkpoints and WORM files verify")
        return 0
    print(f"FAILED: {result.first_error}")
    for e in result.errors[1:10]:
        print(f"  also: {e}")
    if len(result.errors) > 10:
        print(f"  ... {len(result.errors) - 10} more")
    return 1


COMMANDS: dict[str, Command] = {
    "generate": Command("write demo raw data and planted truth as Parquet", _add_generate, _run_generate),
    "summary": Command("print what dbt built: relations, row counts, capture figures", _add_summary, _run_summary),
    "sql-to-parquet": Command("run a compiled SQL file on DuckDB and write the rows as Parquet (to map your own data)",
                              _add_sql_to_parquet, _run_sql_to_parquet),
    "cohort-backtest": Command("after a build with an earlier as_of: intent AUC and RFM segments against what "
                               "customers did next", _add_backtest, _run_backtest),
    "bench": Command("run a named benchmark: wall time, peak RSS, ratio to a baseline from the same run",
                     _add_bench, _run_bench),
    "streams-eval": Command("Observe + Forecast on a generated demo folder, scored against its planted incidents",
                            _add_streams_eval, _run_streams_eval),
    "nab-eval": Command("Observe and the z-score baseline on NAB (realAdExchange, realKnownCause): window "
                        "recall, precision, F1 per file", _add_nab, _run_nab),
    "petshop-eval": Command("root-cause localisation (ours, ours without the call graph, BARO) on the PetShop "
                            "benchmark: AC@1, AC@3, AVG@5 per scenario", _add_petshop, _run_petshop),
    "rca-eval": Command("generator fault benchmark: root-cause AC@1/AC@3 per cause on planted incidents, with a "
                        "+/-2-day onset error and the BARO-style baseline in the same run", _add_rca_eval, _run_rca_eval),
    "verify": Command("verify the attestation ledger (hash chain, Merkle roots, signed checkpoints, WORM files) "
                      "with the public key only; exit 0 ok, 1 tampered, 2 usage error", _add_verify, _run_verify),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketing-signals", description=__doc__.splitlines()[0])
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        sub = subs.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(sub)
        sub.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
