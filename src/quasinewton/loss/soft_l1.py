"""The smooth approximation of the absolute value: ρ(t) = 2(√(1 + t) − 1)."""

import jax.numpy as jnp

from ._base import AbstractLoss


class SoftL1(AbstractLoss):
    """The soft ℓ¹ loss (SciPy's `loss="soft_l1"`), a smooth absolute value:
    quadratic for residuals below the scale, growing like 2s|z| beyond it. Every
    residual keeps a nonzero weight, and the loss is convex in z: for residuals
    linear in the parameters the robust cost stays convex, so it tempers outliers
    without adding local minima.

    With t = z²/s²:

    - ρ(t) = 2(√(1 + t) − 1),
    - ρ′(t) = (1 + t)^(−1/2),
    - ρ″(t) = −½ (1 + t)^(−3/2).

    ρ is evaluated as 2t/(1 + √(1 + t)), which keeps its relative accuracy for
    small t.

    **Arguments:**

    - `scale`: s > 0, as for [`quasinewton.loss.AbstractLoss`][].
    """

    def rho(self, t):
        root = jnp.sqrt(1.0 + t)
        d1 = 1.0 / root
        return 2.0 * (t / (1.0 + root)), d1, -0.5 * d1 * d1 * d1
