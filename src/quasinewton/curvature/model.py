"""`Model`: a curvature model bound to one point, as a descent rule uses it."""

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Scalar

from ..evaluation import Evaluation
from ..linear.context import LinearSolveContext
from ._base import AbstractCurvature


class Model:
    """A curvature model at the current iterate, with its linear solve.

    Descent rules reach the model only through these methods: `step` for a
    (damped) step, `initial_step` for a line search's first trial, `quadratic`
    and `diagonal` for predicted reductions and scaling, `is_reset` for whether a
    failed search could be retried from a cleared memory. Lives only inside one
    loop iteration (it may hold a linearisation, which is not an array).

    **Arguments:**

    - `curvature`: the curvature part.
    - `state`: its state at the iterate.
    - `evaluation`: the evaluation at the iterate.
    - `linearisation`: what `curvature.evaluate` returned beside it.
    - `context`: how linear systems are solved this iteration.
    """

    def __init__(
        self,
        curvature: AbstractCurvature,
        state: Any,
        evaluation: Evaluation,
        linearisation: Any,
        context: LinearSolveContext,
    ):
        self.curvature = curvature
        self.state = state
        self.evaluation = evaluation
        self.linearisation = linearisation
        self.context = context

    def step(
        self, damping: Float[Array, " n"] | None = None
    ) -> tuple[Float[Array, " n"], Int[Array, ""]]:
        """The model's step `−H∇f`, or the solution p of `(B + diag(damping)) p = −∇f`,
        and the number of iterative linear-solver steps spent."""
        return self.curvature.solve(
            self.state, self.evaluation, self.linearisation, damping, self.context
        )

    def initial_step(self, direction: Float[Array, " n"]) -> Scalar:
        """The first step length a line search should try along `direction`."""
        return self.curvature.initial_step(self.state, direction)

    @property
    def solves_exactly(self) -> bool:
        """Whether `step` solves its system directly (see
        `AbstractCurvature.solves_exactly`)."""
        return self.curvature.solves_exactly(self.context)

    def is_reset(self) -> Bool[Array, ""]:
        """Whether the model holds no memory that a reset could clear (always, for
        memoryless models such as Gauss–Newton)."""
        return self.curvature.is_reset(self.state)

    def quadratic(self, p: Float[Array, " n"]) -> Scalar:
        """pᵀBp, the model's curvature along p."""
        return self.curvature.quadratic(
            self.state, self.evaluation, self.linearisation, p
        )

    def diagonal(self) -> Float[Array, " n"]:
        """diag(B), for Marquardt scaling and Jacobi preconditioning."""
        return self.curvature.diagonal(self.state, self.evaluation, self.linearisation)

    def largest_diagonal(self) -> Scalar:
        """max diag(B): exactly when the model keeps B or J as a matrix, else
        estimated by trace(B)/n = E[zᵀBz]/n from one Rademacher probe z (one
        product, where diag(B) would cost n). A positive finite number (1 where B
        gives none), the scale of B for rules that need one."""
        grad = self.evaluation.grad
        if self.curvature.needs_linearisation:
            z = jax.random.rademacher(jax.random.PRNGKey(0), grad.shape, grad.dtype)
            estimate = self.quadratic(z) / grad.size
        else:
            estimate = jnp.max(self.diagonal())
        ok = jnp.isfinite(estimate) & (estimate > 0)
        return jnp.where(ok, estimate, 1.0) + jnp.finfo(grad.dtype).tiny
