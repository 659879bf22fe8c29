"""What the parts of a solver exchange about one evaluation of the objective.

A curvature model's [`evaluate`][quasinewton.curvature.AbstractCurvature.evaluate]
returns one of these types, always the same one for a given model and problem:
the loop keeps it for the current iterate, hands it to the descent rule's `judge`
and `propose`, to the termination tests (through
[`quasinewton.termination.Progress`][]) and back to the model's `solve`. Every
variant holds the objective f, its gradient ∇f and the user's aux; each adds
what its kind of model keeps, under a name that says what it is. All vectors are
flat (the unknowns raveled into one vector x, see [`quasinewton.problem.Problem`][]).

| variant | adds | kept by |
|---|---|---|
| [`Evaluation`][quasinewton.evaluation.Evaluation] | nothing | L-BFGS, BFGS; Newton with Hessian-vector products |
| [`HessianEvaluation`][quasinewton.evaluation.HessianEvaluation] | the dense Hessian ∇²f | dense Newton |
| [`JacobianEvaluation`][quasinewton.evaluation.JacobianEvaluation] | the residual r and the dense Jacobian J | dense Gauss–Newton (QR) |
| [`NormalEvaluation`][quasinewton.evaluation.NormalEvaluation] | the normal matrix JᵀJ | dense Gauss–Newton on the normal equations |
| [`ResidualEvaluation`][quasinewton.evaluation.ResidualEvaluation] | the residual r | matrix-free Gauss–Newton |

Operators that are functions rather than arrays (the products Jv and Jᵀu of a
matrix-free Jacobian, or Hessian-vector products) are not part of an evaluation:
they are valid only inside one loop iteration, and the model returns them beside
it as its *linearisation*.
"""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Scalar

__all__ = [
    "Evaluation",
    "HessianEvaluation",
    "JacobianEvaluation",
    "NormalEvaluation",
    "ResidualEvaluation",
]


class Evaluation(eqx.Module):
    """The objective and its gradient at a point: what every model needs.

    **Attributes:**

    - `f`: the objective (for least squares, ½‖r‖², see
      [`quasinewton.problem.SumOfSquares`][]).
    - `grad`: its gradient ∇f, flat.
    - `aux`: the user's auxiliary output (`None` without `has_aux=True`).
    """

    f: Scalar
    grad: Float[Array, " n"]
    aux: Any

    def is_finite(self) -> Bool[Array, ""]:
        """Whether f and ∇f are finite.

        Matrices and residuals need no test of their own: f and ∇f are computed
        from them (f = ½‖r‖², ∇f = Jᵀr), so they are finite only if those are (and
        a test over a whole residual or matrix would compile into kernels of its
        own in the loop)."""
        return jnp.isfinite(self.f) & jnp.all(jnp.isfinite(self.grad))


class HessianEvaluation(Evaluation):
    """f, ∇f and the dense Hessian ∇²f.

    **Attributes:** those of [`Evaluation`][quasinewton.evaluation.Evaluation], and

    - `hessian`: ∇²f, n×n.
    """

    hessian: Float[Array, "n n"]


class JacobianEvaluation(Evaluation):
    """f, ∇f, the residual and its dense Jacobian (least squares).

    **Attributes:** those of [`Evaluation`][quasinewton.evaluation.Evaluation], and

    - `residual`: r, the flat residual vector (m entries).
    - `jacobian`: J = ∂r/∂x, m×n.
    """

    residual: Float[Array, " m"]
    jacobian: Float[Array, "m n"]


class NormalEvaluation(Evaluation):
    """f, ∇f = Jᵀr and the normal matrix JᵀJ (least squares), without J itself.

    **Attributes:** those of [`Evaluation`][quasinewton.evaluation.Evaluation], and

    - `normal`: JᵀJ, n×n: the Gauss–Newton matrix.
    """

    normal: Float[Array, "n n"]


class ResidualEvaluation(Evaluation):
    """f, ∇f and the residual (least squares), with the Jacobian only as the
    products of the model's linearisation.

    **Attributes:** those of [`Evaluation`][quasinewton.evaluation.Evaluation], and

    - `residual`: r, the flat residual vector (m entries).
    """

    residual: Float[Array, " m"]
