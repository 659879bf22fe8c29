#!/usr/bin/env python3
"""Project task runner: `python3 run.py demo | test | docs | bench SCRIPT`.

`test` runs the test-suite but for the cases marked `slow` (add `-m slow` for
those, as CI does); further arguments go to pytest.

Each task creates a virtual environment in `.venv/` on first use and installs the
package with the extras that task needs, so the only prerequisite is Python 3.11+
with pip. Re-installs happen only when `pyproject.toml` changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXTRAS = {
    "demo": ["examples"],
    "test": ["test", "examples"],
    "docs": ["docs"],
    "bench": ["benchmarks"],
}


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _ensure_env(extras: list[str]) -> Path:
    if not _python().exists():
        print(f"[run.py] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    py = _python()
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{'-'.join(sorted(extras))}"
    if not stamp.exists() or stamp.read_text() != key:
        print(f"[run.py] installing quasinewton[{','.join(extras)}]", flush=True)
        subprocess.check_call(
            [str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"]
        )
        subprocess.check_call(
            [str(py), "-m", "pip", "install", "--quiet", "-e",
             f"{ROOT}[{','.join(extras)}]"]
        )
        stamp.write_text(key)
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    task, rest = argv[0], argv[1:]
    py = str(_ensure_env(EXTRAS[task]))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if task == "demo":
        cmd = [py, str(ROOT / "examples" / "demo.py"), *rest]
    elif task == "test":
        # Two worker processes (pytest-xdist); the long cases are marked `slow` and
        # left out unless asked for (`-m slow`, or `-m "slow or not slow"`).
        cmd = [py, "-m", "pytest", str(ROOT / "tests"), "-n", "auto", "-m", "not slow", *rest]
    elif task == "docs":
        cmd = [py, "-m", "mkdocs", "build", "--strict", *rest]
    else:
        cmd = [py, str(ROOT / "benchmarks" / (rest[0] if rest else "batched_fits.py")),
               *rest[1:]]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
