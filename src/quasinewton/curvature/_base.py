"""The interface every curvature model implements."""

import abc
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Scalar

from ..evaluation import Evaluation
from ..linear.context import LinearSolveContext
from ..problem import Problem


class AbstractCurvature(eqx.Module):
    """A local quadratic model of the objective: the "curvature" part of a solver.

    A model either applies an inverse Hessian approximation H directly (L-BFGS,
    BFGS), so that a step is `−H∇f`, or gives a Hessian approximation B
    (Gauss–Newton, Newton) and solves `(B + D) p = −∇f` with a Lineax solver, D a
    diagonal damping from a trust-region rule.

    Models keep their memory in a state of arrays, updated after every accepted
    step; the loop calls `evaluate` once per iteration to get what the model needs
    at a trial point, as an [`Evaluation`][quasinewton.evaluation.Evaluation] (of
    the variant the model keeps) and a linearisation.

    Subclasses declare what they can do as class variables, each the answer to
    one question:

    - `has_hessian`: does the model give B? Then `solve` takes a damping, and
      `quadratic` (pᵀBp) and `diagonal` (diag B) are defined, which trust-region
      rules need (they refuse models without). `False` for inverse models.
    - `solves_linear_system`: does `solve` run a linear solve, on which a
      preconditioner and a forcing term act? ([`quasinewton.Solver`][] refuses
      them for models that do not.)
    - `padding_is_exact`: do unknowns appended at 0 with zero gradient stay at 0
      and leave every step of the others unchanged? Then the loop driven from
      Python may compile one step for problems of nearby sizes.
    - `needs_linearisation`: does `solve` need the linearisation `evaluate`
      returns (functions, valid only inside one iteration)? Then the loop
      re-evaluates the model at the iterate after a rejected trust-region trial,
      and runs compiled only (a linearisation cannot leave a compiled function).
    - `needs_residual`: does the model need residuals (a model of a sum of
      squares, such as Gauss–Newton)? `minimise` refuses it.
    """

    has_hessian: eqx.AbstractClassVar[bool]
    solves_linear_system: eqx.AbstractClassVar[bool]
    padding_is_exact: ClassVar[bool] = False
    needs_linearisation: ClassVar[bool] = False
    needs_residual: ClassVar[bool] = False

    def evaluate(
        self, problem: Problem, x: Float[Array, " n"]
    ) -> tuple[Evaluation, Any, int, int]:
        """Evaluate the objective at `x`, through `problem` only.

        **Returns:** `(evaluation, linearisation, num_fn_evals, num_jac_evals)`:
        an [`Evaluation`][quasinewton.evaluation.Evaluation] (the same variant at
        every point), model-specific data valid only inside this iteration (such as
        the products of a matrix-free Jacobian, or `None`), and what it cost. The
        default is f and ∇f from `problem.value_and_grad`.
        """
        return problem.value_and_grad(x), None, 1, 0

    def specialise(
        self, problem: Problem, x: Float[Array, " n"]
    ) -> "AbstractCurvature":
        """This model with any `"auto"` choice resolved for the problem's shapes.

        Called once per solve, before the loop. Implementations change only the
        fields they resolve (with `dataclasses.replace`), so that a subclass and
        its own fields survive."""
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

    def is_reset(self, state: Any) -> Bool[Array, ""]:
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

    def quadratic(
        self,
        state: Any,
        evaluation: Evaluation,
        linearisation: Any,
        p: Float[Array, " n"],
    ) -> Scalar:
        """pᵀBp: the curvature of the model along p (for predicted reductions)."""
        raise NotImplementedError(
            f"{type(self).__name__} gives no Hessian approximation B; it cannot be "
            "used with a trust-region descent rule."
        )

    def diagonal(
        self, state: Any, evaluation: Evaluation, linearisation: Any
    ) -> Float[Array, " n"]:
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

    has_hessian: ClassVar[bool] = True
    solves_linear_system: ClassVar[bool] = True

    @property
    def needs_linearisation(self) -> bool:  # pyright: ignore
        if self.materialise == "auto":
            raise RuntimeError(
                f"{type(self).__name__}(materialise='auto') was not specialised."
            )
        return not self.materialise
