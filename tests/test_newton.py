"""The exact-Hessian Newton model, dense and Hessian-vector products."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import problems
import quasinewton as qn

COMPOSITIONS = {
    "dense-armijo": qn.Newton(materialise=True),
    "hvp-cg-armijo": qn.Newton(materialise=False),
    "dense-trust-region": qn.Solver(
        curvature=qn.curvature.Newton(materialise=True),
        descent=qn.descent.TrustRegion(),
    ),
    "hvp-cg-trust-region": qn.Solver(
        curvature=qn.curvature.Newton(materialise=False),
        descent=qn.descent.TrustRegion(),
    ),
}


@pytest.mark.parametrize("materialise", [True, False])
def test_one_step_on_a_quadratic(materialise):
    # f = ½yᵀAy − bᵀy: the Newton step from anywhere lands on A⁻¹b exactly, so the
    # first trial (α = 1) is accepted and the gradient test fires: one step.
    A = jnp.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    b = jnp.array([1.0, -2.0, 0.5])
    sol = qn.minimise(
        lambda y, _: 0.5 * y @ A @ y - b @ y,
        qn.Newton(materialise=materialise),
        jnp.zeros(3),
    )
    assert sol.result == qn.RESULTS.successful
    np.testing.assert_allclose(sol.value, np.linalg.solve(A, b), rtol=1e-6)
    assert int(sol.stats["num_accepted_steps"]) == 1


@pytest.mark.parametrize("name", list(COMPOSITIONS))
def test_extended_rosenbrock(name):
    # MGH problem 21 (n = 10) from its standard start; f* = 0 at y = 1.
    problem = problems.get("extended_rosenbrock")
    y0 = jnp.asarray(problem.x0)
    sol = qn.minimise(
        lambda y, _: problem.objective(y), COMPOSITIONS[name], y0, max_steps=500
    )
    assert sol.result == qn.RESULTS.successful
    assert float(jnp.max(jnp.abs(sol.value - 1.0))) < 1e-5
    # SciPy's exact-Hessian trust region on the same problem, for scale: both are
    # second-order, so both need tens of iterations, not hundreds.
    value, grad, hess = (
        jax.jit(f)
        for f in (
            problem.objective,
            jax.grad(problem.objective),
            jax.hessian(problem.objective),
        )
    )
    ref = scipy.optimize.minimize(
        lambda y: float(value(y)),
        problem.x0,
        jac=lambda y: np.asarray(grad(y)),
        hess=lambda y: np.asarray(hess(y)),
        method="trust-exact",
    )
    assert ref.success and np.allclose(ref.x, 1.0, atol=1e-5)
    print(
        f"\n{name}: {int(sol.stats['num_accepted_steps'])} steps; SciPy trust-exact {ref.nit}"
    )
    assert int(sol.stats["num_accepted_steps"]) <= 3 * ref.nit


def test_trust_region_newton_never_passes_a_failed_solve_for_convergence():
    # Chained Rosenbrock (n = 20) from (−1.2, 1, −1.2, …): the Hessian turns
    # indefinite on the way, so Cholesky of H + λI fails for small λ. Those failed
    # solves must be rejected (λ grows), not mistaken for a converged point: the
    # solve ends at a genuine stationary point — here the known local minimum with
    # f ≈ 3.9866 — with a gradient that is actually small.
    def chained(y, args):
        return jnp.sum(100.0 * (y[1:] - y[:-1] ** 2) ** 2 + (1.0 - y[:-1]) ** 2)

    y0 = jnp.full(20, 1.0).at[::2].set(-1.2)
    sol = qn.minimise(chained, COMPOSITIONS["dense-trust-region"], y0, max_steps=500)
    assert sol.result == qn.RESULTS.successful
    grad = jax.grad(chained)(sol.value, None)
    assert float(jnp.max(jnp.abs(grad))) < 1e-5
    eigenvalues = np.linalg.eigvalsh(np.asarray(jax.hessian(chained)(sol.value, None)))
    assert eigenvalues.min() > 0  # a minimum, not a saddle
    assert float(sol.stats["value"]) in (
        pytest.approx(0.0, abs=1e-10),
        pytest.approx(3.98662385, rel=1e-6),
    )
