"""qn.least_squares: Gauss–Newton and Levenberg–Marquardt, dense and matrix-free."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.optimize

import quasinewton as qn

T = jnp.linspace(0.0, 4.0, 50)


def exp_decay(params, args):
    t, y = args
    a, b, c = params
    return a * jnp.exp(-b * t) + c - y


def _data(key, a=2.5, b=1.3, c=0.5, noise=0.05, dtype=jnp.float64):
    y = a * jnp.exp(-b * T) + c + noise * jax.random.normal(key, T.shape)
    return T.astype(dtype), y.astype(dtype)


def _scipy_fit(args, start):
    t, y = (np.asarray(a, np.float64) for a in args)
    res = scipy.optimize.least_squares(
        lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y,
        np.asarray(start, np.float64),
        method="lm",
        xtol=1e-14,
        ftol=1e-14,
        gtol=1e-14,
    )
    return res.x, 0.5 * np.sum(res.fun**2)


@pytest.mark.parametrize(
    "solver",
    [
        qn.LevenbergMarquardt(),
        qn.LevenbergMarquardt(linear_solver=lx.Cholesky()),
        qn.LevenbergMarquardt(scaling="marquardt"),
        qn.LevenbergMarquardt(materialise=False),
        qn.GaussNewton(),
        qn.GaussNewton(line_search="wolfe"),
        qn.LevenbergMarquardtCG(),
        qn.LBFGS(),
    ],
    ids=[
        "lm-qr",
        "lm-cholesky",
        "lm-marquardt",
        "lm-matrix-free",
        "gn",
        "gn-wolfe",
        "lm-cg",
        "lbfgs",
    ],
)
def test_exp_decay_matches_scipy(solver):
    args = _data(jax.random.PRNGKey(0))
    sol = qn.least_squares(exp_decay, solver, jnp.array([1.0, 1.0, 0.0]), args)
    expected, cost = _scipy_fit(args, [1.0, 1.0, 0.0])
    assert sol.result == qn.RESULTS.successful
    np.testing.assert_allclose(sol.value, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sol.stats["value"], cost, rtol=1e-8)
    if (
        "num_jac_evals" in sol.stats
        and solver.curvature.__class__.__name__ == "GaussNewton"
    ):
        assert int(sol.stats["num_jac_evals"]) >= int(sol.stats["num_accepted_steps"])


def test_pytree_residuals_and_parameters():
    # Residuals as a dict of arrays of different shapes; parameters as a dict.
    def fn(p, args):
        t, y = args
        model = p["amp"] * jnp.exp(-p["rate"] * t) + p["offset"]
        return {"data": model - y, "prior": jnp.stack([0.01 * (p["rate"] - 1.3)])}

    args = _data(jax.random.PRNGKey(1))
    y0 = {"amp": jnp.array(1.0), "rate": jnp.array(1.0), "offset": jnp.array(0.0)}
    sol = qn.least_squares(fn, qn.LevenbergMarquardt(), y0, args)
    assert sol.result == qn.RESULTS.successful
    assert set(sol.value) == {"amp", "rate", "offset"}
    np.testing.assert_allclose(float(sol.value["rate"]), 1.3, atol=0.05)


@pytest.mark.slow
def test_vmap_1000_fits_returns_full_solution():
    # Optimistix 0.1.0 fails to return the Solution from vmap for LM; we return it
    # whole, one fit per element, each matching SciPy's fit of the same data.
    keys = jax.random.split(jax.random.PRNGKey(2), 1000)
    truths = jax.random.uniform(
        jax.random.PRNGKey(3), (1000, 3), minval=0.5, maxval=2.0
    )
    ys = jax.vmap(lambda k, p: _data(k, *p)[1])(keys, truths)

    @jax.jit
    def fit(ys):
        return jax.vmap(
            lambda y: qn.least_squares(
                exp_decay, qn.LevenbergMarquardt(), jnp.array([1.0, 1.0, 0.0]), (T, y)
            )
        )(ys)

    sol = fit(ys)
    assert isinstance(sol, qn.Solution)
    assert sol.value.shape == (1000, 3)
    for key in ("num_steps", "num_fn_evals", "num_jac_evals", "value"):
        assert sol.stats[key].shape == (1000,)
    assert bool(jnp.all(sol.result == qn.RESULTS.successful))
    for i in (0, 123, 999):
        expected, cost = _scipy_fit((T, ys[i]), [1.0, 1.0, 0.0])
        np.testing.assert_allclose(sol.value[i], expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sol.stats["value"][i], cost, rtol=1e-8)


def _nan_beyond(params, args):
    # The model is undefined (NaN) for rate b > 3, a region the first LM step from
    # b = 2.9 jumps into (the data's true rate 2.5 is close to the edge).
    r = exp_decay(params, args)
    return jnp.where(params[1] > 3.0, jnp.nan, r)


@pytest.mark.parametrize(
    "solver",
    [qn.LevenbergMarquardt(), qn.LevenbergMarquardtCG(), qn.GaussNewton()],
    ids=["lm", "lm-cg", "gn"],
)
def test_nan_trial_is_rejected_and_solve_continues(solver):
    args = _data(jax.random.PRNGKey(4), a=3.0, b=2.5, c=0.2)
    start = jnp.array([0.5, 2.9, 1.0])
    assert bool(jnp.isnan(_nan_beyond(start + jnp.array([0.0, 0.2, 0.0]), args)).any())
    sol = qn.least_squares(_nan_beyond, solver, start, args, max_steps=500)
    assert sol.result == qn.RESULTS.successful
    expected, cost = _scipy_fit(args, [3.0, 2.5, 0.2])
    np.testing.assert_allclose(sol.value, expected, rtol=1e-4, atol=1e-5)
    assert np.all(np.isfinite(np.asarray(sol.value)))


def test_all_trials_nan_never_reports_success_at_start():
    # JAXopt's LM returns the start as "converged" when trials are NaN. Here every
    # point but the start is NaN: the solve must end with RESULTS.nonfinite (or a
    # failed search), never successful, and keep the finite start.
    start = jnp.array([1.0, 1.0, 0.0])

    def fn(params, args):
        r = exp_decay(params, args)
        return jnp.where(jnp.all(params == start), r, jnp.nan)

    sol = qn.least_squares(
        fn,
        qn.LevenbergMarquardt(),
        start,
        _data(jax.random.PRNGKey(5)),
        throw=False,
        max_steps=200,
    )
    assert sol.result != qn.RESULTS.successful
    assert sol.result == qn.RESULTS.nonfinite
    np.testing.assert_array_equal(sol.value, start)


def test_loss_history_records_every_iteration():
    args = _data(jax.random.PRNGKey(6))
    sol = qn.least_squares(
        exp_decay,
        qn.LevenbergMarquardt(),
        jnp.array([1.0, 1.0, 0.0]),
        args,
        history=True,
        max_steps=100,
    )
    hist = np.asarray(sol.stats["loss_history"])
    steps = int(sol.stats["num_steps"])
    assert hist.shape == (101,)
    assert np.all(np.diff(hist[: steps + 1]) <= 0)  # accepted values only decrease
    assert hist[steps] == pytest.approx(float(sol.stats["value"]))
    assert np.all(np.isnan(hist[steps + 1 :]))


def test_gauss_newton_rejects_minimise():
    with pytest.raises(ValueError, match="use `least_squares`"):
        qn.minimise(lambda y, _: jnp.sum(y**2), qn.LevenbergMarquardt(), jnp.ones(2))


def test_inverse_model_with_trust_region_is_rejected():
    with pytest.raises(ValueError, match="only an inverse Hessian"):
        qn.Solver(curvature=qn.curvature.LBFGS(), descent=qn.descent.TrustRegion())


def test_gradient_through_least_squares():
    # Linear least squares: y*(b) = (AᵀA)⁻¹Aᵀb exactly, so dy*/db = A⁺.
    A = jax.random.normal(jax.random.PRNGKey(7), (12, 4))

    def solve(b):
        return qn.least_squares(
            lambda y, b: A @ y - b,
            qn.LevenbergMarquardt(rtol=1e-12, atol=1e-12),
            jnp.zeros(4),
            b,
        ).value

    jac = jax.jacobian(solve)(jnp.arange(12.0))
    np.testing.assert_allclose(jac, np.linalg.pinv(np.asarray(A)), atol=1e-9)


@pytest.mark.slow
def test_diagnostics_against_dense():
    A = jax.random.normal(jax.random.PRNGKey(8), (30, 6)) * jnp.logspace(-1, 1, 6)
    y = jnp.linspace(-0.3, 0.3, 6)

    def fn(y, args):
        return jnp.tanh(A @ y) - args

    J = np.asarray(jax.jacfwd(fn)(y, 0.0))
    exact = np.linalg.eigvalsh(J.T @ J).max()
    estimate, iterations = qn.diagnostics.max_eigenvalue(fn, y, 0.0, rtol=1e-10)
    np.testing.assert_allclose(estimate, exact, rtol=1e-8)
    assert int(iterations) < 200
    # Both estimators are unbiased; 20,000 probes put every entry within 4 standard
    # errors. Residual probes: Var (Jᵀw)ᵢ² = 2[(Σₖ Jₖᵢ²)² − Σₖ Jₖᵢ⁴]. Parameter
    # probes: Var zᵢ(Bz)ᵢ = Σⱼ≠ᵢ Bᵢⱼ².
    B = J.T @ J
    diag = np.diag(B)
    k = 20_000
    stderr_residual = np.sqrt(2 * (diag**2 - np.sum(J**4, axis=0)) / k)
    stderr_hutchinson = np.sqrt((np.sum(B**2, axis=1) - diag**2) / k)
    for method, stderr in (
        ("residual", stderr_residual),
        ("hutchinson", stderr_hutchinson),
    ):
        estimate = np.asarray(
            qn.diagnostics.jtj_diagonal(fn, y, 0.0, num_probes=k, method=method)
        )
        assert np.all(np.abs(estimate - diag) <= 4 * stderr + 1e-12), method
