#!/usr/bin/env python3
"""Set up `.venv` and run the main job or the tests. Needs only Python 3.11+.

python3 quickstart.py run     # create .venv, install, run the offline main job
python3 quickstart.py test    # create or update .venv, run ruff and the whole test suite
python3 quickstart.py test --fast   # the fast tier: everything not marked slow, no coverage
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".installed"


def sh(*args: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True, env=env)


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project (again only when pyproject.toml changed)."""
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    sh(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # pip compiles the ~200 packages one file at a time (25 of a new venv's 57 s here); compiling
    # them on every core instead keeps the bytecode that PYTHONDONTWRITEBYTECODE would forbid later.
    sh(PYTHON, "-m", "pip", "install", "--quiet", "--no-compile", "-e", f".{extras}")
    # Not checked: a few packages ship modules for newer Pythons, which pip skips as well.
    subprocess.run([str(PYTHON), "-m", "compileall", "-qq", "-j", "0", str(VENV)])
    STAMP.write_text(wanted)


def ensure_windmill_tools() -> None:
    """`npm ci` in windmill/ (bun, wmill, parsers) when its lock file is newer than the install."""
    npm = shutil.which("npm")
    lock = ROOT / "windmill" / "package-lock.json"
    stamp = ROOT / "windmill" / "node_modules" / ".installed"
    if npm is None or not lock.exists():
        return  # the Windmill tests say why they skip (and fail under CI)
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    print("+ (cd windmill && npm ci)", flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=lock.parent, check=True)
    stamp.touch()


def run() -> None:
    """The main job, offline: the backtest flow with built-in models on the synthetic market."""
    ensure_venv("[dev]")
    aitrader = BIN / "aitrader"
    sh(aitrader, "backtest", "--start", "2025-01-02", "--end", "2025-03-31", *sys.argv[2:])


def test() -> None:
    """Ruff, then the test suite on every core: all of it with coverage, or with `--fast` the
    tests not marked slow (the edit-test loop). Other arguments go to pytest."""
    arguments = sys.argv[2:]
    fast = "--fast" in arguments
    arguments = [a for a in arguments if a != "--fast"]
    ensure_venv("[dev]")
    ensure_windmill_tools()
    sh(BIN / "ruff", "check", ".")
    sh(BIN / "ruff", "format", "--check", ".")
    # Tests that share an expensive fixture carry one xdist_group and run on one worker.
    workers = ["-n", "auto", "--dist", "loadgroup", "--no-loadscope-reorder"]
    env = dict(os.environ)
    if sys.version_info >= (3, 12):
        env.setdefault("COVERAGE_CORE", "sysmon")  # sys.monitoring: the cheaper tracer
    if fast:
        sh(PYTHON, "-m", "pytest", *workers, "-m", "not slow", *arguments, env=env)
    else:
        sh(PYTHON, "-m", "pytest", *workers, "--cov", "--cov-report=term", *arguments, env=env)


if __name__ == "__main__":
    commands = {"run": run, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    try:
        commands[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
