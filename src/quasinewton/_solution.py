"""The result of a solve: `Solution`, the `RESULTS` codes and the `Termination` reasons."""

from typing import Any

import equinox as eqx
from jaxtyping import Array, ArrayLike, PyTree


class RESULTS(eqx.Enumeration):
    """How a solve ended.

    Compare with `==`, e.g. `sol.result == qn.RESULTS.successful`; under `jax.vmap`
    the comparison is per problem. `qn.RESULTS[sol.result]` gives the message.
    """

    successful = ""
    max_steps_reached = (
        "The maximum number of steps was reached before the solve converged. "
        "Increase `max_steps`, loosen `rtol`/`atol`, or check the problem."
    )
    nonfinite = (
        "A non-finite value (nan or inf) was met: the objective or its derivative "
        "was not finite at the start, or no finite trial point could be found. "
        "`Solution.value` holds the last finite iterate."
    )
    search_failed = (
        "The descent rule could find no point better than the current one (the line "
        "search failed from a steepest-descent direction, or the trust region "
        "shrank to nothing) before the tolerances were met. This usually means the "
        "tolerances are below what the floating-point precision allows, or the "
        "derivative is wrong."
    )


class Termination(eqx.Enumeration):
    """Which test stopped a successful solve, in `Solution.stats["termination"]`.

    See [`quasinewton.Solver`][] for the tests themselves.
    """

    none = "The solve has not converged."
    gradient = "The gradient fell by a factor rtol from the start (or below atol)."
    step = (
        "The last full step changed the objective by at most rtol times the size of "
        "the objective and every coordinate by at most rtol·max|y| (plus atol), near "
        "a stationary point."
    )
    precision = (
        "No further decrease is possible in floating point (the model predicted a "
        "decrease below the rounding of f and none was found), and the iterate is "
        "stationary to √rtol: the tolerances asked for more than the arithmetic "
        "allows and the iterate is as good as the precision allows."
    )
    decrease = (
        "(L-BFGS, BFGS) the last full step gained at most rtol times the size of the "
        "objective, and a step of its length down the gradient could gain at most a "
        "tenth of that."
    )


class Solution(eqx.Module):
    """The outcome of [`quasinewton.minimise`][] or [`quasinewton.least_squares`][].

    Every field holds arrays only, so a whole `Solution` may be returned from
    `jax.jit` and `jax.vmap`; under `vmap` each field gains a batch axis.

    **Attributes:**

    - `value`: the solution, a pytree with the structure of `y0`.
    - `result`: a [`quasinewton.RESULTS`][] member saying whether the solve succeeded.
    - `aux`: the auxiliary output of `fn` at `value` when `has_aux=True`, else `None`.
    - `stats`: a dict of counters and diagnostics:
        - `num_steps`: loop iterations run; each evaluates the objective at one
          trial point.
        - `num_accepted_steps`: trial points accepted as the new iterate (the
          algorithm's iterations, comparable with SciPy's `nit`).
        - `num_fn_evals`: evaluations of `fn` (the start point included): how
          many times `fn` ran, on both paths. Under `jax.jit` this includes the
          re-linearisations after rejected trust-region trials of matrix-free
          models; called from Python, the loop evaluates ahead of its test for
          whether to go on, and the one evaluation it queues after the last
          iteration does not run `fn` and is not counted. (Each evaluation runs
          `fn` once, its derivatives included; a Python side effect in `fn`
          happens only when it is traced.)
        - `num_jac_evals` (least squares only): Jacobians formed or linearisations
          made, counted as `num_fn_evals`.
        - `num_residuals` (least squares only): m, the number of residuals.
        - `num_linear_steps`: iterations spent in iterative linear solves (CG).
        - `value`: the objective at `value` (for least squares, ½‖r‖²).
        - `gradient_norm`: the max-norm of the gradient at `value`.
        - `termination`: a [`quasinewton.Termination`][] member, the test that
          stopped a successful solve.
        - `loss_history` (only with `history=True`): the objective at the iterate
          after each loop iteration, padded with `nan` after the last.
    - `state`: the final state of the solver's loop (arrays only).
    - `objective`: for least squares, the objective minimised (its `sigma` and
      `loss`, a [`quasinewton.problem.SumOfSquares`][]), which
      [`quasinewton.covariance`][] reads; `None` for `minimise`.
    """

    value: PyTree[Array]
    result: RESULTS
    aux: Any
    stats: dict[str, PyTree[ArrayLike]]
    state: Any
    objective: Any = None
