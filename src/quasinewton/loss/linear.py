"""The square itself: ρ(t) = t."""

import jax.numpy as jnp

from ._base import AbstractLoss


class Linear(AbstractLoss):
    """ρ(t) = t: plain least squares, f = ½‖z‖² whatever the scale (SciPy's
    `loss="linear"`). The same as passing no loss."""

    def rho(self, t):
        one = jnp.ones_like(t)
        return t, one, jnp.zeros_like(t)
