"""Shared plumbing of the examples: command-line flags, timing and saving figures.

Not an example itself. Every example is run as `python examples/<name>.py` and takes

- `--out PATH`: where to write the PNG (default `docs/examples/figures/<name>.png`);
- `--smoke`: the smallest size, a few seconds, for the test-suite;
- `--results PATH`: also write the numbers `main()` returns as JSON, so that a test
  running the script in a subprocess can check them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "examples" / "figures"


def parse_args(name: str, description: str, argv=None) -> argparse.Namespace:
    """The flags every example takes; `name` sets the default figure path."""
    parser = argparse.ArgumentParser(description=description.strip().split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=FIGURES / f"{name}.png",
        help="where to write the PNG",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="smallest size, for CI (a few seconds)"
    )
    parser.add_argument("--results", type=Path, help="write the results as JSON here")
    return parser.parse_args(argv)


def timed(fn, *args, repeat: int = 1):
    """`(output, run_seconds, compile_seconds)` of a `jax.jit`-wrapped `fn`: compiled
    ahead of time, then run `repeat` times (the best time is kept), waiting for every
    array of the output."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - start
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - start)
    return out, best, compile_s


def result_name(result) -> str:
    """The name of a `qn.RESULTS` member, e.g. `"successful"`."""
    import quasinewton as qn

    for name in ("successful", "max_steps_reached", "nonfinite", "search_failed"):
        if bool(result == getattr(qn.RESULTS, name)):
            return name
    return "unknown"


def termination_name(termination) -> str:
    """The name of a `qn.Termination` member, e.g. `"gradient"`."""
    import quasinewton as qn

    for name in ("gradient", "step", "precision", "none"):
        if bool(termination == getattr(qn.Termination, name)):
            return name
    return "unknown"


def finish(fig, results: dict, opts: argparse.Namespace) -> dict:
    """Save the figure (creating its folder) and, if asked, the results as JSON."""
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(opts.out, dpi=110, bbox_inches="tight")
    print(f"figure written to {opts.out}")
    if opts.results is not None:
        opts.results.parent.mkdir(parents=True, exist_ok=True)
        opts.results.write_text(json.dumps(results, indent=2, default=float))
    return results
