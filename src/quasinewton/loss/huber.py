"""Huber's loss: quadratic below the scale, linear beyond."""

import jax.numpy as jnp

from ._base import AbstractLoss


class Huber(AbstractLoss):
    """Huber's loss (SciPy's `loss="huber"`): plain least squares for residuals up
    to the scale, the absolute value beyond it, joined with a continuous first
    derivative. It is convex in z (for residuals linear in the parameters the
    robust cost stays convex); an outlier's influence on the fit is bounded but
    never vanishes.

    With t = z²/s²:

    - ρ(t) = t for t ≤ 1, else 2√t − 1,
    - ρ′(t) = 1 for t ≤ 1, else t^(−1/2),
    - ρ″(t) = 0 for t ≤ 1, else −½ t^(−3/2).

    ρ″ jumps at t = 1, where it takes the value of the quadratic side (as SciPy).

    P. J. Huber, *Robust estimation of a location parameter*, Annals of
    Mathematical Statistics 35 (1964).

    **Arguments:**

    - `scale`: s > 0, as for [`quasinewton.loss.AbstractLoss`][].
    """

    def rho(self, t):
        quadratic = t <= 1.0
        # The square root only sees t > 1, so that neither branch nor its
        # derivative is evaluated at t = 0 (where √t has an infinite slope).
        beyond = jnp.where(quadratic, 1.0, t)
        root = jnp.sqrt(beyond)
        d1 = 1.0 / root
        value = jnp.where(quadratic, t, 2.0 * root - 1.0)
        first = jnp.where(quadratic, 1.0, d1)
        second = jnp.where(quadratic, 0.0, -0.5 * d1 / beyond)
        return value, first, second
