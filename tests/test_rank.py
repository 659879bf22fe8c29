"""`least_squares(..., rank=True)`: the numerical rank of J̃ at the solution in
`stats["rank"]`, on every sum-of-squares path, per fit under `jax.vmap`, always the
rank `qn.covariance` reports for the same fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn
from matrix import SUM_OF_SQUARES_PATHS

T = jnp.linspace(0.0, 3.0, 20)


def _decay(p, args):
    t, y = args
    return p[0] * jnp.exp(-p[1] * t) - y


def _sum_of_slopes(p, args):
    """(p₀ + p₁)·t − y: the two columns of J are equal everywhere, so J has rank 1
    at every point, whichever path solves it and wherever it stops."""
    t, y = args
    return (p[0] + p[1]) * t - y


@pytest.mark.parametrize("path", SUM_OF_SQUARES_PATHS)
def test_rank_on_every_path_equals_the_covariance_rank(path):
    """A determined decay has rank 2 and the sum of slopes rank 1, on each path (J̃
    kept by the model, J̃ᵀJ̃ on the normal-equations path, or J̃ formed at the
    solution for L-BFGS and CG); the covariance from J̃ formed anew agrees."""
    solver = SUM_OF_SQUARES_PATHS[path]
    cases = [
        (_decay, (T, 2.0 * jnp.exp(-0.7 * T)), 2),
        (_sum_of_slopes, (T, 3.0 * T), 1),
    ]
    for fn, args, expected in cases:
        sol = qn.least_squares(fn, solver, jnp.array([1.0, 1.0]), args, rank=True)
        assert sol.result == qn.RESULTS.successful
        assert sol.stats["rank"].dtype == jnp.int32
        assert int(sol.stats["rank"]) == expected
        assert int(qn.covariance(sol, fn, args).rank) == expected


def test_the_all_zero_dataset_has_rank_one():
    """a·exp(−kt) fitted to all-zero data: a = 0 leaves k without effect (its column
    of J̃ is 10⁻²¹ of a's, below the rounding), so the successful fit reports rank
    1 of 2 unknowns; called from Python (the host loop) and under `jax.jit` alike."""
    args = (T, jnp.zeros(20))

    def fit(args):
        return qn.least_squares(
            _decay, qn.LevenbergMarquardt(), jnp.array([1.0, 1.0]), args, rank=True
        )

    for sol in (fit(args), jax.jit(fit)(args)):
        assert sol.result == qn.RESULTS.successful
        assert int(sol.stats["rank"]) == 1
        assert int(qn.covariance(sol).rank) == 1


def test_a_batch_of_1000_fits_has_a_rank_each():
    """`jax.vmap` over 1,000 decays, three of them all-zero data: rank 1 for those
    three and 2 for the rest, each equal to the covariance's rank of that fit."""
    rates = jnp.linspace(0.5, 2.0, 1000)
    noise = 0.01 * jax.random.normal(jax.random.key(0), (1000, 20))
    data = 2.0 * jnp.exp(-rates[:, None] * T) + noise
    zero = np.array([3, 500, 998])
    data = data.at[zero].set(0.0)

    @jax.jit
    def fit_all(data):
        def one(y):
            return qn.least_squares(
                _decay,
                qn.LevenbergMarquardt(),
                jnp.array([1.0, 1.0]),
                (T, y),
                rank=True,
            )

        return jax.vmap(one)(data)

    sols = fit_all(data)
    ranks = np.asarray(sols.stats["rank"])
    assert ranks.shape == (1000,)
    expected = np.full(1000, 2)
    expected[zero] = 1
    np.testing.assert_array_equal(ranks, expected)
    np.testing.assert_array_equal(ranks, qn.covariance(sols).rank)
    assert int(sols[500].stats["rank"]) == 1


def test_rank_does_not_depend_on_units():
    """Residuals in other units (×10⁶) or unknowns in other units (the rate ×10⁻⁶)
    leave the rank unchanged: J̃'s columns are scaled to unit norm first."""
    data = 2.0 * jnp.exp(-0.7 * T)

    def scaled(p, args):
        return 1e6 * _decay(jnp.array([p[0], 1e-6 * p[1]]), args)

    for fn, y0 in ((_decay, [1.0, 1.0]), (scaled, [1.0, 1e6])):
        sol = qn.least_squares(
            fn, qn.LevenbergMarquardt(), jnp.array(y0), (T, data), rank=True
        )
        assert sol.result == qn.RESULTS.successful
        assert int(sol.stats["rank"]) == 2


def test_rank_is_opt_in_and_leaves_derivatives_alone():
    """Without `rank=True` there is no `stats["rank"]`; with it, the derivative of
    the solution with respect to the data is the same as without."""
    data = 2.0 * jnp.exp(-0.7 * T)
    sol = qn.least_squares(
        _decay, qn.LevenbergMarquardt(), jnp.array([1.0, 1.0]), (T, data)
    )
    assert "rank" not in sol.stats

    def rate(data, rank):
        sol = qn.least_squares(
            _decay,
            qn.LevenbergMarquardt(),
            jnp.array([1.0, 1.0]),
            (T, data),
            rank=rank,
        )
        return sol.value[1]

    with_rank = jax.grad(lambda d: rate(d, True))(data)
    np.testing.assert_array_equal(with_rank, jax.grad(lambda d: rate(d, False))(data))
    assert np.all(np.isfinite(with_rank))
