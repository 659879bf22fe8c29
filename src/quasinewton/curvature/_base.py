"""The interface every curvature model implements."""

import abc
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Scalar

from .._problem import Evaluation, Problem


class LinearSolveContext(eqx.Module):
    """How the loop wants a linear system solved at this iteration.

    **Attributes:**

    - `solver`: the Lineax solver of the composed [`quasinewton.Solver`][], or `None`.
    - `preconditioner`: a preconditioner part, or `None`.
    - `rtol`: the relative residual tolerance for iterative solvers this iteration
      (from the forcing term), or `None` to use the solver's own.
    - `step`: the loop iteration, to seed random probes.
    """

    solver: Any
    preconditioner: Any
    rtol: Scalar | None
    step: Any = None


class AbstractCurvature(eqx.Module):
    """A local quadratic model of the objective: the "curvature" part of a solver.

    A model either gives the inverse Hessian approximation H directly
    (`gives_inverse = True`: L-BFGS, BFGS), so that a step is `−H∇f`, or a
    Hessian approximation B (Gauss–Newton, Newton) handed to a Lineax solve of
    `(B + D) p = −∇f`, where D is a diagonal damping from a trust-region rule.

    Models keep their memory in a state of arrays, updated after every accepted
    step; the loop calls `evaluate` once per iteration to get what the model needs
    at a trial point.

    Subclasses declare three class flags:

    - `gives_inverse`: `True` if `solve` returns −H∇f from an inverse model (no
      damping possible, so trust regions are refused), `False` if it solves with B.
    - `needs_linearisation`: `True` if `solve` needs the linearisation `evaluate`
      returns (a function, valid only inside one iteration); after a rejected
      trust-region trial the loop then re-evaluates the model at the iterate.
    - `needs_residual`: `True` for models of a sum of squares (Gauss–Newton), which
      `minimise` refuses.
    """

    gives_inverse: ClassVar[bool]
    needs_linearisation: ClassVar[bool] = False
    needs_residual: ClassVar[bool] = False

    def evaluate(self, problem: Problem, x: Float[Array, " n"]):
        """Evaluate the objective at `x`.

        **Returns:** `(evaluation, linearisation, num_fn_evals, num_jac_evals)`;
        `linearisation` is model-specific data valid only inside this iteration.
        """
        return problem.value_and_grad(x), None, 1, 0

    def specialise(
        self, problem: Problem, x: Float[Array, " n"]
    ) -> "AbstractCurvature":
        """This model with any `"auto"` choice resolved for the problem's shapes."""
        del problem, x
        return self

    @abc.abstractmethod
    def init_state(self, x: Float[Array, " n"], evaluation: Evaluation) -> Any:
        """The model's state at the start point."""

    def update(
        self,
        state: Any,
        step: Float[Array, " n"],
        old: Evaluation,
        new: Evaluation,
    ) -> Any:
        """The state after an accepted `step` from the point of `old` to that of `new`."""
        return state

    def reset(self, state: Any) -> Any:
        """Forget accumulated curvature (after a failed search)."""
        return state

    def is_reset(self, state: Any):
        """Whether the model holds no accumulated memory that a reset could clear.

        Memoryless models (Gauss–Newton, Newton) are always "reset"."""
        return jnp.array(True)

    @abc.abstractmethod
    def solve(
        self,
        state: Any,
        evaluation: Evaluation,
        linearisation: Any,
        damping: Float[Array, " n"] | None,
        context: LinearSolveContext,
    ) -> tuple[Float[Array, " n"], Array]:
        """The model's step from the current iterate: `p = −H·∇f`, or the solution of
        `(B + diag(damping)) p = −∇f`.

        Solving for −∇f rather than any right-hand side lets a model use its
        structure: Gauss–Newton solves the equivalent least-squares problem
        min ‖[J; √D] p + [r; 0]‖ by QR without forming JᵀJ.

        **Returns:** `(p, num_linear_steps)`, the iterations an iterative solver spent.
        """

    def solves_exactly(self, context: LinearSolveContext) -> bool:
        """Whether `solve` with this context solves `(B + diag(damping)) p = −∇f` by a
        direct factorisation (up to rounding), so that a predicted reduction may use
        the identity pᵀ(B + D)p = −∇fᵀp instead of a product with B. Iterative
        solves stop early and must not (default `False`)."""
        del context
        return False

    def initial_step(self, state: Any, direction: Float[Array, " n"]) -> Scalar:
        """The first trial step length a line search should try along `direction`."""
        return jnp.ones((), direction.dtype)

    def quadratic(self, state: Any, evaluation: Evaluation, linearisation: Any, p):
        """pᵀBp: the curvature of the model along p (for predicted reductions)."""
        raise NotImplementedError(
            f"{type(self).__name__} gives no Hessian approximation B; it cannot be "
            "used with a trust-region descent rule."
        )

    def diagonal(self, state: Any, evaluation: Evaluation, linearisation: Any):
        """diag(B) (exact or estimated), for scaling and Jacobi preconditioning."""
        raise NotImplementedError(
            f"{type(self).__name__} gives no Hessian approximation B, so no diagonal."
        )


def unit_length_first_step(count, direction: Float[Array, " n"]) -> Scalar:
    """1, or a step of length min(1, ‖p‖)/‖p‖ while a quasi-Newton model holds no
    curvature pairs (`count == 0`), since H₀ = I then carries no scale."""
    norm = jnp.linalg.norm(direction)
    first = jnp.minimum(1.0, 1.0 / jnp.where(norm > 0, norm, 1.0))
    return jnp.where(count == 0, first, 1.0).astype(direction.dtype)


class AbstractHessianModel(AbstractCurvature):
    """A model that gives a Hessian approximation B, either kept as a dense matrix
    (`materialise=True`) or applied through a linearisation made once per
    evaluation (`materialise=False`); `"auto"` is resolved by `specialise`."""

    materialise: eqx.AbstractVar[bool | Literal["auto"]]

    gives_inverse: ClassVar[bool] = False

    @property
    def needs_linearisation(self) -> bool:  # pyright: ignore
        if self.materialise == "auto":
            raise RuntimeError(
                f"{type(self).__name__}(materialise='auto') was not specialised."
            )
        return not self.materialise
