"""The entry points: `minimise` and `least_squares`."""

import functools
import operator
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import numpy as np
from jaxtyping import PyTree

from ._adjoint import ImplicitAdjoint
from ._covariance import jacobian_rank
from ._host import can_run_on_host, run_on_host, solving
from ._loop import run
from ._misc import throw_if_failed
from ._solution import Solution
from .loss import AbstractLoss
from .problem import Kind, concrete_nonfinite, make_problem
from .solvers import Solver

#: The largest `max_steps`: the loop counts steps (and evaluations) in int32.
MAX_STEPS = 2**31 - 2

#: The largest `max_steps` with `history=True`, whose buffer holds `max_steps + 1`
#: values of f (2**24 of them take 128 MiB in float64).
MAX_HISTORY_STEPS = 2**24 - 1


def _check_max_steps(max_steps, history: bool) -> int:
    """`max_steps` as a Python int (a NumPy integer is accepted), or a clear error."""
    if isinstance(max_steps, (bool, np.bool_)):
        raise TypeError(f"`max_steps` must be an integer, got the bool {max_steps!r}.")
    try:
        max_steps = operator.index(max_steps)
    except TypeError:
        raise TypeError(
            f"`max_steps` must be an integer, got {max_steps!r} "
            f"({type(max_steps).__name__})."
        ) from None
    if max_steps < 0:
        raise ValueError(f"`max_steps` must be non-negative, got {max_steps}.")
    if max_steps > MAX_STEPS:
        raise ValueError(
            f"`max_steps` is at most {MAX_STEPS} (2**31 - 2), got {max_steps}: the "
            "solver counts steps in int32, which would wrap around under `jax.jit`."
        )
    if history and max_steps > MAX_HISTORY_STEPS:
        raise ValueError(
            f"With `history=True`, `max_steps` is at most {MAX_HISTORY_STEPS} "
            f"(2**24 - 1), got {max_steps}: the history buffer holds max_steps + 1 "
            "values of f, allocated in full before the first step. Lower `max_steps` "
            "or pass history=False."
        )
    return max_steps


def _solve(
    fn: Callable,
    solver: Solver,
    y0: PyTree,
    args: Any,
    kind: Kind,
    has_aux: bool,
    max_steps: int | np.integer,
    throw: bool,
    history: bool,
    adjoint: ImplicitAdjoint,
    autodiff_mode: Literal["auto", "forward", "reverse"] = "auto",
    sigma: PyTree | None = None,
    loss: AbstractLoss | None = None,
    rank: bool = False,
) -> Solution:
    name = "minimise" if kind == "scalar" else "least_squares"
    if not isinstance(solver, Solver):
        raise TypeError(
            f"`{name}` needs a qn.Solver (e.g. qn.LBFGS()); got {type(solver).__name__}."
        )
    max_steps = _check_max_steps(max_steps, history)
    if kind == "scalar" and solver.curvature.needs_residual:
        raise ValueError(
            f"{type(solver.curvature).__name__} models a sum of squares; use "
            "`least_squares` with it, or a scalar model such as qn.curvature.LBFGS."
        )
    problem, x0, y0 = make_problem(
        fn, y0, args, kind, has_aux, autodiff_mode, sigma, loss
    )
    if throw and concrete_nonfinite(y0):
        raise ValueError(
            "`y0` contains nan or inf. Start from a finite point (or pass throw=False "
            "to get a Solution with result RESULTS.nonfinite)."
        )
    solver = eqx.tree_at(
        lambda s: s.curvature, solver, solver.curvature.specialise(problem, x0)
    )
    # The driver: called from Python (nothing traced, so nothing to differentiate)
    # the loop runs in Python around compiled steps, whose compiled evaluations of
    # the objective are cached, keyed where need be by the function object itself
    # (see `_host._key`); otherwise it is one compiled loop, differentiated by the
    # adjoint.
    with solving(fn, args):
        if can_run_on_host(problem, solver, x0):
            state = run_on_host(problem, x0, solver, max_steps, history)
        else:
            driver = functools.partial(run, max_steps=max_steps, history=history)
            state = adjoint.solve(driver, problem, x0, solver)
    result, x = state.result, state.x
    if throw:
        result, x = throw_if_failed(result, x)
    stats = {
        "num_steps": state.num_steps,
        "num_accepted_steps": state.num_accepted_steps,
        "num_fn_evals": state.num_fn_evals,
        "num_linear_steps": state.num_linear_steps,
        "value": state.evaluation.f,
        "gradient_norm": state.grad_norm,
        "termination": state.termination,
    }
    if kind == "residual":
        stats["num_jac_evals"] = state.num_jac_evals
        stats["num_residuals"] = problem.residual_size(x0)
        if rank:
            stats["rank"] = jacobian_rank(
                problem, state.evaluation, state.x, stats["num_residuals"]
            )
    if history:
        stats["loss_history"] = state.history
    return Solution(
        value=problem.unravel(x),
        result=result,
        aux=state.evaluation.aux,
        stats=stats,
        state=state,
        objective=problem.objective if kind == "residual" else None,
        method=", ".join(
            type(part).__name__
            for part in (solver.curvature, solver.descent, solver.linear_solver)
            if part is not None
        ),
    )


def minimise(
    fn: Callable,
    solver: Solver,
    y0: PyTree,
    args: Any = None,
    *,
    has_aux: bool = False,
    max_steps: int | np.integer = 256,
    throw: bool = True,
    history: bool = False,
    adjoint: ImplicitAdjoint = ImplicitAdjoint(),
    autodiff_mode: Literal["auto", "forward", "reverse"] = "auto",
) -> Solution:
    """Minimise a scalar function.

    **Arguments:**

    - `fn`: the objective `fn(y, args) -> scalar` (or `(scalar, aux)` with
      `has_aux=True`), with `y` of the structure of `y0`.
    - `solver`: a [`quasinewton.Solver`][], e.g. [`quasinewton.LBFGS`][]`()`.
    - `y0`: the start, any pytree of floating-point arrays.
    - `args`: passed to `fn`; derivatives of the solution with respect to `args`
      (and to arrays `fn` closes over) are available through `jax.grad` & co.
    - `has_aux`: whether `fn` returns auxiliary output.
    - `max_steps`: the most loop iterations; each evaluates `fn` at one trial point.
      An integer (NumPy integers too) of at most 2**31 − 2 (steps are counted in
      int32), and with `history=True` at most 2**24 − 1.
    - `throw`: raise an error if the solve fails. Only an unbatched solve raises:
      under `jax.vmap` nothing is raised and each problem reports its own
      `Solution.result`, so one bad problem never aborts the batch.
    - `history`: record the objective after every iteration in
      `Solution.stats["loss_history"]` (no iterates are kept), a buffer of
      `max_steps + 1` values allocated at the start.
    - `adjoint`: how derivatives through the solve are computed.
    - `autodiff_mode`: how `fn` is differentiated. `"auto"` (default): the
      gradient by reverse mode (one forward and one reverse pass, whatever n);
      `qn.Newton`'s Hessian forward over reverse. `"reverse"`: reverse mode only,
      for a `fn` that supports only `jax.vjp` (a `jax.custom_vjp` simulator, an
      ODE adjoint); Hessians are then reverse over reverse. `"forward"`: forward
      mode only, for a `fn` that supports only `jax.jvp` (a `jax.custom_jvp` rule
      that is not transposable, `lax.while_loop`, diffrax's `ForwardMode`): the
      gradient is `jax.jacfwd`, n forward passes per evaluation (batched into one
      pass of n tangents, so a callback must support `jax.vmap`), worth it only
      for small n. The adjoint ([`quasinewton.ImplicitAdjoint`][]) takes its
      second derivatives in the same mode; `jax.grad` through the solve still
      needs a transposable `fn`, while `jax.jvp`/`jax.jacfwd` through a
      forward-mode solve does not.

    **Returns:** a [`quasinewton.Solution`][].

    Called from Python (not under `jax.jit`, `jax.vmap` or `jax.grad`), the loop
    runs in Python around two compiled functions, the evaluation of `fn` and the
    solver's step, and the step is compiled once per solver and size for all
    objectives; under a transformation the whole solve is one compiled loop. Both
    take the same steps ([Concepts](../concepts.md#compiled-once-or-driven-from-python)).

    **Raises:** at trace time, `TypeError` or `ValueError` for a non-scalar or
    non-floating objective, a `y0` with integer, complex or half-precision
    (float16, bfloat16) leaves or with no elements, a malformed aux pair, a
    `max_steps` out of range, an unknown `autodiff_mode`, or (with `throw=True`) a
    concrete `y0` holding nan or inf. A `fn` that cannot be differentiated in the
    chosen mode raises JAX's error with a note naming the `autodiff_mode` to pass.
    Python scalars in `args` are closed over, not traced: `fn` may branch on them,
    and a nan among them gives a nan objective (`RESULTS.nonfinite`).
    """
    return _solve(
        fn,
        solver,
        y0,
        args,
        "scalar",
        has_aux,
        max_steps,
        throw,
        history,
        adjoint,
        autodiff_mode,
    )


def least_squares(
    fn: Callable,
    solver: Solver,
    y0: PyTree,
    args: Any = None,
    *,
    has_aux: bool = False,
    max_steps: int | np.integer = 256,
    throw: bool = True,
    history: bool = False,
    adjoint: ImplicitAdjoint = ImplicitAdjoint(),
    autodiff_mode: Literal["auto", "forward", "reverse"] = "auto",
    sigma: PyTree | None = None,
    loss: AbstractLoss | None = None,
    rank: bool = False,
) -> Solution:
    """Minimise ½‖r(y)‖², half the sum of squares of the residuals `fn(y, args)`.

    **Arguments:**

    - `fn`: the residuals `fn(y, args) -> pytree of arrays` (or `(residuals, aux)`
      with `has_aux=True`). The residual vector r is all the pytree's leaves,
      flattened and concatenated. One shape is refused: a tuple of two elements
      returned without `has_aux=True` raises a `ValueError`, as it is what `fn`
      returns with aux, and taking the aux for residuals would fit it too and
      report success. Return groups of residuals as a list, a dict, a tuple of
      another length or one concatenated array.
    - `solver`: a [`quasinewton.Solver`][]: a Gauss–Newton model
      ([`quasinewton.LevenbergMarquardt`][], [`quasinewton.GaussNewton`][]) or any
      minimiser ([`quasinewton.LBFGS`][]), which then minimises ½‖r‖².
    - `autodiff_mode`: how the residuals are differentiated. `"auto"` (default):
      a dense Jacobian by forward mode when m ≥ n, else reverse (`jax.jacfwd` /
      `jax.jacrev`); matrix-free, one `jax.linearize` per evaluation with Jᵀu by
      its transpose; the gradient Jᵀr of other minimisers (L-BFGS) by one
      `jax.vjp`. `"reverse"`: only `jax.vjp` is used, for residuals with a
      `jax.custom_vjp`: dense J by `jax.jacrev` (m reverse passes), matrix-free
      Jᵀu from one `jax.vjp` and Jv by its transpose (`jax.linear_transpose`;
      the `custom_vjp`'s backward rule must then be linear JAX code, else a
      `TypeError` is raised at trace time). `"forward"`: only `jax.jvp` is used:
      dense J by `jax.jacfwd` (n forward passes, also for the gradient Jᵀr of
      L-BFGS & co.), matrix-free Jv by `jax.linearize` and Jᵀu by its
      transpose (a jvp that cannot be transposed raises a `TypeError` at trace
      time: pass `materialise=True`).
    - `sigma`: the residuals' uncertainties, which whiten them to z = r/σ before
      the sum of squares (or the loss): a scalar (one standard deviation for all
      residuals), a pytree like the residuals whose leaves broadcast to theirs
      (per-residual standard deviations, > 0), or, for residuals of one vector of
      m entries, an m×m covariance matrix Σ (positive definite; z = L⁻¹r with
      Σ = LLᵀ). `None` (default): z = r.
    - `loss`: a robust loss from [`quasinewton.loss`][], e.g.
      `qn.loss.Huber(scale=0.1)`: then ½ Σᵢ s² ρ(zᵢ²/s²) is minimised (SciPy's
      `loss=`, with s its `f_scale`), so that residuals well beyond the scale s
      count less than their square (see [`quasinewton.loss.AbstractLoss`][]).
      Every solver takes it; Gauss–Newton models use the corrected linear model
      of the residuals. `None` (default): ½‖z‖².
    - `rank`: `True` adds `stats["rank"]`, the numerical rank of J̃ (the Jacobian
      of the weighted, loss-corrected residuals) at the solution, by the rule of
      [`quasinewton.covariance`][]: below n, some unknowns are not determined by
      the data (see `qn.covariance(sol).determined` for which). It costs one
      more small factorisation per fit (the singular values of J̃, or the
      eigenvalues of J̃ᵀJ̃ on the normal-equations path), a few percent of a
      batched solve of small fits, and is opt-in so that solves that do not
      read it pay nothing; models that keep no J̃ (L-BFGS, matrix-free CG)
      form it densely at the solution.
    - the other arguments as for [`quasinewton.minimise`][].

    **Returns:** a [`quasinewton.Solution`][] whose `stats["value"]` is the
    objective minimised (½‖r‖², or with `sigma` and `loss` the whitened and robust
    cost) and whose `stats` also count `num_jac_evals`.
    """
    return _solve(
        fn,
        solver,
        y0,
        args,
        "residual",
        has_aux,
        max_steps,
        throw,
        history,
        adjoint,
        autodiff_mode,
        sigma,
        loss,
        rank,
    )
