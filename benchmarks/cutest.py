"""Unconstrained CUTEst problems: quasinewton's minimisers against SciPy, Optimistix
and Optax.

What
----
The unconstrained minimisation problems of CUTEst as the ``sif2jax`` package ships
them (pure JAX objectives, ``sif2jax.unconstrained_minimisation_problems``), filtered
by the number of unknowns n: ``--sizes small`` is n ≤ 20 (103 problems with sif2jax
0.0.8), ``medium`` n ≤ 1000, ``large`` every size; ``--min-n``/``--max-n`` override.
Every problem is solved in float64 (``jax_enable_x64``) from its standard start
``problem.y0`` by each solver in turn:

- ``qn-lbfgs``: ``qn.LBFGS(rtol=tol, atol=tol)`` and ``qn-bfgs``: ``qn.BFGS(...)``,
  through ``qn.minimise(..., max_steps=MAX_EVALS, throw=False)`` called from
  Python, as SciPy is called (so the solver's step is compiled once per solver and
  size and only each objective is compiled anew; see the concepts page).
  ``qn-lbfgs-jit`` is the same L-BFGS solve under ``jax.jit`` (one program per
  problem). ``qn-lbfgs-default`` is ``qn.LBFGS()`` with its default tolerances
  (float64: rtol = 1e-8, atol = 1e-6, i.e. a gradient test at 1e-6 rather than
  1e-8); ``--qn-defaults`` gives the other two their defaults as well.
- ``scipy-lbfgsb`` / ``scipy-bfgs``: ``scipy.optimize.minimize(method="L-BFGS-B" /
  "BFGS", jac=True)`` on a jitted ``jax.value_and_grad`` of the objective, with
  ``gtol=tol`` (both: the largest |gradient component|), L-BFGS-B's
  ``ftol=tol`` (its relative-decrease test, (f_k − f_k+1)/max(|f_k|, |f_k+1|, 1)),
  ``maxfun=MAX_EVALS`` (L-BFGS-B) and ``maxiter=MAX_EVALS``.
- ``optx-lbfgs`` / ``optx-bfgs``: ``optx.LBFGS(rtol=tol, atol=tol)`` /
  ``optx.BFGS(...)`` through ``optx.minimise(..., max_steps=MAX_EVALS, throw=False)``
  under ``jax.jit`` (Optimistix stops when both the step and the change in f are
  below atol + rtol·|·|).
- ``optax-lbfgs``: ``optax.lbfgs()`` (its default zoom line search, at most 20 trials)
  in a jitted ``lax.while_loop`` that gets f and ∇f from the line search through
  ``optax.value_and_grad_from_state``, as Optax's documentation does. It stops when
  max|∇f| ≤ tol, when an iteration leaves the iterate unchanged (the line search
  found no step; Optax has no failure flag), or after MAX_EVALS evaluations.

tol = 1e-8 (``--tol``) and MAX_EVALS = 10,000 (``--max-evals``) for all.

Solved. Each returned point is re-evaluated by one jitted float64 objective. f* is
the lowest finite value any solver reached on the problem (sif2jax's stated optimal
values are not used: several are wrong, or are for another local minimum); a run
solves the problem when f ≤ f* + 1e-5·max(1, |f*|). A run that raises, or whose
point or value is not finite, is unsolved. The stated value is kept in the CSV.

Evaluations. f = objective evaluations, g = gradient evaluations, each as the
solver itself counts them:

- qn: ``stats["num_fn_evals"]``; every evaluation computes f and ∇f together
  (``jax.value_and_grad``), so g = f.
- SciPy: ``nfev`` and ``njev`` (with ``jac=True`` one call returns both: equal).
- Optax: 1 (the start, from ``value_and_grad_from_state``) + the zoom line search's
  ``num_linesearch_steps`` of every iteration (each trial is one
  ``value_and_grad``), + 1 whenever the line search left a non-finite value that
  ``value_and_grad_from_state`` recomputes; g = f.
- Optimistix reports only its number of steps. Each step is one ``jax.linearize``
  (one f), and the gradient (a transpose of the linearisation) is computed only
  at accepted steps, so the script counts Optimistix's evaluations in a separate
  run of the same solve on an objective wrapped in a ``jax.custom_vjp`` whose
  forward and backward passes each bump a host-side counter through
  ``jax.debug.callback``. ``--count-evals all`` does this for every JAX solver and
  checks the counts above against it (they agreed on all 8 ``--quick`` problems).

Time, per run: *with compile* is the first call (trace, compile, run; for SciPy the
first ``minimize``, which compiles the objective and gradient), *without* the second
call of the same solve. Problems run one after another, every solver on a problem
before the next problem, in one process that keeps its compilation caches, as a
user's session does (``--clear-caches`` empties them before every run instead, so
that nothing compiled for an earlier problem is reused); the counting runs are not
timed.

Outputs (``--out-dir``, default ``docs/benchmarks/``): ``cutest_<sizes>.txt`` (the
Markdown table and the unsolved runs, which ``docs/benchmarks/cutest.md`` includes;
not ``.md``, so that MkDocs does not take it for a page), ``cutest_<sizes>.csv`` (one row per problem and solver) and Dolan–Moré
performance profiles ``figures/cutest_<sizes>_{evals,time,time_compile}.png``: for
each solver the share of problems it solved within a factor τ of the best solver
on that problem (objective evaluations; run time without compile; with compile).

Reproduce (2-core CPU; ~10 min for n ≤ 20, compilation dominates):

    python benchmarks/cutest.py                       # n ≤ 20, every solver
    python benchmarks/cutest.py --quick               # 8 problems, ~1 min
    python benchmarks/cutest.py --problems ROSENBR,BARD --solvers qn-lbfgs,scipy-lbfgsb
    python benchmarks/cutest.py --sizes medium        # 20 < n ≤ 1000

or ``python3 run.py bench cutest.py [options]``. Timings on a shared machine are
noisy: read the ratios, measured in the same run, rather than the seconds.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
from _provenance import quasinewton_version

SOLVED_RTOL = 1e-5  # f ≤ f* + SOLVED_RTOL·max(1, |f*|)
QUICK = ["ROSENBR", "BARD", "BEALE", "BOX3", "DENSCHND", "HELIX", "OSBORNEB", "HAHN1LS"]
SIZES = {"small": (1, 20), "medium": (21, 1000), "large": (1001, 10**9)}

# ----------------------------------------------------------------------------------
# Problems
# ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Problem:
    name: str
    n: int
    objective: Callable  # f(y, args)
    y0: jax.Array
    args: object
    stated_fstar: float | None


def load_problems(min_n: int, max_n: int, names: list[str] | None) -> list[Problem]:
    """sif2jax's unconstrained problems with min_n ≤ n ≤ max_n (or the named ones)."""
    import sif2jax

    out = []
    for p in sif2jax.unconstrained_minimisation_problems:
        n = int(p.num_variables())
        if names is not None:
            if p.name not in names:
                continue
        elif not min_n <= n <= max_n:
            continue
        try:
            stated = p.expected_objective_value
            stated = None if stated is None else float(stated)
        except Exception:  # noqa: BLE001 (some problems state none)
            stated = None
        out.append(
            Problem(
                name=p.name,
                n=n,
                objective=lambda y, args, p=p: p.objective(y, args),
                y0=jnp.asarray(p.y0, jnp.float64),
                args=p.args,
                stated_fstar=stated,
            )
        )
    if names is not None:
        missing = set(names) - {p.name for p in out}
        if missing:
            raise SystemExit(f"unknown problems: {sorted(missing)}")
    return out


# ----------------------------------------------------------------------------------
# Solvers: each `make(problem, opts)` returns a zero-argument run() -> Outcome
# ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    x: np.ndarray
    nfev: int | None
    ngev: int | None
    status: str


def _block(tree):
    return jax.tree.map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, tree)


def _enum_name(enum_cls, item) -> str:
    idx = int(item._value)
    for name, member in enum_cls._name_to_item.items():
        if int(member._value) == idx:
            return name
    return str(idx)


def make_qn(kind: str, defaults: bool = False, jit: bool = False):
    def make(problem: Problem, opts, fn: Callable | None = None):
        import quasinewton as qn

        if defaults or opts.qn_defaults:
            solver = qn.LBFGS() if kind == "lbfgs" else qn.BFGS()
        else:
            tol = opts.tol
            solver = (
                qn.LBFGS(rtol=tol, atol=tol) if kind == "lbfgs" else qn.BFGS(rtol=tol, atol=tol)
            )
        f = fn or problem.objective

        def solve(y0, args):
            sol = qn.minimise(f, solver, y0, args, max_steps=opts.max_evals, throw=False)
            return sol.value, sol.stats["num_fn_evals"], sol.result, sol.stats["termination"]

        if jit:
            solve = jax.jit(solve)
        else:
            # Each run compiles its own objective: no evaluation compiled by an
            # earlier qn run on this problem is reused (the solver's step, which
            # does not depend on the problem, is).
            from quasinewton import _host

            _host._EVALUATORS.clear()

        def run():
            x, nf, result, term = _block(solve(problem.y0, problem.args))
            status = _enum_name(qn.RESULTS, result)
            if status == "successful":
                status += f" ({_enum_name(qn.Termination, term)})"
            return Outcome(np.asarray(x), int(nf), int(nf), status)

        return run

    return make


def make_scipy(method: str):
    def make(problem: Problem, opts, fn: Callable | None = None):
        from scipy.optimize import minimize

        f = fn or problem.objective
        vg = jax.jit(jax.value_and_grad(f))
        args = problem.args

        def fun(x):
            v, g = vg(jnp.asarray(x), args)
            return float(v), np.asarray(g, np.float64)

        options = {"gtol": opts.tol, "maxiter": opts.max_evals}
        if method == "L-BFGS-B":
            options.update(ftol=opts.tol, maxfun=opts.max_evals)

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = minimize(fun, np.asarray(problem.y0), jac=True, method=method, options=options)
            return Outcome(np.asarray(r.x), int(r.nfev), int(r.njev), f"{r.status}: {r.message}")

        return run

    return make


def make_optx(kind: str):
    def make(problem: Problem, opts, fn: Callable | None = None):
        import optimistix as optx

        tol = opts.tol
        solver = optx.LBFGS(rtol=tol, atol=tol) if kind == "lbfgs" else optx.BFGS(rtol=tol, atol=tol)
        f = fn or problem.objective

        @jax.jit
        def solve(y0, args):
            sol = optx.minimise(f, solver, y0, args, max_steps=opts.max_evals, throw=False)
            return sol.value, sol.stats["num_steps"], sol.result

        def run():
            x, steps, result = _block(solve(problem.y0, problem.args))
            # Evaluations come from the counting run (see the docstring).
            return Outcome(np.asarray(x), None, None, f"{_enum_name(optx.RESULTS, result)} ({int(steps)} steps)")

        return run

    return make


def make_optax(problem: Problem, opts, fn: Callable | None = None):
    import optax
    import optax.tree_utils as otu

    f = fn or problem.objective
    args = problem.args
    tol, max_evals = opts.tol, opts.max_evals

    @jax.jit
    def solve(y0):
        def value_fn(y):
            return f(y, args)

        opt = optax.lbfgs()
        vg = optax.value_and_grad_from_state(value_fn)

        def cond(carry):
            _, _, k, nev, stop = carry
            return ~stop & (k < max_evals) & (nev < max_evals)

        def body(carry):
            y, state, k, nev, _ = carry
            stored = otu.tree_get(state, "value")
            nev = nev + (~jnp.isfinite(stored)).astype(jnp.int32)
            value, grad = vg(y, state=state)
            updates, state = opt.update(grad, state, y, value=value, grad=grad, value_fn=value_fn)
            y_new = optax.apply_updates(y, updates)
            nev = nev + otu.tree_get(state, "num_linesearch_steps").astype(jnp.int32)
            g_new = otu.tree_get(state, "grad")
            small = jnp.max(jnp.abs(g_new)) <= tol
            stalled = jnp.all(y_new == y)
            return y_new, state, k + 1, nev, small | stalled | ~jnp.all(jnp.isfinite(y_new))

        init = (y0, opt.init(y0), jnp.int32(0), jnp.int32(0), jnp.array(False))
        y, _, k, nev, _ = jax.lax.while_loop(cond, body, init)
        return y, k, nev

    def run():
        x, k, nev = _block(solve(problem.y0))
        return Outcome(np.asarray(x), int(nev), int(nev), f"{int(k)} iterations")

    return run


@dataclasses.dataclass
class Spec:
    key: str
    label: str
    make: Callable
    reports_counts: bool  # False: evaluations come from the counting run


SOLVERS = [
    Spec("qn-lbfgs", "qn LBFGS", make_qn("lbfgs"), True),
    Spec("qn-lbfgs-default", "qn LBFGS, default tolerances", make_qn("lbfgs", True), True),
    Spec("qn-lbfgs-jit", "qn LBFGS under jax.jit", make_qn("lbfgs", jit=True), True),
    Spec("qn-bfgs", "qn BFGS", make_qn("bfgs"), True),
    Spec("scipy-lbfgsb", "SciPy L-BFGS-B", make_scipy("L-BFGS-B"), True),
    Spec("scipy-bfgs", "SciPy BFGS", make_scipy("BFGS"), True),
    Spec("optx-lbfgs", "Optimistix LBFGS", make_optx("lbfgs"), False),
    Spec("optx-bfgs", "Optimistix BFGS", make_optx("bfgs"), False),
    Spec("optax-lbfgs", "Optax L-BFGS", make_optax, True),
]
BY_KEY = {s.key: s for s in SOLVERS}


def counting(fn: Callable) -> tuple[Callable, dict]:
    """`fn` wrapped so that every objective evaluation (forward pass) and every
    gradient evaluation (backward pass) bumps a host-side counter."""
    counts = {"f": 0, "g": 0}

    def bump(key):
        def cb():
            counts[key] += 1

        return cb

    @jax.custom_vjp
    def wrapped(y, args):
        jax.debug.callback(bump("f"))
        return fn(y, args)

    def fwd(y, args):
        jax.debug.callback(bump("f"))
        value, vjp = jax.vjp(fn, y, args)
        return value, vjp

    def bwd(vjp, ct):
        jax.debug.callback(bump("g"))
        return vjp(ct)

    wrapped.defvjp(fwd, bwd)
    return wrapped, counts


# ----------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Record:
    problem: str
    n: int
    solver: str
    f: float = math.inf
    nfev: int | None = None
    ngev: int | None = None
    counted_f: int | None = None
    counted_g: int | None = None
    t_compile: float | None = None  # first call
    t_run: float | None = None  # second call
    status: str = ""
    error: str = ""
    solved: bool = False
    fstar: float = math.nan
    stated_fstar: float | None = None


def run_one(spec: Spec, problem: Problem, opts, fvalue: Callable) -> Record:
    rec = Record(problem.name, problem.n, spec.key, stated_fstar=problem.stated_fstar)
    try:
        if opts.clear_caches:
            jax.clear_caches()
        run = spec.make(problem, opts)
        t0 = time.perf_counter()
        run()
        rec.t_compile = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = run()
        rec.t_run = time.perf_counter() - t0
        rec.nfev, rec.ngev, rec.status = out.nfev, out.ngev, out.status
        x = out.x
        if not np.all(np.isfinite(x)):
            rec.error = "non-finite point"
        else:
            fx = float(fvalue(jnp.asarray(x), problem.args))
            rec.f = fx if math.isfinite(fx) else math.inf
        if not spec.reports_counts or opts.count_evals == "all":
            wrapped, counts = counting(problem.objective)
            spec.make(problem, opts, fn=wrapped)()
            jax.effects_barrier()
            rec.counted_f, rec.counted_g = counts["f"], counts["g"]
            if not spec.reports_counts:
                rec.nfev, rec.ngev = counts["f"], counts["g"]
    except Exception as e:  # noqa: BLE001 (a crash is an unsolved run)
        msg = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        rec.error = msg
        if opts.verbose:
            traceback.print_exc()
    return rec


def score(records: list[Record]) -> None:
    """Fill in f* (the best value any solver reached) and `solved`."""
    finite = [r.f for r in records if math.isfinite(r.f)]
    fstar = min(finite) if finite else math.nan
    for r in records:
        r.fstar = fstar
        r.solved = bool(finite) and not r.error and r.f <= fstar + SOLVED_RTOL * max(1.0, abs(fstar))


# ----------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------


def _median(xs):
    return float(np.median(xs)) if xs else math.nan


def summary_table(records: list[Record], keys: list[str], problems: list[Problem]) -> str:
    by = {(r.problem, r.solver): r for r in records}
    names = [p.name for p in problems]
    common = [p for p in names if all(by[(p, k)].solved for k in keys)]
    lines = [
        (
            f"| solver | solved (of {len(names)}) | median f evals, {len(common)} solved by all "
            "| median g evals, same | total f evals | total time with compile (s) "
            "| total time without compile (s) | ÷ SciPy L-BFGS-B, with compile |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ref = None
    if "scipy-lbfgsb" in keys:
        ref = sum(by[(p, "scipy-lbfgsb")].t_compile or 0.0 for p in names)
    for k in keys:
        rs = [by[(p, k)] for p in names]
        solved = sum(r.solved for r in rs)
        mf = _median([by[(p, k)].nfev for p in common if by[(p, k)].nfev is not None])
        mg = _median([by[(p, k)].ngev for p in common if by[(p, k)].ngev is not None])
        tot_f = sum(r.nfev or 0 for r in rs)
        tc = sum(r.t_compile or 0.0 for r in rs)
        tr = sum(r.t_run or 0.0 for r in rs)
        ratio = f"{tc / ref:.2f}×" if ref else "—"
        lines.append(
            f"| {BY_KEY[k].label} | {solved} | {mf:g} | {mg:g} | {tot_f:,} | {tc:.1f} "
            f"| {tr:.2f} | {ratio} |"
        )
    return "\n".join(lines)


def unsolved_list(records: list[Record], keys: list[str]) -> str:
    lines = []
    for k in keys:
        bad = [r for r in records if r.solver == k and not r.solved]
        if not bad:
            continue
        items = ", ".join(
            f"{r.problem} ({r.error or f'f − f* = {r.f - r.fstar:.2g}'})" for r in bad
        )
        lines.append(f"- {BY_KEY[k].label}: {items}")
    return "\n".join(lines)


def performance_profile(records, keys, problems, metric: str, path: Path, title: str):
    """Dolan & Moré (2002): ρ_s(τ) = share of problems solver s solved with a
    metric within τ of the best solver's on that problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r.problem, r.solver): r for r in records}
    names = [p.name for p in problems]
    T = np.full((len(names), len(keys)), np.inf)
    for i, p in enumerate(names):
        for j, k in enumerate(keys):
            r = by[(p, k)]
            v = getattr(r, metric)
            if r.solved and v is not None:
                T[i, j] = max(float(v), 1e-9)
    best = T.min(axis=1)
    ok = np.isfinite(best)
    R = T[ok] / best[ok, None]
    finite = R[np.isfinite(R)]
    tau_max = max(2.0, float(finite.max()) * 1.05) if finite.size else 2.0
    taus = np.logspace(0, np.log10(tau_max), 400)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    styles = ["-", "--", "-.", ":"]
    for j, k in enumerate(keys):
        rho = [(R[:, j] <= t).sum() / len(names) for t in taus]
        ax.step(taus, rho, where="post", label=BY_KEY[k].label, linestyle=styles[j % 4], linewidth=1.8)
    ax.set_xscale("log", base=2)
    ax.set_xlim(1, tau_max)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("τ (within a factor τ of the best solver)")
    ax.set_ylabel("share of problems solved")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def header(opts, problems) -> str:
    import importlib.metadata as md

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    versions = ", ".join(
        f"{name} {md.version(dist)}"
        for name, dist in [
            ("sif2jax", "sif2jax"),
            ("SciPy", "scipy"),
            ("Optimistix", "optimistix"),
            ("Optax", "optax"),
        ]
    )
    qn_settings = "qn.LBFGS() / qn.BFGS() defaults" if opts.qn_defaults else f"rtol = atol = {opts.tol:g} for qn"
    return (
        f"{quasinewton_version()}, {versions}, JAX {jax.__version__} "
        f"({jax.default_backend()}), NumPy {np.__version__}, Python "
        f"{platform.python_version()}; {os.cpu_count()} CPUs, load average {load}.\n\n"
        f"{len(problems)} problems ({opts.size_text}), float64; tolerance {opts.tol:g} "
        f"({qn_settings}), at most {opts.max_evals:,} evaluations. Solved: "
        f"f ≤ f* + {SOLVED_RTOL:g}·max(1, |f*|), f* the lowest value any solver reached."
    )


# ----------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[cutest] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", choices=list(SIZES), default="small")
    p.add_argument("--min-n", type=int, default=None)
    p.add_argument("--max-n", type=int, default=None)
    p.add_argument("--problems", default=None, help="comma-separated problem names")
    p.add_argument("--quick", action="store_true", help="a handful of small problems")
    p.add_argument(
        "--solvers",
        default=",".join(s.key for s in SOLVERS),
        help="comma-separated subset of " + ", ".join(s.key for s in SOLVERS),
    )
    p.add_argument("--tol", type=float, default=1e-8)
    p.add_argument("--max-evals", type=int, default=10_000)
    p.add_argument("--qn-defaults", action="store_true", help="qn solvers with default tolerances")
    p.add_argument(
        "--count-evals",
        choices=["needed", "all"],
        default="needed",
        help="counting runs for the solvers that do not report evaluations, or for all",
    )
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "benchmarks")
    p.add_argument("--tag", default=None, help="output file stem (default cutest_<sizes>)")
    p.add_argument(
        "--clear-caches",
        action="store_true",
        help="jax.clear_caches() before every run, so that nothing compiled for an "
        "earlier problem is reused (by default the process keeps its caches, as a "
        "user's session does)",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)

    keys = [s.strip() for s in opts.solvers.split(",") if s.strip()]
    unknown = set(keys) - set(BY_KEY)
    if unknown:
        p.error(f"unknown solvers {sorted(unknown)}")
    keys = [s.key for s in SOLVERS if s.key in keys]
    lo, hi = SIZES[opts.sizes]
    lo = opts.min_n if opts.min_n is not None else lo
    hi = opts.max_n if opts.max_n is not None else hi
    names = None
    if opts.problems:
        names = [s.strip() for s in opts.problems.split(",") if s.strip()]
    elif opts.quick:
        names = QUICK
    problems = load_problems(lo, hi, names)
    opts.size_text = f"{lo} ≤ n ≤ {hi}" if names is None else "selected: " + ", ".join(names)
    tag = opts.tag or f"cutest_{opts.sizes}" + ("_quick" if opts.quick else "")
    log(f"{len(problems)} problems, solvers {', '.join(keys)}")

    t_start = time.perf_counter()
    records: list[Record] = []
    for i, prob in enumerate(problems):
        fvalue = jax.jit(prob.objective)
        recs = [run_one(BY_KEY[k], prob, opts, fvalue) for k in keys]
        score(recs)
        records += recs
        log(
            f"{i + 1}/{len(problems)} {prob.name} (n={prob.n}) f*={recs[0].fstar:.6g}: "
            + "; ".join(
                f"{BY_KEY[r.solver].label} {'ok' if r.solved else 'FAIL'} "
                f"{r.nfev} ev {r.t_compile or 0:.2f}/{r.t_run or 0:.3f}s"
                for r in recs
            )
        )

    total = time.perf_counter() - t_start
    table = summary_table(records, keys, problems)
    text = "\n\n".join(
        [
            header(opts, problems),
            table,
            "Unsolved runs (f − f* at the returned point, or the error):",
            unsolved_list(records, keys),
            f"Benchmark wall time {total:.0f} s.",
        ]
    )
    print(text)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    (opts.out_dir / f"{tag}.txt").write_text(text + "\n")
    with open(opts.out_dir / f"{tag}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        fields = [f.name for f in dataclasses.fields(Record)]
        w.writerow(fields)
        for r in records:
            w.writerow([getattr(r, f) for f in fields])
    if not opts.no_plots:
        figs = opts.out_dir / "figures"
        figs.mkdir(parents=True, exist_ok=True)
        for metric, suffix, what in [
            ("nfev", "evals", "objective evaluations"),
            ("t_run", "time", "run time without compilation"),
            ("t_compile", "time_compile", "wall time including compilation"),
        ]:
            performance_profile(
                records,
                keys,
                problems,
                metric,
                figs / f"{tag}_{suffix}.png",
                f"CUTEst ({opts.size_text}): {what}",
            )
    log(f"wrote {opts.out_dir / tag}.txt, .csv" + ("" if opts.no_plots else " and figures/"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
