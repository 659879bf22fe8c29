"""The least-squares objective has one home (`qn.problem.SumOfSquares`), and
`Problem.objective` carries per-solve data of the objective to every path.

A weighted sum of squares ½Σwᵢrᵢ², written as a subclass that changes only the
objective's methods, must give on every Gauss–Newton path (normal equations, QR,
matrix-free) and for L-BFGS the solve of the unweighted residuals √wᵢ·rᵢ; and new
weights must compile nothing anew.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Float

import quasinewton as qn
from matrix import SUM_OF_SQUARES_PATHS
from quasinewton import _loop
from quasinewton.problem import SumOfSquares, make_problem

T = jnp.linspace(0.0, 3.0, 12)
DATA = 2.0 * jnp.exp(-1.3 * T) + 0.05 * jnp.sin(7.0 * T)
WEIGHTS = jnp.linspace(0.5, 4.0, 12)


class Weighted(SumOfSquares):
    """½ Σ wᵢ rᵢ², as the linear model of √w ⊙ r."""

    # Keyword-only: the fields of SumOfSquares before it have defaults.
    weights: Float[Array, " m"] = eqx.field(kw_only=True)

    def cost(self, residual):
        return 0.5 * jnp.sum(self.weights * residual * residual)

    def model(self, residual, jacobian):
        root = jnp.sqrt(self.weights)
        return root * residual, root[:, None] * jacobian

    def model_products(self, residual, product, transpose):
        root = jnp.sqrt(self.weights)
        scaled_product = None if product is None else (lambda v: root * product(v))
        return root * residual, scaled_product, lambda u: transpose(root * u)


def residuals(y, args):
    amplitude, rate = y
    return amplitude * jnp.exp(-rate * T) - DATA


def _weighted_solve(solver, weights):
    y0 = jnp.array([1.0, 1.0])
    problem, x0, _ = make_problem(residuals, y0, None, "residual", False)
    problem = eqx.tree_at(lambda p: p.objective, problem, Weighted(weights=weights))
    solver = eqx.tree_at(
        lambda s: s.curvature, solver, solver.curvature.specialise(problem, x0)
    )
    return _loop.run(problem, x0, solver, 100, False)


@pytest.mark.parametrize(
    "name",
    [
        name if name == "lm-normal" else pytest.param(name, marks=pytest.mark.slow)
        for name in SUM_OF_SQUARES_PATHS
    ],
)
def test_a_weighted_objective_reaches_every_path(name):
    solver = SUM_OF_SQUARES_PATHS[name]
    state = jax.jit(_weighted_solve)(solver, WEIGHTS)
    root = jnp.sqrt(WEIGHTS)
    reference = qn.least_squares(
        lambda y, _: root * residuals(y, None), solver, jnp.array([1.0, 1.0])
    )
    assert state.result == qn.RESULTS.successful
    np.testing.assert_allclose(state.x, reference.value, rtol=1e-6)
    # f is the weighted cost, ½Σwᵢrᵢ², at the solution.
    expected = 0.5 * float(jnp.sum(WEIGHTS * residuals(state.x, None) ** 2))
    assert float(state.evaluation.f) == pytest.approx(expected, rel=1e-10)


def test_new_weights_compile_nothing_anew():
    solve = jax.jit(lambda weights: _weighted_solve(qn.LevenbergMarquardt(), weights))
    first = solve(WEIGHTS)
    second = solve(2.0 * WEIGHTS[::-1])
    assert solve._cache_size() == 1
    assert not np.allclose(first.x, second.x)  # the weights did reach the solve
