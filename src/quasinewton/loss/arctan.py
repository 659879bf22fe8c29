"""The arctangent loss: ρ(t) = arctan(t), bounded by π/2."""

import jax.numpy as jnp

from ._base import AbstractLoss


class Arctan(AbstractLoss):
    """The arctangent loss (SciPy's `loss="arctan"`): its cost is bounded (by
    s²π/4 per residual), so a residual far beyond the scale has almost no
    influence on the fit, which makes it, like
    [`quasinewton.loss.Cauchy`][], non-convex in z: start from a reasonable guess.

    With t = z²/s²:

    - ρ(t) = arctan(t),
    - ρ′(t) = 1/(1 + t²),
    - ρ″(t) = −2t/(1 + t²)².

    **Arguments:**

    - `scale`: s > 0, as for [`quasinewton.loss.AbstractLoss`][].
    """

    def rho(self, t):
        d1 = 1.0 / (1.0 + t * t)
        return jnp.arctan(t), d1, -2.0 * (t * d1) * d1
