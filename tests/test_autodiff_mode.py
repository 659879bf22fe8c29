"""`autodiff_mode`: objectives differentiable in one mode only, and the same answers
from every mode on an ordinary problem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn
from unchecked import unchecked

# Long (every preset in every derivative mode, in Python and under jit):
# run by CI and by `python3 run.py test -m slow`.
pytestmark = pytest.mark.slow

MODES = ("auto", "forward", "reverse")
Y0 = jnp.array([-1.2, 1.0])


def rosenbrock(y, a):
    # Zero at y* = (a, a²), the only minimiser: dy*/da = (1, 2a).
    return jnp.stack([10.0 * (y[1] - y[0] ** 2), a - y[0]])


# Reverse mode only: a residual with a hand-written backward rule, as a simulator
# or an ODE adjoint would have. jax.jvp of it raises.
@jax.custom_vjp
def simulator(y, a):
    return rosenbrock(y, a)


def _simulator_fwd(y, a):
    return rosenbrock(y, a), y


def _simulator_bwd(y, g):
    # Jᵀg for J = [[-20 y₀, 10], [-1, 0]], and ∂r/∂a = (0, 1).
    return jnp.stack([-20.0 * y[0] * g[0] - g[1], 10.0 * g[0]]), g[1]


simulator.defvjp(_simulator_fwd, _simulator_bwd)


def simulated(y, a):
    return simulator(y, a)


REVERSE_ONLY_SOLVERS = {
    "LevenbergMarquardt": qn.LevenbergMarquardt,
    "GaussNewton": qn.GaussNewton,
    "LevenbergMarquardtCG": qn.LevenbergMarquardtCG,
}


@pytest.mark.parametrize("name", REVERSE_ONLY_SOLVERS)
def test_custom_vjp_residuals_with_reverse_mode(name):
    solver = REVERSE_ONLY_SOLVERS[name]()

    def solve(a):
        return qn.least_squares(simulated, solver, Y0, a, autodiff_mode="reverse")

    sol = solve(1.5)
    assert sol.result == qn.RESULTS.successful
    # y* = (1.5, 2.25). The default tolerances stop within ~1e-6 of it (the
    # matrix-free CG steps are inexact, so its tolerance is looser).
    tol = 1e-4 if name == "LevenbergMarquardtCG" else 1e-6
    np.testing.assert_allclose(sol.value, [1.5, 2.25], atol=tol)
    np.testing.assert_allclose(
        jax.jit(solve)(1.5).value, sol.value, rtol=1e-10, atol=1e-12
    )
    # The adjoint uses only vjps too: dy*/da = (1, 2a) = (1, 3). Its error is the
    # solution's, amplified by at most the condition of the Hessian (~10² here).
    jac = jax.jacobian(lambda a: solve(a).value)(1.5)
    np.testing.assert_allclose(jac, [1.0, 3.0], atol=100 * tol)


@pytest.mark.parametrize("name", REVERSE_ONLY_SOLVERS)
def test_custom_vjp_residuals_with_auto_mode_raise(name):
    # "auto" forms a tall Jacobian by forward mode, which a custom_vjp refuses:
    # JAX's TypeError. Where it is raised while quasinewton differentiates (the
    # dense Jacobian) it carries a note naming autodiff_mode="reverse"; the
    # matrix-free linearisation fails only when JAX lowers it, with JAX's message.
    with pytest.raises(TypeError, match="custom_vjp") as info:
        qn.least_squares(simulated, REVERSE_ONLY_SOLVERS[name](), Y0, 1.5)
    if name != "LevenbergMarquardtCG":
        assert "autodiff_mode='reverse'" in "".join(info.value.__notes__)


def test_reverse_matrix_free_with_untransposable_backward_rule_is_a_clear_error():
    # Jv is the transpose of the vjp; a backward rule that leaves JAX (a callback)
    # cannot be transposed, so the matrix-free model cannot work: a TypeError of
    # ours at trace time, pointing to materialise=True.
    @jax.custom_vjp
    def opaque(y, a):
        return rosenbrock(y, a)

    def bwd(y, g):
        struct = jax.ShapeDtypeStruct(y.shape, y.dtype)
        gy = jax.pure_callback(
            lambda y, g: np.array([-20 * y[0] * g[0] - g[1], 10 * g[0]], y.dtype),
            struct,
            y,
            g,
        )
        return gy, g[1]

    opaque.defvjp(lambda y, a: (rosenbrock(y, a), y), bwd)
    with pytest.raises(TypeError, match="materialise=True"):
        qn.least_squares(
            lambda y, a: opaque(y, a),
            qn.LevenbergMarquardtCG(),
            Y0,
            1.5,
            autodiff_mode="reverse",
        )


# Forward mode only: an objective computed outside JAX, with a jvp rule that calls
# back to the host for the directional derivative. Neither callback can be
# transposed, so jax.grad of it raises.
def _host_rosenbrock(y):
    return np.asarray(
        np.sum(100 * (y[1:] - y[:-1] ** 2) ** 2 + (1 - y[:-1]) ** 2), y.dtype
    )


def _host_directional_derivative(y, t):
    g = np.zeros_like(y)
    g[:-1] += -400 * y[:-1] * (y[1:] - y[:-1] ** 2) - 2 * (1 - y[:-1])
    g[1:] += 200 * (y[1:] - y[:-1] ** 2)
    return np.asarray(g @ t, y.dtype)


@jax.custom_jvp
def host_rosenbrock(y):
    struct = jax.ShapeDtypeStruct((), y.dtype)
    return jax.pure_callback(_host_rosenbrock, struct, y, vmap_method="sequential")


@host_rosenbrock.defjvp
def _host_rosenbrock_jvp(primals, tangents):
    (y,), (t,) = primals, tangents
    struct = jax.ShapeDtypeStruct((), y.dtype)
    # vmap_method: jax.jacfwd pushes the n tangents through as one batch.
    dot = jax.pure_callback(
        _host_directional_derivative, struct, y, t, vmap_method="sequential"
    )
    return host_rosenbrock(y), dot


Y0_3 = jnp.array([-1.2, 1.0, 0.5])


@pytest.mark.parametrize("make_solver", [qn.LBFGS, qn.BFGS], ids=["LBFGS", "BFGS"])
def test_forward_only_objective_with_forward_mode(make_solver):
    def solve(y0):
        return qn.minimise(
            lambda y, _: host_rosenbrock(y), make_solver(), y0, autodiff_mode="forward"
        )

    sol = solve(Y0_3)
    assert sol.result == qn.RESULTS.successful
    # The 3-D Rosenbrock function's minimiser from this start is (1, 1, 1); the
    # float64 tolerances stop within ~1e-6 of it (measured: 1.3e-7).
    np.testing.assert_allclose(sol.value, jnp.ones(3), atol=1e-6)
    np.testing.assert_allclose(
        jax.jit(solve)(Y0_3).value, sol.value, rtol=1e-10, atol=1e-12
    )
    # "auto" takes the gradient by reverse mode: JAX's error, with our note.
    with pytest.raises(ValueError, match="transpose") as info:
        qn.minimise(lambda y, _: host_rosenbrock(y), make_solver(), Y0_3)
    assert "autodiff_mode='forward'" in "".join(info.value.__notes__)


@jax.custom_jvp
def host_residuals(y):
    # Rosenbrock residuals r = (10(y₁ − y₀²), 1 − y₀), computed on the host, with a
    # host jvp rule: forward mode only. Zero at y* = (1, 1).
    def r(y):
        return np.array([10 * (y[1] - y[0] ** 2), 1 - y[0]], y.dtype)

    return jax.pure_callback(
        r, jax.ShapeDtypeStruct((2,), y.dtype), y, vmap_method="sequential"
    )


@host_residuals.defjvp
def _host_residuals_jvp(primals, tangents):
    (y,), (t,) = primals, tangents

    def jv(y, t):
        return np.array([10 * (t[1] - 2 * y[0] * t[0]), -t[0]], y.dtype)

    struct = jax.ShapeDtypeStruct((2,), y.dtype)
    return host_residuals(y), jax.pure_callback(
        jv, struct, y, t, vmap_method="sequential"
    )


def test_forward_only_residuals_dense_and_matrix_free():
    # A dense Jacobian by n jvps works, and y* = (1, 1) is found to the default
    # tolerances (~1e-6). The matrix-free model needs Jᵀu, the transpose of the
    # callback's jvp, which does not exist: a TypeError of ours at trace time.
    def fn(y, _):
        return host_residuals(y)

    for solver in (qn.LevenbergMarquardt(), qn.GaussNewton(), qn.LBFGS()):
        sol = qn.least_squares(fn, solver, Y0, autodiff_mode="forward")
        np.testing.assert_allclose(sol.value, [1.0, 1.0], atol=1e-5)
    with pytest.raises(TypeError, match="materialise=True"):
        qn.least_squares(fn, qn.LevenbergMarquardtCG(), Y0, autodiff_mode="forward")


PRESETS = {
    "LevenbergMarquardt": qn.LevenbergMarquardt,
    "GaussNewton": qn.GaussNewton,
    "LevenbergMarquardtCG": qn.LevenbergMarquardtCG,
    "LBFGS": qn.LBFGS,
    "BFGS": qn.BFGS,
    "Newton": qn.Newton,
}


@pytest.mark.parametrize("name", PRESETS)
def test_every_mode_gives_the_same_solution(name):
    solver = PRESETS[name]()

    def solve(mode, a):
        return qn.least_squares(rosenbrock, solver, Y0, a, autodiff_mode=mode)

    jitted = jax.jit(solve, static_argnums=0)
    reference = solve("auto", 1.5)
    assert reference.result == qn.RESULTS.successful
    for mode in MODES:
        for sol in (solve(mode, 1.5), jitted(mode, 1.5)):
            # The modes compute the same derivatives in a different order, so they
            # differ by rounding (~1e-16) and the iterations follow the same path:
            # the same number of steps and the same point to 1e-12.
            assert sol.result == qn.RESULTS.successful
            assert int(sol.stats["num_steps"]) == int(reference.stats["num_steps"])
            np.testing.assert_allclose(
                sol.value, reference.value, rtol=1e-12, atol=1e-12
            )


@pytest.mark.parametrize(
    "name", ["LevenbergMarquardt", "LevenbergMarquardtCG", "LBFGS"]
)
@pytest.mark.parametrize("mode", MODES)
def test_gradient_through_the_solve_in_every_mode(name, mode):
    # d(y₀* + y₁*)/da = 1 + 2a = 4 at a = 1.5 (y* = (a, a²)). With rtol = atol =
    # 1e-10 the solve stops within ~1e-10 of y*, and the implicit derivative,
    # evaluated there, is off by about that times the Hessian's condition (~10²).
    # Three models cover the adjoint's paths (dense Gauss-Newton, matrix-free,
    # gradient only); every preset's solution is compared above.
    solver = PRESETS[name](rtol=1e-10, atol=1e-10)

    def loss(a):
        sol = qn.least_squares(rosenbrock, solver, Y0, a, autodiff_mode=mode)
        return jnp.sum(sol.value)

    grad = jax.grad(loss)(1.5)
    np.testing.assert_allclose(grad, 4.0, atol=1e-6)
    np.testing.assert_allclose(jax.jacfwd(loss)(1.5), grad, rtol=1e-10)
    if name == "LevenbergMarquardt":
        np.testing.assert_allclose(jax.jit(jax.grad(loss))(1.5), grad, rtol=1e-10)
        # Central differences of the solve (from Python): h = 1e-4, truncation 0
        # (y₀* + y₁* = a + a² is quadratic), solve error 1e-10/h = 1e-6.
        h = 1e-4
        np.testing.assert_allclose(
            (loss(1.5 + h) - loss(1.5 - h)) / (2 * h), grad, atol=1e-5
        )


def loop_objective(y, c):
    # Σ (y − c)² + ¼ Σ y⁴, summed by a while_loop: jax.jvp works, jax.grad raises
    # (reverse mode does not go through while_loop). The minimiser solves
    # 2(y − c) + y³ = 0 per entry, so dy*/dc = diag(2 / (2 + 3y*²)).
    def body(carry):
        i, total = carry
        return i + 1, total + (y[i] - c[i]) ** 2 + 0.25 * y[i] ** 4

    return jax.lax.while_loop(lambda carry: carry[0] < y.size, body, (0, 0.0))[1]


def test_forward_mode_derivative_through_a_forward_only_solve():
    c = jnp.array([0.5, -1.0, 2.0])
    solver = qn.BFGS(rtol=1e-12, atol=1e-12)

    def solve(c):
        return qn.minimise(
            loop_objective, solver, jnp.zeros(3), c, autodiff_mode="forward"
        ).value

    y = solve(c)
    np.testing.assert_allclose(2 * (y - c) + y**3, 0.0, atol=1e-9)
    # Forward over forward second derivatives: jax.jacfwd through the solve.
    expected = jnp.diag(2 / (2 + 3 * y**2))
    np.testing.assert_allclose(jax.jacfwd(solve)(c), expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        jax.jit(jax.jacfwd(solve))(c), expected, rtol=1e-8, atol=1e-10
    )
    # Central differences of the solve agree: h = 1e-4, error O(h²) + 1e-12/h.
    h = 1e-4
    fd = jnp.stack(
        [(solve(c.at[i].add(h)) - solve(c.at[i].add(-h))) / (2 * h) for i in range(3)],
        1,
    )
    np.testing.assert_allclose(fd, expected, atol=1e-6)


def test_unknown_mode_is_a_value_error():
    with unchecked(), pytest.raises(ValueError, match="autodiff_mode"):
        qn.minimise(
            lambda y, _: jnp.sum(y**2), qn.LBFGS(), Y0, autodiff_mode="backward"
        )
    with unchecked(), pytest.raises(ValueError, match="autodiff_mode"):
        qn.least_squares(
            rosenbrock, qn.LevenbergMarquardt(), Y0, 1.5, autodiff_mode="fwd"
        )
