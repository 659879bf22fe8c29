"""What the termination tests see: `Progress` and the gradient norm the loop keeps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn


def _progress(**given):
    return qn.termination.Progress(
        x=jnp.array([0.5, -3.0, 2.0]),
        f=jnp.asarray(4.0),
        grad=jnp.array([-2.0, 0.5, 1.0]),
        step=jnp.zeros(3),
        change=jnp.asarray(0.0),
        f0=jnp.asarray(10.0),
        grad0=jnp.asarray(5.0),
        lower=None,
        first=jnp.array(False),
        full_step=jnp.array(True),
        rtol=jnp.asarray(1e-8),
        atol=jnp.asarray(0.0),
        **given,
    )


def test_progress_computes_its_reductions_when_not_given():
    progress = _progress()
    assert float(progress.gradient_norm()) == 2.0
    # G = maxᵢ |∇fᵢ|·max(|xᵢ|, 1) = max(2·1, 0.5·3, 1·2).
    assert float(progress.first_order_change()) == 2.0


def test_progress_uses_the_reductions_it_is_given():
    progress = _progress(grad_norm=jnp.asarray(7.0), first_order=jnp.asarray(9.0))
    assert float(progress.gradient_norm()) == 7.0
    assert float(progress.first_order_change()) == 9.0


def _bumpy(y, args):
    # Rosenbrock plus a nan region, so that trust-region trials are rejected.
    f = 100.0 * (y[1] - y[0] ** 2) ** 2 + (1.0 - y[0]) ** 2
    return jnp.where(y[0] > 1.5, jnp.nan, f)


def _bumpy_residuals(y, args):
    r = jnp.stack([10.0 * (y[1] - y[0] ** 2), 1.0 - y[0]])
    return jnp.where(y[0] > 1.5, jnp.nan, r)


@pytest.mark.parametrize("jit", [False, True], ids=["host", "jit"])
@pytest.mark.parametrize("kind", ["minimise", "least_squares"])
def test_gradient_norm_is_that_of_the_returned_point(kind, jit):
    # The loop keeps maxᵢ |∇fᵢ| at the iterate from the trial's gradient when the
    # trial is accepted and from the stored one when it is rejected; it must be
    # the norm of the gradient at the returned point whichever happened last.
    y0 = jnp.array([-1.2, 1.0])
    if kind == "minimise":
        solve = lambda y: qn.minimise(_bumpy, qn.BFGS(), y, throw=False)
    else:
        solve = lambda y: qn.least_squares(
            _bumpy_residuals, qn.LevenbergMarquardt(), y, throw=False
        )
    sol = jax.jit(solve)(y0) if jit else solve(y0)
    assert sol.result == qn.RESULTS.successful
    steps, accepted = int(sol.stats["num_steps"]), sol.stats["num_accepted_steps"]
    assert int(accepted) < steps  # some trials were rejected
    expected = jnp.max(jnp.abs(sol.state.evaluation.grad))
    assert sol.stats["gradient_norm"] == expected


def test_gradient_norm_after_every_iteration_under_vmap():
    # Under vmap the fits stop at different iterations and the loop keeps
    # stepping the finished ones (masked): each keeps its own norm.
    y0 = jnp.array([[-1.2, 1.0], [0.9, 0.8], [-0.5, 0.5], [1.2, 1.4]])
    sols = jax.jit(
        jax.vmap(
            lambda y: qn.least_squares(
                _bumpy_residuals, qn.LevenbergMarquardt(), y, throw=False
            )
        )
    )(y0)
    np.testing.assert_array_equal(
        np.asarray(sols.stats["gradient_norm"]),
        np.max(np.abs(np.asarray(sols.state.evaluation.grad)), axis=1),
    )


def test_gradient_norm_of_a_nonfinite_start_is_nan():
    sol = qn.minimise(
        lambda y, args: jnp.sum((y - 1.0) ** 2),
        qn.LBFGS(),
        jnp.array([1.0, jnp.nan]),
        throw=False,
    )
    assert sol.result == qn.RESULTS.nonfinite
    assert bool(jnp.isnan(sol.stats["gradient_norm"]))
