"""Tukey's biweight: residuals beyond the scale have no weight at all."""

import jax.numpy as jnp

from ._base import AbstractLoss


class Tukey(AbstractLoss):
    """Tukey's biweight (bisquare) loss: a residual's weight ρ′ falls smoothly from
    1 at zero to 0 at the scale and stays 0 beyond it, so that residuals larger
    than s are ignored altogether: moving them changes nothing. The cost is
    constant beyond the scale, hence non-convex: start from a guess that puts the
    good data within the scale (a soft-ℓ¹ or Huber fit), since data the start
    rejects never pull the fit back.

    With t = z²/s²:

    - ρ(t) = (1 − (1 − t)³)/3 for t ≤ 1, else 1/3,
    - ρ′(t) = (1 − t)² for t ≤ 1, else 0,
    - ρ″(t) = −2(1 − t) for t ≤ 1, else 0.

    This is Ceres' `TukeyLoss` with a = s (its ρ of the squared residual is s²
    times this one). ρ is evaluated as t(1 − t + t²/3), which keeps its relative
    accuracy for small t; clipping t at 1 makes every derivative exactly zero
    beyond the scale.

    A. E. Beaton and J. W. Tukey, *The fitting of power series, meaning
    polynomials, illustrated on band-spectroscopic data*, Technometrics 16 (1974).

    **Arguments:**

    - `scale`: s > 0, as for [`quasinewton.loss.AbstractLoss`][].
    """

    def rho(self, t):
        clipped = jnp.minimum(t, 1.0)
        rest = 1.0 - clipped
        value = clipped * (1.0 - clipped + clipped * clipped / 3.0)
        return value, rest * rest, -2.0 * rest
