"""`qn.report` and `qn.curve_fit`, against lmfit's fit statistics and SciPy's
`curve_fit`.

lmfit's `minimize` reports χ², the reduced χ², AIC, BIC, standard errors and
correlations of a fit; on the same weighted model and data qn's report must state
the same numbers (to the digits it prints). `qn.curve_fit` must return SciPy's
`(popt, pcov)`.
"""

import re

import jax
import jax.numpy as jnp
import lmfit
import numpy as np
import pytest
import scipy.optimize

import quasinewton as qn

T = np.linspace(0.0, 4.0, 30)
RNG = np.random.default_rng(3)
SIGMA = 0.02 + 0.03 * RNG.random(30)
Y = 2.0 * np.exp(-1.3 * T) + 0.3 + SIGMA * RNG.standard_normal(30)


def model(t, a, k, c):
    return a * jnp.exp(-k * t) + c


def _number(text: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s*=\s*(\S+)", text)
    assert match, (label, text)
    return float(match.group(1))


@pytest.fixture(scope="module")
def fitted():
    popt, pcov, sol = qn.curve_fit(
        model, T, Y, [1.0, 1.0, 0.0], sigma=SIGMA, full_output=True
    )
    params = lmfit.Parameters()
    for name, value in zip("akc", (1.0, 1.0, 0.0), strict=True):
        params.add(name, value=value)

    def weighted(p):
        return (p["a"] * np.exp(-p["k"] * T) + p["c"] - Y) / SIGMA

    reference = lmfit.minimize(weighted, params, xtol=1e-14, ftol=1e-14)
    return popt, pcov, sol, reference


def test_report_states_lmfits_statistics(fitted):
    """χ², reduced χ², AIC and BIC to the 6 digits printed; values and standard
    errors to 4; the correlations above 0.1 that lmfit finds."""
    _, _, sol, reference = fitted
    text = qn.report(sol)
    assert "RESULTS.successful" in text
    assert _number(text, "data points") == 30 and _number(text, "unknowns") == 3
    for label, expected in [
        ("chi-square", reference.chisqr),
        ("reduced chi-square", reference.redchi),
        ("Akaike info crit", reference.aic),
        ("Bayesian info crit", reference.bic),
    ]:
        assert _number(text, label) == pytest.approx(expected, rel=1e-5), label
    for i, name in enumerate("akc"):
        line = re.search(rf"y\[{i}\] =\s*(\S+) ± (\S+)", text)
        assert line, text
        value, error = float(line.group(1)), float(line.group(2))
        assert value == pytest.approx(reference.params[name].value, rel=1e-5)
        assert error == pytest.approx(reference.params[name].stderr, rel=1e-3)
    correlations = re.findall(r"C\(y\[(\d)\], y\[(\d)\]\) =\s*(\S+)", text)
    expected = {
        tuple(sorted(("akc".index(a), "akc".index(b)))): c
        for a in "akc"
        for b, c in reference.params[a].correl.items()
        if abs(c) > 0.1
    }
    assert {(int(i), int(j)): float(c) for i, j, c in correlations} == pytest.approx(
        expected, abs=1e-4
    )


def test_curve_fit_returns_scipys_popt_and_pcov(fitted):
    """`curve_fit(sigma=σ)`: SciPy's popt to 1e-8 and pcov to 1e-6 (SciPy with an
    exact Jacobian; both at the same optimum)."""
    popt, pcov, _, _ = fitted

    def numpy_model(t, a, k, c):
        return a * np.exp(-k * t) + c

    def jac(t, a, k, c):
        e = np.exp(-k * t)
        return np.stack([e, -a * t * e, np.ones_like(t)], axis=1)

    ref_popt, ref_pcov = scipy.optimize.curve_fit(
        numpy_model,
        T,
        Y,
        p0=[1.0, 1.0, 0.0],
        sigma=SIGMA,
        jac=jac,
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
    )
    np.testing.assert_allclose(popt, ref_popt, rtol=1e-8)
    np.testing.assert_allclose(pcov, ref_pcov, rtol=1e-6)


def test_curve_fit_reads_the_number_of_parameters_from_the_signature():
    """Without `p0`, as SciPy: ones, one per parameter after `xdata` (three here)."""
    popt, pcov = qn.curve_fit(model, T, Y)
    assert popt.shape == (3,) and pcov.shape == (3, 3)
    with pytest.raises(ValueError, match="p0"):
        qn.curve_fit(lambda t, *p: p[0] * t, T, Y)


def test_curve_fit_under_vmap_fits_each_dataset():
    """A `jax.vmap` over 20 datasets gives each fit's own popt and pcov, equal to
    the fit of that dataset alone; one all-zero dataset is reported undetermined
    (its rate has infinite variance) without spoiling the others."""
    data = jnp.asarray(Y) + 0.02 * jax.random.normal(jax.random.key(1), (20, 30))
    data = data.at[5].set(0.0)

    def amplitude_decay(t, a, k):
        return a * jnp.exp(-k * t)

    fit = jax.jit(
        jax.vmap(
            lambda y: qn.curve_fit(amplitude_decay, T, y, [1.0, 1.0], full_output=True)
        )
    )
    popt, pcov, sols = fit(data)
    assert popt.shape == (20, 2) and pcov.shape == (20, 2, 2)
    alone_popt, alone_pcov = qn.curve_fit(amplitude_decay, T, data[0], [1.0, 1.0])
    np.testing.assert_allclose(popt[0], alone_popt, rtol=1e-8)
    np.testing.assert_allclose(pcov[0], alone_pcov, rtol=1e-6)
    assert np.isinf(pcov[5, 1, 1])
    assert np.isfinite(np.delete(np.asarray(pcov), 5, axis=0)).all()
    text = qn.report(sols)
    assert "fits               = 20" in text
    assert "1 fit with unknowns not determined" in text


def test_report_of_all_zero_data_warns_the_rate_is_undetermined():
    """The all-zero dataset: a successful solve, but the report says the rate y[1]
    is not determined."""

    def fn(p, t):
        return p[0] * jnp.exp(-p[1] * t)

    sol = qn.least_squares(
        fn, qn.LevenbergMarquardt(), jnp.array([1.0, 1.0]), jnp.asarray(T)
    )
    text = qn.report(sol)
    assert "RESULTS.successful" in text
    assert "y[1] =" in text and "± inf (undetermined)" in text
    assert "not determined by the data (infinite variance): y[1]" in text
