"""Forcing terms: how accurately an iterative solver solves each Newton system."""

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Scalar

from .._misc import as_float, check_real
from ..evaluation import Evaluation


class AbstractForcing(eqx.Module):
    """Chooses the relative residual tolerance η of the inner linear solve, so that
    ‖(B + D)p + ∇f‖ ≤ η‖∇f‖ (an inexact Newton method; Dembo, Eisenstat & Steihaug,
    1982)."""

    @abc.abstractmethod
    def __call__(self, evaluation: Evaluation, state: Any) -> tuple[Scalar, Any]:
        """**Returns:** `(η, new_state)` for the iterate whose evaluation is given;
        `state` is `None` at the start."""


class ConstantForcing(AbstractForcing):
    """A fixed relative tolerance η for every inner solve.

    **Arguments:**

    - `rtol`: η; small values make the inner solve nearly exact (a Newton method),
      large ones cheap and inexact.
    """

    rtol: float = eqx.field(default=1e-2, converter=as_float)

    def __check_init__(self):
        check_real("rtol", self.rtol, high=1.0, open_high=True)

    def __call__(self, evaluation, state):
        return jnp.asarray(self.rtol, evaluation.f.dtype), None


class EisenstatWalker(AbstractForcing):
    """Eisenstat & Walker's (1996) choice 2: η = γ(‖∇fₖ‖/‖∇fₖ₋₁‖)^ω.

    Loose solves far from the solution, tight ones near it, so superlinear
    convergence is kept without oversolving. Safeguarded as in the paper: if
    γηₖ₋₁^ω > 0.1 then η ≥ γηₖ₋₁^ω, and η ∈ [`min_rtol`, `max_rtol`].

    **Arguments:**

    - `gamma`: γ, 0 < γ ≤ 1.
    - `exponent`: ω, 1 < ω ≤ 2.
    - `initial_rtol`: η₀.
    - `min_rtol`, `max_rtol`: the range η is kept in.
    """

    gamma: float = eqx.field(default=0.9, converter=as_float)
    exponent: float = eqx.field(default=2.0, converter=as_float)
    initial_rtol: float = eqx.field(default=0.5, converter=as_float)
    min_rtol: float = eqx.field(default=1e-10, converter=as_float)
    max_rtol: float = eqx.field(default=0.9, converter=as_float)

    def __check_init__(self):
        check_real("gamma", self.gamma, high=1.0, open_low=True)
        check_real("exponent", self.exponent, low=1.0, high=2.0, open_low=True)
        for name in ("initial_rtol", "min_rtol", "max_rtol"):
            check_real(name, getattr(self, name), high=1.0, open_high=True)
        traced = any(
            isinstance(getattr(self, name), jax.core.Tracer)
            for name in ("min_rtol", "max_rtol")
        )
        if not traced and not self.min_rtol <= self.max_rtol:
            raise ValueError(
                f"Need min_rtol <= max_rtol, got {self.min_rtol} and {self.max_rtol}."
            )

    def __call__(self, evaluation, state):
        dtype = evaluation.f.dtype
        gnorm = jnp.linalg.norm(evaluation.grad)
        if state is None:
            eta = jnp.asarray(self.initial_rtol, dtype)
            return eta, (gnorm, eta)
        prev_gnorm, prev_eta = state
        # Before the first iterate is known the loop passes a nan norm.
        first = ~jnp.isfinite(prev_gnorm)
        ratio = gnorm / jnp.where(prev_gnorm > 0, prev_gnorm, 1.0)
        eta = self.gamma * ratio**self.exponent
        guard = self.gamma * prev_eta**self.exponent
        eta = jnp.where(guard > 0.1, jnp.maximum(eta, guard), eta)
        eta = jnp.clip(eta, self.min_rtol, self.max_rtol).astype(dtype)
        # A rejected trial leaves the iterate unchanged: keep the previous η.
        moved = gnorm != prev_gnorm
        eta = jnp.where(moved, eta, prev_eta)
        eta = jnp.where(first, jnp.asarray(self.initial_rtol, dtype), eta)
        return eta, (gnorm, eta)
