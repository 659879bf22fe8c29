"""The step test: f and x have stopped changing near a stationary point."""

from typing import ClassVar

import jax.numpy as jnp

from .._solution import Termination
from ._base import AbstractTermination, Progress


class Step(AbstractTermination):
    """Converged when a full model step changed f and x by at most the tolerances,
    near a stationary point (F = max(|f|, typical f) and ρ as in
    [`quasinewton.termination.Progress`][]):

    - |Δf| ≤ atol + rtol·F,
    - |Δxᵢ| ≤ atol + rtol·|xᵢ| for every i,
    - ρ ≤ `guard`·t, t the tolerance of the gradient test's ρ.

    The guard keeps a method crawling along an ill-conditioned valley, whose steps
    are small for another reason, from passing for converged. A step shortened by
    a line search never ends a solve here: it says the model was poor, not that x
    has converged.

    **Arguments:**

    - `guard`: the factor of the guard.
    """

    guard: float = 100.0

    reason: ClassVar[Termination] = Termination.step

    def __call__(self, progress: Progress):
        rtol, atol = progress.rtol, progress.atol
        size = jnp.where(
            progress.absolute(),
            jnp.abs(progress.f),
            jnp.maximum(jnp.abs(progress.f), progress.typical_f()),
        )
        small_f = jnp.abs(progress.change) <= atol + rtol * size
        small_x = jnp.all(jnp.abs(progress.step) <= atol + rtol * jnp.abs(progress.x))
        tolerance = self.guard * progress.relative_gradient_tolerance()
        near = progress.relative_gradient_within(tolerance)
        return ~progress.first & progress.full_step & small_f & small_x & near
