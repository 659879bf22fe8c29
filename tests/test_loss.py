"""Robust losses (`qn.loss`): each ρ's derivatives, fits against SciPy's
`least_squares` on outlier problems, every solve path, batching over the scale,
the host loop's cache, errors, and float32.

SciPy's `least_squares(..., loss=name, f_scale=s)` minimises the same cost
½ Σ s² ρ(rᵢ²/s²) with the same ρ, so its solution is the reference for SoftL1,
Huber, Cauchy and Arctan; it is given the exact Jacobian (by JAX), so that its
answer is limited by its tolerances (1e-15), not by finite differences. Tukey's
loss, which SciPy lacks, is checked against the minimiser of its cost written out
by hand, found by SciPy's `minimize(method="trust-exact")` with exact derivatives.
"""

import dataclasses
import functools
import logging
import re
import zlib
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import quasinewton as qn
from matrix import SUM_OF_SQUARES_PATHS
from quasinewton.problem import make_problem

LOSSES = {
    "soft_l1": qn.loss.SoftL1,
    "huber": qn.loss.Huber,
    "cauchy": qn.loss.Cauchy,
    "arctan": qn.loss.Arctan,
    "tukey": qn.loss.Tukey,
}


# Parameters within 1e-6 relative of the reference's: on the 165 fits below
# (every problem, scale and loss) the largest difference is 6e-8, limited by the
# solver's termination tolerances; an outlier's pull on a fit is ≥ 1e-3.
RTOL = 1e-6


# ---------------------------------------------------------------------------
# ρ and its derivatives


def _t_values():
    """t ≥ 0 from 0 to 1e12, with the branch point t = 1 of Huber's and Tukey's
    losses and its neighbours."""
    return jnp.concatenate(
        [
            jnp.array([0.0, 1e-300, 1e-12, 1e-6, 1.0 - 1e-9, 1.0, 1.0 + 1e-9]),
            jnp.logspace(-4, 12, 41),
        ]
    )


@pytest.mark.parametrize("name", LOSSES)
def test_derivatives_are_those_of_rho(name):
    # ρ′ and ρ″ agree with jax.grad of ρ and of ρ′ to rounding, at 0, at the
    # branch point t = 1 and on either side of it, and far beyond the scale:
    # 1e-13 relative (a few ulp), or 1e-15 absolute, the rounding of the
    # derivative JAX forms for Tukey's ρ at t = 1 − 1e-9, 1 − 2t + t² (≈ 1e-16
    # where the exact (1 − t)² is 1e-18).
    loss = LOSSES[name]()
    t = _t_values()
    _, d1, d2 = loss.rho(t)
    rho = lambda u: loss.rho(u)[0]
    first = lambda u: loss.rho(u)[1]
    grad_rho = jax.vmap(jax.grad(rho))(t)
    grad_first = jax.vmap(jax.grad(first))(t)
    np.testing.assert_allclose(d1, grad_rho, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(d2, grad_first, rtol=1e-13, atol=1e-15)
    # ρ″'s own derivative is finite: a branch of a jnp.where gives no nan.
    grad_second = jax.vmap(jax.grad(lambda u: loss.rho(u)[2]))(t)
    assert np.all(np.isfinite(grad_second))


@pytest.mark.parametrize("name", LOSSES)
def test_rho_is_t_for_small_t(name):
    # ρ(0) = 0, ρ′(0) = 1; ρ(t) = t + ρ″(0)t²/2 + O(t³), with |ρ″(0)| ≤ 2 for all
    # five, so |ρ(t)/t − 1| ≤ t plus rounding (4 ulp): ρ is evaluated without the
    # cancellation of, e.g., 2(√(1 + t) − 1) or 1 − (1 − t)³.
    loss = LOSSES[name]()
    value, d1, _ = loss.rho(jnp.zeros(1))
    assert float(value[0]) == 0.0
    assert float(d1[0]) == 1.0
    t = jnp.array([1e-300, 1e-20, 1e-12, 1e-8, 1e-4])
    value, _, _ = loss.rho(t)
    assert np.all(np.abs(value / t - 1) <= t + 4 * np.finfo(np.float64).eps)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_rho_and_the_correction_are_finite_everywhere(name, dtype):
    # At t = 0, at the branch point, and at t as large as the dtype holds, ρ, ρ′,
    # ρ″, the correction factors of `correct` and the derivatives of all of them
    # (which the implicit adjoint takes) are finite: 0 nan, 0 inf.
    loss = LOSSES[name](scale=2.0)
    big = float(jnp.finfo(dtype).max)
    t = jnp.array([0.0, 1e-30, 0.5, 1.0, 3.0, 1e6, 1e18, big], dtype)
    z = jnp.array([0.0, 1e-20, 1.0, 2.0, -2.0, 5.0, 1e6, 1e15], dtype)

    @jax.jit
    def everything(t, z):
        rho_jac = jax.jacfwd(lambda u: jnp.stack(loss.rho(u)))(t[:-1])
        correct_jac = jax.jacfwd(lambda u: jnp.stack(loss.correct(u)))(z)
        return loss.rho(t), loss.correct(z), (rho_jac, correct_jac)

    for out in jax.tree.leaves(everything(t, z)):
        assert out.dtype == dtype
        assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", LOSSES)
def test_the_correction_keeps_the_gradient(name):
    # J̃ᵀr̃ = Jᵀ(ρ′ ⊙ z) whatever branch the correction takes: a ⊙ b = ρ′ to
    # rounding (1e-14 relative), on both sides of each loss's switch to the
    # first-order rule and beyond the scale.
    loss = LOSSES[name](scale=0.5)
    z = jnp.linspace(-4.0, 4.0, 161)
    a, b = loss.correct(z)
    _, d1, _ = loss.rho(z * z / 0.25)
    np.testing.assert_allclose(a * b, d1, rtol=1e-14, atol=1e-300)
    assert np.all(b >= 0)


# ---------------------------------------------------------------------------
# Outlier problems: a model, its true parameters, the start, where the data are
# taken and which are gross outliers.


@dataclasses.dataclass(frozen=True)
class Fit:
    name: str
    model: Callable  # model(p, t), in jnp
    truth: tuple
    start: tuple
    t: np.ndarray
    noise: float
    outliers: dict  # index -> the value added to that datum

    def data(self) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        clean = np.asarray(self.model(jnp.asarray(self.truth), jnp.asarray(self.t)))
        y = clean + self.noise * rng.standard_normal(self.t.shape)
        for index, shift in self.outliers.items():
            y[index] += shift
        return y

    @functools.cached_property
    def residuals(self) -> Callable:
        """fn(p, args) of the fit: one function object per problem, so that the
        host loop's compiled evaluations serve every test that solves it."""
        t = jnp.asarray(self.t)
        y = jnp.asarray(self.data())
        model = self.model
        return lambda p, args=None: model(p, t) - y


FITS = [
    Fit(
        "exponential decay",
        lambda p, t: p[0] * jnp.exp(-p[1] * t) + p[2],
        (3.0, 0.7, 0.5),
        (2.5, 0.9, 0.3),
        np.linspace(0.0, 5.0, 40),
        0.03,
        {5: 1.5, 17: -2.0, 31: 1.0},
    ),
    Fit(
        "gaussian peak",
        lambda p, t: p[0] * jnp.exp(-0.5 * ((t - p[1]) / p[2]) ** 2) + p[3],
        (4.0, 2.0, 0.6, 1.0),
        (3.5, 2.2, 0.8, 0.8),
        np.linspace(0.0, 4.0, 50),
        0.05,
        {10: 3.0, 24: -2.5, 40: 2.0},
    ),
    Fit(
        "line",
        lambda p, t: p[0] + p[1] * t,
        (1.5, -0.8),
        (1.0, -0.5),
        np.linspace(-2.0, 3.0, 30),
        0.1,
        {3: 4.0, 12: 5.0, 26: -3.0},
    ),
    Fit(
        "sine",
        lambda p, t: p[0] * jnp.sin(p[1] * t + p[2]),
        (2.0, 1.3, 0.4),
        (1.8, 1.25, 0.5),
        np.linspace(0.0, 10.0, 60),
        0.05,
        {7: 2.5, 33: -3.0, 50: 4.0},
    ),
    Fit(
        "rational",
        lambda p, t: (p[0] + p[1] * t) / (1.0 + p[2] * t),
        (1.0, 2.0, 0.5),
        (1.2, 1.5, 0.4),
        np.linspace(0.0, 8.0, 35),
        0.02,
        {4: 0.8, 20: -1.0, 30: 1.2},
    ),
    Fit(
        "misra1a-like",
        lambda p, t: p[0] * (1.0 - jnp.exp(-p[1] * t)),
        (240.0, 5.5e-4),
        (250.0, 5.0e-4),
        np.linspace(77.0, 790.0, 28),
        0.1,
        {6: 5.0, 15: -4.0, 22: 6.0},
    ),
    Fit(
        "quadratic",
        lambda p, t: p[0] + p[1] * t + p[2] * t * t,
        (0.5, -1.0, 0.3),
        (0.3, -0.8, 0.25),
        np.linspace(-3.0, 3.0, 40),
        0.05,
        {2: 2.0, 19: -2.0, 35: 3.0},
    ),
    Fit(
        "logistic",
        lambda p, t: p[0] / (1.0 + jnp.exp(-p[1] * (t - p[2]))),
        (5.0, 1.5, 3.0),
        (4.5, 1.2, 3.3),
        np.linspace(0.0, 6.0, 45),
        0.05,
        {8: 2.0, 22: -2.5, 40: -3.0},
    ),
    Fit(
        "michaelis-menten",
        lambda p, t: p[0] * t / (p[1] + t),
        (2.0, 0.8),
        (1.6, 1.0),
        np.linspace(0.1, 6.0, 30),
        0.02,
        {5: 0.6, 14: -0.7, 25: 0.9},
    ),
    Fit(
        "damped cosine",
        lambda p, t: p[0] * jnp.exp(-p[1] * t) * jnp.cos(p[2] * t),
        (3.0, 0.3, 2.0),
        (2.7, 0.35, 1.95),
        np.linspace(0.0, 8.0, 70),
        0.03,
        {9: 1.5, 30: -1.2, 55: 1.0},
    ),
    Fit(
        "power law",
        lambda p, t: p[0] * t ** p[1],
        (1.5, 0.7),
        (1.2, 0.8),
        np.linspace(0.5, 10.0, 32),
        0.05,
        {4: 2.0, 16: -2.0, 28: 3.0},
    ),
]
FIT = {fit.name: fit for fit in FITS}

#: f_scale as multiples of each problem's noise: at, above and well above it.
SCALES = (1.0, 3.0, 10.0)
#: Tukey's biweight at scales of 3, 5 and 10 times the noise (its usual
#: tuning is 4.685σ): at 1σ it gives a third of the good data zero weight and
#: the fit has local minima, among which two methods may land on different ones.
TUKEY_SCALES = (3.0, 5.0, 10.0)
#: Losses whose cost is bounded: a residual far beyond the scale at the start
#: pulls almost nothing, so that which local minimum a fit from a poor start
#: reaches depends on the method's path. Both methods start them from SciPy's
#: soft-ℓ¹ fit at the same scale (the usual practice).
BOUNDED = ("arctan", "tukey")


@functools.cache
def scipy_fit(name, loss, scale, sigma=None):
    """SciPy's TRF fit of `name` with `loss` and `f_scale = scale`, from
    `start(name, loss, scale)`, with the exact Jacobian; (x, cost). With
    `sigma`, the residuals are divided by it."""
    fit = FIT[name]
    residuals = fit.residuals
    if sigma is not None:
        sigma = np.asarray(sigma)
    divided = residuals if sigma is None else (lambda p: residuals(p) / sigma)
    fun = jax.jit(divided)
    jac = jax.jit(jax.jacfwd(divided))
    result = scipy.optimize.least_squares(
        lambda p: np.asarray(fun(p)),
        start(name, loss, scale) if sigma is None else np.asarray(fit.start),
        jac=lambda p: np.asarray(jac(p)),
        loss=loss,
        f_scale=scale,
        method="trf",
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
        max_nfev=10_000,
    )
    assert result.success
    return result.x, result.cost


def start(name, loss, scale):
    """The problem's start, or for the bounded losses SciPy's soft-ℓ¹ fit."""
    if loss in BOUNDED:
        return scipy_fit(name, "soft_l1", scale)[0]
    return np.asarray(FIT[name].start)


def tukey_cost(residuals, scale):
    """½ Σ s²ρ(r²/s²) with ρ(t) = (1 − (1 − t)³)/3 up to t = 1, 1/3 beyond."""

    def cost(p):
        t = jnp.minimum((residuals(p) / scale) ** 2, 1.0)
        return 0.5 * scale**2 * jnp.sum((1.0 - (1.0 - t) ** 3) / 3.0)

    return cost


@functools.cache
def tukey_fit(name, scale):
    """The minimiser of the Tukey cost written out, by SciPy's trust-exact with
    exact gradient and Hessian, from `start(name, "tukey", scale)`; (x, cost)."""
    fit = FIT[name]
    cost = tukey_cost(fit.residuals, scale)
    value = jax.jit(cost)
    grad = jax.jit(jax.grad(cost))
    hess = jax.jit(jax.hessian(cost))
    result = scipy.optimize.minimize(
        lambda p: float(value(p)),
        start(name, "tukey", scale),
        jac=lambda p: np.asarray(grad(p)),
        hess=lambda p: np.asarray(hess(p)),
        method="trust-exact",
        options={"gtol": 1e-13, "maxiter": 1000},
    )
    return result.x, result.fun


def reference(name, loss, scale):
    if loss == "tukey":
        return tukey_fit(name, scale)
    return scipy_fit(name, loss, scale)


def _check_fit(sol, name, loss, scale):
    x, cost = reference(name, loss, scale)
    # Not vacuous: the reference lies away from the start (by > 1e-4 relative,
    # 100 times the tolerance), so the solve had to move to reach it.
    x0 = start(name, loss, scale)
    assert np.max(np.abs(x - x0) / np.abs(x)) > 1e-4
    assert sol.result == qn.RESULTS.successful
    np.testing.assert_allclose(sol.value, x, rtol=RTOL)
    # The reported value is the robust cost itself (SciPy's `cost`), not ½‖r̃‖²:
    # equal to 1e-8 relative (both are the cost at points 1e-8 apart, where its
    # gradient vanishes).
    assert float(sol.stats["value"]) == pytest.approx(cost, rel=1e-8)


def _fit_cases():
    cases = []
    for loss in LOSSES:
        for fit in FITS:
            for multiple in TUKEY_SCALES if loss == "tukey" else SCALES:
                representative = fit.name == "exponential decay" and multiple == 3.0
                marks = () if representative else pytest.mark.slow
                cases.append(pytest.param(loss, fit.name, multiple, marks=marks))
    return cases


@pytest.mark.parametrize("loss,name,multiple", _fit_cases())
def test_robust_fit_matches_the_reference(loss, name, multiple):
    # 11 problems × 3 scales for each loss; the default run keeps one per loss
    # (exponential decay, scale = 3 × noise).
    fit = FIT[name]
    scale = multiple * fit.noise
    sol = qn.least_squares(
        fit.residuals,
        qn.LevenbergMarquardt(),
        jnp.asarray(start(name, loss, scale)),
        loss=LOSSES[loss](scale),
    )
    _check_fit(sol, name, loss, scale)


def test_a_robust_fit_is_not_the_least_squares_fit():
    # The comparisons above would pass vacuously if the loss did not reach the
    # solve: the outliers move the plain least-squares fit by more than 1e-2
    # relative in some parameter, 10⁴ times the tolerance.
    fit = FIT["exponential decay"]
    plain = qn.least_squares(
        fit.residuals, qn.LevenbergMarquardt(), jnp.asarray(fit.start)
    )
    x, _ = scipy_fit(fit.name, "huber", 3.0 * fit.noise)
    assert np.max(np.abs(plain.value - x) / np.abs(x)) > 1e-2


# ---------------------------------------------------------------------------
# Every path, host loop and jax.jit


def _path_cases():
    """Every path with every loss; the default run keeps each path once and each
    loss at least once."""
    cases = []
    names = list(LOSSES)
    for i, path in enumerate(SUM_OF_SQUARES_PATHS):
        for j, loss in enumerate(names):
            for jit in (False, True):
                default = j == i % len(names) and jit == (i % 2 == 1)
                marks = () if default else pytest.mark.slow
                cases.append(pytest.param(path, loss, jit, marks=marks))
    return cases


@pytest.mark.parametrize("path,loss,jit", _path_cases())
def test_every_path_reaches_the_robust_fit(path, loss, jit):
    fit = FIT["exponential decay"]
    scale = 3.0 * fit.noise
    solve = lambda y0: qn.least_squares(
        fit.residuals, SUM_OF_SQUARES_PATHS[path], y0, loss=LOSSES[loss](scale)
    )
    if jit:
        solve = jax.jit(solve)
    _check_fit(solve(jnp.asarray(start(fit.name, loss, scale))), fit.name, loss, scale)


def test_sigma_and_loss_together():
    # sigma divides the residuals before the loss: the fit of r/σ with f_scale s,
    # σ per residual (a vector) here.
    fit = FIT["gaussian peak"]
    sigma = np.linspace(0.5, 2.0, fit.t.size)
    scale = 2.0
    sol = qn.least_squares(
        fit.residuals,
        qn.LevenbergMarquardt(),
        jnp.asarray(fit.start),
        sigma=jnp.asarray(sigma),
        loss=qn.loss.Cauchy(scale),
    )
    x, cost = scipy_fit(fit.name, "cauchy", scale, tuple(sigma))
    np.testing.assert_allclose(sol.value, x, rtol=RTOL)
    assert float(sol.stats["value"]) == pytest.approx(cost, rel=1e-8)


# ---------------------------------------------------------------------------
# scale is an array leaf


SCALE_MULTIPLES = jnp.array([1.0, 3.0, 10.0])


def test_vmap_over_the_scale():
    # Each fit of the batch has its own scale, and gets SciPy's fit at it.
    fit = FIT["exponential decay"]
    residuals = fit.residuals
    y0 = jnp.asarray(fit.start)

    def solve(scale):
        return qn.least_squares(
            residuals, qn.LevenbergMarquardt(), y0, loss=qn.loss.SoftL1(scale)
        ).value

    values = jax.vmap(solve)(fit.noise * SCALE_MULTIPLES)
    for value, multiple in zip(values, SCALE_MULTIPLES, strict=True):
        x, _ = scipy_fit(fit.name, "soft_l1", float(multiple) * fit.noise)
        np.testing.assert_allclose(value, x, rtol=RTOL)


def test_a_new_scale_compiles_nothing_anew(caplog):
    fit = FIT["line"]
    residuals = fit.residuals
    y0 = jnp.asarray(fit.start)
    solve = lambda scale: qn.least_squares(
        residuals, qn.LevenbergMarquardt(), y0, loss=qn.loss.Huber(scale)
    )
    # Under jax.jit: one compilation for both scales (1).
    jitted = jax.jit(lambda scale: solve(scale).value)
    first = jitted(0.1)
    second = jitted(1.0)
    assert jitted._cache_size() == 1
    np.testing.assert_allclose(first, scipy_fit(fit.name, "huber", 0.1)[0], rtol=RTOL)
    np.testing.assert_allclose(second, scipy_fit(fit.name, "huber", 1.0)[0], rtol=RTOL)
    # From Python: after a first solve, a solve at another scale compiles nothing
    # (0 compilations logged).
    solve(0.2)
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        sol = solve(0.3)
    assert re.findall(r"Compiling (\S+)", caplog.text) == []
    np.testing.assert_allclose(
        sol.value, scipy_fit(fit.name, "huber", 0.3)[0], rtol=RTOL
    )


def test_the_host_cache_tells_losses_apart():
    # The same fn and scale, Huber then Cauchy: the host loop's compiled
    # evaluations are keyed by the objective's structure, so the second solve is
    # Cauchy's fit, not Huber's again (which differ by > 1e-3 relative here).
    fit = FIT["line"]
    residuals = fit.residuals
    y0 = jnp.asarray(fit.start)
    scale = 0.3
    huber = qn.least_squares(
        residuals, qn.LevenbergMarquardt(), y0, loss=qn.loss.Huber(scale)
    )
    cauchy = qn.least_squares(
        residuals, qn.LevenbergMarquardt(), y0, loss=qn.loss.Cauchy(scale)
    )
    np.testing.assert_allclose(
        huber.value, scipy_fit(fit.name, "huber", scale)[0], rtol=RTOL
    )
    np.testing.assert_allclose(
        cauchy.value, scipy_fit(fit.name, "cauchy", scale)[0], rtol=RTOL
    )
    assert np.max(np.abs(huber.value - cauchy.value) / np.abs(cauchy.value)) > 1e-3


# ---------------------------------------------------------------------------
# Tukey's loss ignores what lies beyond the scale


def test_tukey_ignores_residuals_beyond_the_scale():
    # Moving a gross outlier (already beyond the scale) ten times further changes
    # nothing: its ρ is the constant 1/3 and both correction factors are 0, so
    # every iterate, the solution and the cost are bitwise the same. Cauchy's
    # fit, in which the outlier's pull ρ′z falls off like 1/|z| but never
    # vanishes, does move (by > 1e-6 relative). (Huber's would not: its pull
    # beyond the scale is s·sign(z), whatever |z|.)
    fit = FIT["exponential decay"]
    scale = 3.0 * fit.noise
    t = jnp.asarray(fit.t)
    y = jnp.asarray(fit.data())
    moved = y.at[17].add(-18.0)  # the outlier at 17: −2 → −20

    residuals = lambda p, data: fit.model(p, t) - data  # one object: one compile

    def solve(data, loss):
        return qn.least_squares(
            residuals,
            qn.LevenbergMarquardt(),
            jnp.asarray(fit.start),
            data,
            loss=loss,
        )

    tukey = qn.loss.Tukey(scale)
    before, after = solve(y, tukey), solve(moved, tukey)
    np.testing.assert_array_equal(before.value, after.value)
    assert float(before.stats["value"]) == float(after.stats["value"])
    cauchy = qn.loss.Cauchy(scale)
    shift = jnp.abs(solve(y, cauchy).value - solve(moved, cauchy).value)
    assert float(jnp.max(shift / jnp.abs(before.value))) > 1e-6


@pytest.mark.parametrize("name", LOSSES)
def test_the_adjoint_differentiates_the_robust_gradient(name):
    # The implicit adjoint differentiates ∇f as the solve forms it, J̃ᵀr̃ through
    # the correction (ρ′, ρ″ and their square roots): its derivatives in x (the
    # Hessian) and in the data equal those of the robust cost f written as
    # `loss.cost`, by autodiff of ρ alone, to rounding (1e-9 relative to the
    # largest entry); at a point with a residual exactly 0, residuals on either
    # side of the scale and a gross outlier (ρ′ = 0 for Tukey): no nan.
    fit = FIT["line"]
    t = jnp.asarray(fit.t)
    x = jnp.asarray(fit.truth)
    loss = LOSSES[name](3.0 * fit.noise)
    data = jnp.asarray(fit.data())
    data = data.at[0].set(fit.model(x, t)[0])  # a residual of exactly 0
    residuals = lambda p, data: fit.model(p, t) - data
    problem, _, _ = make_problem(
        residuals, x, data, "residual", False, "auto", None, loss
    )
    objective_loss = problem.objective.loss

    def gradient(x, data):
        return eqx.tree_at(lambda p: p.args, problem, data).value_and_grad(x).grad

    def cost(x, data):
        return objective_loss.cost(residuals(x, data))

    jac = jax.jit(jax.jacfwd(gradient, argnums=(0, 1)))(x, data)
    expected = jax.jit(jax.jacfwd(jax.grad(cost), argnums=(0, 1)))(x, data)
    for got, want in zip(jac, expected, strict=True):
        assert np.all(np.isfinite(got))
        atol = 1e-9 * float(jnp.max(jnp.abs(want)))
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=atol)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tukey", "huber"])
def test_derivatives_through_a_robust_fit(name):
    # The implicit adjoint differentiates the corrected gradient (ρ′ and ρ″ of
    # the loss): dx*/d(data) along a direction is finite and matches central
    # differences (step 1e-5: agreement to 1e-5 relative, the differences'
    # truncation and the solves' tolerance), for Tukey with residuals beyond the
    # scale (ρ′ = 0) and Huber with residuals on either side of its branch.
    fit = FIT["line"]
    t = jnp.asarray(fit.t)
    y = jnp.asarray(fit.data())
    loss = LOSSES[name](3.0 * fit.noise)

    residuals = lambda p, data: fit.model(p, t) - data  # one object: one compile

    def solve(data):
        return qn.least_squares(
            residuals,
            qn.LevenbergMarquardt(),
            jnp.asarray(fit.start),
            data,
            loss=loss,
        ).value

    direction = jnp.asarray(np.random.default_rng(1).standard_normal(t.size))
    _, tangent = jax.jvp(solve, (y,), (direction,))
    assert np.all(np.isfinite(tangent))
    h = 1e-5
    difference = (solve(y + h * direction) - solve(y - h * direction)) / (2 * h)
    np.testing.assert_allclose(tangent, difference, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------
# Errors and float32


def test_loss_must_be_a_loss_part():
    fit = FIT["line"]
    # A clear TypeError naming what is expected: quasinewton's own ("a qn.loss
    # part"), or, under the test run's runtime type checks, jaxtyping's of the
    # annotation (AbstractLoss).
    with pytest.raises(TypeError, match=r"qn\.loss part|AbstractLoss"):
        qn.least_squares(
            fit.residuals,
            qn.LevenbergMarquardt(),
            jnp.asarray(fit.start),
            loss="huber",
        )


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_the_scale_must_be_positive_and_finite(scale):
    fit = FIT["line"]
    with pytest.raises(ValueError, match="positive and finite"):
        qn.least_squares(
            fit.residuals,
            qn.LevenbergMarquardt(),
            jnp.asarray(fit.start),
            loss=qn.loss.Huber(scale),
        )


def test_the_scale_must_be_a_scalar():
    fit = FIT["line"]
    with pytest.raises(TypeError, match="real scalar"):
        qn.least_squares(
            fit.residuals,
            qn.LevenbergMarquardt(),
            jnp.asarray(fit.start),
            loss=qn.loss.Huber(jnp.array([1.0, 2.0])),
        )


@pytest.mark.parametrize("name", LOSSES)
def test_float32_fit_matches_float64(name):
    # The same fit in float32 (data, start) ends `successful` at the float64
    # optimum as far as float32 can tell it: its cost, evaluated in float64, is
    # within 10 ulp of float32 (relative) of the optimal cost, the resolution of a
    # float32 sum of 40 terms; the parameters then agree to 1e-3 relative, √eps of
    # float32 (3e-4: f resolves x only to the square root of its own rounding)
    # amplified by the fit's conditioning.
    fit = FIT["exponential decay"]
    scale = 3.0 * fit.noise
    t32 = jnp.asarray(fit.t, jnp.float32)
    y32 = jnp.asarray(fit.data(), jnp.float32)
    loss = LOSSES[name](scale)
    sol32 = qn.least_squares(
        lambda p, _: fit.model(p, t32) - y32,
        qn.LevenbergMarquardt(),
        jnp.asarray(start(fit.name, name, scale), jnp.float32),
        loss=loss,
    )
    assert sol32.result == qn.RESULTS.successful
    assert sol32.value.dtype == jnp.float32
    x, cost = reference(fit.name, name, scale)
    cost32 = float(loss.cost(fit.residuals(jnp.asarray(sol32.value, jnp.float64))))
    assert cost32 - cost <= 10 * np.finfo(np.float32).eps * cost
    np.testing.assert_allclose(sol32.value, x, rtol=1e-3)
