"""qn.descent.Dogleg: Powell's dogleg on a trust radius (Nocedal & Wright, 2006, §4.1).

* Against Optimistix's `optx.Dogleg` on the Moré–Garbow–Hillstrom least-squares
  problems of `tests/problems.py`: `Solver(GaussNewton(), Dogleg())` must solve at
  least as many, and never report `successful` away from a minimiser (slow: CI
  runs them; the default run has the rule's own tests below and the solver matrix).
* The rule's own promises: a rejected trial re-forms its step from the steps kept
  at the iterate (no solve, no product with B), the radius follows
  `radius_update`, the result does not depend on the units of the residuals, and a
  batch under `jax.vmap` reports one result per fit.
"""

import dataclasses
import functools
import statistics

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

import quasinewton as qn
from problems import PROBLEMS, get

jax.config.update("jax_enable_x64", True)  # as conftest.py does

GN = qn.Solver(qn.curvature.GaussNewton(), qn.descent.Dogleg())
MAX_STEPS = 1000
# Optimistix at the tolerance qn uses by default in float64 (rtol = 1e-8).
OPTX_TOL = 1e-8


def rosenbrock(y, scale):
    return scale * get("rosenbrock").residual(y)


# ---------------------------------------------------------------------------
# Moré–Garbow–Hillstrom against Optimistix
# ---------------------------------------------------------------------------

#: The problems by number of unknowns: each group is compiled once per library,
#: its residuals padded with zeros to the group's largest m (zero residuals add
#: nothing to f, ∇f or JᵀJ, so every problem is the one it pads).
GROUPS = sorted({p.n for p in PROBLEMS})


def _group(n):
    return [p for p in PROBLEMS if p.n == n]


def _tolerance(target, f0):
    """How close a run must end to a target value of f = Σr² (as in
    test_vs_scipy.py): 1e-6 relative, plus 1e-10 of the gap at the start (at most
    1e-10) for targets at or near 0."""
    return 1e-6 * abs(target) + 1e-10 * min(1.0, f0 - target)


def _reached(p, run):
    """Whether a run ended within tolerance of f* or of a documented local minimum."""
    return any(
        abs(run.f - t) <= _tolerance(t, run.f0) for t in (p.fstar, *p.local_fstars)
    )


def _decrement(run):
    """½∇fᵀ|∇²f|⁻¹∇f at the end of a run (f = Σr², |∇²f| with its eigenvalues
    replaced by their absolute values, floored at 1e-12 of the largest): the
    decrease a Newton step would still make, a gradient test that does not depend
    on the units of x or r (on Meyer the gradient is 20 at the minimiser, whose
    Hessian has condition number 1e16, and at Freudenstein–Roth's local minimum J
    is singular, so a Gauss–Newton decrement would see all of f)."""
    eigenvalues, vectors = np.linalg.eigh(0.5 * (run.hessian + run.hessian.T))
    size = np.maximum(np.abs(eigenvalues), 1e-12 * np.max(np.abs(eigenvalues)))
    return 0.5 * float(np.sum((vectors.T @ run.grad) ** 2 / size))


@dataclasses.dataclass(frozen=True)
class Run:
    success: bool  # qn: result == successful; optx: likewise
    f: float  # Σr² at the end
    f0: float  # Σr² at the start
    evals: int  # evaluations of the residuals (and J), the start included
    grad: np.ndarray  # ∇(Σr²) at the end
    hessian: np.ndarray  # ∇²(Σr²) at the end


@functools.cache
def _runs(n):
    """{name: (qn run, optx run)} for the problems with n unknowns."""
    problems = _group(n)
    m = max(p.m for p in problems)

    def padded(p):
        def residual(y):
            r = p.residual(y)
            return jnp.concatenate([r, jnp.zeros(m - r.shape[0], r.dtype)])

        return residual

    branches = [padded(p) for p in problems]

    def fn(y, index):
        return jax.lax.switch(index, branches, y)

    def report(index, y0, success, evals, y):
        def objective(z):
            return jnp.sum(fn(z, index) ** 2)

        return {
            "success": success,
            "f": objective(y),
            "f0": objective(y0),
            "evals": evals,
            "grad": jax.grad(objective)(y),
            "hessian": jax.hessian(objective)(y),
        }

    @jax.jit
    def ours(index, y0):
        sol = qn.least_squares(fn, GN, y0, index, max_steps=MAX_STEPS, throw=False)
        success = sol.result == qn.RESULTS.successful
        return report(index, y0, success, sol.stats["num_fn_evals"], sol.value)

    @jax.jit
    def theirs(index, y0):
        solver = optx.Dogleg(rtol=OPTX_TOL, atol=OPTX_TOL)
        sol = optx.least_squares(
            fn, solver, y0, index, max_steps=MAX_STEPS, throw=False
        )
        # Each Optimistix step evaluates the residuals and J at one point, the
        # start included, as each qn step does.
        success = sol.result == optx.RESULTS.successful
        return report(index, y0, success, sol.stats["num_steps"], sol.value)

    out = {}
    for index, p in enumerate(problems):
        runs = []
        for solve in (ours, theirs):
            got = jax.device_get(solve(index, jnp.asarray(p.x0)))
            runs.append(
                Run(
                    success=bool(got["success"]),
                    f=float(got["f"]),
                    f0=float(got["f0"]),
                    evals=int(got["evals"]),
                    grad=np.asarray(got["grad"]),
                    hessian=np.asarray(got["hessian"]),
                )
            )
        out[p.name] = tuple(runs)
    return out


def _check_group(n):
    """The problems with n unknowns solved by qn and by Optimistix, after checking
    that every qn success is at a minimum."""
    runs = _runs(n)
    ours, theirs = set(), set()
    for p in _group(n):
        run, other = runs[p.name]
        if run.success:
            # At a known minimum value, and at a stationary point: the Newton
            # decrement within the tolerance of the value.
            assert _reached(p, run), f"{p.name}: successful at f = {run.f!r}"
            assert _decrement(run) <= _tolerance(run.f, run.f0), p.name
            ours.add(p.name)
        # Optimistix judged on f alone (qn must also report success).
        if _reached(p, other):
            theirs.add(p.name)
    return ours, theirs


@pytest.mark.slow
@pytest.mark.parametrize("n", GROUPS)
def test_successes_are_minimisers(n):
    _check_group(n)


def test_two_unknowns_as_many_solved_as_optimistix():
    # Rosenbrock, Freudenstein–Roth (its documented local minimum), Powell badly
    # scaled, Brown badly scaled, Beale, Jennrich–Sampson: qn solves all six.
    # At Beale's start J has rank 1: Optimistix's solve for the Newton step gives
    # nan and it stops, where qn's rule takes the Cauchy point instead.
    ours, theirs = _check_group(2)
    assert len(ours) == 6
    assert len(ours) >= len(theirs)


@pytest.mark.slow
def test_as_many_solved_as_optimistix():
    # All but Biggs EXP6: at its start J has rank 4 of 6, and both wander into a
    # valley towards infinity. Optimistix's first step fails where J is
    # rank-deficient at the start (Beale, linear_rank1_zero). Evaluations: the
    # median ratio at most 1, no more than Optimistix on the typical problem.
    ours, theirs, evals = set(), set(), []
    for n in GROUPS:
        o, t = _check_group(n)
        ours |= o
        theirs |= t
        runs = _runs(n)
        evals += [runs[name][0].evals / runs[name][1].evals for name in o & t]
    names = sorted(p.name for p in PROBLEMS)
    print(
        f"\nqn Dogleg: {len(ours)}/{len(names)} solved; optx.Dogleg: {len(theirs)}."
        f"\n  qn fails: {sorted(set(names) - ours)}"
        f"\n  optx fails: {sorted(set(names) - theirs)}"
        f"\n  median evaluations qn/optx over {len(evals)} solved by both: "
        f"{statistics.median(evals):.2f}"
    )
    assert len(ours) >= len(theirs)
    assert set(names) - ours <= {"biggs_exp6"}
    assert statistics.median(evals) <= 1.0


# ---------------------------------------------------------------------------
# Minimisation with Newton
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "materialise, linear_solver",
    [(True, None), (False, qn.linear.ConjugateGradient(rtol=1e-10, max_steps=10))],
    ids=["dense", "newton-cg"],
)
def test_newton_rosenbrock(materialise, linear_solver):
    # Non-convex: ∇²f is indefinite where x₂ > x₁² + 1/200 (there the dense step
    # uses |∇²f|, and Newton–CG stops at negative curvature). The minimiser (1, 1)
    # to 1e-5: a success has |∇f| ≤ rtol·|∇f(y0)| = 1e-8·216, and the smallest
    # eigenvalue of ∇²f(1, 1) is 0.4, so y is within 5.4e-6 of it.
    solver = qn.Solver(
        qn.curvature.Newton(materialise=materialise),
        qn.descent.Dogleg(),
        linear_solver=linear_solver,
    )
    p = get("rosenbrock")
    sol = qn.minimise(lambda y, _: p.objective(y), solver, jnp.asarray(p.x0))
    assert sol.result == qn.RESULTS.successful
    np.testing.assert_allclose(np.asarray(sol.value), [1.0, 1.0], atol=1e-5)
    assert int(sol.stats["num_steps"]) > int(sol.stats["num_accepted_steps"])


# ---------------------------------------------------------------------------
# Rejected trials: the cached steps and the radius
# ---------------------------------------------------------------------------


JAC = np.array([[2.0, 0.0], [0.0, 0.2], [1.0, 1.0]])
RESIDUAL = np.array([1.0, -3.0, 0.5])
RULE = qn.descent.Dogleg()


def _evaluation(jac):
    """The evaluation of ½‖J p + r‖² at p = 0, as dense Gauss–Newton keeps it."""
    jac, residual = jnp.asarray(jac), jnp.asarray(RESIDUAL)
    return qn.evaluation.JacobianEvaluation(
        f=0.5 * jnp.dot(residual, residual),
        grad=jac.T @ residual,
        aux=None,
        residual=residual,
        jacobian=jac,
    )


@jax.jit
def _propose(state, model_jac, new_search):
    """The rule's proposal at x = 0 of the quadratic with J = `JAC`, given a model
    built on `model_jac` (J itself, or nan to show the model is not used)."""
    curvature = qn.curvature.GaussNewton(materialise=True)
    context = qn.linear.LinearSolveContext(None, None, None, 0)
    model = qn.curvature.Model(curvature, None, _evaluation(model_jac), None, context)
    x = jnp.zeros(2)
    return RULE.propose(state, x, _evaluation(JAC), model, new_search, x)


def _reference_dogleg(radius):
    """Nocedal & Wright (2006, §4.1), in NumPy: the dogleg step of the model
    gᵀp + ½pᵀBp, B = JᵀJ, for the radius."""
    g, b = JAC.T @ RESIDUAL, JAC.T @ JAC
    newton = np.linalg.solve(b, -g)
    cauchy = -(g @ g) / (g @ b @ g) * g
    if np.linalg.norm(newton) <= radius:
        return newton
    if np.linalg.norm(cauchy) >= radius:
        return radius * cauchy / np.linalg.norm(cauchy)
    d = newton - cauchy
    a, half_b, c = d @ d, cauchy @ d, cauchy @ cauchy - radius**2
    tau = (-half_b + np.sqrt(half_b**2 - a * c)) / a
    return cauchy + tau * d


def test_step_is_nocedal_and_wrights_dogleg():
    state = RULE.init_state(jnp.zeros(2), _evaluation(JAC))
    _, p, state, _ = _propose(state, JAC, jnp.array(True))
    # The first trial is p_N, and Δ₀ = ‖p_N‖ (initial_radius = 1).
    np.testing.assert_allclose(np.asarray(p), _reference_dogleg(np.inf), rtol=1e-12)
    newton_norm = float(np.linalg.norm(_reference_dogleg(np.inf)))
    cauchy_norm = float(state.cauchy_length)
    assert float(state.radius) == pytest.approx(newton_norm)
    assert bool(RULE.full_step(state))
    # Each leg of the path: the Cauchy leg, the second leg, p_N (from the cache
    # alone: the model given is nan throughout).
    nan = np.full_like(JAC, np.nan)
    for radius in (0.5 * cauchy_norm, 0.5 * (cauchy_norm + newton_norm), newton_norm):
        at = eqx.tree_at(lambda s: s.radius, state, jnp.asarray(radius))
        _, p, new, num_linear = _propose(at, nan, jnp.array(False))
        np.testing.assert_allclose(np.asarray(p), _reference_dogleg(radius), rtol=1e-12)
        assert int(num_linear) == 0
        assert bool(RULE.full_step(new)) == (radius == newton_norm)
    assert 0.5 * cauchy_norm < newton_norm  # the three radii are three cases


def test_rejected_trial_shrinks_the_radius_and_reuses_the_cache():
    ev = _evaluation(JAC)
    state = RULE.init_state(jnp.zeros(2), ev)
    _, p, state, _ = _propose(state, JAC, jnp.array(True))

    # A worse trial is rejected and Δ shrinks as radius_update says: to a quarter
    # of the step (a rejection, so ρ < 1/4).
    worse = eqx.tree_at(lambda e: e.f, ev, ev.f + 1.0)
    accept, failed, judged = RULE.judge(
        state, jnp.zeros(2), ev, worse, jnp.array(True), p
    )
    assert not bool(accept) and not bool(failed)
    verdict = qn.descent.ratio_test(
        ev.f, worse.f, state.predicted, jnp.array(True), RULE.accept
    )
    expected = qn.descent.radius_update(state.radius, jnp.linalg.norm(p), verdict)
    assert float(judged.radius) == float(expected)
    assert float(judged.radius) == pytest.approx(0.25 * float(jnp.linalg.norm(p)))

    # The next trial, from a model whose every product is nan: the step comes
    # from the cache, lies on the boundary, and is predicted as −m(p) with B = JᵀJ.
    _, p2, state2, num_linear = _propose(judged, np.full_like(JAC, np.nan), False)
    assert float(jnp.linalg.norm(p2)) == pytest.approx(float(judged.radius))
    np.testing.assert_array_equal(np.asarray(state2.newton), np.asarray(state.newton))
    assert int(num_linear) == 0
    p2 = np.asarray(p2)
    model = -(np.asarray(ev.grad) @ p2 + 0.5 * np.sum((JAC @ p2) ** 2))
    assert float(state2.predicted) == pytest.approx(model, rel=1e-12)
    assert not bool(RULE.full_step(state2))


_SOLVES = []


class _CountingGaussNewton(qn.curvature.GaussNewton):
    """Gauss–Newton that records each linear solve it runs (at run time)."""

    def solve(self, state, evaluation, linearisation, damping, context):
        p, steps = super().solve(state, evaluation, linearisation, damping, context)
        jax.debug.callback(lambda s: _SOLVES.append(int(s)), steps)
        return p, steps


def test_matrix_free_solves_once_per_iterate_and_takes_the_dense_steps():
    # Matrix-free Gauss–Newton with CG to rounding (n = 2 steps): one solve per
    # new iterate (the accepted steps and the start), none after a rejection, and
    # the same trials as dense QR. After a rejected trial the loop hands the rule
    # the linearisation of the trial point, so any use of the model there would
    # show here.
    dense = qn.least_squares(rosenbrock, GN, jnp.asarray(get("rosenbrock").x0), 1.0)
    solver = qn.Solver(
        _CountingGaussNewton(materialise=False),
        qn.descent.Dogleg(),
        linear_solver=qn.linear.ConjugateGradient(rtol=1e-12, max_steps=10),
    )
    _SOLVES.clear()
    sol = jax.jit(lambda y0: qn.least_squares(rosenbrock, solver, y0, 1.0))(
        jnp.asarray(get("rosenbrock").x0)
    )
    jax.effects_barrier()
    accepted = int(sol.stats["num_accepted_steps"])
    assert int(sol.stats["num_steps"]) - accepted >= 5  # rejections were made
    assert len(_SOLVES) == accepted + 1
    assert sum(_SOLVES) == int(sol.stats["num_linear_steps"])
    assert int(sol.stats["num_steps"]) == int(dense.stats["num_steps"])
    assert accepted == int(dense.stats["num_accepted_steps"])
    np.testing.assert_allclose(np.asarray(sol.value), np.asarray(dense.value))


# ---------------------------------------------------------------------------
# Units, drivers, batches, failures
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_residual_scale_changes_nothing(dtype):
    # Scaling r by s scales ∇f, B and every predicted and actual reduction by s²,
    # and leaves p_N, p_C and Δ alone: the same trials (exactly, in float64;
    # float32 only asked for the same result and minimiser to its rounding).
    p = get("rosenbrock")
    sols = [
        qn.least_squares(
            rosenbrock, GN, jnp.asarray(p.x0, dtype), jnp.asarray(s, dtype)
        )
        for s in (1e-4, 1.0, 1e4)
    ]
    for sol in sols:
        assert sol.result == qn.RESULTS.successful
        atol = 1e-10 if dtype == jnp.float64 else 1e-5
        np.testing.assert_allclose(np.asarray(sol.value), [1.0, 1.0], atol=atol)
    if dtype == jnp.float64:
        assert len({int(sol.stats["num_steps"]) for sol in sols}) == 1


def test_python_loop_and_jit_take_the_same_steps():
    y0 = jnp.asarray(get("rosenbrock").x0)
    host = qn.least_squares(rosenbrock, GN, y0, 1.0)
    traced = jax.jit(lambda y: qn.least_squares(rosenbrock, GN, y, 1.0))(y0)
    for key in ("num_steps", "num_accepted_steps", "num_fn_evals"):
        assert int(host.stats[key]) == int(traced.stats[key])
    np.testing.assert_allclose(np.asarray(host.value), np.asarray(traced.value))


def test_vmap_batch_with_a_nan_fit():
    # Eight float32 fits of r = y − c, on the lean path for batches (JᵀJ by
    # Cholesky); the minimiser of fits 2 and 5 lies inside a disc where r is nan,
    # so every trial reaching it is nan. The six others end successful at c (to
    # float32 rounding); the two bad ones do not, and keep a finite iterate.
    solver = qn.Solver(
        qn.curvature.GaussNewton(normal_equations=True), qn.descent.Dogleg()
    )
    centres = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (8, 2)), jnp.float32)
    bad = jnp.zeros(8, bool).at[jnp.array([2, 5])].set(True)

    def residuals(y, args):
        centre, is_bad = args
        hole = is_bad & (jnp.linalg.norm(y - centre) < 0.1)
        return jnp.where(hole, jnp.nan, y - centre)

    def solve(centre, is_bad):
        y0 = jnp.asarray([3.0, -2.0], jnp.float32)
        return qn.least_squares(residuals, solver, y0, (centre, is_bad), throw=False)

    sols = jax.jit(jax.vmap(solve))(centres, bad)
    success = np.asarray(sols.result == qn.RESULTS.successful)
    assert sols.stats["num_steps"].shape == (8,)
    np.testing.assert_array_equal(success, ~np.asarray(bad))
    np.testing.assert_allclose(
        np.asarray(sols.value)[~np.asarray(bad)],
        np.asarray(centres)[~np.asarray(bad)],
        atol=1e-6,
    )
    assert np.all(np.isfinite(np.asarray(sols.value)))


def test_every_trial_nan_reports_nonfinite():
    # Finite only at the start: each nan trial shrinks Δ by 4 from Δ₀ = ‖p_N‖ =
    # ‖(1, 1) − y0‖, and the rule gives up once Δ ≤ eps·‖y0‖, after
    # ⌈log₄(‖p_N‖ / (eps·‖y0‖))⌉ = 26 rejections in float64, keeping the start.
    start = jnp.array([2.0, 0.5])

    def fn(y, start):
        return jnp.where(jnp.all(y == start), y - 1.0, jnp.nan)

    sol = qn.least_squares(fn, GN, start, start, throw=False)
    assert sol.result == qn.RESULTS.nonfinite
    np.testing.assert_array_equal(np.asarray(sol.value), np.asarray(start))
    assert int(sol.stats["num_accepted_steps"]) == 0
    expected = np.ceil(np.log(np.sqrt(1.25) / (2**-52 * np.sqrt(4.25))) / np.log(4))
    assert int(sol.stats["num_steps"]) == expected == 26


def test_inverse_model_is_refused():
    with pytest.raises(ValueError, match="only an inverse Hessian"):
        qn.Solver(qn.curvature.LBFGS(), qn.descent.Dogleg())


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"initial_radius": 0.0}, ValueError),
        ({"initial_radius": float("inf")}, ValueError),
        ({"accept": 1.0}, ValueError),
        ({"accept": -0.1}, ValueError),
        ({"accept": "0.1"}, TypeError),
    ],
)
def test_arguments_are_checked(kwargs, error):
    with pytest.raises(error):
        qn.descent.Dogleg(**kwargs)


def test_numpy_scalars_do_not_promote_float32():
    rule = qn.descent.Dogleg(initial_radius=np.float64(2.0), accept=np.float64(0.1))
    assert type(rule.initial_radius) is float and type(rule.accept) is float
