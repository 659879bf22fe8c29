"""Compile time of each preset's solve: two versions of quasinewton side by side.

What
----
For each preset, the time JAX takes to turn one jitted solve into an executable,
and the size of what it produces, for two versions of the library (by default the
commit before the architecture change, 7405dbd, and ``HEAD``). One small float64
problem per kind of solve:

- **minimise**: Rosenbrock's function 100·(y₁ − y₀²)² + (1 − y₀)² from (−1.2, 1),
  with ``qn.LBFGS()``, ``qn.BFGS()`` and ``qn.Newton()``;
- **least squares**: one fit of y = a·exp(−b·t) + c to 50 noisy points on [0, 4]
  (truth (2.5, 1.3, 0.5), σ = 0.05, start (1, 1, 0)), with ``qn.GaussNewton()``,
  ``qn.LevenbergMarquardt()`` and ``qn.LevenbergMarquardtCG()``;
- **batched**: the same model fitted to 64 data sets at once, ``qn.LevenbergMarquardt()``
  under ``jax.vmap`` with ``throw=False``, returning the whole batched ``qn.Solution``
  (as ``batched_fits.py`` does).

The single solves call ``qn.minimise`` / ``qn.least_squares`` with their defaults
(``max_steps=256``, ``throw=True``) and return the whole ``qn.Solution``. Every preset
and both entry points exist with these signatures in both default versions.

Measured, per case, in a fresh subprocess per version (two packages of the same name
cannot share a process): after ``jax.clear_caches()``, a new solve function (new
objective closure, new solver instance, so no cache of JAX, Equinox or Lineax can
serve it) is taken through

- *trace + lower* (s): ``jax.jit(solve).trace(*args).lower()``, Python tracing of the
  whole solve and its lowering to StableHLO;
- *XLA compile* (s): ``lowered.compile()``;
- *StableHLO* (kchar): ``len(lowered.as_text())``; *HLO ops*: the instructions in the
  optimised HLO, ``compiled.as_text()`` (lines of the form ``name = op(...)``), and
  its length in kchar.

Each round starts one fresh subprocess per version. Each subprocess first compiles
every case once, untimed, so that the process's one-time costs do not land on its
first case. Then the two take turns: for every case, ``--reps`` times, one version
compiles it and then the other does, back to back, with the order flipped every
pair. Load changes on the machine then fall on both sides of a pair. Reported: the
median over all samples of each version, and the median (with quartiles) of the
head / base ratios of the pairs. In the last round each compiled solve also runs
once, and its steps and result are printed, to check that both versions solve the
same problem the same way. JAX's persistent compilation cache is disabled.

Reproduce (2-core CPU; 5-10 minutes with the defaults, depending on the load):

    python3 run.py bench compile_time.py                         # 7405dbd vs HEAD, 5 rounds
    python3 run.py bench compile_time.py --base 7405dbd --head 26c0d7f --out r.md
    python3 run.py bench compile_time.py --base /tmp/cmp/base/src --head src --rounds 1 --reps 1   # smoke test

``--base`` / ``--head`` take a commit of this repository (its ``src/`` is exported with
``git archive`` to a temporary directory) or a directory holding the ``quasinewton``
package (or a ``src/`` that does). Timings on a shared machine are noisy: read the
ratios, measured in the same run, rather than the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = ("LBFGS", "BFGS", "Newton", "GaussNewton", "LM", "LMCG", "LM vmap")
LABELS = {
    "LBFGS": "`LBFGS()`, Rosenbrock",
    "BFGS": "`BFGS()`, Rosenbrock",
    "Newton": "`Newton()`, Rosenbrock",
    "GaussNewton": "`GaussNewton()`, exp decay",
    "LM": "`LevenbergMarquardt()`, exp decay",
    "LMCG": "`LevenbergMarquardtCG()`, exp decay",
    "LM vmap": "`LevenbergMarquardt()`, 64 exp fits, vmap",
}
NUM_BATCH = 64
HLO_OP = re.compile(r"^\s*(ROOT\s+)?%?[\w.\-]+ = ")

# ----------------------------------------------------------------------------------
# Worker: one version of the library, imported from the directory given
# ----------------------------------------------------------------------------------


def make_case(name: str):
    """A new (solve, args) pair for case `name`: fresh closures and solver each call."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import quasinewton as qn

    if name in ("LBFGS", "BFGS", "Newton"):
        solver = {"LBFGS": qn.LBFGS, "BFGS": qn.BFGS, "Newton": qn.Newton}[name]()

        def rosenbrock(y, args):
            return 100.0 * (y[1] - y[0] ** 2) ** 2 + (1.0 - y[0]) ** 2

        def solve(y0):
            return qn.minimise(rosenbrock, solver, y0)

        return solve, (jnp.array([-1.2, 1.0]),)

    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 4.0, 50)

    def exp_decay(p, args):
        t, y = args
        return p[0] * jnp.exp(-p[1] * t) + p[2] - y

    if name == "LM vmap":
        truth = np.stack(
            [
                rng.uniform(1.0, 3.0, NUM_BATCH),
                rng.uniform(0.5, 2.0, NUM_BATCH),
                rng.uniform(0.0, 1.0, NUM_BATCH),
            ],
            axis=1,
        )
        data = truth[:, :1] * np.exp(-truth[:, 1:2] * t) + truth[:, 2:]
        data = data + 0.05 * rng.standard_normal(data.shape)
        solver = qn.LevenbergMarquardt()

        def one(y0, y, t):
            return qn.least_squares(exp_decay, solver, y0, (t, y), throw=False)

        def solve(y0s, ys, t):
            return jax.vmap(one, in_axes=(0, 0, None))(y0s, ys, t)

        y0s = np.broadcast_to([1.0, 1.0, 0.0], (NUM_BATCH, 3))
        return solve, (jnp.asarray(y0s), jnp.asarray(data), jnp.asarray(t))

    solver = {
        "GaussNewton": qn.GaussNewton,
        "LM": qn.LevenbergMarquardt,
        "LMCG": qn.LevenbergMarquardtCG,
    }[name]()
    y = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.05 * rng.standard_normal(t.shape)

    def solve(y0, t, y):
        return qn.least_squares(exp_decay, solver, y0, (t, y))

    return solve, (jnp.array([1.0, 1.0, 0.0]), jnp.asarray(t), jnp.asarray(y))


def measure_once(name: str) -> tuple[dict, object, tuple]:
    import jax

    jax.clear_caches()
    solve, args = make_case(name)
    t0 = time.perf_counter()
    lowered = jax.jit(solve).trace(*args).lower()
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    hlo = compiled.as_text()
    sample = {
        "lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "stablehlo_chars": len(lowered.as_text()),
        "hlo_chars": len(hlo),
        "hlo_ops": sum(1 for line in hlo.splitlines() if HLO_OP.match(line)),
    }
    return sample, compiled, args


def worker(src: str, cases: list[str]) -> None:
    """Serve the driver: warm up, print READY, then answer one line per request
    (a case name: one timed compile; "check": run each case once; "quit")."""
    sys.path.insert(0, src)
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_enable_compilation_cache", False)
    jax.config.update("jax_compilation_cache_dir", None)
    import numpy as np

    import quasinewton as qn

    assert Path(qn.__file__).resolve().is_relative_to(Path(src).resolve()), qn.__file__
    for name in cases:  # untimed: the process's one-time costs
        measure_once(name)
    print("READY " + json.dumps({"jax": jax.__version__}), flush=True)
    for line in sys.stdin:
        request = line.strip()
        if request == "quit":
            break
        if request == "check":
            check = {}
            for name in cases:
                _, compiled, args = measure_once(name)
                sol = jax.block_until_ready(compiled(*args))
                steps = np.asarray(sol.stats["num_steps"])
                ok = np.asarray(sol.result == qn.RESULTS.successful)
                check[name] = {
                    "steps_max": int(steps.max()),
                    "successful": int(ok.sum()),
                    "total": int(ok.size),
                }
            print("RESULT " + json.dumps(check), flush=True)
        else:
            sample, _, _ = measure_once(request)
            print("RESULT " + json.dumps(sample), flush=True)


# ----------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------


def resolve(spec: str, tmp: Path, tag: str) -> tuple[Path, str]:
    """(directory holding the `quasinewton` package, label) for a commit or path."""
    path = Path(spec)
    if path.is_dir():
        for cand in (path, path / "src"):
            if (cand / "quasinewton" / "__init__.py").is_file():
                return cand.resolve(), str(path)
        raise SystemExit(f"{spec}: no quasinewton package in it or in its src/")
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", spec],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dest = tmp / tag
    dest.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "src"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src", f"{commit}"


class Worker:
    """A subprocess with one version of the library imported, answering requests."""

    def __init__(self, src: Path, cases: list[str]):
        env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPIL")}
        env["PYTHONPATH"] = str(src)
        self.src = src
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(src),
                "--cases",
                ",".join(cases),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def read(self, prefix: str) -> dict:
        for line in self.proc.stdout:
            if line.startswith(prefix + " "):
                return json.loads(line[len(prefix) + 1 :])
        raise SystemExit(f"worker for {self.src} failed (exit {self.proc.wait()})")

    def ask(self, request: str) -> dict:
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return self.read("RESULT")

    def close(self) -> None:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait()


def median(xs) -> float:
    return float(statistics.median(xs))


def quartiles(xs) -> tuple[float, float]:
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def report(labels: dict, samples: dict, pairs: dict, check: dict, meta: str) -> str:
    """The markdown table: medians per version, and the medians (and quartiles) of
    the head/base ratios of back-to-back pairs."""
    base, head = labels["base"], labels["head"]
    lines = [
        meta,
        "",
        "| preset, problem | trace + lower (s) | XLA compile (s) | total (s) "
        "| total, head / base [quartiles] | StableHLO (kchar) | HLO ops | HLO (kchar) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in samples["base"]:
        cells = []
        for key, scale, fmt in (
            ("lower_s", 1, ".2f"),
            ("compile_s", 1, ".2f"),
            ("total_s", 1, ".2f"),
        ):
            b = median([x[key] for x in samples["base"][name]]) / scale
            h = median([x[key] for x in samples["head"][name]]) / scale
            r = median([pr[key] for pr in pairs[name]])
            cells.append(f"{b:{fmt}} / {h:{fmt}} ({r:.2f})")
        ratios = [pr["total_s"] for pr in pairs[name]]
        lo, hi = quartiles(ratios)
        cells.append(f"**{median(ratios):.2f}** [{lo:.2f}, {hi:.2f}]")
        for key, scale in (
            ("stablehlo_chars", 1e3),
            ("hlo_ops", 1),
            ("hlo_chars", 1e3),
        ):
            b = median([x[key] for x in samples["base"][name]]) / scale
            h = median([x[key] for x in samples["head"][name]]) / scale
            cells.append(f"{b:.0f} / {h:.0f}")
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Cells are {base} / {head} (head / base, the median of the paired ratios).",
        "",
        "Check, one run of each compiled solve: steps (max over the batch), successful:",
    ]
    for name in samples["base"]:
        cb, ch = check["base"][name], check["head"][name]
        lines.append(
            f"- {name}: {base} {cb['steps_max']} steps, {cb['successful']}/{cb['total']};"
            f" {head} {ch['steps_max']} steps, {ch['successful']}/{ch['total']}"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", default="7405dbd", help="commit or source directory")
    p.add_argument("--head", default="HEAD", help="commit or source directory")
    p.add_argument("--rounds", type=int, default=5, help="pairs of fresh subprocesses")
    p.add_argument("--reps", type=int, default=2, help="timed pairs per case and round")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--out", type=Path, help="also write the table here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    cases = [c.strip() for c in opts.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        p.error(f"unknown cases {sorted(unknown)}; known: {', '.join(CASES)}")
    if opts.worker:
        worker(opts.worker, cases)
        return 0

    keys = ("base", "head")
    samples = {key: {name: [] for name in cases} for key in keys}
    pairs = {name: [] for name in cases}
    check = {}
    with tempfile.TemporaryDirectory() as tmp:
        srcs, labels = {}, {}
        for key in keys:
            srcs[key], labels[key] = resolve(getattr(opts, key), Path(tmp), key)
        t0 = time.perf_counter()
        k = 0
        for r in range(opts.rounds):
            workers = {key: Worker(srcs[key], cases) for key in keys}
            info = {key: w.read("READY") for key, w in workers.items()}
            for _ in range(opts.reps):
                for name in cases:
                    got = {}
                    for key in keys if k % 2 == 0 else keys[::-1]:
                        x = workers[key].ask(name)
                        x["total_s"] = x["lower_s"] + x["compile_s"]
                        samples[key][name].append(x)
                        got[key] = x
                    k += 1
                    pairs[name].append(
                        {
                            t: got["head"][t] / got["base"][t]
                            for t in ("lower_s", "compile_s", "total_s")
                        }
                    )
            if r == opts.rounds - 1:
                check = {key: w.ask("check") for key, w in workers.items()}
            for w in workers.values():
                w.close()
            print(
                f"round {r + 1}/{opts.rounds} done ({time.perf_counter() - t0:.0f} s)"
            )
    meta = (
        f"base {labels['base']}, head {labels['head']}; float64; {opts.rounds} rounds "
        f"× {opts.reps} back-to-back pairs of compiles per case; JAX {info['base']['jax']}; "
        f"{platform.machine()}, {os.cpu_count()} cores; medians"
    )
    text = report(labels, samples, pairs, check, meta)
    print(text)
    if opts.out:
        opts.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
