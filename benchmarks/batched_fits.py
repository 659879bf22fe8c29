"""Many small fits at once: quasinewton vs Optimistix, JAXopt and SciPy.

What
----
10⁴ independent least-squares fits by default (``--num-fits``, up to 10⁶), of two
models, each solved by every solver from the same data and starts:

(a) **Exponential decay** ``y = a·exp(−b·t) + c`` on m = 50 points t = linspace(0, 4),
    3 parameters. True parameters per fit: a ~ U[1, 3], b ~ U[0.5, 2], c ~ U[0, 1]
    (independent); Gaussian noise σ = 0.05; start (1, 1, 0) for every fit.
(b) **Gpufit's GAUSS_2D benchmark** (``examples/Gpufit_Cpufit_Performance_Comparison.cpp``
    in github.com/gpufit/Gpufit): a 5×5 pixel grid with pixel coordinates 0..4,
    model ``amp·exp(−((x − x0)² + (y − y0)²)/(2·w²)) + offset``, 5 parameters. True
    parameters (amp, x0, y0, w, offset) = (500, 2, 2, 1, 10), each multiplied per fit by
    an independent factor ~ U[0.9, 1.1]; the start is the fit's true parameters
    multiplied again by independent factors ~ U[0.9, 1.1]. Gaussian noise at SNR 10.
    Gpufit defines the SNR of this benchmark as mean signal / σ_noise, the mean signal
    being the Gaussian's integral spread over its full-width-at-tenth-maximum square,
    2π·amp·w² / (4.292·w)², evaluated at the *nominal* parameters (amp = 500, w = 1):
    σ_noise = 170.5 / 10 = 17.05 for every fit (``--snr-definition gpufit``, the
    default). ``--snr-definition peak`` uses σ_noise = amp/SNR = 50 instead.

Solvers, side by side in one process, all under ``jax.jit`` + ``jax.vmap`` except SciPy:

- ``qn.LevenbergMarquardt(rtol=tol, atol=tol)``, the default preset (for n ≤ 8 it
  takes the lean path: only JᵀJ is kept and the damped normal equations are solved
  by a Cholesky factorisation written out entry by entry), and the same with
  ``linear_solver=lx.QR()`` (QR of [J; √(λD)], through Lineax);
  ``qn.least_squares(..., max_steps=256, throw=False)``; the vmapped function
  returns the whole batched ``qn.Solution``.
- Optimistix ``optx.LevenbergMarquardt(rtol=tol, atol=tol)`` via
  ``optx.least_squares(..., max_steps=256, throw=False)``. Optimistix 0.1.0 cannot
  return its whole ``Solution`` from ``jax.vmap`` (its state holds a jaxpr, "not a
  valid JAX type"); the script tries, and falls back to returning only ``.value``
  and ``.result`` (the tables say which happened).
- JAXopt ``jaxopt.LevenbergMarquardt(stop_criterion="madsen-nielsen", xtol=tol,
  gtol=tol, maxiter=256, materialize_jac=True, solver="cholesky")``: dense
  normal-equation steps, the natural choice for 3–5 unknowns. It has no success
  flag; a fit counts as successful if it stopped before ``maxiter`` at a finite
  point.
- SciPy ``least_squares(method="lm", xtol=ftol=gtol=tol, max_nfev=256)`` (MINPACK) in
  a Python loop with the residual and an exact Jacobian (``jax.jacfwd``) each
  ``jax.jit``-ed, in float64 only (SciPy's ``lm`` works in float64). Only the first
  ``--scipy-fits`` fits (500 by default) are run; fits/s is measured on them and
  stands for the whole batch (extrapolated: the loop's cost is linear in the
  number of fits).

Tolerances: tol = 1e-8 in float64 and 1e-5 in float32 (``--tol64``, ``--tol32``).

Precision: ``jax_enable_x64`` is switched on at import so that both dtypes are
available, but the float32 solves are traced and run inside
``jax.enable_x64(False)``, as in a float32-only program. With 64-bit types on,
Optimistix 0.1.0's LevenbergMarquardt fails on float32 problems (its trust-region
step size starts as a float64 ``jnp.array(1.0)``, so the damped operator's output
structure is float64: "Vector and operator structures do not match"), and JAXopt
builds its damping term from a float64 ``jnp.identity`` and so solves its float32
normal equations in float64. quasinewton's float32 solve has no float64 operation
either way. ``--x64-in-float32`` keeps 64-bit types on during the float32 solves.

Measured, per solver (each in the same process, one after another, after
``jax.clear_caches()``):

- *compile (s)*: tracing, lowering and XLA compilation of the jitted batch, timed
  on their own (``jax.jit(f).lower(...).compile()``, the fastest of three from cleared
  caches, so that one-time costs of the process do not fall on whichever solver
  happens to run first). For SciPy: the first fit
  (jit of r and J) minus the second fit.
- *fits/s*: number of fits / median wall time of ``--repeats`` runs of the whole
  compiled batch after one untimed run (3 by default), each ended by
  ``jax.block_until_ready``; and its ratio to Optimistix LM in the same table.
- *steps, median / max*: trial points evaluated per fit (qn ``num_steps``, JAXopt
  ``iter_num``, SciPy ``nfev``; not available for Optimistix, see above). Under
  ``vmap`` a batch loops until its slowest fit is done, so the max sets the cost.
- *at best cost*: the share of fits whose final cost ½‖r‖², recomputed in float64
  by one common NumPy function from the float64 data at the returned parameters
  (cast to float64), is ≤ best·(1 + 1e-6) + abs_tol, where best is the lowest such
  cost any solver in the same table (same model and dtype) found for that fit
  (SciPy only for the fits it ran). Why 1e-6: the residuals are small differences
  of larger numbers (noise 0.05 on data up to 4; noise 17 on pixels up to 560), so
  rounding them to float32 alone perturbs the cost by a few 1e-7 relative (each
  float32 table prints the estimate), and 1e-6 is about the best a float32 solve
  can be asked for: one at its precision floor passes nearly always (a float32
  miss by 1–2e-6 is rounding, not a worse fit), one that stopped short fails. In
  float64, 1e-6 is far looser than what the solvers reach (~1e-14), so a miss
  there is a genuinely worse result: another local minimum, or a stop far from one.
  The "worst cost excess" column, max over fits of (cost − best)/best, shows by
  how much.
  abs_tol = 1e-12·m·σ²/2 (m·σ²/2 is the expected cost at the truth): the costs are
  χ²-distributed around (m − n)·σ²/2 and never near 0, so the absolute term only
  guards against a zero best cost and never decides a comparison in practice.
  Non-finite parameters count as cost +inf.
- *success*: the share of fits that reported success (qn / Optimistix:
  ``RESULTS.successful``; JAXopt: see above; SciPy: ``status > 0``).

Batches larger than ``--chunk-size`` (10⁵) are processed in chunks of that size by
``jax.lax.map(..., batch_size=chunk)`` (a sequential loop over vmapped chunks) to
bound memory; with the default 10⁴ fits every solver sees one vmap over all fits.

Reproduce (2-core CPU; data come from fixed NumPy seeds):

    python benchmarks/batched_fits.py                      # 10⁴ fits, both models, both dtypes (~2 min)
    python benchmarks/batched_fits.py --quick              # smoke test: 500 fits, 1 timing run (~30 s)
    python benchmarks/batched_fits.py --num-fits 1000000 --model gauss2d --dtype float32 --solvers qn,jaxopt --repeats 1   # ~2.5 min, 2.5 GB RSS
    python benchmarks/batched_fits.py --out results.md     # also write the tables

or ``python3 run.py bench batched_fits.py [options]``. Timings on a shared machine are
noisy: read the ratios, measured in the same run, rather than the absolute numbers.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
from _provenance import quasinewton_version

MAX_STEPS = 256
BEST_RTOL = 1e-6  # "at best cost": relative slack on the best cost found
BEST_ATOL_FACTOR = 1e-12  # ... plus this times m·σ²/2

# ----------------------------------------------------------------------------------
# Models and data
# ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Problem:
    """A batch of fits of one model.

    `residual(p, shared, data)` is the JAX residual of one fit (p: parameters,
    shared: arrays common to all fits, data: this fit's observations);
    `model64(P, *shared)` is the model for all fits at once in float64 NumPy, from
    which `cost64` computes every solver's ½‖r‖² the same way.
    """

    name: str
    title: str
    description: str
    residual: Callable
    model64: Callable
    shared: tuple  # float64 NumPy arrays common to every fit
    data: np.ndarray  # (num_fits, m) float64
    y0: np.ndarray  # (num_fits, n) float64
    truth: np.ndarray  # (num_fits, n) float64
    noise_sigma: float

    @property
    def num_fits(self) -> int:
        return self.data.shape[0]

    @property
    def m(self) -> int:
        return self.data.shape[1]

    @property
    def n(self) -> int:
        return self.y0.shape[1]

    @property
    def abs_tol(self) -> float:
        return BEST_ATOL_FACTOR * self.m * self.noise_sigma**2 / 2

    def cost64(self, P: np.ndarray) -> np.ndarray:
        """½‖r‖² in float64 at parameters P (k, n) for the first k fits; +inf where
        not finite."""
        with np.errstate(all="ignore"):
            r = (
                self.model64(np.asarray(P, np.float64), *self.shared)
                - self.data[: len(P)]
            )
            c = 0.5 * np.sum(r * r, axis=1)
        return np.where(np.isfinite(c), c, np.inf)

    def float32_cost_resolution(self) -> tuple[float, float]:
        """How finely float32 can resolve ½‖r‖²: rounding each residual to float32
        (an error of about u₃₂·|model|, u₃₂ = 2⁻²⁴) perturbs the cost by about
        u₃₂·‖r∘model‖ (random signs). Relative to the cost, at the truth: (median,
        99th percentile) over fits. The solvers' own arithmetic adds more."""
        model = self.model64(self.truth, *self.shared)
        r = model - self.data
        rel = (
            2.0**-24
            * np.sqrt(np.sum((r * model) ** 2, axis=1))
            / (0.5 * np.sum(r * r, axis=1))
        )
        return float(np.median(rel)), float(np.percentile(rel, 99))


def exp_residual(p, shared, data):
    (t,) = shared
    a, b, c = p[0], p[1], p[2]
    return a * jnp.exp(-b * t) + c - data


def exp_model64(P, t):
    """a·exp(−b·t) + c for all fits at once, float64 NumPy: (num_fits, 50)."""
    return P[:, 0:1] * np.exp(-P[:, 1:2] * t) + P[:, 2:3]


def make_exp_problem(num_fits: int, seed: int = 1) -> Problem:
    """y = a·exp(−b·t) + c, 50 points on [0, 4], σ = 0.05, start (1, 1, 0)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 4.0, 50)
    truth = np.stack(
        [
            rng.uniform(1.0, 3.0, num_fits),
            rng.uniform(0.5, 2.0, num_fits),
            rng.uniform(0.0, 1.0, num_fits),
        ],
        axis=1,
    )
    sigma = 0.05
    clean = exp_model64(truth, t)
    data = clean + sigma * rng.standard_normal(clean.shape)
    y0 = np.broadcast_to(np.array([1.0, 1.0, 0.0]), truth.shape).copy()
    return Problem(
        name="exp",
        title="Exponential decay y = a·exp(−b·t) + c",
        description=(
            "m = 50 points, t = linspace(0, 4); n = 3; truth a ~ U[1, 3], "
            "b ~ U[0.5, 2], c ~ U[0, 1]; noise σ = 0.05; start (1, 1, 0)"
        ),
        residual=exp_residual,
        model64=exp_model64,
        shared=(t,),
        data=data,
        y0=y0,
        truth=truth,
        noise_sigma=sigma,
    )


GAUSS_SIZE = 5
GAUSS_TRUE = np.array([500.0, 2.0, 2.0, 1.0, 10.0])  # amp, x0, y0, width, offset
GAUSS_SNR = 10.0


def gauss2d_residual(p, shared, data):
    x, y = shared
    amp, x0, y0, w, offset = p[0], p[1], p[2], p[3], p[4]
    arg = ((x - x0) ** 2 + (y - y0) ** 2) / (2 * w * w)
    return amp * jnp.exp(-arg) + offset - data


def gauss2d_model64(P, x, y):
    """The GAUSS_2D model for all fits at once, float64 NumPy: (num_fits, 25)."""
    amp, x0, y0, w, off = (P[:, i : i + 1] for i in range(5))
    return amp * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * w * w)) + off


def gauss_noise_sigma(definition: str) -> float:
    """σ_noise at SNR 10 from the nominal parameters (amp = 500, w = 1)."""
    amp, w = GAUSS_TRUE[0], GAUSS_TRUE[3]
    if definition == "gpufit":
        # Gpufit_Cpufit_Performance_Comparison.cpp, add_gauss_noise: the mean signal
        # over the full-width-at-tenth-maximum square.
        fwtm = 4.292 * w
        mean_signal = 2 * np.pi * amp * w * w / (fwtm * fwtm)
        return mean_signal / GAUSS_SNR
    return amp / GAUSS_SNR  # "peak"


def make_gauss2d_problem(num_fits: int, snr_definition: str, seed: int = 2) -> Problem:
    """Gpufit's GAUSS_2D benchmark on a 5×5 grid."""
    rng = np.random.default_rng(seed)
    truth = GAUSS_TRUE * rng.uniform(0.9, 1.1, (num_fits, 5))
    y0 = truth * rng.uniform(0.9, 1.1, (num_fits, 5))
    # Pixel (ix, iy) is point iy·5 + ix, as in Gpufit; coordinates 0..4.
    iy, ix = np.divmod(np.arange(GAUSS_SIZE * GAUSS_SIZE), GAUSS_SIZE)
    x, y = ix.astype(np.float64), iy.astype(np.float64)
    clean = gauss2d_model64(truth, x, y)
    sigma = gauss_noise_sigma(snr_definition)
    data = clean + sigma * rng.standard_normal(clean.shape)
    if snr_definition == "gpufit":
        snr_text = (
            f"SNR 10 as Gpufit defines it: σ = (2π·amp·w²/(4.292·w)²)/10 at the nominal "
            f"amp = 500, w = 1, i.e. σ = {sigma:.2f} for every fit"
        )
    else:
        snr_text = (
            f"SNR 10 as peak amplitude / σ: σ = 500/10 = {sigma:.0f} for every fit"
        )
    return Problem(
        name="gauss2d",
        title="Gpufit GAUSS_2D, 5×5 pixels",
        description=(
            "m = 25 pixels at coordinates 0..4; n = 5; truth (amp, x0, y0, w, offset) = "
            "(500, 2, 2, 1, 10)·U[0.9, 1.1] each; start = truth·U[0.9, 1.1] each; "
            + snr_text
        ),
        residual=gauss2d_residual,
        model64=gauss2d_model64,
        shared=(x, y),
        data=data,
        y0=y0,
        truth=truth,
        noise_sigma=sigma,
    )


# ----------------------------------------------------------------------------------
# Solvers
# ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What one solver produced on one batch."""

    params: np.ndarray | None = None  # (fits run, n), float64
    success: np.ndarray | None = None  # (fits run,) bool
    steps: np.ndarray | None = None  # (fits run,) trial points evaluated, if known
    failures: str = ""  # how the unsuccessful fits ended
    num_fits: int = 0  # fits run (SciPy: a subset)
    compile_s: float | None = None
    run_s: list[float] = dataclasses.field(default_factory=list)
    note: str = ""
    error: str | None = None

    @property
    def fits_per_s(self) -> float | None:
        if not self.run_s:
            return None
        return self.num_fits / float(np.median(self.run_s))


def batched(fn: Callable, num_fits: int, chunk: int) -> Callable:
    """vmap `fn(y0, data, shared)` over the first two arguments, in chunks if the
    batch is larger than `chunk`."""
    vfn = jax.vmap(fn, in_axes=(0, 0, None))
    if num_fits <= chunk:
        return vfn

    def chunked(y0s, datas, shared):
        return jax.lax.map(
            lambda xs: fn(xs[0], xs[1], shared), (y0s, datas), batch_size=chunk
        )

    return chunked


def evaluation_floor(problem: Problem, dtype, repeats: int, chunk: int) -> float:
    """Seconds for one residual-and-Jacobian evaluation of the whole batch (forward
    mode, as the dense solvers use), the median of `repeats` + 2 runs after compile:
    the work every iteration of every dense Gauss–Newton method does at least."""
    residual = problem.residual

    def jac(y0, data, shared):
        return jax.jacfwd(lambda p: residual(p, shared, data))(y0)

    f = jax.jit(batched(jac, problem.num_fits, chunk))
    y0s, datas, shared = device_inputs(problem, dtype)
    _, _, runs = time_jax(f, (y0s, datas, shared), repeats + 2)
    return float(np.median(runs))


def count_results(enum, result) -> str:
    """'12 max_steps_reached, 1 nonfinite': the unsuccessful fits by result code, for
    an Equinox enumeration (qn.RESULTS, optx.RESULTS)."""
    counts = []
    for name, item in enum._name_to_item.items():  # Equinox keeps no public list
        k = int(np.sum(np.asarray(result == item)))
        if k and name != "successful":
            counts.append(f"{k} {name}")
    return ", ".join(counts)


def time_jax(f: Callable, args: tuple, repeats: int) -> tuple[object, float, list[float]]:
    """Compile the jitted `f` ahead of time for `args` (trace + lower + XLA compile,
    timed on its own; the fastest of three compilations from cleared caches, so
    that one-time costs of the process, which fall on whichever solver runs first,
    and the machine's noise count as little as possible), then run it once untimed and `repeats` times timed; returns
    (output, compile seconds, run seconds)."""
    times = []
    for _ in range(3):
        jax.clear_caches()
        t0 = time.perf_counter()
        compiled = f.lower(*args).compile()
        times.append(time.perf_counter() - t0)
    compile_s = min(times)
    out = jax.block_until_ready(compiled(*args))
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - t0)
    return out, compile_s, runs


def run_qn(
    problem: Problem, dtype, tol: float, repeats: int, chunk: int, qr: bool
) -> Run:
    import lineax as lx

    import quasinewton as qn

    solver = qn.LevenbergMarquardt(
        rtol=tol, atol=tol, linear_solver=lx.QR() if qr else None
    )
    residual = problem.residual

    def fit(y0, data, shared):
        return qn.least_squares(
            lambda p, args: residual(p, *args),
            solver,
            y0,
            (shared, data),
            max_steps=MAX_STEPS,
            throw=False,
        )

    f = jax.jit(batched(fit, problem.num_fits, chunk))
    y0s, datas, shared = device_inputs(problem, dtype)
    sol, compile_s, runs = time_jax(f, (y0s, datas, shared), repeats)
    return Run(
        params=np.asarray(sol.value, np.float64),
        success=np.asarray(sol.result == qn.RESULTS.successful),
        steps=np.asarray(sol.stats["num_steps"]),
        failures=count_results(qn.RESULTS, sol.result),
        num_fits=problem.num_fits,
        compile_s=compile_s,
        run_s=runs,
        note="whole `qn.Solution` returned from vmap",
    )


def run_optimistix(
    problem: Problem, dtype, tol: float, repeats: int, chunk: int
) -> Run:
    import optimistix as optx

    solver = optx.LevenbergMarquardt(rtol=tol, atol=tol)
    residual = problem.residual
    y0s, datas, shared = device_inputs(problem, dtype)

    def solve(y0, data, shared):
        return optx.least_squares(
            lambda p, args: residual(p, *args),
            solver,
            y0,
            (shared, data),
            max_steps=MAX_STEPS,
            throw=False,
        )

    # First try to return the whole Solution, as qn does; Optimistix 0.1.0 fails
    # at trace time (its state holds a jaxpr), so fall back to (value, result).
    note = "whole `optx.Solution` returned from vmap"
    try:
        f = jax.jit(batched(solve, problem.num_fits, chunk))
        jax.eval_shape(f, y0s, datas, shared)
        whole = True
    except TypeError as e:
        whole = False
        first_line = str(e).splitlines()[0][:60]
        note = (
            "returns only `.value`, `.result` from vmap (the whole `optx.Solution` "
            f"fails: TypeError '{first_line}… is not a valid JAX type')"
        )

        def value_result(y0, data, shared):
            sol = solve(y0, data, shared)
            return sol.value, sol.result

        f = jax.jit(batched(value_result, problem.num_fits, chunk))
    jax.clear_caches()  # the failed attempt traced some of the same functions
    out, compile_s, runs = time_jax(f, (y0s, datas, shared), repeats)
    value, result = (out.value, out.result) if whole else out
    return Run(
        params=np.asarray(value, np.float64),
        success=np.asarray(result == optx.RESULTS.successful),
        failures=count_results(optx.RESULTS, result),
        num_fits=problem.num_fits,
        compile_s=compile_s,
        run_s=runs,
        note=note,
    )


def run_jaxopt(problem: Problem, dtype, tol: float, repeats: int, chunk: int) -> Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import jaxopt

    residual = problem.residual
    solver = jaxopt.LevenbergMarquardt(
        residual_fun=lambda p, shared, data: residual(p, shared, data),
        maxiter=MAX_STEPS,
        stop_criterion="madsen-nielsen",
        xtol=tol,
        gtol=tol,
        tol=tol,
        materialize_jac=True,
        solver="cholesky",
    )

    def fit(y0, data, shared):
        params, state = solver.run(y0, shared, data)
        return params, state.iter_num

    f = jax.jit(batched(fit, problem.num_fits, chunk))
    y0s, datas, shared = device_inputs(problem, dtype)
    (params, iters), compile_s, runs = time_jax(f, (y0s, datas, shared), repeats)
    params, iters = np.asarray(params, np.float64), np.asarray(iters)
    finite = np.all(np.isfinite(params), axis=1)
    success = (iters < MAX_STEPS) & finite
    failures = [
        f"{np.sum(~finite)} non-finite",
        f"{np.sum(finite & ~success)} reached maxiter",
    ]
    return Run(
        params=params,
        success=success,
        steps=iters,
        failures=", ".join(f for f in failures if not f.startswith("0 ")),
        num_fits=problem.num_fits,
        compile_s=compile_s,
        run_s=runs,
        note="success := stopped before maxiter at a finite point",
    )


def run_scipy(problem: Problem, tol: float, repeats: int, subset: int) -> Run:
    from scipy.optimize import least_squares

    k = min(subset, problem.num_fits)
    residual = problem.residual
    shared = tuple(jnp.asarray(s) for s in problem.shared)
    res = jax.jit(lambda p, d: residual(p, shared, d))
    jac = jax.jit(jax.jacfwd(lambda p, d: residual(p, shared, d)))
    y0s = problem.y0[:k]
    datas = [jnp.asarray(d) for d in problem.data[:k]]  # on the device beforehand

    def fit(i):
        d = datas[i]
        return least_squares(
            lambda p: np.asarray(res(p, d)),
            y0s[i],
            jac=lambda p: np.asarray(jac(p, d)),
            method="lm",
            xtol=tol,
            ftol=tol,
            gtol=tol,
            max_nfev=MAX_STEPS,
        )

    t0 = time.perf_counter()
    fit(0)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit(0)
    second = time.perf_counter() - t0

    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sols = [fit(i) for i in range(k)]
        runs.append(time.perf_counter() - t0)
    statuses = collections.Counter(int(s.status) for s in sols if s.status <= 0)
    return Run(
        params=np.stack([s.x for s in sols]),
        success=np.array([s.status > 0 for s in sols]),
        steps=np.array([s.nfev for s in sols]),
        failures=", ".join(
            f"{n} with status {st}" for st, n in sorted(statuses.items())
        ),
        num_fits=k,
        compile_s=first - second,
        run_s=runs,
        note=f"first {k} fits only, in a Python loop; fits/s extrapolated to the batch",
    )


def device_inputs(problem: Problem, dtype):
    return (
        jnp.asarray(problem.y0, dtype),
        jnp.asarray(problem.data, dtype),
        tuple(jnp.asarray(s, dtype) for s in problem.shared),
    )


@dataclasses.dataclass
class SolverSpec:
    key: str
    label: str
    settings: Callable[[float], str]
    run: Callable  # (problem, dtype, tol, opts) -> Run
    float64_only: bool = False


SOLVERS = [
    SolverSpec(
        "qn",
        "qn LevenbergMarquardt",
        lambda tol: f"rtol = atol = {tol:g} (default: lean normal-equations path)",
        lambda p, dt, tol, o: run_qn(p, dt, tol, o.repeats, o.chunk_size, qr=False),
    ),
    SolverSpec(
        "qn-qr",
        "qn LevenbergMarquardt (QR)",
        lambda tol: f"rtol = atol = {tol:g}, `linear_solver=lx.QR()`",
        lambda p, dt, tol, o: run_qn(p, dt, tol, o.repeats, o.chunk_size, qr=True),
    ),
    SolverSpec(
        "optimistix",
        "Optimistix LevenbergMarquardt",
        lambda tol: f"rtol = atol = {tol:g}",
        lambda p, dt, tol, o: run_optimistix(p, dt, tol, o.repeats, o.chunk_size),
    ),
    SolverSpec(
        "jaxopt",
        "JAXopt LevenbergMarquardt",
        lambda tol: (
            f"madsen-nielsen, xtol = gtol = {tol:g}, dense J, Cholesky, maxiter = {MAX_STEPS}"
        ),
        lambda p, dt, tol, o: run_jaxopt(p, dt, tol, o.repeats, o.chunk_size),
    ),
    SolverSpec(
        "scipy",
        "SciPy least_squares lm",
        lambda tol: (
            f"xtol = ftol = gtol = {tol:g}, max_nfev = {MAX_STEPS}, jitted exact J"
        ),
        lambda p, dt, tol, o: run_scipy(p, tol, o.repeats, o.scipy_fits),
        float64_only=True,
    ),
]
REFERENCE = "optimistix"  # fits/s ratios are to this solver


# ----------------------------------------------------------------------------------
# Scoring and tables
# ----------------------------------------------------------------------------------


def score(problem: Problem, runs: dict[str, Run]) -> dict[str, dict]:
    """Float64 costs at every solver's parameters, the best per fit, and the shares."""
    costs = {
        key: problem.cost64(r.params) for key, r in runs.items() if r.params is not None
    }
    best = np.full(problem.num_fits, np.inf)
    for c in costs.values():
        best[: c.size] = np.minimum(best[: c.size], c)
    out = {}
    for key, c in costs.items():
        b = best[: c.size]
        at_best = c <= b * (1 + BEST_RTOL) + problem.abs_tol
        rel_excess = np.where(np.isfinite(c), (c - b) / b, np.inf)
        out[key] = {
            "at_best": float(np.mean(at_best)),
            "success": float(np.mean(runs[key].success)),
            "worst_rel_excess": float(np.max(rel_excess)),
        }
    return out


def compile_text(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds >= 0.005 else "≈0 (in the noise)"


def markdown_table(
    problem: Problem,
    dtype: str,
    tol: float,
    runs: dict[str, Run],
    opts,
    floor_s: float | None = None,
) -> str:
    scores = score(problem, runs)
    ref = runs.get(REFERENCE)
    ref_fps = ref.fits_per_s if ref is not None and ref.error is None else None
    precision = ""
    if dtype == "float32":
        med, p99 = problem.float32_cost_resolution()
        precision = (
            f" Rounding the residuals to float32 alone perturbs ½‖r‖² by about "
            f"{med:.1e} relative (median over fits; 99th percentile {p99:.1e}), so float32 "
            f"solves at their precision floor can differ from the best by ~1e-6."
        )
    lines = [
        f"### {problem.title} — {dtype}, {problem.num_fits:,} fits",
        "",
        f"{problem.description}. Tolerance {tol:g}; max {MAX_STEPS} steps.{precision}",
        "",
        (
            "| solver | settings | compile (s) | fits/s | ÷ Optimistix | at best cost "
            "| success | worst cost excess | steps, median / max |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for spec in SOLVERS:
        if spec.key not in runs:
            continue
        r = runs[spec.key]
        if r.error is not None:
            lines.append(
                f"| {spec.label} | {spec.settings(tol)} | ERROR: {r.error} | | | | | | |"
            )
            continue
        s = scores[spec.key]
        fps = r.fits_per_s
        ratio = f"{fps / ref_fps:.2f}×" if fps and ref_fps else "—"
        subset = f" ({r.num_fits} fits)" if r.num_fits < problem.num_fits else ""
        steps = (
            "—" if r.steps is None else f"{np.median(r.steps):.0f} / {np.max(r.steps)}"
        )
        lines.append(
            f"| {spec.label} | {spec.settings(tol)} | {compile_text(r.compile_s)} | {fps:,.0f}{subset} "
            f"| {ratio} | {100 * s['at_best']:.2f}% | {100 * s['success']:.2f}% "
            f"| {s['worst_rel_excess']:.1e} | {steps} |"
        )
        note = r.note + (f"; unsuccessful: {r.failures}" if r.failures else "")
        if note:
            notes.append(f"{spec.label}: {note}.")
    if dtype == "float32" and any(
        s.float64_only for s in SOLVERS if s.key in opts.solvers
    ):
        notes.append("SciPy `lm` runs in float64 only: see the float64 table.")
    qn_run = runs.get("qn")
    if floor_s is not None and qn_run is not None and qn_run.steps is not None:
        worst = int(np.max(qn_run.steps))
        notes.append(
            f"Evaluation floor: one residual + Jacobian evaluation of all "
            f"{problem.num_fits:,} fits takes {1e3 * floor_s:.2f} ms; the {worst} steps "
            f"of qn's slowest fit (which a vmapped batch runs for every fit) cost at least "
            f"{1e3 * worst * floor_s:.0f} ms of evaluations, at most "
            f"{problem.num_fits / (worst * floor_s):,.0f} fits/s for any method taking "
            f"those steps under vmap."
        )
    lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def header(opts) -> str:
    """Versions, machine, and what the columns mean."""
    import importlib.metadata as md

    qn_text = quasinewton_version()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return "\n".join(
        [
            "## Batched small fits",
            "",
            (
                f"{qn_text}, Optimistix {md.version('optimistix')}, JAXopt "
                f"{md.version('jaxopt')}, SciPy {md.version('scipy')}, JAX {jax.__version__} "
                f"({jax.default_backend()}), NumPy {np.__version__}, Python "
                f"{platform.python_version()}; {os.cpu_count()} CPUs, load average {load}."
            ),
            "",
            (
                f"compile = trace + lower + XLA compile, timed alone; fits/s = fits / median of "
                f'{opts.repeats} timed batch runs; "÷ Optimistix" = fits/s ratio to '
                f'Optimistix LM in the same table. "at best cost": the float64 cost ½‖r‖² '
                f"at the returned parameters is within {BEST_RTOL:g} relative (+ "
                f"{BEST_ATOL_FACTOR:g}·m·σ²/2) of the lowest any solver in the table found "
                f'for that fit; "worst cost excess" = max over fits of (cost − best)/best. '
                f'"success" = the solver reported success. "steps" = trial points per fit; '
                f"under vmap the batch runs until its slowest fit is done. Float32 solves "
                f"run with jax_enable_x64 {'on' if opts.x64_in_float32 else 'off'} (see "
                f"the script's docstring)."
            ),
        ]
    )


# ----------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[batched_fits] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--num-fits",
        type=int,
        default=None,
        help="fits per model (10⁴; 500 with --quick)",
    )
    p.add_argument("--model", choices=["exp", "gauss2d", "both"], default="both")
    p.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 500 fits, 1 timed run, 100 SciPy fits",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per solver (3; 1 with --quick)",
    )
    p.add_argument(
        "--scipy-fits",
        type=int,
        default=None,
        help="fits SciPy runs (500; 100 with --quick)",
    )
    p.add_argument("--tol64", type=float, default=1e-8)
    p.add_argument("--tol32", type=float, default=1e-5)
    p.add_argument(
        "--solvers",
        default=",".join(s.key for s in SOLVERS),
        help="comma-separated subset of " + ", ".join(s.key for s in SOLVERS),
    )
    p.add_argument(
        "--snr-definition",
        choices=["gpufit", "peak"],
        default="gpufit",
        help="GAUSS_2D noise: Gpufit's mean-signal SNR (σ = 17.05) or amp/SNR (σ = 50)",
    )
    p.add_argument(
        "--x64-in-float32",
        action="store_true",
        help="keep jax_enable_x64 on during the float32 solves (Optimistix 0.1.0 then "
        "fails, and JAXopt silently does part of its work in float64)",
    )
    p.add_argument(
        "--chunk-size", type=int, default=100_000, help="largest single vmap"
    )
    p.add_argument("--out", type=Path, help="also write the tables (markdown) here")
    opts = p.parse_args(argv)

    opts.num_fits = opts.num_fits or (500 if opts.quick else 10_000)
    opts.repeats = opts.repeats or (1 if opts.quick else 3)
    opts.scipy_fits = opts.scipy_fits or (100 if opts.quick else 500)
    opts.solvers = [s.strip() for s in opts.solvers.split(",") if s.strip()]
    unknown = set(opts.solvers) - {s.key for s in SOLVERS}
    if unknown:
        p.error(f"unknown solvers {sorted(unknown)}")
    if not 1 <= opts.num_fits <= 10**6:
        p.error("--num-fits must be in 1..1,000,000")
    models = ["exp", "gauss2d"] if opts.model == "both" else [opts.model]
    dtypes = ["float32", "float64"] if opts.dtype == "both" else [opts.dtype]

    t_start = time.perf_counter()
    tables = []
    failures = []
    for model in models:
        problem = (
            make_exp_problem(opts.num_fits)
            if model == "exp"
            else make_gauss2d_problem(opts.num_fits, opts.snr_definition)
        )
        for dtype_name in dtypes:
            dtype = jnp.float32 if dtype_name == "float32" else jnp.float64
            tol = opts.tol32 if dtype_name == "float32" else opts.tol64
            # float32 solves run with 64-bit types disabled (see the docstring).
            x64_off = dtype_name == "float32" and not opts.x64_in_float32
            runs: dict[str, Run] = {}
            for spec in SOLVERS:
                if spec.key not in opts.solvers:
                    continue
                if spec.float64_only and dtype_name != "float64":
                    continue
                log(f"{model} {dtype_name} {spec.label} ...")
                jax.clear_caches()
                t0 = time.perf_counter()
                try:
                    with jax.enable_x64(False) if x64_off else contextlib.nullcontext():
                        r = spec.run(problem, dtype, tol, opts)
                except Exception as e:  # noqa: BLE001 (report it; carry on with the others)
                    msg = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                    r = Run(error=msg.replace("|", "\\|"))
                    failures.append(f"{model} {dtype_name} {spec.label}: {msg}")
                runs[spec.key] = r
                if r.error is None:
                    log(
                        f"  compile {r.compile_s:.2f} s, {r.fits_per_s:,.0f} fits/s, "
                        f"{100 * np.mean(r.success):.1f}% successful "
                        f"({time.perf_counter() - t0:.1f} s)"
                    )
                else:
                    log(f"  ERROR {r.error}")
            with jax.enable_x64(False) if x64_off else contextlib.nullcontext():
                floor_s = evaluation_floor(problem, dtype, opts.repeats, opts.chunk_size)
            table = markdown_table(problem, dtype_name, tol, runs, opts, floor_s)
            print(table + "\n", flush=True)
            tables.append(table)

    total = time.perf_counter() - t_start
    text = (
        header(opts)
        + "\n\n"
        + "\n\n".join(tables)
        + f"\n\nTotal wall time {total:.0f} s.\n"
    )
    print(f"Total wall time {total:.1f} s.")
    for f in failures:
        print(f"FAILED: {f}")
    if opts.out:
        opts.out.write_text(text + "".join(f"\nFAILED: {f}\n" for f in failures))
        log(f"wrote {opts.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
