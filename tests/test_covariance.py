"""`qn.covariance`: the covariance of fitted unknowns, against certified values and
SciPy.

Oracles: the certified standard deviations of the NIST StRD nonlinear-regression
datasets (computed in 128-bit arithmetic), and `scipy.optimize.curve_fit`'s `pcov`,
whose definition s²(J̃ᵀJ̃)⁺ (s² the reduced χ² unless `absolute_sigma`) is the one
`qn.covariance` implements. Undetermined unknowns get `inf`, never a finite number.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import nist
import quasinewton as qn

LM = qn.LevenbergMarquardt(rtol=1e-12, atol=1e-12)
#: The dense QR path, whose evaluation keeps J̃ (the default LM keeps J̃ᵀJ̃ for n ≤ 8).
LM_QR = qn.Solver(
    qn.curvature.GaussNewton(True, normal_equations=False),
    qn.descent.TrustRegion(),
    rtol=1e-12,
    atol=1e-12,
)


def _nist_fits(problem):
    """Both starts of a NIST problem, with the covariance from the solution alone
    (the normal matrix) and from J̃ (an SVD, through `fn`)."""

    def residual(b, args):
        return problem.residual(b)

    @jax.jit
    def solve(starts):
        def one(b0):
            sol = qn.least_squares(residual, LM, b0, max_steps=1000)
            return sol, qn.covariance(sol), qn.covariance(sol, residual)

        return jax.vmap(one)(starts)

    return solve(jnp.asarray(np.stack(problem.starts)))


def _check_nist(name, min_digits):
    """Every run that reaches the certified values (6 digits) gives the certified
    standard deviations and residual standard deviation to `min_digits` digits."""
    problem = nist.load(name)
    sol, from_normal, from_jacobian = _nist_fits(problem)
    checked = 0
    for k in range(2):
        lre = nist.significant_digits(np.asarray(sol.value[k]), problem.certified)
        if np.min(lre) < 6:
            continue
        checked += 1
        for cov in (from_normal, from_jacobian):
            sd = np.asarray(cov.standard_errors[k])
            digits = nist.significant_digits(sd, problem.certified_std)
            assert np.min(digits) >= min_digits, (name, k + 1, digits)
            residual_sd = np.sqrt(float(cov.residual_variance[k]))
            digits = nist.significant_digits(
                np.array([residual_sd]), np.array([problem.certified_residual_sd])
            )
            assert digits[0] >= min_digits, (name, k + 1, residual_sd)
            assert int(cov.rank[k]) == problem.n_params
    return checked


def test_nist_misra1c_standard_deviations():
    """Misra1c: κ(J) ≈ 6·10⁷ (unknowns of sizes 600 and 4·10⁻⁴), beyond what J̃ᵀJ̃
    resolves unscaled (1/√ε ≈ 7·10⁷); scaled by columns both paths reach the
    certified standard deviations to ≥ 6 digits."""
    assert _check_nist("Misra1c", 6) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in nist.NAMES if n != "Misra1c"])
def test_nist_standard_deviations(name):
    """Every NIST run that reaches the certified values (53 of 54) gives the
    certified standard deviations to ≥ 6 digits (measured: ≥ 6.0 from the normal
    matrix, ≥ 6.8 from J̃). Lanczos1 is the exception: its certified RSS, 1.4·10⁻²⁵,
    is below the resolution of float64 residuals of size 1, so the residual
    variance, and with it every standard deviation, has only about 3 digits
    (so do SciPy's and every library's)."""
    min_digits = 2.9 if name == "Lanczos1" else 6
    assert _check_nist(name, min_digits) >= 1


# --- against scipy.optimize.curve_fit ------------------------------------------------

T = np.linspace(0.0, 4.0, 30)
RNG = np.random.default_rng(7)
NOISE = RNG.standard_normal(30)
SIGMA = 0.02 + 0.1 * RNG.random(30)


def _decay(t, a, k):
    return a * np.exp(-k * t)


def _gaussian(t, a, mu, w):
    return a * np.exp(-0.5 * ((t - mu) / w) ** 2)


def _line(t, a, b):
    return a + b * t


def _rational(t, a, b, c):
    return a / (1 + b * t) + c


def _damped(t, a, k, w):
    return a * np.exp(-k * t) * np.cos(w * t)


FITS = {
    "decay": (_decay, (2.0, 1.3), (1.0, 1.0)),
    "gaussian": (_gaussian, (1.5, 2.0, 0.6), (1.0, 1.8, 0.5)),
    "line": (_line, (0.5, -0.7), (0.0, 0.0)),
    "rational": (_rational, (3.0, 0.8, 0.2), (2.0, 1.0, 0.0)),
    "damped": (_damped, (1.0, 0.5, 2.0), (1.2, 0.4, 2.1)),
}


def _exact_jacobian(model):
    """The model's Jacobian by JAX, for `curve_fit(jac=...)`: with its default
    finite differences SciPy's pcov would carry their 1e-8 relative error."""
    jax_model = _jax_version(model)

    def jac(t, *p):
        return np.asarray(
            jax.jacfwd(lambda q: jax_model(jnp.asarray(t), *q))(jnp.asarray(p))
        )

    return jac


def _jnp_model(model):
    def fn(p, args):
        t, y = args
        return model(t, *[p[i] for i in range(p.shape[0])]) - y

    return fn


def _jax_version(model):
    """The model written with jax.numpy (the fits' models use only `np.exp`,
    `np.cos` and arithmetic)."""
    import types

    return types.FunctionType(model.__code__, {"np": jnp}, model.__name__)


#: One case in the default run, the rest slow.
DEFAULT_CASES = {("decay", True)}


@pytest.mark.parametrize(
    "name, absolute_sigma",
    [
        (name, absolute)
        if (name, absolute) in DEFAULT_CASES
        else pytest.param(name, absolute, marks=pytest.mark.slow)
        for name in FITS
        for absolute in (False, True)
    ],
)
def test_weighted_covariance_matches_curve_fit(name, absolute_sigma):
    """pcov of `curve_fit(sigma=σ, absolute_sigma=...)` to 1e-8 relative: the same
    estimate s²(J̃ᵀJ̃)⁻¹ at the same optimum (parameters to 1e-10)."""
    model, truth, p0 = FITS[name]
    y = model(T, *truth) + SIGMA * NOISE
    popt, pcov = scipy.optimize.curve_fit(
        model,
        T,
        y,
        p0=p0,
        sigma=SIGMA,
        absolute_sigma=absolute_sigma,
        jac=_exact_jacobian(model),
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
    )
    fn = _jnp_model(_jax_version(model))
    for solver in (LM, LM_QR):
        sol = qn.least_squares(
            fn, solver, jnp.asarray(p0), (jnp.asarray(T), jnp.asarray(y)), sigma=SIGMA
        )
        np.testing.assert_allclose(sol.value, popt, rtol=1e-8)
        cov = qn.covariance(sol, absolute_sigma=absolute_sigma)
        np.testing.assert_allclose(cov.matrix, pcov, rtol=1e-8)
        np.testing.assert_allclose(
            cov.standard_errors, np.sqrt(np.diag(pcov)), rtol=1e-8
        )
        assert int(cov.rank) == len(p0)
        assert int(cov.degrees_of_freedom) == 30 - len(p0)


def test_covariance_sigma_matches_curve_fit():
    """A full residual covariance Σ (2-D `sigma`), as in `curve_fit`: the fit and
    pcov agree to 1e-8."""
    model, truth, p0 = FITS["decay"]
    covariance = np.diag(SIGMA**2) + 0.002 * np.exp(-np.abs(T[:, None] - T[None, :]))
    y = model(T, *truth) + np.linalg.cholesky(covariance) @ NOISE
    popt, pcov = scipy.optimize.curve_fit(
        model,
        T,
        y,
        p0=p0,
        sigma=covariance,
        jac=_exact_jacobian(model),
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
    )
    fn = _jnp_model(_jax_version(model))
    sol = qn.least_squares(
        fn, LM, jnp.asarray(p0), (jnp.asarray(T), jnp.asarray(y)), sigma=covariance
    )
    np.testing.assert_allclose(sol.value, popt, rtol=1e-8)
    np.testing.assert_allclose(qn.covariance(sol).matrix, pcov, rtol=1e-8)


def test_soft_l1_covariance_matches_curve_fit():
    """With a robust loss, pcov comes from the loss-corrected Jacobian at the
    optimum, as `curve_fit(loss="soft_l1", f_scale=...)` computes it (outliers
    within t = z²/s² < 15, where both correct J the same way)."""
    model, truth, p0 = FITS["decay"]
    y = model(T, *truth) + 0.05 * NOISE
    y[[4, 17]] += 0.4
    popt, pcov = scipy.optimize.curve_fit(
        model,
        T,
        y,
        p0=p0,
        loss="soft_l1",
        f_scale=0.15,
        method="trf",
        jac=_exact_jacobian(model),
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
    )
    fn = _jnp_model(_jax_version(model))
    args = (jnp.asarray(T), jnp.asarray(y))
    sol = qn.least_squares(fn, LM, jnp.asarray(p0), args, loss=_SoftL1(0.15))
    np.testing.assert_allclose(sol.value, popt, rtol=1e-8)
    np.testing.assert_allclose(qn.covariance(sol).matrix, pcov, rtol=1e-6)


class _SoftL1(qn.loss.AbstractLoss):
    """SciPy's soft-L1 loss, ρ(t) = 2(√(1 + t) − 1), written here so that this test
    checks the covariance independently of the library's own loss parts."""

    def rho(self, t):
        root = jnp.sqrt(1 + t)
        return 2 * (root - 1), 1 / root, -0.5 / (root * (1 + t))


# --- undetermined unknowns -----------------------------------------------------------


def _decay_residual(p, args):
    t, y = args
    return p[0] * jnp.exp(-p[1] * t) - y


def test_all_zero_data_leaves_the_rate_undetermined():
    """Fitting a·exp(−kt) to all-zero data gives a = 0, and then k has no effect on
    the residuals: J̃'s k column is a·(−t e^{−kt}), here 10⁻²¹ of the a column,
    below the rounding of the largest column (m·ε ≈ 4·10⁻¹⁵). The rate is
    reported undetermined (infinite variance, rank 1), the amplitude determined
    (its variance σ̂²/Σe^{−2kt} is finite)."""
    t = jnp.linspace(0.0, 3.0, 20)
    sol = qn.least_squares(
        _decay_residual,
        qn.LevenbergMarquardt(),
        jnp.array([1.0, 1.0]),
        (t, jnp.zeros(20)),
    )
    assert sol.result == qn.RESULTS.successful
    cov = qn.covariance(sol)
    assert int(cov.rank) == 1
    np.testing.assert_array_equal(cov.determined, [True, False])
    assert not bool(cov.all_determined)
    assert np.isinf(cov.standard_errors[1])
    assert np.isinf(cov.matrix[1]).all() and np.isinf(cov.matrix[:, 1]).all()
    assert np.isfinite(cov.standard_errors[0])
    assert np.isnan(cov.correlation[0, 1])


def test_a_failed_solve_has_no_error_bars():
    """Away from a minimiser s²(J̃ᵀJ̃)⁺ means nothing: a solve stopped after one
    step (`max_steps_reached`) gets nan standard errors, while the same fit run to
    the end gets finite ones; under `jax.vmap` only the fit whose data hold a nan
    (`nonfinite`) gets nan, its neighbours keep their own covariance."""
    t = jnp.linspace(0.0, 3.0, 20)
    y = 2.0 * jnp.exp(-0.7 * t) + 0.01 * jnp.sin(7.0 * t)
    start = jnp.array([1.0, 1.0])
    cut = qn.least_squares(
        _decay_residual,
        qn.LevenbergMarquardt(),
        start,
        (t, y),
        max_steps=1,
        throw=False,
    )
    assert cut.result == qn.RESULTS.max_steps_reached
    cov = qn.covariance(cut)
    assert np.isnan(cov.standard_errors).all() and np.isnan(cov.matrix).all()
    assert np.isnan(cov.correlation).all()
    done = qn.covariance(qn.least_squares(_decay_residual, LM, start, (t, y)))
    assert np.isfinite(done.standard_errors).all()

    data = jnp.stack([y, y.at[4].set(jnp.nan), 1.5 * y])
    sols = jax.vmap(
        lambda d: qn.least_squares(
            _decay_residual, qn.LevenbergMarquardt(), start, (t, d), throw=False
        )
    )(data)
    np.testing.assert_array_equal(
        sols.result == qn.RESULTS.successful, [True, False, True]
    )
    errors = np.asarray(qn.covariance(sols).standard_errors)
    assert np.isnan(errors[1]).all() and np.isfinite(errors[[0, 2]]).all()


def test_two_identical_terms_are_undetermined_but_their_sum_is_not():
    """a·e^{−t} + b·e^{−t}: only a + b is determined; a and b both have a component
    in the null space (1, −1)/√2, so both get inf, while c (a second, independent
    term) stays finite."""
    t = jnp.linspace(0.0, 3.0, 25)
    y = 2.0 * jnp.exp(-t) + 0.5 * t + 0.01 * jnp.asarray(NOISE[:25])

    def fn(p, t):
        return (p[0] + p[1]) * jnp.exp(-t) + p[2] * t - y

    sol = qn.least_squares(fn, LM_QR, jnp.array([1.0, 0.5, 0.0]), t)
    cov = qn.covariance(sol)
    assert int(cov.rank) == 2
    np.testing.assert_array_equal(cov.determined, [False, False, True])
    assert np.isinf(cov.standard_errors[:2]).all()
    assert np.isfinite(cov.standard_errors[2])
    assert cov.condition_number > 1e12  # two equal columns: σ_min is rounding


def test_as_many_unknowns_as_residuals_where_scipy_warns():
    """m = n: the residual variance χ²/(m − n) is undefined, so the covariance is
    inf, where `curve_fit` warns ("Covariance of the parameters could not be
    estimated"); with `absolute_sigma=True` it is finite, as SciPy's."""
    t = np.array([0.0, 1.0])
    y = np.array([2.0, 0.5])
    with pytest.warns(scipy.optimize.OptimizeWarning):
        _, pcov = scipy.optimize.curve_fit(_decay, t, y, p0=(1.0, 1.0))
    assert np.isinf(pcov).all()
    sol = qn.least_squares(
        _decay_residual, LM, jnp.array([1.0, 1.0]), (jnp.asarray(t), jnp.asarray(y))
    )
    cov = qn.covariance(sol)
    assert np.isinf(cov.matrix).all()
    assert int(cov.degrees_of_freedom) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
        _, pcov_abs = scipy.optimize.curve_fit(
            _decay, t, y, p0=(1.0, 1.0), sigma=np.ones(2), absolute_sigma=True
        )
    absolute = qn.covariance(sol, absolute_sigma=True)
    np.testing.assert_allclose(absolute.matrix, pcov_abs, rtol=1e-6)


# --- units, batches and paths ---------------------------------------------------------


def test_rank_and_condition_do_not_depend_on_the_units_of_the_unknowns():
    """Measuring the rate in 1/ms instead of 1/s (k' = k/1000) multiplies its
    standard error by 1/1000 and changes neither the rank, nor `determined`, nor the
    condition number (of the column-scaled J̃), nor the correlation."""
    t = jnp.linspace(0.0, 3.0, 20)
    y = 2.0 * jnp.exp(-1.3 * t) + 0.01 * jnp.asarray(NOISE[:20])

    def in_ms(p, args):
        return _decay_residual(jnp.array([p[0], 1000.0 * p[1]]), args)

    base = qn.covariance(
        qn.least_squares(_decay_residual, LM, jnp.array([1.0, 1.0]), (t, y))
    )
    ms = qn.covariance(qn.least_squares(in_ms, LM, jnp.array([1.0, 1e-3]), (t, y)))
    np.testing.assert_allclose(
        ms.standard_errors, base.standard_errors * jnp.array([1.0, 1e-3]), rtol=1e-6
    )
    assert int(ms.rank) == int(base.rank) == 2
    np.testing.assert_allclose(ms.condition_number, base.condition_number, rtol=1e-6)
    np.testing.assert_allclose(ms.correlation, base.correlation, rtol=1e-6)


@pytest.mark.slow
def test_a_batch_of_1000_fits_has_one_covariance_each():
    """`jax.vmap` over 1,000 decays (rates 0.5–2, per-fit noise): per-fit
    covariance, rank and results, each equal to the fit solved alone; a batch of
    all-zero data among them is undetermined on its own."""
    t = jnp.linspace(0.0, 4.0, 24)
    rates = jnp.linspace(0.5, 2.0, 1000)
    noise = 0.01 * jax.random.normal(jax.random.key(0), (1000, 24))
    data = 2.0 * jnp.exp(-rates[:, None] * t) + noise
    data = data.at[3].set(0.0)

    @jax.jit
    def fit_all(data):
        def one(y):
            return qn.least_squares(
                _decay_residual, qn.LevenbergMarquardt(), jnp.array([1.0, 1.0]), (t, y)
            )

        return jax.vmap(one)(data)

    sols = fit_all(data)
    covs = qn.covariance(sols)
    assert covs.matrix.shape == (1000, 2, 2)
    assert covs.rank.shape == (1000,)
    ranks = np.asarray(covs.rank)
    assert ranks[3] == 1 and (np.delete(ranks, 3) == 2).all()
    for i in (0, 500, 999):
        alone = qn.least_squares(
            _decay_residual,
            qn.LevenbergMarquardt(),
            jnp.array([1.0, 1.0]),
            (t, data[i]),
        )
        np.testing.assert_allclose(
            covs.matrix[i], qn.covariance(alone).matrix, rtol=1e-6
        )


@pytest.mark.parametrize(
    "solver",
    [
        pytest.param(qn.LBFGS(rtol=1e-12), marks=pytest.mark.slow),
        qn.LevenbergMarquardtCG(rtol=1e-12),
    ],
    ids=["lbfgs", "lm-cg"],
)
def test_models_without_a_jacobian_take_fn(solver):
    """L-BFGS and matrix-free LM keep no J̃: `qn.covariance(sol)` says to pass
    `fn`, and with it gives the dense LM's covariance (same optimum)."""
    t = jnp.linspace(0.0, 3.0, 20)
    y = 2.0 * jnp.exp(-1.3 * t) + 0.01 * jnp.asarray(NOISE[:20])
    args = (t, y)
    reference = qn.covariance(
        qn.least_squares(_decay_residual, LM, jnp.array([1.0, 1.0]), args, sigma=0.01)
    )
    sol = qn.least_squares(
        _decay_residual, solver, jnp.array([1.0, 1.0]), args, sigma=0.01, max_steps=2000
    )
    with pytest.raises(TypeError, match="keeps no Jacobian"):
        qn.covariance(sol)
    cov = qn.covariance(sol, _decay_residual, args)
    np.testing.assert_allclose(cov.matrix, reference.matrix, rtol=1e-5)


def test_pytree_unknowns_get_standard_errors_in_their_structure():
    """Standard errors and `determined` have the structure of `y0`; the matrix is
    over the flattened unknowns in `ravel_pytree` order (here amplitude, rate)."""
    t = jnp.linspace(0.0, 3.0, 20)
    y = 2.0 * jnp.exp(-1.3 * t) + 0.01 * jnp.asarray(NOISE[:20])

    def fn(p, args):
        return p["amplitude"] * jnp.exp(-p["rate"] * t) - y

    sol = qn.least_squares(fn, LM, {"amplitude": 1.0, "rate": 1.0})
    flat = qn.covariance(
        qn.least_squares(_decay_residual, LM, jnp.array([1.0, 1.0]), (t, y))
    )
    cov = qn.covariance(sol)
    assert set(cov.standard_errors) == {"amplitude", "rate"}
    np.testing.assert_allclose(cov.standard_errors["rate"], flat.standard_errors[1])
    np.testing.assert_allclose(cov.matrix, flat.matrix, rtol=1e-8)


def test_covariance_needs_a_least_squares_solution():
    sol = qn.minimise(lambda y, _: jnp.sum(y**2), qn.LBFGS(), jnp.ones(2))
    with pytest.raises(TypeError, match="least_squares"):
        qn.covariance(sol)
