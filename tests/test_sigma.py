"""`sigma` on `least_squares`: the objective ½‖W r‖² on every path.

The oracle is the same fit written by hand on the whitened residuals W r (W =
diag(1/σ), or L⁻¹ for a covariance Σ = LLᵀ): each path must reach its solution, and
report its cost.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn

T = jnp.linspace(0.0, 3.0, 16)
DATA = 2.0 * jnp.exp(-1.3 * T) + 0.05 * jnp.sin(7.0 * T)
SIGMA = jnp.linspace(0.05, 0.4, 16)
COVARIANCE = jnp.diag(SIGMA**2) + 0.002 * jnp.exp(-jnp.abs(T[:, None] - T[None, :]))

SOLVERS = {
    "lm-normal": qn.LevenbergMarquardt(rtol=1e-12),
    "lm-qr": qn.Solver(
        qn.curvature.GaussNewton(True, normal_equations=False),
        qn.descent.TrustRegion(),
        rtol=1e-12,
    ),
    "lm-cg": qn.LevenbergMarquardtCG(rtol=1e-12),
    "lbfgs": qn.LBFGS(rtol=1e-12),
}


def residuals(y, data):
    return y[0] * jnp.exp(-y[1] * T) - data


def _whitened(factor):
    def fn(y, data):
        return jax.scipy.linalg.solve_triangular(factor, residuals(y, data), lower=True)

    return fn


def _reference(fn):
    return qn.least_squares(fn, SOLVERS["lm-qr"], jnp.array([1.0, 1.0]), DATA)


@pytest.mark.parametrize("kind", ["vector", "covariance"])
@pytest.mark.parametrize(
    "name",
    [
        n if n == "lm-normal" else pytest.param(n, marks=pytest.mark.slow)
        for n in SOLVERS
    ],
)
def test_every_path_fits_the_whitened_residuals(name, kind):
    """Parameters to 1e-7 and the reported cost ½‖Wr‖² to 1e-10 of the hand-whitened
    fit, called from Python and under `jax.jit`."""
    if kind == "vector":
        sigma, reference = SIGMA, _reference(lambda y, d: residuals(y, d) / SIGMA)
    else:
        factor = jnp.linalg.cholesky(COVARIANCE)
        sigma, reference = COVARIANCE, _reference(_whitened(factor))

    def solve(data):
        return qn.least_squares(
            residuals,
            SOLVERS[name],
            jnp.array([1.0, 1.0]),
            data,
            sigma=sigma,
            max_steps=2000,
        )

    for sol in (solve(DATA), jax.jit(solve)(DATA)):
        assert sol.result == qn.RESULTS.successful
        np.testing.assert_allclose(sol.value, reference.value, rtol=1e-7)
        np.testing.assert_allclose(
            sol.stats["value"], reference.stats["value"], rtol=1e-10
        )


def test_sigma_in_the_structure_of_the_residuals():
    """Residuals returned as a dict of two groups take a dict of standard
    deviations, a scalar for one group and an array for the other: the fit is that
    of the concatenated residuals with the broadcast σ."""

    def grouped(y, data):
        r = residuals(y, data)
        return {"early": r[:6], "late": r[6:]}

    sigma = {"early": 0.1, "late": SIGMA[6:]}
    full = jnp.concatenate([jnp.full(6, 0.1), SIGMA[6:]])
    sol = qn.least_squares(
        grouped, SOLVERS["lm-normal"], jnp.array([1.0, 1.0]), DATA, sigma=sigma
    )
    reference = _reference(lambda y, d: residuals(y, d) / full)
    np.testing.assert_allclose(sol.value, reference.value, rtol=1e-7)


def test_scaling_sigma_leaves_the_fit_and_its_success_unchanged():
    """σ in other units (×10⁴ or ×10⁻⁴) scales the cost by 10⁻⁸ or 10⁸ and changes
    neither the fit nor the result, nor the relative covariance."""
    base = qn.least_squares(
        residuals, SOLVERS["lm-normal"], jnp.array([1.0, 1.0]), DATA, sigma=SIGMA
    )
    for factor in (1e4, 1e-4):
        sol = qn.least_squares(
            residuals,
            qn.LevenbergMarquardt(),
            jnp.array([1.0, 1.0]),
            DATA,
            sigma=factor * SIGMA,
        )
        assert sol.result == qn.RESULTS.successful
        np.testing.assert_allclose(sol.value, base.value, rtol=1e-6)
        np.testing.assert_allclose(
            qn.covariance(sol).matrix, qn.covariance(base).matrix, rtol=1e-5
        )


def test_per_fit_sigma_under_vmap_compiles_once():
    """Each fit of a batch its own σ (an input of the compiled loop): each matches
    its fit alone, and a second batch of other σ reuses the compiled program."""
    sigmas = SIGMA[None, :] * jnp.linspace(0.5, 2.0, 8)[:, None]
    sigmas = sigmas.at[3].set(SIGMA[::-1])

    @jax.jit
    def fit_all(sigmas):
        return jax.vmap(
            lambda s: qn.least_squares(
                residuals, SOLVERS["lm-normal"], jnp.array([1.0, 1.0]), DATA, sigma=s
            )
        )(sigmas)

    sols = fit_all(sigmas)
    fit_all(2.0 * sigmas)
    assert fit_all._cache_size() == 1
    alone = _reference(lambda y, d: residuals(y, d) / SIGMA[::-1])
    np.testing.assert_allclose(sols.value[3], alone.value, rtol=1e-7)


def test_bad_sigma_is_a_clear_error():
    y0 = jnp.array([1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        qn.least_squares(
            residuals, qn.LevenbergMarquardt(), y0, DATA, sigma=SIGMA.at[2].set(0.0)
        )
    with pytest.raises(ValueError, match="nan or inf"):
        qn.least_squares(residuals, qn.LevenbergMarquardt(), y0, DATA, sigma=jnp.nan)
    with pytest.raises(ValueError, match="broadcast"):
        qn.least_squares(
            residuals, qn.LevenbergMarquardt(), y0, DATA, sigma=jnp.ones(5)
        )
    with pytest.raises(ValueError, match="not positive definite"):
        qn.least_squares(
            residuals, qn.LevenbergMarquardt(), y0, DATA, sigma=-jnp.eye(16)
        )


def test_a_zero_sigma_under_jit_is_a_reported_nonfinite_result():
    """Traced, σ = 0 cannot be refused: the weight 1/σ is inf and the solve reports
    `nonfinite` rather than a success."""
    sol = jax.jit(
        lambda s: qn.least_squares(
            residuals,
            qn.LevenbergMarquardt(),
            jnp.array([1.0, 1.0]),
            DATA,
            sigma=s,
            throw=False,
        )
    )(SIGMA.at[2].set(0.0))
    assert sol.result == qn.RESULTS.nonfinite


def test_the_host_cache_tells_weighted_from_unweighted():
    """Same `fn` called from Python with and without `sigma`: each its own answer."""
    plain = qn.least_squares(
        residuals, qn.LevenbergMarquardt(), jnp.array([1.0, 1.0]), DATA
    )
    weighted = qn.least_squares(
        residuals, qn.LevenbergMarquardt(), jnp.array([1.0, 1.0]), DATA, sigma=SIGMA
    )
    assert not np.allclose(plain.value, weighted.value, rtol=1e-4)
    np.testing.assert_allclose(
        weighted.value,
        _reference(lambda y, d: residuals(y, d) / SIGMA).value,
        rtol=1e-7,
    )
