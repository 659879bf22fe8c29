"""`qn.covariance(..., matrix_free=True)`: the variances from products with J̃ alone.

Oracle: the dense `qn.covariance(sol, fn)`, the SVD of J̃ formed at the same
solution (itself checked against SciPy and NIST in tests/test_covariance.py). The
exact path (one CG solve per unknown) must agree with it to the CG tolerance; the
probe estimate must be unbiased and within the error it reports; undetermined
unknowns get inf; and the large fit must run without any n×n or m×n array.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn
from jaxprs import largest_array

LM = qn.LevenbergMarquardt(rtol=1e-12, atol=1e-12)


def _exact(sol, fn, args, **options):
    return jax.jit(lambda s, a: qn.covariance(s, fn, a, matrix_free=True, **options))(
        sol, args
    )


def _covariances(sol, fn, args, *options):
    """The dense covariance and a matrix-free one for each dict of `options`, in
    one compilation."""
    return jax.jit(
        lambda s, a: (
            qn.covariance(s, fn, a),
            *(qn.covariance(s, fn, a, matrix_free=True, **o) for o in options),
        )
    )(sol, args)


# --- small fits: a decay with an offset, weighted or robust ---------------------------

T = jnp.linspace(0.0, 3.0, 25)
RNG = np.random.default_rng(3)
NOISE = jnp.asarray(RNG.standard_normal(25))
SIGMA = jnp.asarray(0.01 + 0.02 * RNG.random(25))


def _decay(p, args):
    t, y = args
    return p[0] * jnp.exp(-p[1] * t) + p[2] - y


def _small_fit(case):
    y = 2.0 * jnp.exp(-1.3 * T) + 0.3 + SIGMA * NOISE
    options = {"sigma": SIGMA}
    if case == "loss":
        y = y.at[jnp.array([4, 17])].add(0.3)
        options["loss"] = qn.loss.Cauchy(2.0)
    sol = qn.least_squares(_decay, LM, jnp.array([1.0, 1.0, 0.0]), (T, y), **options)
    assert sol.result == qn.RESULTS.successful
    return sol, (T, y)


# --- a matrix-free fit: 300 weighted residuals, 120 unknowns of scales 10⁻² to 10² --

M, N = 300, 120


def _scaled_residual(y, args):
    a, s, b = args
    return a @ (s * y) + 0.1 * jnp.concatenate([jnp.sin(s * y), jnp.zeros(M - N)]) - b


def _cg_fit():
    key_a, key_b = jax.random.split(jax.random.key(0))
    args = (
        jax.random.normal(key_a, (M, N)) / jnp.sqrt(M),
        jnp.logspace(-2, 2, N),
        jax.random.normal(key_b, (M,)),
    )
    solver = qn.LevenbergMarquardtCG(
        preconditioner=qn.linear.Jacobi(),
        forcing=qn.linear.ConstantForcing(1e-10),
        max_cg_steps=500,
        rtol=1e-12,
        atol=1e-12,
    )
    sigma = 0.5 + jax.random.uniform(jax.random.key(1), (M,))
    sol = jax.jit(
        lambda a: qn.least_squares(
            _scaled_residual, solver, jnp.zeros(N), a, sigma=sigma
        )
    )(args)
    assert sol.result == qn.RESULTS.successful
    return sol, args


#: The unknowns `select` picks in the matrix-free fit (flat indices, traced).
CHOSEN = jnp.array([0, 57, 119])


@pytest.fixture(scope="module")
def cg_fit():
    """The LM-CG fit with its dense covariance and the matrix-free ones (exact, for
    `CHOSEN`, and from 64 probes with key 0), in one compilation."""
    sol, args = _cg_fit()

    @jax.jit
    def all_four(sol, args, chosen, key):
        def mf(**options):
            return qn.covariance(
                sol, _scaled_residual, args, matrix_free=True, **options
            )

        return (
            qn.covariance(sol, _scaled_residual, args),
            mf(),
            mf(select=chosen),
            mf(probes=64, key=key),
        )

    return sol, args, *all_four(sol, args, CHOSEN, jax.random.key(0))


@pytest.mark.parametrize(
    "case", [pytest.param("sigma", marks=pytest.mark.slow), "loss"]
)
def test_exact_diagonal_equals_the_dense_covariance(case):
    """Weighted by `sigma` (and with a Cauchy loss and two outliers): the CG
    diagonal is the SVD's to 1e-10 relative (each variance is a CG quadratic form,
    exact to about κ·rtol² ≈ 10²·(1.5·10⁻⁸)²), every unknown determined, and the
    n×n fields are None."""
    sol, args = _small_fit(case)
    dense, cov = _covariances(sol, _decay, args, {})
    np.testing.assert_allclose(cov.standard_errors, dense.standard_errors, rtol=1e-10)
    np.testing.assert_allclose(cov.variances, dense.variances, rtol=1e-10)
    np.testing.assert_array_equal(cov.determined, [True, True, True])
    assert cov.matrix is None and cov.correlation is None
    assert cov.rank is None and cov.condition_number is None
    assert cov.variance_errors is None
    assert float(cov.residual_variance) == pytest.approx(float(dense.residual_variance))
    assert int(cov.degrees_of_freedom) == 25 - 3


@pytest.mark.slow
def test_exact_diagonal_of_a_matrix_free_solve(cg_fit):
    """A `LevenbergMarquardtCG` fit of 120 unknowns whose column norms span 10⁸,
    weighted by per-residual `sigma`:
    the Jacobi-scaled CG solves give the dense standard errors to 1e-6 relative
    (the scaled J̃ is well conditioned, whatever the units)."""
    _, _, dense, cov, _, _ = cg_fit
    spread = float(jnp.max(dense.standard_errors) / jnp.min(dense.standard_errors))
    assert spread > 1e3  # the units differ widely: a test of the scaling
    np.testing.assert_allclose(cov.standard_errors, dense.standard_errors, rtol=1e-6)
    assert bool(cov.all_determined)


@pytest.mark.slow
def test_selected_unknowns_only(cg_fit):
    """`select` as flat indices (traced under jit) gives those standard errors as
    the dense path does (1e-6), and nan, not judged `determined`, elsewhere."""
    _, _, dense, _, cov, _ = cg_fit
    chosen = np.asarray(CHOSEN)
    errors = np.asarray(cov.standard_errors)
    np.testing.assert_allclose(
        errors[chosen], np.asarray(dense.standard_errors)[chosen], rtol=1e-6
    )
    others = np.setdiff1d(np.arange(N), chosen)
    assert np.isnan(errors[others]).all()
    np.testing.assert_array_equal(np.asarray(cov.determined)[chosen], True)
    assert not np.asarray(cov.determined)[others].any()


@pytest.mark.slow
def test_probe_estimate_within_its_reported_error(cg_fit):
    """64 Rademacher probes with key 0: each variance within 5 of its reported
    standard errors of the dense value, and the reported errors honest, the
    root-mean-square of (estimate − dense)/error over the 120 unknowns between 0.5
    and 2 (1 for an exact error estimate)."""
    _, _, dense, _, _, cov = cg_fit
    estimate, error = np.asarray(cov.variances), np.asarray(cov.variance_errors)
    z = (estimate - np.asarray(dense.variances)) / error
    assert np.abs(z).max() < 5
    assert 0.5 < np.sqrt(np.mean(z**2)) < 2
    assert bool(cov.all_determined)


@pytest.mark.slow
def test_probe_estimate_is_unbiased(cg_fit):
    """The mean of 200 estimates of 4 probes each (keys 0–199, under `jax.vmap`)
    is within 4 standard errors of that mean (their spread over √200) of the
    dense variances, for every unknown; its relative error is then about
    1/√800 of the single-probe spread."""
    sol, args, dense, _, _, _ = cg_fit
    keys = jax.random.split(jax.random.key(1), 200)
    estimates = jax.jit(
        jax.vmap(
            lambda k: (
                qn.covariance(
                    sol, _scaled_residual, args, matrix_free=True, probes=4, key=k
                ).variances
            )
        )
    )(keys)
    estimates = np.asarray(estimates)
    mean = estimates.mean(0)
    standard_error = estimates.std(0, ddof=1) / np.sqrt(200)
    assert (np.abs(mean - np.asarray(dense.variances)) < 4 * standard_error).all()


# --- undetermined unknowns, batches and failures ---------------------------------------


def _twin_terms(p, args):
    t, y = args
    return (p[0] + p[1]) * jnp.exp(-t) + p[2] * t - y


def test_a_singular_normal_matrix_gives_inf_never_a_finite_number():
    """a·e^{−t} + b·e^{−t} + c·t: only a + b is determined. The exact solves for a
    and b leave the null-space component 1/√2 of eⱼ in the residual and do not
    converge: inf, undetermined; c's solve converges to the dense value (1e-8).
    With probes every probe involves a and b, so every unknown is inf."""
    t = jnp.linspace(0.0, 3.0, 25)
    y = 2.0 * jnp.exp(-t) + 0.5 * t + 0.01 * NOISE
    sol = qn.least_squares(_twin_terms, LM, jnp.array([1.0, 0.5, 0.0]), (t, y))
    probes = {"probes": 8, "key": jax.random.key(0)}
    dense, cov, probed = _covariances(sol, _twin_terms, (t, y), {}, probes)
    np.testing.assert_array_equal(cov.determined, dense.determined)
    np.testing.assert_array_equal(cov.determined, [False, False, True])
    assert np.isinf(cov.standard_errors[:2]).all()
    np.testing.assert_allclose(cov.standard_errors[2], dense.standard_errors[2], 1e-8)
    assert np.isinf(probed.standard_errors).all()
    assert not np.asarray(probed.determined).any()


@pytest.mark.slow
def test_a_zero_column_is_undetermined_and_leaves_the_others():
    """A decay fitted to all-zero data: amplitude 0, so the rate's column is below
    the rounding of the others and the rate is undetermined (inf) by the exact
    solves and by the probes alike, while the amplitude and offset keep the dense
    values (exact: 1e-8; probes: the same operator with the rate left out)."""
    sol = qn.least_squares(
        _decay, qn.LevenbergMarquardt(), jnp.array([1.0, 1.0, 0.5]), (T, 0.0 * T)
    )
    assert sol.result == qn.RESULTS.successful
    probes = {"probes": 8, "key": jax.random.key(0)}
    dense, exact, probed = _covariances(sol, _decay, (T, 0.0 * T), {}, probes)
    np.testing.assert_array_equal(dense.determined, [True, False, True])
    for cov in (exact, probed):
        np.testing.assert_array_equal(cov.determined, [True, False, True])
        assert np.isinf(cov.standard_errors[1])
    np.testing.assert_allclose(
        exact.standard_errors[::2], dense.standard_errors[::2], rtol=1e-8
    )


@pytest.mark.slow
def test_a_batch_of_fits_under_vmap():
    """Three decays under one `jax.vmap` (solve and covariance): each fit's exact
    diagonal equals its own dense covariance (1e-10); the fit whose data hold a nan
    (`nonfinite`) gets nan, its neighbours not."""
    ys = jnp.stack([k * jnp.exp(-1.3 * T) + 0.3 + 0.01 * NOISE for k in (1, 2, 3)])
    ys = ys.at[1, 4].set(jnp.nan)

    @jax.jit
    @jax.vmap
    def fit(y):
        start = jnp.array([1.0, 1.0, 0.0])
        sol = qn.least_squares(_decay, LM, start, (T, y), throw=False)
        return (
            sol.result,
            qn.covariance(sol, _decay, (T, y), matrix_free=True),
            qn.covariance(sol, _decay, (T, y)),
        )

    results, covs, dense = fit(ys)
    np.testing.assert_array_equal(results == qn.RESULTS.successful, [True, False, True])
    errors = np.asarray(covs.standard_errors)
    assert np.isnan(errors[1]).all()
    np.testing.assert_allclose(
        errors[[0, 2]], np.asarray(dense.standard_errors)[[0, 2]], rtol=1e-10
    )


@pytest.mark.slow
def test_pytree_unknowns_and_a_boolean_mask():
    """Unknowns as a dict, `select` as a mask in its structure (a leaf broadcast):
    the selected standard error equals the dense one (1e-10), the rest are nan."""
    y = 2.0 * jnp.exp(-1.3 * T) + 0.3 + 0.01 * NOISE

    def fn(p, y):
        return p["amplitude"] * jnp.exp(-p["rate"] * T) + p["offset"] - y

    start = {"amplitude": 1.0, "rate": 1.0, "offset": 0.0}
    sol = qn.least_squares(fn, LM, start, y)
    mask = {"amplitude": False, "rate": True, "offset": False}
    dense, cov = _covariances(sol, fn, y, {"select": mask})
    np.testing.assert_allclose(
        cov.standard_errors["rate"], dense.standard_errors["rate"], rtol=1e-10
    )
    assert np.isnan(cov.standard_errors["amplitude"])
    assert bool(cov.determined["rate"]) and not bool(cov.determined["offset"])


def test_options_that_do_not_fit_together():
    y = 2.0 * jnp.exp(-1.3 * T) + 0.3
    sol = qn.least_squares(_decay, LM, jnp.array([1.0, 1.0, 0.0]), (T, y))
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="pass it and its arguments"):
        qn.covariance(sol, matrix_free=True)
    with pytest.raises(ValueError, match="options of `matrix_free=True`"):
        qn.covariance(sol, _decay, (T, y), probes=8, key=key)
    with pytest.raises(ValueError, match="needs a `key`"):
        qn.covariance(sol, _decay, (T, y), matrix_free=True, probes=8)
    with pytest.raises(ValueError, match="an int ≥ 2"):
        qn.covariance(sol, _decay, (T, y), matrix_free=True, probes=1, key=key)
    with pytest.raises(ValueError, match="seeds the `probes`"):
        qn.covariance(sol, _decay, (T, y), matrix_free=True, key=key)
    with pytest.raises(ValueError, match="Give one of them"):
        qn.covariance(
            sol, _decay, (T, y), matrix_free=True, probes=8, key=key, select=[0]
        )


# --- a 64×64 deblurring fit: n = 4096, never a dense matrix ---------------------------

SIDE = 64


def _blur(x):
    kernel = jnp.exp(-0.5 * (jnp.arange(-3, 4, dtype=x.dtype) / 1.5) ** 2)
    kernel = kernel / jnp.sum(kernel)
    rows = jax.vmap(lambda r: jnp.convolve(r, kernel, mode="same"))(x)
    return jax.vmap(lambda c: jnp.convolve(c, kernel, mode="same"))(rows.T).T


def _deblur_residual(x, observed):
    """The data misfit of the blurred image and a smoothness prior (weight 0.1 on
    the finite differences)."""
    return (
        _blur(x) - observed,
        0.1 * (x[:, 1:] - x[:, :-1]),
        0.1 * (x[1:, :] - x[:-1, :]),
    )


def _deblur_fit():
    grid = jnp.linspace(-1, 1, SIDE)
    u, v = jnp.meshgrid(grid, grid)
    truth = (u**2 + v**2 < 0.4).astype(float)
    noise = 0.01 * jax.random.normal(jax.random.key(2), truth.shape)
    observed = _blur(truth) + noise
    solver = qn.LevenbergMarquardtCG(rtol=1e-10, atol=1e-10, max_cg_steps=500)
    sol = jax.jit(
        lambda obs: qn.least_squares(
            _deblur_residual, solver, obs, obs, sigma=0.01, max_steps=50
        )
    )(observed)
    assert sol.result == qn.RESULTS.successful
    return sol, observed


def test_the_deblurring_covariance_forms_no_dense_matrix():
    """n = 4096 pixels, m = 12160 residuals: the jaxpr of the exact and of the
    probed diagonal holds no array of n² (16.8M) or m·n entries; the largest is a
    batch of 256 vectors of n (2²⁰ entries)."""
    shape = jax.ShapeDtypeStruct((SIDE, SIDE), jnp.float64)
    solver = qn.LevenbergMarquardtCG()
    n = SIDE * SIDE
    for options in ({}, {"probes": 16, "key": jax.random.key(0)}):

        def fit(obs):
            sol = qn.least_squares(_deblur_residual, solver, obs, obs, sigma=0.01)
            return qn.covariance(
                sol, _deblur_residual, obs, matrix_free=True, **options
            )

        assert largest_array(jax.make_jaxpr(fit)(shape).jaxpr) <= 2**20 < n * n


@pytest.mark.slow
def test_deblurring_standard_errors():
    """The 64×64 deblurring fit: the exact diagonal for all 4096 pixels, every one
    determined; 8 selected pixels give the same values (1e-8); and 32 probes agree
    with the exact values within 5 of their reported errors, those errors honest
    (root-mean-square of the normalised deviations between 0.5 and 2)."""
    sol, observed = _deblur_fit()
    exact = _exact(sol, _deblur_residual, observed)
    assert bool(exact.all_determined)
    variances = np.asarray(exact.variances).ravel()
    chosen = jnp.array([0, 63, 64 * 20 + 17, 2048, 2049, 3000, 4032, 4095])
    selected = _exact(sol, _deblur_residual, observed, select=chosen)
    np.testing.assert_allclose(
        np.asarray(selected.variances).ravel()[chosen], variances[chosen], rtol=1e-8
    )
    probed = _exact(sol, _deblur_residual, observed, probes=32, key=jax.random.key(0))
    z = (np.asarray(probed.variances).ravel() - variances) / np.asarray(
        probed.variance_errors
    ).ravel()
    assert np.abs(z).max() < 5
    assert 0.5 < np.sqrt(np.mean(z**2)) < 2
