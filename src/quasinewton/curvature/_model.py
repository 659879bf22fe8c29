"""`Model`: a curvature model bound to one point, as a descent rule uses it."""

from typing import Any

from .._problem import Evaluation
from ._base import AbstractCurvature, LinearSolveContext


class Model:
    """A curvature model at the current iterate, with its linear solve.

    Descent rules call `solve` for a (damped) step and `initial_step` for a line
    search's first trial; they never see the model's internals. Lives only inside
    one loop iteration (it may hold a linearisation, which is not an array).
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

    def step(self, damping=None):
        """The model's step `−H∇f`, or the solution p of `(B + diag(damping)) p = −∇f`,
        and the number of iterative linear-solver steps spent."""
        return self.curvature.solve(
            self.state, self.evaluation, self.linearisation, damping, self.context
        )

    def initial_step(self, direction):
        """The first step length a line search should try along `direction`."""
        return self.curvature.initial_step(self.state, direction)

    @property
    def solves_exactly(self) -> bool:
        """Whether `step` solves its system directly (see `AbstractCurvature.solves_exactly`)."""
        return self.curvature.solves_exactly(self.context)

    def quadratic(self, p):
        """pᵀBp, the model's curvature along p."""
        return self.curvature.quadratic(
            self.state, self.evaluation, self.linearisation, p
        )

    def diagonal(self):
        """diag(B), for Marquardt scaling and Jacobi preconditioning."""
        return self.curvature.diagonal(self.state, self.evaluation, self.linearisation)
