"""Dense BFGS: the full inverse Hessian approximation."""

from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._problem import Evaluation
from ._base import AbstractCurvature, unit_length_first_step
from .lbfgs import _curvature_pair


class BFGSState(eqx.Module):
    """**Attributes:** `inverse`, the n×n inverse Hessian approximation H; `count`,
    the number of pairs applied since the last reset."""

    inverse: Float[Array, "n n"]
    count: Int[Array, ""]


class BFGS(AbstractCurvature):
    """Dense BFGS inverse Hessian (Nocedal & Wright, 2006, eq. 6.17).

    Hₖ₊₁ = (I − ρsyᵀ) Hₖ (I − ρysᵀ) + ρssᵀ with ρ = 1/sᵀy, starting from H₀ = I and
    rescaled to γI, γ = sᵀy/yᵀy, before the first update (eq. 6.20). O(n²) memory
    and work per step: for n up to a few thousand; use [`quasinewton.curvature.LBFGS`][]
    beyond.

    **Arguments:**

    - `safeguard`: `"skip"` pairs with sᵀy not safely positive (default) or
      `"damp"` them (Powell's damping with B₀ = I/γ).
    """

    safeguard: Literal["skip", "damp"] = eqx.field(default="skip", static=True)

    gives_inverse: ClassVar[bool] = True

    def init_state(self, x, evaluation):
        return BFGSState(
            inverse=jnp.eye(x.size, dtype=x.dtype), count=jnp.zeros((), jnp.int32)
        )

    def update(self, state: BFGSState, step, old: Evaluation, new: Evaluation):
        s = step
        h = state.inverse
        y = new.grad - old.grad
        # For the damping's B₀ use the scale H would have after the first update.
        b0 = jnp.where(state.count == 0, jnp.dot(y, y) / jnp.maximum(jnp.dot(s, y), jnp.finfo(s.dtype).tiny), 1.0)
        y, keep = _curvature_pair(s, y, b0, self.safeguard)
        sy = jnp.dot(s, y)
        rho = 1.0 / jnp.where(keep, sy, 1.0)
        h = jnp.where(state.count == 0, (sy / jnp.dot(y, y)) * h, h)
        hy = h @ y
        # (I − ρsyᵀ)H(I − ρysᵀ) + ρssᵀ expanded, with H symmetric.
        new_h = (
            h
            - rho * (jnp.outer(s, hy) + jnp.outer(hy, s))
            + (rho * rho * jnp.dot(y, hy) + rho) * jnp.outer(s, s)
        )
        return BFGSState(
            inverse=jnp.where(keep, new_h, state.inverse),
            count=jnp.where(keep, state.count + 1, state.count),
        )

    def reset(self, state: BFGSState):
        return BFGSState(
            inverse=jnp.eye(state.inverse.shape[0], dtype=state.inverse.dtype),
            count=jnp.zeros((), jnp.int32),
        )

    def is_reset(self, state: BFGSState):
        return state.count == 0

    def solve(self, state: BFGSState, evaluation, linearisation, damping, context):
        # `damping` is always None: Solver rejects inverse models with trust regions.
        return -(state.inverse @ evaluation.grad), jnp.zeros((), jnp.int32)

    def initial_step(self, state: BFGSState, direction):
        return unit_length_first_step(state.count, direction)
