"""Derivatives through a solve whose Hessian is singular at the solution: the
minimum-norm derivative, never an error, and never an aborted batch."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

import quasinewton as qn


def residuals(y, args):
    # r = (y₀ + b·y₁ − a, 2(y₀ + y₁ − a)). With b = 1 both residuals depend on
    # s = y₀ + y₁ only, r = (s − a, 2(s − a)), f = ½‖r‖² = (5/2)(s − a)², and every
    # y with s = a is a minimiser: the example of issue 13.
    a, b = args
    return jnp.stack([y[0] + b * y[1] - a, 2.0 * (y[0] + y[1] - a)])


# Singular case (b = 1), analytically: ∇ᵧf = 5(s − a)·(1, 1), so the Hessian is
# H = 5·(1, 1)(1, 1)ᵀ, of rank one (eigenvalue 10 along u = (1, 1)/√2, 0 along
# (1, −1)), and ∂ₐ∇ᵧf = −5·(1, 1). The minimum-norm derivative is
# dy/da = −H⁺·∂ₐ∇ᵧf = 5·H⁺(1, 1) = 5·(uuᵀ/10)(1, 1) = (0.5, 0.5): the direction
# orthogonal to the flat one. It is also the derivative of the minimiser LM
# reaches from y0 = 0, the minimum-norm one (a/2, a/2).
SINGULAR = np.array([0.5, 0.5])
# Regular case (b ≠ 1): y₀ + b·y₁ = a and y₀ + y₁ = a give y = (a, 0), so
# dy/da = (1, 0).
REGULAR = np.array([1.0, 0.0])


def _solution(a, b, dtype, throw, adjoint=qn.ImplicitAdjoint()):
    args = (jnp.asarray(a, dtype), jnp.asarray(b, dtype))
    sol = qn.least_squares(
        residuals,
        qn.LevenbergMarquardt(),
        jnp.zeros(2, dtype),
        args,
        throw=throw,
        adjoint=adjoint,
    )
    return sol.value


# One case in the default run; the other three (the long ones) are slow.
@pytest.mark.parametrize(
    "dtype", [jnp.float64, pytest.param(jnp.float32, marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("throw", [pytest.param(False, marks=pytest.mark.slow), True])
def test_singular_adjoint_python_and_jit(dtype, throw):
    # throw=True too: the solve succeeded, and the derivative is the documented
    # minimum-norm one rather than an error.
    def value(a):
        return _solution(a, 1.0, dtype, throw)

    a = jnp.asarray(1.0, dtype)
    np.testing.assert_allclose(value(a), [0.5, 0.5], atol=1e-5)
    for jac in (jax.jacrev(value), jax.jit(jax.jacrev(value)), jax.jacfwd(value)):
        np.testing.assert_allclose(jac(a), SINGULAR, atol=1e-5)
    loss = lambda a: jnp.sum(value(a) ** 2)
    # d/da Σ y² = 2·y·dy/da = 2·(0.25 + 0.25) = 1 at a = 1.
    np.testing.assert_allclose(jax.grad(loss)(a), 1.0, atol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("throw", [False, True])
def test_singular_fits_do_not_abort_a_batch(dtype, throw):
    a = jnp.array([1.0, 2.0, 3.0, 0.5, -1.0, 4.0], dtype)
    b = jnp.array([1.0, 2.0, 1.0, 0.5, 1.0, 3.0], dtype)  # b = 1: singular fits
    singular = np.asarray(b) == 1.0

    def jac(a, b):
        return jax.jacrev(lambda a: _solution(a, b, dtype, throw))(a)

    batched = jax.jit(jax.vmap(jac))(a, b)
    expected = np.where(singular[:, None], SINGULAR, REGULAR)
    tol = 1e-4 if dtype == jnp.float32 else 1e-8
    np.testing.assert_allclose(batched, expected, atol=tol)
    # The regular fits' derivatives against central differences of their solves
    # (the problem is linear, so these are exact up to rounding: float32 with
    # h = 1e-2 leaves ~1e-5·|y|/h ≈ 1e-3; float64 with h = 1e-4, ~1e-10).
    h = 1e-2 if dtype == jnp.float32 else 1e-4
    fd_tol = 5e-3 if dtype == jnp.float32 else 1e-7
    solve = jax.jit(jax.vmap(lambda a, b: _solution(a, b, dtype, False)))
    fd = (solve(a + h, b) - solve(a - h, b)) / (2 * h)
    np.testing.assert_allclose(batched[~singular], fd[~singular], atol=fd_tol)


@pytest.mark.slow
def test_singular_adjoint_with_conjugate_gradients():
    # Forward mode: CG from zero on the consistent singular system
    # H·t = 5·(1, 1) stays in the range of H and reaches the minimum-norm solution
    # (0.5, 0.5) itself. Reverse mode solves H·w = e_i for each output i, which is
    # inconsistent (e_i is not in the range of H): CG has no answer and gives nan
    # for that fit, as documented, without raising and without touching the
    # regular fit of the batch, whose derivative is (1, 0).
    adjoint = qn.ImplicitAdjoint(lx.CG(rtol=1e-10, atol=1e-10))

    def value(a, b):
        return _solution(a, b, jnp.float64, True, adjoint)

    jac = jax.jacfwd(value)(1.0, 1.0)
    np.testing.assert_allclose(jac, SINGULAR, atol=1e-8)
    a, b = jnp.array([1.0, 2.0]), jnp.array([1.0, 2.0])
    batched = jax.vmap(jax.jacrev(value))(a, b)
    assert np.all(np.isnan(batched[0]))
    np.testing.assert_allclose(batched[1], REGULAR, atol=1e-8)
