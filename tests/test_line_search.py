"""The line searches' safeguarded interpolation, on a one-dimensional φ(α)."""

import jax.numpy as jnp
import pytest

import quasinewton as qn
from quasinewton.descent.line_search import _fresh_state
from quasinewton.problem import Evaluation


def _search(descent, phi, dphi, alpha0=1.0):
    """Run `descent` along direction +1 from x = 0; returns (accepted α, trials)."""
    x, direction = jnp.zeros(1), jnp.ones(1)
    state = _fresh_state(jnp.asarray(alpha0), phi(0.0), dphi(0.0))
    for trial in range(1, 100):
        alpha = state.alpha
        ev = Evaluation(f=phi(alpha), grad=jnp.reshape(dphi(alpha), (1,)), aux=None)
        accept, failed, new_state = descent.judge(
            state, x, None, ev, jnp.array(True), direction
        )
        if bool(accept):
            return float(alpha), trial
        assert not bool(failed), (
            f"search failed after {trial} trials at α = {float(alpha)}"
        )
        state = new_state
    raise AssertionError("no decision after 100 trials")


# φ(α) = −aα + ½cα² with its minimiser at α* = a/c = 1e-9: a first step of 1
# overshoots by nine orders of magnitude. The interpolant's minimiser is α* itself,
# far below the safeguard interval, so each trial should shrink the step by the
# interval's limit (10×): about 9 trials. Halving instead needs 30, more than either
# search allows, and the search fails (as it did on CUTEst VESUVIALS).
A, C = 1e-3, 1e6


def phi(alpha):
    return jnp.asarray(-A * alpha + 0.5 * C * alpha**2)


def dphi(alpha):
    return jnp.asarray(-A + C * alpha)


@pytest.mark.parametrize(
    "descent", [qn.descent.Backtracking(), qn.descent.Zoom()], ids=["armijo", "wolfe"]
)
def test_an_overshooting_first_step_shrinks_tenfold_per_trial(descent):
    alpha, trials = _search(descent, phi, dphi)
    assert trials <= 12, trials
    # Accepted steps satisfy sufficient decrease, so lie in (0, 2α*).
    assert 0 < alpha < 2e-9


def test_extrapolation_grows_at_least_tenfold_in_four_trials():
    # φ(α) = −aα + ½cα² with α* = 1e3 from a first step of 1: Zoom extrapolates
    # (the cubic's minimiser is beyond the growth limit, so it is clamped to 4× the
    # last increase) and finds an acceptable step in a handful of trials.
    alpha, trials = _search(
        qn.descent.Zoom(),
        lambda a: jnp.asarray(-a + 0.5e-3 * a**2),
        lambda a: jnp.asarray(-1 + 1e-3 * a),
    )
    assert trials <= 8, trials
    assert 100 < alpha < 2e3
