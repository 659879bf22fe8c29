"""The relative-decrease test of L-BFGS-B, for quasi-Newton models."""

from typing import ClassVar

import jax.numpy as jnp

from .._solution import Termination
from ._base import AbstractTermination, Progress


class RelativeDecrease(AbstractTermination):
    """Converged when a full quasi-Newton step gained little and nothing much better
    lies nearby:

    - −Δf ≤ rtol·F, F = max(|f_old|, |f|, typical f) (see
      [`quasinewton.termination.Progress`][]; with `atol > 0`, typical f = 1 as in
      L-BFGS-B),
    - ‖∇f‖·‖Δx‖ ≤ 0.1·rtol·F: a step of the same length down the gradient would
      gain at most a tenth of that at first order,
    - the relative gradient ρ ≤ `guard`·min(rtol, 10⁻⁶).

    The first part is the stopping test of L-BFGS-B (Byrd, Lu, Nocedal & Zhu, 1995;
    SciPy's `ftol`). Near a minimiser a quasi-Newton step gains less than the one
    before, so once one gains less than rtol·F, f is about as good as the tolerance
    asks, long before the gradient test passes (the gradient falls only like the
    square root of f − f*). F is relative to f, so a constant added to f makes the
    test easier: like every test it also needs the gradient to have fallen by √rtol
    from the start ([`quasinewton.termination.certified`][]), which no constant
    changes. Newton and Gauss–Newton models converge quadratically, so the
    gradient test costs them few evaluations; their presets do not use this test.

    **Arguments:**

    - `guard`: the factor of the guard on ρ.
    """

    guard: float = 1000.0

    reason: ClassVar[Termination] = Termination.decrease

    def __call__(self, progress: Progress):
        rtol = progress.rtol
        f, f_old = jnp.abs(progress.f), jnp.abs(progress.f - progress.change)
        size = jnp.maximum(jnp.maximum(f, f_old), progress.typical_f())
        tiny_gain = -progress.change <= rtol * size
        first_order = jnp.linalg.norm(progress.grad) * jnp.linalg.norm(progress.step)
        no_better_nearby = first_order <= 0.1 * rtol * size
        near = progress.relative_gradient_within(self.guard * jnp.minimum(rtol, 1e-6))
        return (
            ~progress.first & progress.full_step & tiny_gain & no_better_nearby & near
        )
