"""The gradient test: the gradient has fallen by a factor `rtol` from the start."""

from typing import ClassVar

import jax.numpy as jnp

from .._solution import Termination
from ._base import AbstractTermination, Progress


class Gradient(AbstractTermination):
    """Converged when maxᵢ |∇fᵢ| ≤ atol + rtol·maxᵢ |∇f(y0)ᵢ| and the relative
    gradient ρ (see [`quasinewton.termination.Progress`][]) is below 100·rtol (with
    `atol > 0`: atol + rtol).

    The first part is relative to the gradient at the start, so unchanged by
    rescaling f or adding a constant to it. The guard on ρ keeps a start whose
    gradient is huge (a steep region far from the minimiser) from making "fallen
    by rtol" too easy. At the start point only the `atol` part applies (with the
    default `atol = 0`, a start is accepted as converged only where ∇f = 0
    exactly).
    """

    reason: ClassVar[Termination] = Termination.gradient

    def __call__(self, progress: Progress):
        reference = jnp.where(progress.first, 0.0, progress.grad0)
        small = progress.gradient_norm() <= progress.atol + progress.rtol * reference
        guard = progress.relative_gradient_within(
            progress.relative_gradient_tolerance()
        )
        return small & guard
