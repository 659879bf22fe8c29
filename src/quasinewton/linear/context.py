"""`LinearSolveContext`: how the loop wants a linear system solved this iteration."""

import equinox as eqx
import lineax as lx
from jaxtyping import Array, Int, Scalar

from .preconditioners import AbstractPreconditioner


class LinearSolveContext(eqx.Module):
    """How the loop wants a linear system solved at this iteration.

    **Attributes:**

    - `solver`: the Lineax solver of the composed [`quasinewton.Solver`][], or `None`.
    - `preconditioner`: a preconditioner part, or `None`.
    - `rtol`: the relative residual tolerance for iterative solvers this iteration
      (from the forcing term), or `None` to use the solver's own.
    - `step`: the loop iteration, to seed random probes.
    """

    solver: lx.AbstractLinearSolver | None
    preconditioner: AbstractPreconditioner | None
    rtol: Scalar | None
    step: Int[Array, ""] | int = 0
