"""Derivatives of the solution with respect to args, by the implicit function theorem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn

N = 6
A = jnp.diag(jnp.linspace(1.0, 5.0, N)) + 0.2  # symmetric positive definite


def quadratic(y, b):
    return 0.5 * y @ A @ y - b @ y


@pytest.mark.slow
def test_jacobian_of_quadratic_minimiser_is_inverse_hessian():
    # y*(b) = A⁻¹b exactly, so dy*/db = A⁻¹.
    b = jnp.arange(1.0, N + 1)
    jac = jax.jacobian(
        lambda b: qn.minimise(quadratic, qn.BFGS(), jnp.zeros(N), b).value
    )(b)
    np.testing.assert_allclose(jac, jnp.linalg.inv(A), rtol=1e-12, atol=1e-13)


def test_gradient_through_closure():
    # Arrays closed over by fn are differentiated too.
    b = jnp.arange(1.0, N + 1)

    def loss(b):
        return jnp.sum(
            qn.minimise(lambda y, _: quadratic(y, b), qn.LBFGS(), jnp.zeros(N)).value
        )

    np.testing.assert_allclose(jax.grad(loss)(b), jnp.linalg.inv(A).sum(0), atol=1e-12)


def smooth(y, args):
    a, c = args
    return jnp.sum(a * (y - c) ** 2) + 0.1 * jnp.sum(y**4) + jnp.sum(jnp.sin(y) * c)


@jax.jit
def _polished_minimiser(a, c):
    """An independent oracle for y*(a, c): qn's solution refined by exact Newton
    steps on ∇f = 0 until it is accurate to rounding (a line search on f alone can
    only locate y* to about √eps)."""
    y = qn.minimise(smooth, qn.LBFGS(), jnp.zeros(N), (a, c)).value
    grad = jax.grad(smooth)
    hess = jax.hessian(smooth)
    for _ in range(4):
        y = y - jnp.linalg.solve(hess(y, (a, c)), grad(y, (a, c)))
    return y


def test_gradient_matches_finite_differences_nonquadratic():
    a = jnp.linspace(1.0, 4.0, N)
    c = jnp.linspace(-1.0, 1.0, N)

    def loss_of(y):
        return jnp.sum(y**2) + y[0]

    def loss(a, c):
        # Tight tolerances: the default atol = 1e-6 lets the solve stop with a
        # gradient of a few 1e-6, which would shift the implicit gradient by ~1e-6.
        solver = qn.LBFGS(rtol=1e-10, atol=1e-10)
        return loss_of(qn.minimise(smooth, solver, jnp.zeros(N), (a, c)).value)

    grad_a, grad_c = jax.grad(loss, argnums=(0, 1))(a, c)
    # Central differences of the polished minimiser with h = 1e-5: truncation
    # O(h²) ≈ 1e-10 and rounding ≈ 1e-16/h ≈ 1e-11, so 1e-7 is a real check. The
    # implicit gradient is evaluated at qn's own (unpolished) solution, whose error
    # (≈2e-8 at rtol = atol = 1e-10) shifts it by about as much.
    h = 1e-5
    for grad, which in ((grad_a, 0), (grad_c, 1)):
        fd = []
        for i in range(N):
            plus = [a, c]
            minus = [a, c]
            plus[which] = plus[which].at[i].add(h)
            minus[which] = minus[which].at[i].add(-h)
            fd.append(
                (
                    loss_of(_polished_minimiser(*plus))
                    - loss_of(_polished_minimiser(*minus))
                )
                / (2 * h)
            )
        np.testing.assert_allclose(grad, np.array(fd), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_grad_of_vmapped_solve_and_aux():
    def f(y, c):
        return jnp.sum((y - c) ** 2) + 0.5 * jnp.sum(y**4), jnp.sum(y)

    def loss(cs):
        sols = jax.vmap(
            lambda c: qn.minimise(
                f, qn.LBFGS(rtol=1e-12, atol=1e-12), jnp.zeros(2), c, has_aux=True
            )
        )(cs)
        return jnp.sum(sols.aux)

    cs = jnp.array([[0.5, -0.3], [1.0, 2.0]])
    g = jax.grad(loss)(cs)
    # Stationarity 2(y − c) + 2y³ = 0 ⇒ dy/dc = 1/(1 + 3y²) per coordinate.
    ys = jax.vmap(
        lambda c: (
            qn.minimise(
                f, qn.LBFGS(rtol=1e-12, atol=1e-12), jnp.zeros(2), c, has_aux=True
            ).value
        )
    )(cs)
    np.testing.assert_allclose(g, 1.0 / (1.0 + 3.0 * ys**2), rtol=1e-8)


@pytest.mark.slow
def test_implicit_adjoint_with_conjugate_gradients_matches_default():
    # The Hessian at a minimiser is positive semi-definite; CG (Lineax's and ours)
    # needs that tag, and must give the derivative the dense default gives.
    import lineax as lx

    t = jnp.linspace(0.0, 4.0, 50)

    def residuals(params, y):
        a, b, c = params
        return a * jnp.exp(-b * t) + c - y

    def rate(y, adjoint):
        sol = qn.least_squares(
            residuals,
            qn.LevenbergMarquardt(rtol=1e-12, atol=1e-12),
            jnp.array([1.0, 1.0, 0.0]),
            y,
            adjoint=adjoint,
        )
        return sol.value[1]

    y = 2.0 * jnp.exp(-1.3 * t) + 0.5 + 0.01 * jnp.sin(7 * t)
    dense = jax.grad(rate)(y, qn.ImplicitAdjoint())
    for solver in (
        lx.CG(rtol=1e-10, atol=1e-12),
        qn.linear.ConjugateGradient(rtol=1e-10, max_steps=50),
    ):
        iterative = jax.grad(rate)(y, qn.ImplicitAdjoint(linear_solver=solver))
        np.testing.assert_allclose(iterative, dense, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_gradient_with_respect_to_a_python_float():
    # jax.grad of a Python float makes a weakly typed argument; it used to lose its
    # array type inside the adjoint ("Closure-converted function called with
    # different dynamic arguments"). y* solves 2(y − a) + 0.4y³ = 0, so
    # dy*/da = 2/(2 + 1.2y*²) (implicit function theorem, by hand).
    def shifted(y, a):
        return jnp.sum((y - a) ** 2) + 0.1 * jnp.sum(y**4)

    y0 = jnp.array([0.5, 0.5])

    def first(a):
        return qn.minimise(shifted, qn.LBFGS(rtol=1e-10, atol=1e-10), y0, a).value[0]

    grad = jax.grad(first)(1.0)
    y = float(first(1.0))
    np.testing.assert_allclose(2 * (y - 1.0) + 0.4 * y**3, 0.0, atol=1e-9)
    np.testing.assert_allclose(float(grad), 2.0 / (2.0 + 1.2 * y**2), rtol=1e-7)
