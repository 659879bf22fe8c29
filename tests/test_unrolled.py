"""The lean path for small fits: the unrolled Cholesky solve and normal-equations
Gauss–Newton, checked against NumPy and against the QR path."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

import quasinewton as qn
from quasinewton.curvature import GaussNewton


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_cholesky_solve_matches_numpy(n, dtype):
    rng = np.random.default_rng(n)
    jac = rng.standard_normal((3 * n, n))
    matrix = jac.T @ jac + 0.1 * np.eye(n)  # cond ≲ 10³
    rhs = rng.standard_normal(n)
    x = qn.linear.cholesky_solve(jnp.asarray(matrix, dtype), jnp.asarray(rhs, dtype))
    assert x.dtype == dtype
    expected = np.linalg.solve(matrix, rhs)
    # Backward-stable Cholesky: error ≲ cond · eps.
    tol = 1e-10 if dtype == jnp.float64 else 1e-3
    np.testing.assert_allclose(np.asarray(x, np.float64), expected, rtol=tol, atol=tol)


def test_cholesky_solve_indefinite_is_not_finite():
    # [[1, 2], [2, 1]] has eigenvalues 3 and −1: the second pivot is 1 − 4 < 0.
    x = qn.linear.cholesky_solve(jnp.array([[1.0, 2.0], [2.0, 1.0]]), jnp.ones(2))
    assert not bool(jnp.any(jnp.isfinite(x)))


def test_cholesky_solve_under_vmap():
    rng = np.random.default_rng(0)
    jac = rng.standard_normal((100, 12, 4))
    matrices = np.einsum("bmi,bmj->bij", jac, jac)
    rhs = rng.standard_normal((100, 4))
    x = jax.jit(jax.vmap(qn.linear.cholesky_solve))(
        jnp.asarray(matrices), jnp.asarray(rhs)
    )
    np.testing.assert_allclose(
        x, np.linalg.solve(matrices, rhs[..., None])[..., 0], rtol=1e-9
    )


T = jnp.linspace(0.0, 4.0, 50)


def exp_decay(params, y):
    a, b, c = params
    return a * jnp.exp(-b * T) + c - y


def test_default_lm_takes_the_lean_path_by_size():
    y = 2.0 * jnp.exp(-1.3 * T) + 0.5
    lm = qn.LevenbergMarquardt()
    assert lm.curvature.normal_equations == "auto"
    from quasinewton.problem import Problem

    def problem(fn, args):
        return Problem(fn, args, lambda x: x, "residual", False)

    small = problem(exp_decay, y)
    assert lm.curvature.specialise(small, jnp.zeros(3)).normal_equations is True
    large = problem(lambda p, a: jnp.concatenate([p, p]), None)
    assert lm.curvature.specialise(large, jnp.zeros(9)).normal_equations is False
    assert (
        qn.LevenbergMarquardt(linear_solver=lx.QR()).curvature.normal_equations is False
    )
    assert (
        qn.LevenbergMarquardt(linear_solver=lx.Cholesky()).curvature.normal_equations
        is True
    )
    with pytest.raises(ValueError, match="dense J"):
        GaussNewton(materialise=False, normal_equations=True)


@pytest.mark.parametrize(
    "dtype", [jnp.float64, pytest.param(jnp.float32, marks=pytest.mark.slow)]
)
def test_normal_equations_and_qr_reach_the_same_fits(dtype):
    # 200 noisy exp-decay fits: the lean path and QR find the same minimiser (to
    # the float32 noise floor in float32), each successful.
    truth = jax.random.uniform(jax.random.PRNGKey(7), (200, 3), minval=0.5, maxval=2.0)
    noise = 0.05 * jax.random.normal(jax.random.PRNGKey(8), (200, T.size))
    ys = (jax.vmap(lambda p: p[0] * jnp.exp(-p[1] * T) + p[2])(truth) + noise).astype(
        dtype
    )
    y0 = jnp.tile(jnp.array([1.0, 1.0, 0.0], dtype), (200, 1))
    t = T.astype(dtype)

    def fit(solver):
        res = lambda p, y: p[0] * jnp.exp(-p[1] * t) + p[2] - y
        return jax.jit(
            jax.vmap(lambda p, y: qn.least_squares(res, solver, p, y, throw=False))
        )(y0, ys)

    lean = fit(qn.LevenbergMarquardt())
    qr = fit(qn.LevenbergMarquardt(linear_solver=lx.QR()))
    assert bool(jnp.all(lean.result == qn.RESULTS.successful))
    assert bool(jnp.all(qr.result == qn.RESULTS.successful))
    tol = 1e-6 if dtype == jnp.float64 else 2e-2
    np.testing.assert_allclose(lean.value, qr.value, rtol=tol, atol=tol)
    np.testing.assert_allclose(
        lean.stats["value"],
        qr.stats["value"],
        rtol=1e-10 if dtype == jnp.float64 else 1e-5,
    )
