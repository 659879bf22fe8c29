"""The ratio test and the radius and damping updates shared by trust-region rules.

A trust-region rule steps on a model m(p) ≈ f(x + p) − f(x) within a region it
adapts to how well the model predicted the last trial, by the ratio

    ρ = (f(x) − f(x + p)) / (−m(p)),

the actual over the predicted reduction (Nocedal & Wright, 2006, §4.1). The
Levenberg–Marquardt rule ([`quasinewton.descent.TrustRegion`][]) adapts a damping
λ, the dogleg a radius Δ; both judge trials with [`ratio_test`][quasinewton.descent.ratio_test].
Their scalar arguments may be 0-d arrays (traced ones too) or Python floats.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Scalar


class Verdict(eqx.Module):
    """The outcome of [`ratio_test`][quasinewton.descent.ratio_test].

    **Attributes:**

    - `ratio`: ρ, the actual over the predicted reduction (meaningless where the
      prediction is not positive).
    - `accept`: whether the trial is accepted.
    - `floor`: whether the trial was rejected with both the predicted and the
      actual change within rounding of f (below √eps·|f|): the model and f then
      disagree by rounding only, and no step can be told from standing still.
    """

    ratio: Scalar
    accept: Bool[Array, ""]
    floor: Bool[Array, ""]


def ratio_test(
    f: Scalar | float,
    trial_f: Scalar | float,
    predicted: Scalar | float,
    trial_finite: Bool[Array, ""] | bool,
    accept: float | Scalar,
) -> Verdict:
    """Judge a trial by its reduction ratio.

    **Arguments:**

    - `f`, `trial_f`: the objective at the iterate and at the trial.
    - `predicted`: the model's predicted reduction −m(p) (nan if the model gave no
      step).
    - `trial_finite`: whether the trial's evaluation is finite.
    - `accept`: the least ratio accepted.

    **Returns:** a [`Verdict`][quasinewton.descent.Verdict]. A trial is accepted
    when it is finite, the model predicted a decrease, and ρ > `accept`; a
    non-finite trial is rejected like a poor one.
    """
    eps = jnp.finfo(jnp.result_type(f)).eps
    actual = f - trial_f
    ratio = actual / jnp.where(predicted > 0, predicted, 1.0)
    accepted = trial_finite & (predicted > 0) & (ratio > accept)
    noise = jnp.sqrt(eps) * jnp.abs(f)
    floor = (
        ~accepted
        & trial_finite
        & (jnp.abs(predicted) <= noise)
        & (jnp.abs(actual) <= noise)
    )
    return Verdict(ratio=ratio, accept=accepted, floor=floor)


def damping_update(
    damping: Scalar | float,
    growth: Scalar | float,
    verdict: Verdict,
    predicted: Scalar | float,
    max_decrease: float | Scalar,
) -> tuple[Scalar, Scalar]:
    """The Levenberg–Marquardt damping after a judged trial (Nielsen, 1999).

    After an accepted trial λ ← λ·max(1/`max_decrease`, 1 − (2ρ − 1)³), so that
    very good steps cut λ and mediocre ones keep it, and ν ← 2; after a rejection
    λ ← λ·ν and ν doubles, ten times faster when the model predicted no decrease.

    **Returns:** `(λ, ν)`, unclipped.
    """
    good = jnp.maximum(1.0 / max_decrease, 1.0 - (2.0 * verdict.ratio - 1.0) ** 3)
    bad_growth = jnp.where(predicted > 0, growth, 10.0 * growth)
    damping = jnp.where(verdict.accept, damping * good, damping * bad_growth)
    growth = jnp.where(verdict.accept, 2.0, 2.0 * growth)
    return damping, growth


def radius_update(
    radius: Scalar | float,
    step_norm: Scalar | float,
    verdict: Verdict,
    shrink_below: float | Scalar = 0.25,
    grow_above: float | Scalar = 0.75,
) -> Scalar:
    """The trust radius Δ after a judged trial (Nocedal & Wright, 2006, Alg. 4.1).

    A trial that is rejected or whose ratio is below `shrink_below` shrinks the
    radius to a quarter of the shorter of Δ and the step; one whose ratio exceeds
    `grow_above` and that reached the boundary (‖p‖ ≥ 0.99Δ) doubles it; any
    other keeps it.

    **Arguments:**

    - `radius`: Δ.
    - `step_norm`: ‖p‖ of the trial.
    - `verdict`: the trial's [`Verdict`][quasinewton.descent.Verdict].
    - `shrink_below`, `grow_above`: the ratio thresholds.
    """
    ratio = jnp.where(verdict.accept, verdict.ratio, -jnp.inf)
    shrunk = 0.25 * jnp.minimum(radius, step_norm)
    grown = 2.0 * radius
    at_boundary = step_norm >= 0.99 * radius
    return jnp.where(
        ratio < shrink_below,
        shrunk,
        jnp.where((ratio > grow_above) & at_boundary, grown, radius),
    )
