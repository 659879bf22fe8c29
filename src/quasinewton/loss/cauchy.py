"""The Cauchy (Lorentzian) loss: ρ(t) = ln(1 + t)."""

import jax.numpy as jnp

from ._base import AbstractLoss


class Cauchy(AbstractLoss):
    """The Cauchy loss (SciPy's `loss="cauchy"`), the negative log-likelihood of
    Cauchy-distributed residuals: its cost grows only logarithmically, so a gross
    outlier's influence ρ′(t)·z falls off like 1/|z|. It is not convex in z beyond
    the scale, so a fit may have more than one local minimum: start it from a
    reasonable guess (a plain least-squares or soft-ℓ¹ fit).

    With t = z²/s²:

    - ρ(t) = ln(1 + t),
    - ρ′(t) = 1/(1 + t),
    - ρ″(t) = −1/(1 + t)².

    **Arguments:**

    - `scale`: s > 0, as for [`quasinewton.loss.AbstractLoss`][].
    """

    def rho(self, t):
        d1 = 1.0 / (1.0 + t)
        return jnp.log1p(t), d1, -d1 * d1
