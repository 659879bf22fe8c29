"""The interface of a robust loss, and the correction that lets Gauss–Newton use it."""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._misc import as_float

__all__ = ["AbstractLoss"]


class AbstractLoss(eqx.Module):
    """A robust loss ρ: least squares then minimises f = ½ Σᵢ s² ρ(zᵢ²/s²).

    Here zᵢ are the (whitened, see `sigma` of [`quasinewton.least_squares`][])
    residuals and s = `scale` is the residual size at which the loss departs from
    the square (SciPy's `f_scale`): residuals well below s count as in ½‖z‖², larger
    ones less. ρ is written, as in SciPy's `least_squares`, as a function of the
    squared, scaled residual t = z²/s², with ρ(t) ≈ t for small t.

    Gauss–Newton and Levenberg–Marquardt need a sum of squares. `correct` gives one
    whose gradient is that of f and whose Gauss–Newton matrix is the robust cost's
    to first order: the residuals and the rows of J are rescaled (Triggs et al.,
    *Bundle adjustment — a modern synthesis*, 2000, §4.3; SciPy's
    `scale_for_robust_loss_function`; Ceres' `Corrector`), so that every path
    (dense QR, normal equations, matrix-free products) works unchanged.

    A loss is a part of its own: subclass this and implement `rho`.

    **Arguments:**

    - `scale`: s > 0, in the units of the (whitened) residuals. An array leaf, so
      that a new value compiles nothing anew and each fit of a `jax.vmap` may have
      its own.
    """

    scale: Float[ArrayLike, ""] = eqx.field(default=1.0, converter=as_float)

    @abc.abstractmethod
    def rho(
        self, t: Float[Array, " m"]
    ) -> tuple[Float[Array, " m"], Float[Array, " m"], Float[Array, " m"]]:
        """ρ(t), ρ′(t) and ρ″(t) at the squared, scaled residuals t = z²/s² ≥ 0.

        ρ must be increasing (ρ′ ≥ 0) with ρ(0) = 0; ρ′(0) = 1 keeps small
        residuals at their least-squares weight.
        """

    def cost(self, z: Float[Array, " m"]) -> Float[Array, ""]:
        """f = ½ Σᵢ s² ρ(zᵢ²/s²), the robust cost of the residuals z."""
        s2 = jnp.square(jnp.asarray(self.scale, z.dtype))
        value, _, _ = self.rho(z * z / s2)
        return 0.5 * s2 * jnp.sum(value)

    def correct(
        self, z: Float[Array, " m"]
    ) -> tuple[Float[Array, " m"], Float[Array, " m"]]:
        """The factors (a, b) of the corrected linear model r̃ = a ⊙ z, J̃ = b ⊙ J.

        With t = z²/s², ρ′ and ρ″ at t, and c = ρ′ + 2tρ″ (the curvature of the
        loss along the residual), the correction of Triggs et al. is b = √c and
        a = ρ′/√c: then J̃ᵀr̃ = Jᵀ(ρ′z) is the gradient of f and J̃ᵀJ̃ = Jᵀ diag(c) J
        its Hessian without the residuals' second derivatives. Where c ≤ ρ′/16
        (beyond the scale, where the loss bends down: the Cauchy, arctan, Huber and
        Tukey losses), the first-order rule a = b = √ρ′ is taken instead, as Ceres
        does where ρ″ < 0: it keeps the gradient, and a positive Gauss–Newton
        matrix, without dividing by a curvature that is near zero or negative.
        Where ρ′ = 0 (a residual the loss ignores) both factors are 0.
        """
        s2 = jnp.square(jnp.asarray(self.scale, z.dtype))
        _, d1, d2 = self.rho(z * z / s2)
        curvature = d1 + 2.0 * (z * z / s2) * d2
        second_order = curvature > d1 / 16
        root_curvature = jnp.sqrt(jnp.where(second_order, curvature, 1.0))
        # √ρ′ where ρ′ = 0 (Tukey's loss beyond the scale) would have an infinite
        # derivative, and the implicit adjoint differentiates this correction: the
        # square root sees 1 there instead, and the factor is set to 0.
        weighted = d1 > 0
        root_d1 = jnp.where(weighted, jnp.sqrt(jnp.where(weighted, d1, 1.0)), 0.0)
        residual_factor = jnp.where(second_order, d1 / root_curvature, root_d1)
        jacobian_factor = jnp.where(second_order, root_curvature, root_d1)
        return residual_factor, jacobian_factor
