"""The interface every descent rule implements."""

import abc
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Scalar

from ..curvature.model import Model
from ..evaluation import Evaluation


class AbstractDescent(eqx.Module):
    """A globalisation rule: decides whether a trial point is accepted and where the
    next trial point is.

    Each loop iteration evaluates the objective at one trial point, then calls
    `judge` (accept or not, and whether the rule has run out of options), then
    `propose` (the next trial point). Line-search trials and rejected trust-region
    steps are therefore iterations of the single loop, not nested loops.

    Subclasses declare two class flags:

    - `solves_every_iteration`: `True` if `propose` solves the curvature model at
      every iteration (trust regions), `False` if only when a new search starts
      (line searches).
    - `needs_hessian`: `True` if the rule needs the model's Hessian approximation
      B (damped solves B + D, the curvature pᵀBp of a predicted reduction), which
      inverse models do not give
      (`AbstractCurvature.has_hessian`); [`quasinewton.Solver`][] refuses that
      pairing.

    Trust-region rules judge trials with the shared
    [`quasinewton.descent.ratio_test`][] and adapt their region with
    [`quasinewton.descent.damping_update`][] or
    [`quasinewton.descent.radius_update`][].
    """

    solves_every_iteration: eqx.AbstractClassVar[bool]
    needs_hessian: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def init_state(self, x: Float[Array, " n"], evaluation: Evaluation) -> Any:
        """The rule's state before the first proposal."""

    @abc.abstractmethod
    def judge(
        self,
        state: Any,
        x: Float[Array, " n"],
        current: Evaluation,
        trial: Evaluation,
        trial_finite: Bool[Array, ""],
        direction: Float[Array, " n"],
    ) -> tuple[Bool[Array, ""], Bool[Array, ""], Any]:
        """Judge the trial point made from the iterate `x` (whose evaluation is
        `current`) along `direction`.

        **Returns:** `(accept, failed, state)`; `failed` means the rule can find no
        acceptable point along its current model."""

    def full_step(self, state: Any) -> Bool[Array, ""]:
        """Whether the trial judged from `state` is the model's full step (for a line
        search, the first trial of the search). Only full steps may end a solve by
        the step test: a shortened step reflects a poor model, not convergence."""
        del state
        return jnp.array(True)

    def at_precision_floor(self, state: Any) -> Bool[Array, ""]:
        """Whether a failure of the rule is explained by floating point: the
        decrease its model predicted is below the rounding error of f."""
        del state
        return jnp.array(False)

    def undamped_decrease(self, state: Any) -> Scalar | float:
        """The reduction the model predicted for the trial judged from `state` if
        that trial was the model's own minimiser (a trust region whose damping or
        radius did not shape the step) of a model without quasi-Newton memory,
        else +inf.

        At a precision floor such a prediction measures what is left to gain: when
        it is within the tolerances the iterate is stationary for the model,
        however little the gradient has fallen from the start (a start already
        close to a minimiser, a model that converges linearly). A damped step's
        prediction says nothing of the kind, since a large damping makes any
        prediction small."""
        del state
        return float("inf")

    @abc.abstractmethod
    def propose(
        self,
        state: Any,
        x: Float[Array, " n"],
        evaluation: Evaluation,
        model: Model,
        new_search: Bool[Array, ""],
        direction: Float[Array, " n"],
    ) -> tuple[Float[Array, " n"], Float[Array, " n"], Any, Int[Array, ""]]:
        """The next trial point from the current iterate `x`.

        `model` is the curvature model at `x` (the rule sees it only through
        [`quasinewton.curvature.Model`][]'s methods); `new_search` is true
        after an accepted step or a restart; `direction` is the current search
        direction (or last step). **Returns:**
        `(trial_x, direction, state, num_linear_steps)`.

        A rule with `solves_every_iteration = False` may use `model` only when
        `new_search` is true: after a rejected trial the loop does not
        re-linearise a model that needs a linearisation
        (`AbstractCurvature.needs_linearisation`), so its products would be those
        of the rejected trial. Such a rule keeps what it needs of the model in its
        state (as [`quasinewton.descent.Dogleg`][] does).
        """
