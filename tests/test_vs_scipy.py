"""qn.LBFGS and qn.BFGS against SciPy on the Moré–Garbow–Hillstrom collection.

Every problem of ``tests/problems.py`` (38 of them, validated against SciPy and
published values in ``test_problems_data.py``) is solved from its standard start:

* float64: ``qn.LBFGS`` vs SciPy ``minimize(method="L-BFGS-B")`` and ``qn.BFGS`` vs
  SciPy ``method="BFGS"``, both given the exact JAX gradient. A run *solves* a
  problem when it ends within tolerance of f* or of a documented local minimum
  (``local_fstars``). qn must solve at least as many problems as SciPy, and over
  the problems both solve the median ratio of function evaluations (qn / SciPy)
  must be at most 1.25 -- both for the evaluations until termination and for the
  evaluations until the tolerance was first met (which does not depend on the
  two libraries' different stopping tests).
* float32: ``qn.LBFGS()`` with its default float32 tolerances on a subset of
  well-conditioned problems (chosen by the criteria stated at ``F32_NAMES``).

``pytest -s`` prints the comparison table.

Run time. ``qn.minimise`` compiles its whole loop, ~1.5-3 s per distinct solve
on this machine, so 76 per-problem compilations would take minutes. Instead each
solver is compiled *once* for all problems: the objective is
``lax.switch(index, objectives, y)`` and every problem is posed on a vector of
``N_PAD = 12`` unknowns, of which the problem reads the first n; the others start
at 0. Those extra coordinates have zero gradient, so every quantity L-BFGS and BFGS
compute -- directions (H₀ = γI and every update act on them by zero), step
lengths, sᵀy, norms, and the termination tests (their terms are exactly 0) -- is
that of the n-dimensional problem. ``test_padding_changes_nothing`` checks this
against an unpadded solve, and every per-problem test checks the extra
coordinates are still exactly 0 at the end.
"""

import dataclasses
import functools
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

import quasinewton as qn
from problems import PROBLEMS, get
from test_problems_data import _single_threaded_openblas

# Long (every Moré–Garbow–Hillstrom problem against SciPy, compiled per solver):
# run by CI and by `python3 run.py test -m slow`.
pytestmark = pytest.mark.slow

jax.config.update("jax_enable_x64", True)  # as conftest.py does; float32 is opt-in

NAMES = [p.name for p in PROBLEMS]
N_PAD = max(p.n for p in PROBLEMS)
MAX_STEPS = 2000  # the slowest run needs ~800 evaluations (SciPy BFGS, penalty2)

# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------

# qn tolerances in float64. The defaults (rtol = atol = 1e-6) stop when the scaled
# gradient is ~1e-6 (or on the step test): enough for f(x0) ~ 1, not to resolve
# f* to the accuracy asked below on problems with small f* (penalty f* ~ 1e-5,
# Osborne 1 5e-5) or a nearly singular Hessian (Meyer, cond ~1e16): with them
# L-BFGS stops short on 6 problems and BFGS on 8; with 1e-8 both still stop short
# on Meyer. 1e-10 resolves all of them, and is the gradient tolerance SciPy gets
# too, so the two stop at comparable accuracy. (1e-12 is no better: L-BFGS then
# ends with RESULTS.search_failed, at the minimum, on Watson and Trigonometric.)
QN_TOL = 1e-10
QN_SOLVERS = {
    "LBFGS": qn.LBFGS(rtol=QN_TOL, atol=QN_TOL),
    "BFGS": qn.BFGS(rtol=QN_TOL, atol=QN_TOL),
}
SCIPY_METHOD = {"LBFGS": "L-BFGS-B", "BFGS": "BFGS"}
# SciPy: the same gradient tolerance (BFGS: max|g_i| <= gtol; L-BFGS-B: max of the
# projected gradient <= gtol). L-BFGS-B also stops when (f_k - f_k+1) /
# max(|f_k|, |f_k+1|, 1) <= ftol; its default 2.2e-9 is an *absolute* test for
# f < 1 and stops it short on 13 more problems here, so it is set to 1e-15 (a few
# eps): L-BFGS-B then solves what it can (the same problems as with gtol = 1e-12
# in test_problems_data.py), ending on gtol or on its own line-search failure at
# the floating-point floor.
SCIPY_OPTIONS = {
    "BFGS": {"gtol": QN_TOL, "maxiter": 20_000},
    "L-BFGS-B": {"gtol": QN_TOL, "ftol": 1e-15, "maxiter": 20_000, "maxfun": 50_000},
}
MAX_MEDIAN_EVAL_RATIO = 1.25


def _tol64(p, target, f0):
    """How close a float64 run must end to `target` (f* or a local minimum value).

    1e-6 relative, plus an absolute term for f* = 0 (and tiny f*), where a relative
    test is meaningless: 1e-10 times the initial gap f(x0) - target, capped at 1e-10.
    So every run must reduce its initial gap by at least 1e10, whatever the scale:
    for the problems with f(x0) - target >= 1 (most) the term is 1e-10, i.e.
    |residual| <~ 1e-5 on zero-residual problems; for the few with a small start
    gap (Gaussian 3.9e-6, discrete boundary value 7.9e-4, Kowalik-Osborne 5e-3,
    Chebyquad 3.5e-2, ...) it shrinks with it, so f(x0) itself is nowhere near
    passing. Never looser than the 1e-6 |t| + 1e-10 of test_problems_data.py.
    """
    gap = f0 - target
    assert gap > 0
    return 1e-6 * abs(target) + 1e-10 * min(1.0, gap)


# ---------------------------------------------------------------------------
# float32 subset
# ---------------------------------------------------------------------------

# Problems float32 can solve *and* a float32 check means something:
#   (a) the minimiser is well scaled and the Hessian there is well conditioned,
#       cond(∇²f(x*)) <= 1e4 (float32 eps = 1.2e-7; checked in
#       test_float32_subset_meets_its_criteria). This excludes Brown badly scaled
#       (x* = (1e6, 2e-6), f(x0) = 1e12), Powell badly scaled (cond ~7e17), Meyer
#       (~1e16), Osborne 1, Watson, Gulf, Biggs, penalty II (1e6..1e9) and the
#       singular Powell / extended Powell / rank-1 linear problems;
#   (b) the tolerance below is small against the start: f(x0) - target >=
#       1e4 * tol, i.e. the run must remove >= 99.99% of the initial gap. This
#       excludes the problems with a small f(x0) or f* < 1 (Gaussian, Bard,
#       Kowalik-Osborne, Chebyquad, penalty I, the discrete problems, ...),
#       for which 1e-4 absolute would be a loose test.
# Brown almost linear (cond 1.4e4) just misses (a).
F32_NAMES = [
    "rosenbrock",
    "freudenstein_roth",
    "beale",
    "jennrich_sampson",
    "helical_valley",
    "box3d",
    "wood",
    "brown_dennis",
    "extended_rosenbrock",
    "variably_dimensioned",
    "broyden_tridiagonal",
    "broyden_banded",
    "linear_full_rank",
]
F32_XFAIL = {
    "wood": (
        "Wood meets the criteria at its minimiser, but the path from x0 runs into "
        "the saddle point f = 7.876967 at x = (-0.968, 0.947, -0.970, 0.951) "
        "(Hessian eigenvalues -0.12, 31, 859, 953). Float32 L-BFGS stalls next to "
        "it (f = 7.87695, |g| ~ 1e-3), where the decreases its positive-definite "
        "model predicts are below the float32 rounding of f (ulp 4.8e-7), and stops "
        "there reporting success; so does SciPy L-BFGS-B fed float32 values and "
        "gradients (f = 7.876955). In float64 both get past it."
    ),
}


def _tol32(target):
    """float32 tolerance: 1e-4 max(1, |target|), ~840 float32 ulps of max(1, |f*|).

    It has to cover (i) the rounding of f evaluated in float32, a few ulps of the
    terms times their number (m <= 20 here), and (ii) what the default float32
    termination tests (rtol = atol = 1e-5: scaled gradient <= 1e-5 (1 + |f|), or
    a step changing f and every y_i by <= 1e-5 relative) leave of f - f* on these
    well-conditioned problems: ~|g|²/λ, or one step's change of f. Both are orders
    below it; by criterion (b) it is still at most 1e-4 of the initial gap.
    """
    return 1e-4 * max(1.0, abs(target))


# ---------------------------------------------------------------------------
# running the solvers (each compiled once, results cached)
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    f: float  # final objective, as reported
    nfev: int  # evaluations of the objective (with its gradient), start included
    success: bool  # qn: result == successful; SciPy: res.success
    values: tuple  # objective after each evaluation (SciPy) / iteration (qn)
    message: str = ""
    y: np.ndarray | None = None  # final iterate (qn: padded to N_PAD)


def _pad(x0, dtype):
    y0 = np.zeros(N_PAD)
    y0[: x0.shape[0]] = x0
    return jnp.asarray(y0, dtype=dtype)


def _padded_objective(p):
    def objective(y):
        return p.objective(y[: p.n])

    return objective


@functools.cache
def _compiled_qn(solver_name, dtype_name):
    """One compiled solve for all problems of a dtype: (names, compiled fn)."""
    if dtype_name == "float64":
        names, solver = tuple(NAMES), QN_SOLVERS[solver_name]
    else:  # float32: qn.LBFGS() with its default tolerances only
        assert (solver_name, dtype_name) == ("LBFGS", "float32")
        names, solver = tuple(F32_NAMES), qn.LBFGS()
    branches = [_padded_objective(get(n)) for n in names]

    def fn(y, index):
        return jax.lax.switch(index, branches, y)

    def solve(index, y0):
        sol = qn.minimise(
            fn, solver, y0, index, max_steps=MAX_STEPS, throw=False, history=True
        )
        return {
            "y": sol.value,
            "f": sol.stats["value"],
            "nfev": sol.stats["num_fn_evals"],
            "num_steps": sol.stats["num_steps"],
            "success": sol.result == qn.RESULTS.successful,
            "termination": sol.stats["termination"],
            "history": sol.stats["loss_history"],
        }

    args = (
        jax.ShapeDtypeStruct((), jnp.int32),
        jax.ShapeDtypeStruct((N_PAD,), jnp.dtype(dtype_name)),
    )
    return names, jax.jit(solve).lower(*args).compile()


def _termination_name(termination):
    for name in ("gradient", "step", "decrease", "precision", "none"):
        if bool(termination == getattr(qn.Termination, name)):
            return name
    raise AssertionError(termination)


@functools.cache
def _qn_run(solver_name, name, dtype_name="float64"):
    names, compiled = _compiled_qn(solver_name, dtype_name)
    p = get(name)
    out = compiled(jnp.int32(names.index(name)), _pad(p.x0, dtype_name))
    termination = _termination_name(out["termination"])
    out = jax.device_get({k: v for k, v in out.items() if k != "termination"})
    history = out["history"]
    # One evaluation per loop iteration, and history[k] is f after iteration k, so
    # after history[k] exactly k + 1 evaluations have been made.
    assert int(out["nfev"]) == int(out["num_steps"]) + 1
    values = tuple(float(v) for v in history[: int(out["nfev"])])
    assert not np.isnan(values).any()
    return Run(
        f=float(out["f"]),
        nfev=int(out["nfev"]),
        success=bool(out["success"]),
        values=values,
        message=termination,
        y=np.asarray(out["y"]),
    )


@functools.cache
def _evaluator(name):
    """Compiled float64 value and gradient for SciPy."""
    p = get(name)
    value_and_grad = jax.jit(jax.value_and_grad(p.objective))

    def fun(x):
        f, g = value_and_grad(x)
        return float(f), np.asarray(g, dtype=np.float64)

    fun(p.x0)  # compile now, not inside the single-threaded section
    return fun


@functools.cache
def _f0(name):
    return _evaluator(name)(get(name).x0)[0]


@functools.cache
def _scipy_run(method, name):
    evaluate = _evaluator(name)
    values = []

    def fun(x):
        f, g = evaluate(x)
        values.append(f)
        return f, g

    with _single_threaded_openblas():
        res = minimize(
            fun, get(name).x0, jac=True, method=method, options=SCIPY_OPTIONS[method]
        )
    assert len(values) == res.nfev
    return Run(
        f=float(res.fun),
        nfev=int(res.nfev),
        success=bool(res.success),
        values=tuple(values),
        message=str(res.message),
        y=np.asarray(res.x),
    )


# ---------------------------------------------------------------------------
# what "solved" means
# ---------------------------------------------------------------------------


def _target_reached(name, f):
    """The target (f* or a documented local minimum value) f is within _tol64 of."""
    p = get(name)
    for target in (p.fstar, *p.local_fstars):
        if abs(f - target) <= _tol64(p, target, _f0(name)):
            return target
    return None


def _qn_solved(solver_name, name):
    run = _qn_run(solver_name, name)
    return run.success and _target_reached(name, run.f) is not None


def _scipy_solved(solver_name, name):
    # Judged on f alone: SciPy BFGS reports failure ("precision loss") on 8 runs
    # that do end at f* or the local minimum, and L-BFGS-B reports success on the
    # 3 that stall far from it. qn is held to more: it must also report success.
    return (
        _target_reached(name, _scipy_run(SCIPY_METHOD[solver_name], name).f) is not None
    )


def _evals_to_target(run, name):
    """Evaluations until f first came within tolerance of the target finally reached.

    For SciPy every evaluated point counts (line-search trials included); for qn
    only the iterates (its history holds f at the accepted point after each
    evaluation), which if anything favours SciPy.
    """
    target = _target_reached(name, run.f)
    tol = _tol64(get(name), target, _f0(name))
    return next(k + 1 for k, f in enumerate(run.values) if abs(f - target) <= tol)


# ---------------------------------------------------------------------------
# float64: every problem, both solvers
# ---------------------------------------------------------------------------

QN_FAILURES = {}  # (solver, name) -> reason; none at present


def _f64_params():
    for solver_name in QN_SOLVERS:
        for name in NAMES:
            reason = QN_FAILURES.get((solver_name, name))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            yield pytest.param(
                solver_name, name, marks=marks, id=f"{solver_name}-{name}"
            )


@pytest.mark.parametrize("solver_name,name", list(_f64_params()))
def test_float64_reaches_known_minimum(solver_name, name):
    run = _qn_run(solver_name, name)
    p = get(name)
    assert run.y.dtype == np.float64
    # the padding coordinates never moved (zero gradient), see the module docstring
    assert np.all(run.y[p.n :] == 0.0)
    assert run.success, f"qn.{solver_name} did not report success ({run.message})"
    assert _target_reached(name, run.f) is not None, (
        f"qn.{solver_name} ended at f={run.f!r} after {run.nfev} evaluations "
        f"(f*={p.fstar!r}, local minima {p.local_fstars}; {run.message})"
    )


@pytest.mark.parametrize("solver_name", list(QN_SOLVERS))
def test_padding_changes_nothing(solver_name):
    """The padded solve is the n-dimensional one: same iterate, same evaluations."""
    p = get("rosenbrock")
    padded = _qn_run(solver_name, p.name)
    sol = jax.jit(
        lambda y0: qn.minimise(
            lambda y, args: p.objective(y),
            QN_SOLVERS[solver_name],
            y0,
            max_steps=MAX_STEPS,
        )
    )(jnp.asarray(p.x0))
    assert int(sol.stats["num_fn_evals"]) == padded.nfev
    np.testing.assert_allclose(np.asarray(sol.value), padded.y[: p.n], rtol=1e-12)
    # (f ~ 1e-27 here, so its relative error is not meaningful; identical in
    # practice, and any two values below 1e-20 are the same minimum)
    np.testing.assert_allclose(float(sol.stats["value"]), padded.f, rtol=0, atol=1e-20)


@pytest.mark.parametrize("solver_name", list(QN_SOLVERS))
def test_solves_at_least_as_many_problems_as_scipy(solver_name):
    method = SCIPY_METHOD[solver_name]
    ours = {n for n in NAMES if _qn_solved(solver_name, n)}
    theirs = {n for n in NAMES if _scipy_solved(solver_name, n)}
    print(
        f"\nqn.{solver_name}: {len(ours)}/{len(NAMES)} solved; SciPy {method}: "
        f"{len(theirs)}/{len(NAMES)}.\n  qn fails: {sorted(set(NAMES) - ours)}"
        f"\n  SciPy fails: {sorted(set(NAMES) - theirs)}"
        f"\n  solved by SciPy only: {sorted(theirs - ours)}"
    )
    assert len(ours) >= len(theirs)


def _eval_ratios(solver_name):
    method = SCIPY_METHOD[solver_name]
    both = [
        n for n in NAMES if _qn_solved(solver_name, n) and _scipy_solved(solver_name, n)
    ]
    total, to_target = [], []
    for n in both:
        ours, theirs = _qn_run(solver_name, n), _scipy_run(method, n)
        total.append(ours.nfev / theirs.nfev)
        to_target.append(_evals_to_target(ours, n) / _evals_to_target(theirs, n))
    return both, total, to_target


@pytest.mark.parametrize("solver_name", list(QN_SOLVERS))
def test_median_evaluations_within_125_percent_of_scipy(solver_name):
    both, total, to_target = _eval_ratios(solver_name)
    assert len(both) >= 30
    med_total, med_target = statistics.median(total), statistics.median(to_target)
    print(
        f"\nqn.{solver_name} / SciPy {SCIPY_METHOD[solver_name]} evaluations over the "
        f"{len(both)} problems both solve: median ratio {med_total:.3f} until "
        f"termination, {med_target:.3f} until the tolerance is first met "
        f"(geometric means {np.exp(np.mean(np.log(total))):.3f}, "
        f"{np.exp(np.mean(np.log(to_target))):.3f})"
    )
    assert med_total <= MAX_MEDIAN_EVAL_RATIO
    assert med_target <= MAX_MEDIAN_EVAL_RATIO


# ---------------------------------------------------------------------------
# float32: qn.LBFGS() with default tolerances on the well-conditioned subset
# ---------------------------------------------------------------------------


def _f32_targets(name):
    """f*, or a local minimum value SciPy reaches from x0 in float64."""
    p = get(name)
    targets = [p.fstar]
    for local in p.local_fstars:
        for method in SCIPY_METHOD.values():
            if _target_reached(name, _scipy_run(method, name).f) == local:
                targets.append(local)
                break
    return targets


def test_float32_subset_meets_its_criteria():
    assert len([n for n in F32_NAMES if n not in F32_XFAIL]) >= 10
    for name in F32_NAMES:
        p = get(name)
        for target in _f32_targets(name):
            # (b): the float32 tolerance is at most 1e-4 of the initial gap
            assert _f0(name) - target >= 1e4 * _tol32(target), name
        # (a): at the minimiser the float32 run should end at: x* for f*, else
        # the local minimiser SciPy BFGS reaches in float64
        targets = _f32_targets(name)
        x = p.xstar if targets == [p.fstar] else _scipy_run("BFGS", name).y
        hessian = jax.jit(jax.hessian(p.objective))(jnp.asarray(x, dtype=jnp.float64))
        eig = np.linalg.eigvalsh(np.asarray(hessian))
        assert eig[0] > 0 and eig[-1] / eig[0] <= 1e4, (name, eig)


def _f32_params():
    for name in F32_NAMES:
        marks = (
            [pytest.mark.xfail(reason=F32_XFAIL[name], strict=True)]
            if name in F32_XFAIL
            else []
        )
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_f32_params()))
def test_float32_lbfgs_default_tolerances(name):
    p = get(name)
    run = _qn_run("LBFGS", name, "float32")
    assert run.y.dtype == np.float32
    assert np.all(run.y[p.n :] == 0.0)
    assert run.success, f"qn.LBFGS() in float32 did not report success ({run.message})"
    # the objective at the float32 solution, as reported and re-evaluated in float64
    f64 = _evaluator(name)(np.asarray(run.y[: p.n], dtype=np.float64))[0]
    for f in (run.f, f64):
        assert any(abs(f - t) <= _tol32(t) for t in _f32_targets(name)), (
            f"float32 qn.LBFGS() ended at f={f!r} (f*={p.fstar!r}, targets "
            f"{_f32_targets(name)}) after {run.nfev} evaluations ({run.message})"
        )


# ---------------------------------------------------------------------------
# the table (pytest -s)
# ---------------------------------------------------------------------------


def _cell(run, name, solved):
    target = _target_reached(name, run.f)
    mark = "*" if not solved else ("L" if target != get(name).fstar else " ")
    return f"{run.f:11.4e}{mark}{run.nfev:5d}"


def test_print_comparison_table():
    head = (
        f"{'problem':27s} {'n':>2s}  {'qn LBFGS f':>11s} {'nfev':>5s}  "
        f"{'L-BFGS-B f':>11s} {'nfev':>5s}  {'qn BFGS f':>11s} {'nfev':>5s}  "
        f"{'SciPy BFGS f':>11s} {'nfev':>5s}"
    )
    lines = ["", head, "-" * len(head)]
    for name in NAMES:
        cells = []
        for solver_name in QN_SOLVERS:
            ours = _qn_run(solver_name, name)
            theirs = _scipy_run(SCIPY_METHOD[solver_name], name)
            cells.append(_cell(ours, name, _qn_solved(solver_name, name)))
            cells.append(_cell(theirs, name, _scipy_solved(solver_name, name)))
        lines.append(f"{name:27s} {get(name).n:2d}  " + "  ".join(cells))
    lines.append(
        "* = not solved (not within tolerance of f* or a documented local minimum); "
        "L = solved at a documented local minimum"
    )
    for solver_name in QN_SOLVERS:
        both, total, to_target = _eval_ratios(solver_name)
        n_ours = sum(_qn_solved(solver_name, n) for n in NAMES)
        n_theirs = sum(_scipy_solved(solver_name, n) for n in NAMES)
        lines.append(
            f"qn.{solver_name} solves {n_ours}/{len(NAMES)}, SciPy "
            f"{SCIPY_METHOD[solver_name]} {n_theirs}/{len(NAMES)}; median nfev ratio "
            f"{statistics.median(total):.3f} (to first within tolerance "
            f"{statistics.median(to_target):.3f}) over {len(both)} problems"
        )
    lines.append("")
    lines.append(
        f"float32 qn.LBFGS(): {'problem':27s} {'f':>11s} {'nfev':>5s} termination"
    )
    for name in F32_NAMES:
        run = _qn_run("LBFGS", name, "float32")
        lines.append(f"{'':20s}{name:27s} {run.f:11.4e} {run.nfev:5d} {run.message}")
    print("\n".join(lines))
