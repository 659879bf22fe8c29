"""The trust-region rules' shared ratio test and region updates, against the
formulas they implement (Nocedal & Wright, 2006, Alg. 4.1; Nielsen, 1999)."""

import jax.numpy as jnp
import pytest

import quasinewton as qn

F = jnp.asarray(10.0)


def _verdict(trial_f, predicted, finite=True, accept=1e-4):
    return qn.descent.ratio_test(
        F, jnp.asarray(trial_f), jnp.asarray(predicted), jnp.asarray(finite), accept
    )


def test_ratio_is_actual_over_predicted_reduction():
    verdict = _verdict(9.0, 2.0)  # actual 1, predicted 2
    assert float(verdict.ratio) == 0.5
    assert bool(verdict.accept) and not bool(verdict.floor)


@pytest.mark.parametrize(
    "trial_f, predicted, finite",
    [
        (9.0, 2.0, False),  # a non-finite trial
        (9.0, 0.0, True),  # no predicted decrease
        (9.0, jnp.nan, True),  # the model gave no step
        (11.0, 2.0, True),  # f went up: ρ = −0.5
    ],
)
def test_rejected_trials(trial_f, predicted, finite):
    assert not bool(_verdict(trial_f, predicted, finite).accept)


def test_precision_floor_needs_both_changes_within_rounding():
    noise = float(jnp.sqrt(jnp.finfo(F.dtype).eps)) * 10.0
    assert bool(_verdict(10.0 + 0.5 * noise, 0.5 * noise).floor)
    assert not bool(_verdict(10.0 + 2 * noise, 0.5 * noise).floor)
    assert not bool(_verdict(10.0 - 0.5 * noise, 0.5 * noise).floor)  # accepted


@pytest.mark.parametrize(
    "trial_f, step_norm, expected",
    [
        (9.9, 1.0, 0.25),  # ρ = 0.05 < 1/4: a quarter of min(Δ, ‖p‖) = 1
        (12.0, 0.4, 0.1),  # rejected: a quarter of ‖p‖ = 0.4
        (8.2, 1.0, 2.0),  # ρ = 0.9 at the boundary: doubled
        (8.2, 0.5, 1.0),  # ρ = 0.9 inside the region: kept
        (9.0, 1.0, 1.0),  # ρ = 0.5: kept
    ],
)
def test_radius_update(trial_f, step_norm, expected):
    verdict = _verdict(trial_f, 2.0)
    radius = qn.descent.radius_update(jnp.asarray(1.0), jnp.asarray(step_norm), verdict)
    assert float(radius) == pytest.approx(expected)


def test_damping_update():
    damping, growth = jnp.asarray(1.0), jnp.asarray(2.0)
    # ρ = 1: λ·max(1/30, 1 − (2·1 − 1)³) = λ/30, and ν resets to 2.
    new = qn.descent.damping_update(damping, growth, _verdict(8.0, 2.0), 2.0, 30.0)
    assert [float(v) for v in new] == pytest.approx([1 / 30, 2.0])
    # ρ = 1/2: 1 − 0³ = 1, λ kept.
    new = qn.descent.damping_update(damping, growth, _verdict(9.0, 2.0), 2.0, 30.0)
    assert float(new[0]) == pytest.approx(1.0)
    # Rejected: λ·ν, ν doubles; ten times faster when nothing was predicted.
    new = qn.descent.damping_update(damping, growth, _verdict(11.0, 2.0), 2.0, 30.0)
    assert [float(v) for v in new] == pytest.approx([2.0, 4.0])
    new = qn.descent.damping_update(damping, growth, _verdict(11.0, 0.0), 0.0, 30.0)
    assert [float(v) for v in new] == pytest.approx([20.0, 4.0])
