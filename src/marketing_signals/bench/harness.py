"""Benchmark harness: each figure is one child process, timed by wall clock, with its own peak RSS.

A benchmark compares the stage under test with a *floor* measured in the same run on the same
data (so machine speed and load cancel out in the ratio). Results go to stdout and to
bench_results/<name>-<customers>.json.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Measurement:
    name: str
    wall_s: float
    peak_rss_mib: float
    detail: str = ""


def measure(name: str, argv: list[str], env: dict | None = None, cwd: str | None = None,
            detail: str = "") -> Measurement:
    """Run argv as a child process; wall time and that child's own peak RSS (os.wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()  # drain so the child never blocks on a full pipe
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stdout.write(output.decode(errors="replace")[-4000:])
        raise RuntimeError(f"benchmark step {name!r} failed with exit code {proc.returncode}")
    return Measurement(name, wall, usage.ru_maxrss / 1024.0, detail)


def report(bench: str, customers: int, rows: list[Measurement], baseline: str,
           extra: dict | None = None, out_dir: Path = Path("bench_results")) -> dict:
    base = next(m for m in rows if m.name == baseline)
    print(f"\n== bench {bench} @ {customers:,} customers ==")
    print(f"{'step':<34}{'wall s':>10}{'peak RSS MiB':>15}{'x ' + baseline:>22}")
    for m in rows:
        print(f"{m.name:<34}{m.wall_s:>10.1f}{m.peak_rss_mib:>15.0f}{m.wall_s / base.wall_s:>22.2f}")
        if m.detail:
            print(f"  {m.detail}")
    result = {
        "bench": bench,
        "customers": customers,
        "baseline": baseline,
        "steps": [asdict(m) | {"ratio_to_baseline": m.wall_s / base.wall_s} for m in rows],
        **(extra or {}),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{bench}-{customers}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"results: {path}")
    return result
