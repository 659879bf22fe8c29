"""Dense BFGS: the full inverse Hessian approximation."""

from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..evaluation import Evaluation
from ._base import AbstractCurvature, unit_length_first_step
from .lbfgs import _curvature_pair, start_scaling


class BFGSState(eqx.Module):
    """**Attributes:** `inverse`, the n×n inverse Hessian approximation H; `count`,
    the number of pairs applied since the last reset; `diag`, the diagonal of the
    H₀ it starts from (and returns to on a reset)."""

    inverse: Float[Array, "n n"]
    count: Int[Array, ""]
    diag: Float[Array, " n"]


class BFGS(AbstractCurvature):
    """Dense BFGS inverse Hessian (Nocedal & Wright, 2006, eq. 6.17).

    Hₖ₊₁ = (I − ρsyᵀ) Hₖ (I − ρysᵀ) + ρssᵀ with ρ = 1/sᵀy, starting from H₀ = D and
    rescaled to γD, γ = sᵀy/yᵀDy, before the first update (eq. 6.20 for D = I).
    O(n²) memory and work per step: for n up to a few thousand; use
    [`quasinewton.curvature.LBFGS`][] beyond.

    **Arguments:**

    - `scaling`: D. `"start"` (default): the shape from the sizes of the unknowns at
      the start when they differ by a factor 1000 or more, else I, as for
      [`quasinewton.curvature.LBFGS`][] (see its `scaling`); `"none"`: D = I.
    - `safeguard`: `"skip"` pairs with sᵀy not safely positive (default) or
      `"damp"` them (Powell's damping with B₀ = (γD)⁻¹).
    """

    safeguard: Literal["skip", "damp"] = eqx.field(default="skip", static=True)
    scaling: Literal["start", "none"] = eqx.field(default="start", static=True)

    has_hessian: ClassVar[bool] = False
    solves_linear_system: ClassVar[bool] = False
    padding_is_exact: ClassVar[bool] = True

    def __check_init__(self):
        if self.scaling not in ("start", "none"):
            raise ValueError(
                f"scaling must be 'start' or 'none', got {self.scaling!r}."
            )

    def init_state(self, x, evaluation):
        diag = start_scaling(x) if self.scaling == "start" else jnp.ones_like(x)
        return self._fresh(diag)

    @staticmethod
    def _fresh(diag) -> BFGSState:
        return BFGSState(
            inverse=jnp.diag(diag), count=jnp.zeros((), jnp.int32), diag=diag
        )

    def update(self, state: BFGSState, step, old: Evaluation, new: Evaluation):
        s = step
        h = state.inverse
        y = new.grad - old.grad
        # For the damping's B₀ use (γD)⁻¹, the scale H would have after the first
        # update.
        gamma = jnp.dot(s, y) / jnp.dot(y, state.diag * y)
        gamma = jnp.where(gamma > 0, gamma, 1.0)
        b0 = jnp.where(state.count == 0, 1.0 / (gamma * state.diag), 1.0)
        y, keep = _curvature_pair(s, y, b0, self.safeguard)
        sy = jnp.dot(s, y)
        rho = 1.0 / jnp.where(keep, sy, 1.0)
        h = jnp.where(state.count == 0, (sy / jnp.dot(y, state.diag * y)) * h, h)
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
            diag=state.diag,
        )

    def reset(self, state: BFGSState):
        return self._fresh(state.diag)

    def is_reset(self, state: BFGSState):
        return state.count == 0

    def solve(self, state: BFGSState, evaluation, linearisation, damping, context):
        # `damping` is always None: Solver rejects inverse models with trust regions.
        return -(state.inverse @ evaluation.grad), jnp.zeros((), jnp.int32)

    def initial_step(self, state: BFGSState, direction):
        return unit_length_first_step(state.count, direction)
