"""The symmetric rank-one model `qn.curvature.SR1`: its update, its skip rule, its
scale, its steps on indefinite models, and SciPy's trust-constr SR1 on the
Moré–Garbow–Hillstrom problems (`pytest -s` prints the table)."""

import statistics
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.optimize

import quasinewton as qn
from problems import PROBLEMS, get
from quasinewton.evaluation import Evaluation

SR1_TR = qn.Solver(qn.curvature.SR1(), qn.descent.TrustRegion())


def _evaluation(grad):
    return Evaluation(f=jnp.zeros((), grad.dtype), grad=grad, aux=None)


@eqx.filter_jit
def _update(model, state, s, y):
    """The state after a step s whose gradient change is y."""
    grad = jnp.zeros_like(s)
    return model.update(state, s, _evaluation(grad), _evaluation(grad + y))


def rosenbrock(y, args=None):
    return jnp.sum(100.0 * (y[1:] - y[:-1] ** 2) ** 2 + (1.0 - y[:-1]) ** 2)


# ---------------------------------------------------------------------------
# the update
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("definite", [True, False], ids=["definite", "indefinite"])
def test_n_independent_steps_on_a_quadratic_give_its_hessian(definite):
    # SR1's hereditary property (Nocedal & Wright, 2006, Theorem 6.1): on
    # f = ½xᵀAx every update keeps the secant equations of the earlier steps, so
    # n linearly independent steps (no update skipped) give B = A exactly,
    # whatever B they start from and whether or not A is definite. Here the
    # first pair sets that start (γI), then n orthonormal steps follow. To
    # rounding: A's condition number is 20, so 1e-12 relative is ~10³ eps.
    rng = np.random.default_rng(0)
    n = 5
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigenvalues = np.array([1.0, 2.0, 5.0, 10.0, 20.0])
    if not definite:
        eigenvalues[[0, 2]] *= -1
    a = jnp.asarray(q @ np.diag(eigenvalues) @ q.T)
    steps, _ = np.linalg.qr(rng.standard_normal((n, n)))
    model = qn.curvature.SR1()
    state = model.init_state(jnp.zeros(n), _evaluation(jnp.zeros(n)))
    first = jnp.asarray(rng.standard_normal(n))
    state = _update(model, state, first, a @ first)
    for k in range(n):
        s = jnp.asarray(steps[:, k])
        state = _update(model, state, s, a @ s)
        assert int(state.count) == k + 2  # no update skipped
        # The newest secant equation holds after every update.
        np.testing.assert_allclose(state.hessian @ s, a @ s, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state.hessian, a, rtol=0, atol=1e-12 * 20)
    np.testing.assert_array_equal(state.hessian, state.hessian.T)  # symmetric


def test_first_pair_sets_the_scale():
    # Before any pair the stored B is I (the model uses ‖∇f‖·I). The first pair
    # sets B = γI, γ = yᵀy/|sᵀy|. With s = (1, 0), y = (2, 1): γ = 5/2, and
    # sᵀy = 2 > 0, so no rank-one change: from γI it would give
    # γI + vvᵀ/vᵀs = [[2, 1], [1, ½]] (v = (−½, 1), vᵀs = −½), whose
    # determinant is 0. With y = (−2, 1), negative curvature, the change is
    # made: v = (−9/2, 1), vᵀs = −9/2, B = [[−2, 1], [1, 5/2 − 2/9]], so that
    # Bs = y and sᵀBs = sᵀy = −2.
    model = qn.curvature.SR1()
    state = model.init_state(jnp.zeros(2), _evaluation(jnp.zeros(2)))
    assert bool(model.is_reset(state))
    s = jnp.array([1.0, 0.0])
    scaled = _update(model, state, s, jnp.array([2.0, 1.0]))
    np.testing.assert_allclose(scaled.hessian, 2.5 * np.eye(2), rtol=1e-15)
    assert int(scaled.count) == 1 and not bool(model.is_reset(scaled))
    negative = _update(model, state, s, jnp.array([-2.0, 1.0]))
    expected = [[-2.0, 1.0], [1.0, 2.5 - 2.0 / 9.0]]
    np.testing.assert_allclose(negative.hessian, expected, rtol=1e-15)
    assert int(negative.count) == 1
    # A reset returns to the unscaled start.
    reset = model.reset(negative)
    np.testing.assert_array_equal(reset.hessian, np.eye(2))
    assert int(reset.count) == 0 and bool(model.is_reset(reset))


def test_first_pair_along_an_eigenvector_keeps_only_the_scale():
    # y = 3s: γ = 3 and B = 3I (the secant equation holds); the pair counts:
    # the model now has a scale.
    model = qn.curvature.SR1()
    state = model.init_state(jnp.zeros(3), _evaluation(jnp.zeros(3)))
    s = jnp.array([1.0, -2.0, 0.5])
    state = _update(model, state, s, 3.0 * s)
    np.testing.assert_allclose(state.hessian, 3.0 * np.eye(3), rtol=1e-15)
    assert int(state.count) == 1


def test_skip_rule():
    # After the first pair B₁ = 5/2·I (as above). A pair (s, y = B₁s + v) with
    # v ⊥ s has vᵀs = 0: the SR1 change vvᵀ/vᵀs does not exist, and B must stay
    # exactly as it was, the count too. So must a pair with |vᵀs| < r‖s‖‖v‖
    # (r = 1e-8: the change would be ~10⁸ times the size of v), and one that is
    # not finite. A pair just above the threshold is used.
    model = qn.curvature.SR1()
    state = model.init_state(jnp.zeros(2), _evaluation(jnp.zeros(2)))
    state = _update(model, state, jnp.array([1.0, 0.0]), jnp.array([2.0, 1.0]))
    b1 = np.asarray(state.hessian)
    s = jnp.array([1.0, 1.0])
    orthogonal = jnp.array([1.0, -1.0])  # vᵀs = 0, ‖s‖‖v‖ = 2
    for v in (orthogonal, orthogonal + 0.5e-8 * s):  # vᵀs = 0, then 1e-8 < 2e-8
        skipped = _update(model, state, s, state.hessian @ s + v)
        np.testing.assert_array_equal(skipped.hessian, b1)
        assert int(skipped.count) == 1
    for y in (jnp.array([jnp.nan, 0.0]), jnp.array([jnp.inf, 1.0])):
        skipped = _update(model, state, s, y)
        np.testing.assert_array_equal(skipped.hessian, b1)
        assert int(skipped.count) == 1
    v = orthogonal + 2e-8 * s  # vᵀs = 4e-8 > 2e-8·(1 + 1e-8)
    used = _update(model, state, s, state.hessian @ s + v)
    assert int(used.count) == 2
    np.testing.assert_allclose(used.hessian @ s, state.hessian @ s + v, rtol=1e-6)


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="skip"):
        qn.curvature.SR1(skip=-1e-8)
    with pytest.raises(ValueError, match="skip"):
        qn.curvature.SR1(skip=1.0)
    with pytest.raises(TypeError, match="skip"):
        qn.curvature.SR1(skip="1e-8")  # pyright: ignore
    # A NumPy scalar becomes a Python float (weakly typed: no promotion of a
    # float32 solve).
    assert type(qn.curvature.SR1(skip=np.float64(1e-6)).skip) is float


# ---------------------------------------------------------------------------
# steps and solves
# ---------------------------------------------------------------------------


def test_first_step_has_unit_length_whatever_the_units_of_f():
    # Before any pair the model is ‖∇f‖·I: the undamped step is −∇f/‖∇f‖, of
    # length 1 for f and for 1e6·f alike.
    model = qn.curvature.SR1()
    grad = jnp.array([3.0, -4.0])
    state = model.init_state(jnp.zeros(2), _evaluation(grad))
    context = qn.curvature.LinearSolveContext(None, None, None)

    @jax.jit
    def model_at(scale):
        ev = _evaluation(scale * grad)
        p, _ = model.solve(state, ev, None, None, context)
        return p, model.diagonal(state, ev, None), model.quadratic(state, ev, None, p)

    for scale in (1e-6, 1.0, 1e6):
        p, diagonal, quadratic = model_at(scale)
        np.testing.assert_allclose(p, [-0.6, 0.8], rtol=1e-12)
        np.testing.assert_allclose(diagonal, [5 * scale] * 2, rtol=1e-12)
        assert float(quadratic) == pytest.approx(5 * scale, rel=1e-12)


@pytest.mark.parametrize("n", [2, 12], ids=["unrolled", "lineax"])
def test_indefinite_damped_solve_fails_until_the_damping_makes_it_definite(n):
    # B = diag(−1, 2, 2, ...): with damping λI, Cholesky of B + λI exists only
    # for λ > 1. Below, the solve gives nan (a failed solve the trust region
    # rejects); above, it solves (B + λI)p = −∇f. The same for the unrolled
    # factorisation (n ≤ 8) and Lineax's (n = 12).
    model = qn.curvature.SR1()
    b = jnp.diag(jnp.array([-1.0] + [2.0] * (n - 1)))
    state = qn.curvature.SR1State(hessian=b, count=jnp.array(1, jnp.int32))
    grad = jnp.ones(n)
    ev = _evaluation(grad)
    context = qn.curvature.LinearSolveContext(None, None, None)
    assert model.solves_exactly(context)

    @jax.jit
    def steps(lam):
        lu = qn.curvature.LinearSolveContext(lx.LU(), None, None)
        return (
            model.solve(state, ev, None, jnp.full(n, lam), context)[0],
            model.solve(state, ev, None, None, context)[0],
            model.solve(state, ev, None, jnp.full(n, lam), lu)[0],
        )

    damped, undamped, lu = steps(0.5)
    assert bool(jnp.all(jnp.isnan(damped)))
    # An LU factorisation solves the indefinite system itself.
    np.testing.assert_allclose((b + 0.5 * jnp.eye(n)) @ lu, -grad, rtol=1e-12)
    # Undamped (a line search): B with |eigenvalues|, a descent direction.
    np.testing.assert_allclose(undamped, -grad / jnp.abs(jnp.diagonal(b)), rtol=1e-12)
    damped, _, _ = steps(3.0)
    np.testing.assert_allclose((b + 3.0 * jnp.eye(n)) @ damped, -grad, rtol=1e-12)


def _double_well(y, args=None):
    # Minima at (±1, 0) (f = 0), a saddle at (0, 0); the Hessian's first entry
    # 12x² − 4 is negative for |x| < 0.577.
    return (y[0] ** 2 - 1.0) ** 2 + y[1] ** 2


class _CountingSR1(qn.curvature.SR1):
    """SR1 that records, at each solve, whether the step came out finite."""

    def solve(self, state, evaluation, linearisation, damping, context):
        p, steps = super().solve(state, evaluation, linearisation, damping, context)
        jax.debug.callback(_FINITE.append, jnp.all(jnp.isfinite(p)))
        return p, steps


_FINITE = []


def test_indefinite_model_with_a_trust_region_reaches_a_minimiser():
    # From (0.1, 1) the path crosses |x| < 0.577, where f has negative curvature
    # along x, and the SR1 updates learn it: B becomes indefinite, Cholesky of
    # B + λI fails, the trust region rejects those trials and grows λ until
    # B + λI is positive definite, and the solve ends at a minimiser (±1, 0),
    # f = 0, not at the saddle. The gradient test ends it: |x ∓ 1| and |y| to
    # 1e-6 leave the relative gradient far below the test's 100·rtol.
    _FINITE.clear()
    solver = qn.Solver(_CountingSR1(), qn.descent.TrustRegion())
    sol = jax.jit(lambda y: qn.minimise(_double_well, solver, y))(jnp.array([0.1, 1.0]))
    jax.effects_barrier()
    assert sol.result == qn.RESULTS.successful
    np.testing.assert_allclose(jnp.abs(sol.value), [1.0, 0.0], atol=1e-6)
    assert not all(bool(ok) for ok in _FINITE), "no indefinite B + λI was met"
    # Every failed solve was a rejected trial (the iterate never moved to nan).
    assert int(sol.stats["num_accepted_steps"]) < int(sol.stats["num_steps"])


@pytest.mark.parametrize(
    "solver",
    [
        qn.Solver(qn.curvature.SR1(), qn.descent.Zoom()),
        qn.Solver(qn.curvature.SR1(), qn.descent.TrustRegion(), linear_solver=lx.LU()),
        pytest.param(
            qn.Solver(qn.curvature.SR1(), qn.descent.Backtracking()),
            marks=pytest.mark.slow,
        ),
        pytest.param(
            qn.Solver(
                qn.curvature.SR1(),
                qn.descent.TrustRegion(),
                linear_solver=qn.linear.ConjugateGradient(rtol=1e-10, max_steps=10),
            ),
            marks=pytest.mark.slow,
        ),
        pytest.param(
            qn.Solver(qn.curvature.SR1(), qn.descent.TrustRegion(scaling="marquardt")),
            marks=pytest.mark.slow,
        ),
    ],
    ids=["zoom", "trust-region-lu", "backtracking", "trust-region-cg", "marquardt"],
)
def test_other_descents_and_linear_solvers(solver):
    # With a line search the step uses |B| (a descent direction); LU or CG in
    # place of Cholesky, or Marquardt's scaling, still solve the trust-region
    # steps: each ends at the Rosenbrock minimiser (1, 1), to the 1e-6 the
    # gradient test leaves there.
    sol = qn.minimise(rosenbrock, solver, jnp.array([-1.2, 1.0]), max_steps=1000)
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-6)


# ---------------------------------------------------------------------------
# the solve paths
# ---------------------------------------------------------------------------


def test_python_and_jit_take_the_same_iterations():
    # Called from Python the loop runs on the host around compiled steps (SR1 is
    # not padded: `padding_is_exact` is False); under jax.jit it is one compiled
    # loop. Both run the same `advance` on the same evaluations: the same steps,
    # evaluations and termination, the same point to rounding; the minimiser of
    # the extended Rosenbrock function is 1.
    y0 = jnp.array([-1.2, 1.0, -1.2, 1.0])
    eager = qn.minimise(rosenbrock, SR1_TR, y0, max_steps=500)
    jitted = jax.jit(lambda y: qn.minimise(rosenbrock, SR1_TR, y, max_steps=500))(y0)
    assert qn.curvature.SR1.padding_is_exact is False
    for key in ("num_steps", "num_fn_evals", "num_accepted_steps"):
        assert int(eager.stats[key]) == int(jitted.stats[key])
    assert eager.stats["termination"] == jitted.stats["termination"]
    np.testing.assert_allclose(eager.value, jitted.value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(eager.value, 1.0, atol=1e-6)


def test_least_squares_matches_scipy():
    # As a minimiser of ½‖r‖², SR1 reaches the least-squares fit (SciPy's, to
    # 1e-15): a well-posed fit whose minimiser the default gradient test pins
    # to ~1e-7, so within 1e-6.
    t = np.linspace(0.0, 4.0, 30)
    y = 2.0 * np.exp(-1.3 * t) + 0.5 + 0.01 * np.sin(7.0 * t)
    reference = scipy.optimize.least_squares(
        lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y,
        [1.0, 1.0, 0.0],
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
    ).x

    def residuals(p, args):
        t, y = args
        return p[0] * jnp.exp(-p[1] * t) + p[2] - y

    data = (jnp.asarray(t), jnp.asarray(y))
    sol = qn.least_squares(residuals, SR1_TR, jnp.array([1.0, 1.0, 0.0]), data)
    np.testing.assert_allclose(sol.value, reference, atol=1e-6)
    assert "num_jac_evals" in sol.stats


def test_float32():
    # Rosenbrock in float32 at the float32 default rtol = 1e-5: the gradient
    # test stops within ~1e-3 of (1, 1) (the valley's condition number ~2500
    # amplifies the gradient's rounding), and the dtype is kept throughout.
    sol = qn.minimise(rosenbrock, SR1_TR, jnp.array([-1.2, 1.0], jnp.float32))
    assert sol.value.dtype == jnp.float32
    assert sol.state.curvature.hessian.dtype == jnp.float32
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-3)


TARGET = np.array([1.0, -2.0, 0.5])
START = np.array([3.0, 1.0, -1.5])
WEIGHTS = np.array([1.0, 10.0, 100.0])


def _scaled(y, args):
    # A quadratic of condition number 100 plus a quartic, times `scale`, plus
    # `constant`: the minimiser is TARGET whatever the two.
    scale, constant = args
    d = y - jnp.asarray(TARGET, y.dtype)
    weights = jnp.asarray(WEIGHTS, y.dtype)
    return scale * (jnp.sum(weights * d**2) + 0.1 * jnp.sum(d**4)) + constant


def test_scale_invariance():
    # f scaled by s ∈ {1e-4, 1, 1e4} and shifted by C ∈ {0, 1e6}: every solve is
    # successful at TARGET. B₀ = ‖∇f‖·I, γ and λ all scale with f, so without a
    # shift the steps are the same up to rounding: the same number of steps for
    # every s, and TARGET to the 1e-6 the gradient test leaves. A shift by C
    # hides changes of f below eps·C, so there the bound is the one every
    # successful stop promises (as in test_scale_invariance.py): the gradient has
    # fallen by √rtol = 1e-4 from ~600 at the start, which with a condition
    # number of 100 is within 3·100·1e-4 of TARGET at worst. One compiled batch
    # (jit of vmap) holds the six solves.
    scales = jnp.array([1e-4, 1.0, 1e4] * 2)
    constants = jnp.array([0.0] * 3 + [1e6] * 3)

    def solve(scale, constant):
        return qn.minimise(_scaled, SR1_TR, jnp.asarray(START), (scale, constant))

    sols = jax.jit(jax.vmap(solve))(scales, constants)
    assert bool(jnp.all(sols.result == qn.RESULTS.successful))
    error = np.max(np.abs(np.asarray(sols.value) - TARGET), axis=1)
    assert np.all(error[:3] <= 1e-6) and np.all(error[3:] <= 3e-2), error
    steps = np.asarray(sols.stats["num_steps"])
    assert len(set(steps[:3].tolist())) == 1, steps


def test_vmap_batch_with_a_nan_problem():
    # One compiled batch of four fits, one of whose objective is nan from the
    # start: that one reports `nonfinite` (nothing is raised under vmap), the
    # others are solved (minimiser c, to the gradient test's 1e-6).
    centres = jnp.array([[1.0, 2.0], [jnp.nan, 0.0], [-3.0, 0.5], [0.0, 4.0]])

    def f(y, c):
        return rosenbrock(y - c + 1.0)

    def solve(c):
        return qn.minimise(f, SR1_TR, jnp.zeros(2), c, max_steps=500)

    sols = jax.jit(jax.vmap(solve))(centres)
    results = [int(r) for r in sols.result._value]
    nonfinite = int(qn.RESULTS.nonfinite._value)
    assert results == [0, nonfinite, 0, 0]
    good = np.array([0, 2, 3])
    np.testing.assert_allclose(sols.value[good], centres[good], atol=1e-6)


def test_minimiser_inside_a_nan_region_is_not_a_success():
    # The minimiser lies in a disc where f is nan: every trial into it is
    # rejected. The solve must end without `successful`, and never at nan.
    def f(y, args=None):
        d = y - 1.0
        return jnp.where(jnp.linalg.norm(d) < 0.1, jnp.nan, jnp.sum(d**2))

    sol = qn.minimise(f, SR1_TR, jnp.array([3.0, -2.0]), throw=False)
    assert sol.result != qn.RESULTS.successful
    assert bool(jnp.all(jnp.isfinite(sol.value)))


# ---------------------------------------------------------------------------
# against SciPy's trust-constr SR1 on the Moré–Garbow–Hillstrom problems
# ---------------------------------------------------------------------------

#: Small problems for the default run (n ≤ 3, quick for both); the full set is
#: `test_against_scipy_on_every_problem` (slow).
QUICK = ["rosenbrock", "freudenstein_roth", "beale", "helical_valley", "bard"]

#: SciPy: its gradient tolerance below qn's stopping point and its step
#: tolerance near eps, so that it stops on what it can resolve, not on a loose
#: tolerance; its iteration cap is qn's `max_steps` below.
SCIPY_OPTIONS = {"gtol": 1e-10, "xtol": 1e-14, "maxiter": 5000}


def _tolerance(target, f0):
    # As in test_vs_scipy.py: 1e-6 relative, plus 1e-10 of the initial gap (at
    # most 1e-10 absolute) for f* = 0.
    return 1e-6 * abs(target) + 1e-10 * min(1.0, f0 - target)


def _solved(problem, f, f0):
    targets = (problem.fstar, *problem.local_fstars)
    return any(abs(f - t) <= _tolerance(t, f0) for t in targets)


def _compare(problem):
    """Both solvers on one problem, from its standard start, in float64."""
    x0 = np.asarray(problem.x0, np.float64)
    value = jax.jit(problem.objective)
    grad = jax.jit(jax.grad(problem.objective))
    f0, g0 = float(value(x0)), float(np.max(np.abs(grad(x0))))
    sol = qn.minimise(
        lambda y, _: problem.objective(y),
        SR1_TR,
        jnp.asarray(x0),
        throw=False,
        max_steps=5000,
    )
    f = float(value(sol.value))
    g = float(np.max(np.abs(grad(sol.value))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trust-constr warns of its delta_grad == 0
        ref = scipy.optimize.minimize(
            lambda x: float(value(x)),
            x0,
            jac=lambda x: np.asarray(grad(x)),
            method="trust-constr",
            hess=scipy.optimize.SR1(),
            options=SCIPY_OPTIONS,
        )
    return {
        "name": problem.name,
        "qn": _solved(problem, f, f0),
        "qn_successful": bool(sol.result == qn.RESULTS.successful),
        # Stationary as a precision stop promises: the gradient fell by √rtol.
        "qn_stationary": g <= 1e-4 * g0,
        "qn_evals": int(sol.stats["num_fn_evals"]),
        "scipy": _solved(problem, float(ref.fun), f0),
        "scipy_evals": int(ref.nfev),
    }


def _report(rows):
    print(f"\n{'problem':28s} {'qn':>3s} {'evals':>6s} {'SciPy':>5s} {'evals':>6s}")
    for r in rows:
        print(
            f"{r['name']:28s} {'yes' if r['qn'] else 'no':>3s} {r['qn_evals']:6d} "
            f"{'yes' if r['scipy'] else 'no':>5s} {r['scipy_evals']:6d}"
        )


def test_against_scipy_on_small_problems():
    # Both solve each of these small problems; qn may not report success at a
    # point that is not the minimum.
    rows = [_compare(get(name)) for name in QUICK]
    _report(rows)
    for r in rows:
        assert r["qn"] and r["scipy"], r
        assert r["qn_successful"], r


@pytest.mark.slow
def test_against_scipy_on_every_problem():
    # Every problem of tests/problems.py. qn's SR1 with the Levenberg–Marquardt
    # trust region must solve at least as many as SciPy's trust-constr SR1; it
    # may report `successful` without solving a problem only where it is
    # stationary (its gradient fell by √rtol = 1e-4, what a precision stop
    # promises), and only on Powell's badly scaled problem (cond(∇²f(x*)) ~
    # 7e17: neither solver resolves it, qn stops at the precision floor). Over
    # the problems both solve, qn may need at most 1.25 times SciPy's
    # evaluations in the median, the bound test_vs_scipy.py sets for BFGS and
    # L-BFGS (one evaluation is f and ∇f for qn, f for SciPy, which evaluates
    # ∇f at the same points).
    rows = [_compare(problem) for problem in PROBLEMS]
    _report(rows)
    solved_qn = sum(r["qn"] for r in rows)
    solved_scipy = sum(r["scipy"] for r in rows)
    print(f"solved: qn {solved_qn}, SciPy {solved_scipy} of {len(rows)}")
    assert solved_qn >= solved_scipy
    wrong = [r for r in rows if r["qn_successful"] and not r["qn"]]
    assert all(r["qn_stationary"] for r in wrong), wrong
    assert {r["name"] for r in wrong} <= {"powell_badly_scaled"}, wrong
    both = [r for r in rows if r["qn"] and r["scipy"]]
    ratio = statistics.median(r["qn_evals"] / r["scipy_evals"] for r in both)
    print(f"median evaluations qn / SciPy over {len(both)} problems: {ratio:.2f}")
    assert ratio <= 1.25
