"""Build the engine zip that the dbt Python models import on Snowflake (docs/snowflake.md, "Staging the engine").

    python -m marketing_signals.snowflake.stage_engine --out dist/marketing_signals.zip

dbt-snowflake runs each Python model as a Snowpark stored procedure; the procedure imports
`@<stage>/marketing_signals.zip` (the `imports` config in dbt_project.yml) and installs the third-party
packages of the `packages` config from Snowflake's Anaconda channel. This module writes that zip: the
`marketing_signals` package as installed here (its .py files only, no caches), deterministic (sorted
entries, fixed timestamps), so the same sources give the same SHA-256. It then checks, in a fresh
interpreter with only the zip in front of sys.path, that `marketing_signals` is imported *from the zip*
and that every engine module a Python model imports loads. Upload it with
`dbt run-operation marketing_signals_stage_engine --target snowflake` (macros/snowflake/stage_engine.sql).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

# The engine modules the dbt Python models import (python_models/**.py), plus the cohort methods that
# cohorts.bridge loads by name at run time.
MODEL_MODULES: tuple[str, ...] = (
    "marketing_signals.attestation.dbt_bridge",
    "marketing_signals.cohorts.bridge",
    "marketing_signals.cohorts.quality",
    "marketing_signals.membership.calibration",
    "marketing_signals.membership.tables",
    "marketing_signals.streams.dbt_bridge",
    "marketing_signals.rca.dbt_bridge",
)
ZIP_NAME = "marketing_signals.zip"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry: no build time in the archive


def package_dir() -> Path:
    import marketing_signals

    return Path(marketing_signals.__file__).resolve().parent


def _sources(root: Path) -> list[Path]:
    """Every .py file of the package, sorted by its path inside the zip."""
    files = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def build_zip(out: str | os.PathLike, root: str | os.PathLike | None = None) -> dict:
    """Write the zip (entries `marketing_signals/...`) to `out`; return path, file count, size and SHA-256."""
    root = Path(root) if root is not None else package_dir()
    if not (root / "__init__.py").is_file():
        raise FileNotFoundError(f"{root} is not a Python package (no __init__.py)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    files = _sources(root)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(f"{root.name}/{path.relative_to(root).as_posix()}", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    os.replace(tmp, out)
    data = out.read_bytes()
    return {"zip": str(out.resolve()), "files": len(files), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def check_zip(path: str | os.PathLike, modules: tuple[str, ...] = MODEL_MODULES) -> dict:
    """Import `modules` in a new interpreter whose sys.path starts with the zip alone.

    Fails unless `marketing_signals` comes from the zip (not from an installed copy). Third-party
    packages come from this interpreter's environment, as they come from the Anaconda channel on
    Snowflake. Returns the origin of marketing_signals and the modules imported.
    """
    zip_path = str(Path(path).resolve())
    code = (
        "import importlib, json, sys\n"
        f"zp = {zip_path!r}\n"
        "sys.path.insert(0, zp)\n"
        "import marketing_signals\n"
        "origin = marketing_signals.__file__\n"
        "assert origin.startswith(zp + '/'), f'marketing_signals was imported from {origin}, not the zip'\n"
        f"mods = {list(modules)!r}\n"
        "import pkgutil, marketing_signals.cohorts.methods as m\n"
        "mods += [f'{m.__name__}.{i.name}' for i in pkgutil.iter_modules(m.__path__)]\n"
        "for name in mods:\n"
        "    mod = importlib.import_module(name)\n"
        "    assert mod.__file__.startswith(zp + '/'), f'{name} was imported from {mod.__file__}'\n"
        "print(json.dumps({'origin': origin, 'modules': mods}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -I would also drop site-packages (the third-party packages); -P keeps the cwd off sys.path.
    proc = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, env=env,
                          cwd=Path(zip_path).parent)
    if proc.returncode != 0:
        raise RuntimeError(f"the engine zip does not import:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m marketing_signals.snowflake.stage_engine",
                                 description="Build (and check) the engine zip imported by the Python models on Snowflake.")
    ap.add_argument("--out", default=f"dist/{ZIP_NAME}", help=f"zip to write (default dist/{ZIP_NAME})")
    ap.add_argument("--no-check", action="store_true", help="skip the import check in a fresh interpreter")
    a = ap.parse_args(argv)
    if Path(a.out).name != ZIP_NAME:
        print(f"note: the imports config in dbt_project.yml expects the file name {ZIP_NAME}", file=sys.stderr)
    result = build_zip(a.out)
    if not a.no_check:
        checked = check_zip(result["zip"])
        result["imports_checked"] = len(checked["modules"])
    print(json.dumps(result, indent=2))
    print("next: dbt run-operation marketing_signals_stage_engine --target snowflake "
          f"--args '{{zip_path: \"{result['zip']}\"}}'", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
