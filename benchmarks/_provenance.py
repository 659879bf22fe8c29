"""What the benchmark tables record about the code they measured."""

import subprocess
from pathlib import Path


def quasinewton_version() -> str:
    """`quasinewton X.Y.Z (git abc1234[, modified])`, the git part when available."""
    import quasinewton as qn  # late, so importing this module loads no library

    text = f"quasinewton {qn.__version__}"
    src = Path(qn.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        text += f" (git {commit}{', modified' if dirty else ''})"
    except (OSError, subprocess.CalledProcessError):
        pass
    return text
