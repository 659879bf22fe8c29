"""The one loop that drives every solver: one objective evaluation per iteration."""

import functools
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Scalar

from ._misc import tree_where
from ._solution import RESULTS, Termination
from .curvature.model import Model
from .evaluation import Evaluation
from .problem import Problem
from .termination import Progress, certified, stationary


class LoopState(eqx.Module):
    """Everything the loop carries between iterations: arrays only.

    **Attributes:**

    - `x`, `evaluation`: the current iterate (flat) and its evaluation.
    - `trial`, `direction`: the next point to evaluate and the search direction
      (or trust-region step) that made it.
    - `curvature`, `descent`, `forcing`: the states of the solver's parts.
    - `f0`, `grad0_norm`: f and maxᵢ |∇f(y0)ᵢ| at the start, the scales of the
      relative termination tests.
    - `grad_norm`: maxᵢ |∇f(x)ᵢ| at the current iterate (`stats["gradient_norm"]`).
    - `started`: whether the start point has been evaluated (by the first iteration).
    - `num_*`: counters reported in `Solution.stats`.
    - `done`, `result`, `termination`: whether and how the solve ended.
    - `history`: the objective after each iteration, if recorded.
    - `bounded_below`: whether f ≥ 0 is known (least squares), which the
      termination tests use as the lower bound of f.
    """

    x: Float[Array, " n"]
    evaluation: Evaluation
    trial: Float[Array, " n"]
    direction: Float[Array, " n"]
    curvature: Any
    descent: Any
    forcing: Any
    f0: Scalar
    grad0_norm: Scalar
    grad_norm: Scalar
    started: Bool[Array, ""]
    num_steps: Int[Array, ""]
    num_accepted_steps: Int[Array, ""]
    num_fn_evals: Int[Array, ""]
    num_jac_evals: Int[Array, ""]
    num_linear_steps: Int[Array, ""]
    done: Bool[Array, ""]
    result: RESULTS
    termination: Termination
    history: Float[Array, " steps"] | None
    bounded_below: bool = eqx.field(static=True)


def _int(value) -> Int[Array, ""]:
    return jnp.asarray(value, jnp.int32)


def placeholder_leaf(shape: jax.ShapeDtypeStruct) -> Array:
    """An array of this shape and dtype, nan (or 0 for integers) throughout."""
    value = jnp.nan if jnp.issubdtype(shape.dtype, jnp.inexact) else 0
    return jnp.full(shape.shape, value, shape.dtype)


def placeholder_evaluation(curvature, problem: Problem, x0) -> Evaluation:
    """An evaluation of the right structure, to be replaced by the one at `x0`."""
    shapes = jax.eval_shape(lambda x: curvature.evaluate(problem, x)[0], x0)
    return jax.tree.map(placeholder_leaf, shapes)


def initial_state(
    solver,
    placeholder: Evaluation,
    x0,
    max_steps: int,
    history: bool,
    bounded_below: bool,
) -> LoopState:
    """The loop's state before its first iteration, which evaluates `x0`.

    `placeholder` is any evaluation of the right structure (e.g. from
    `placeholder_evaluation`); it is replaced by the one at `x0`. `bounded_below`
    says f ≥ 0 (least squares).
    """
    curvature, descent = solver.curvature, solver.descent
    _, fstate = solver.linear_context(placeholder, None, 0)
    hist = None
    if history:
        hist = jnp.full((max_steps + 1,), jnp.nan, x0.dtype)
    return LoopState(
        x=x0,
        evaluation=placeholder,
        trial=x0,
        direction=jnp.zeros_like(x0),
        curvature=curvature.init_state(x0, placeholder),
        descent=descent.init_state(x0, placeholder),
        forcing=fstate,
        f0=jnp.zeros((), x0.dtype),
        grad0_norm=jnp.zeros((), x0.dtype),
        grad_norm=jnp.zeros((), x0.dtype),
        started=jnp.array(False),
        num_steps=_int(0),
        num_accepted_steps=_int(0),
        num_fn_evals=_int(0),
        num_jac_evals=_int(0),
        num_linear_steps=_int(0),
        done=jnp.array(False),
        result=RESULTS.successful,
        termination=Termination.none,
        history=hist,
        bounded_below=bounded_below,
    )


def keep_going(state: LoopState, max_steps) -> Bool[Array, ""]:
    """Whether the loop runs another iteration."""
    return ~state.done & ((state.num_steps < max_steps) | ~state.started)


def finish(state: LoopState) -> LoopState:
    """The final state: a solve that ran out of steps reports `max_steps_reached`."""
    return eqx.tree_at(
        lambda s: s.result,
        state,
        RESULTS.where(~state.done, RESULTS.max_steps_reached, state.result),
    )


def run(
    problem: Problem, x0: Float[Array, " n"], solver, max_steps: int, history: bool
) -> LoopState:
    """Run `solver` on `problem` from `x0`; returns the final `LoopState`.

    The start point is evaluated by the loop's first iteration, which accepts it
    unconditionally (if finite), so the objective, its derivatives and the model's
    solve each appear once in the compiled program.
    """
    curvature = solver.curvature
    placeholder = placeholder_evaluation(curvature, problem, x0)
    bounded_below = problem.kind == "residual"
    init = initial_state(solver, placeholder, x0, max_steps, history, bounded_below)

    def body_fun(state: LoopState):
        evaluated = curvature.evaluate(problem, state.trial)
        return advance(solver, problem, state, evaluated)

    final = jax.lax.while_loop(lambda st: keep_going(st, max_steps), body_fun, init)
    return finish(final)


def advance(solver, problem: Problem | None, state: LoopState, evaluated) -> LoopState:
    """One loop iteration, given `evaluated = curvature.evaluate(problem, state.trial)`:
    judge the trial, update the model, test for convergence and propose the next
    trial.

    `problem` is needed only to re-linearise a model after a rejected trust-region
    trial (`curvature.needs_linearisation`); otherwise it may be `None`, so that
    this function does not depend on the objective and compiles once per solver
    and shape (see `run_on_host`).
    """
    curvature, descent = solver.curvature, solver.descent
    first = ~state.started
    ev_t, lin_t, nf, nj = evaluated
    finite_t = ev_t.is_finite()
    judged, failed, judged_state = descent.judge(
        state.descent, state.x, state.evaluation, ev_t, finite_t, state.direction
    )
    # The first iteration evaluates the start point: accepted if finite, and
    # nothing to judge or learn from yet.
    accept = jnp.where(first, finite_t, judged)
    failed = failed & ~first
    dstate = tree_where(first, state.descent, judged_state)
    step = state.trial - state.x
    cstate = jax.lax.cond(
        accept & ~first,
        lambda c: curvature.update(c, step, state.evaluation, ev_t),
        lambda c: c,
        state.curvature,
    )
    x = jnp.where(accept, state.trial, state.x)
    ev = tree_where(accept, ev_t, state.evaluation)
    grad0_norm = jnp.where(first, jnp.max(jnp.abs(ev_t.grad)), state.grad0_norm)
    f0 = jnp.where(first, ev_t.f, state.f0)

    rtol, atol = solver.tolerances(x.dtype)
    moved = accept & ~first
    # maxᵢ |∇fᵢ| at x without a reduction of its own: the trial's (which grad0_norm
    # reduces anyway) if accepted, else the stored one (nan before the start is
    # evaluated, as the placeholder's).
    grad_norm = jnp.where(
        accept,
        jnp.max(jnp.abs(ev_t.grad)),
        jnp.where(first, jnp.nan, state.grad_norm),
    )
    progress = Progress(
        x=x,
        f=ev.f,
        grad=ev.grad,
        step=jnp.where(moved, step, 0.0),
        change=jnp.where(moved, ev_t.f - state.evaluation.f, 0.0),
        f0=f0,
        grad0=grad0_norm,
        lower=jnp.zeros((), x.dtype) if state.bounded_below else None,
        first=first,
        # A step shortened by the descent rule (a backtracked line search) says
        # the model was poor, not that the iterate has converged.
        full_step=moved & descent.full_step(state.descent),
        rtol=jnp.asarray(rtol, x.dtype),
        atol=jnp.asarray(atol, x.dtype),
        grad_norm=grad_norm,
    )

    # The descent rule found no better point where its model predicts a decrease
    # below the rounding of f: a success only if x is also stationary to √rtol
    # (√eps if rtol is smaller), or the model's own undamped step predicts a gain
    # within rtol·S; else a failure (e.g. a trust region whose damping was
    # inflated by rejected nan trials, far from any minimiser).
    at_floor = failed & descent.at_precision_floor(dstate)
    eps = jnp.finfo(x.dtype).eps
    tolerance = jnp.maximum(progress.rtol, eps)
    floor = at_floor & (
        stationary(progress, jnp.sqrt(tolerance))
        | (descent.undamped_decrease(dstate) <= tolerance * progress.scale())
    )
    # A failed search restarts once from a cleared memory; a second failure, a
    # failure of a memoryless model, or one at the floor ends the solve.
    memoryless = curvature.is_reset(cstate)
    restart = failed & ~memoryless & ~at_floor
    give_up = failed & (memoryless | at_floor) & ~floor
    bad_start = first & ~finite_t
    cstate = jax.lax.cond(restart, lambda c: curvature.reset(c), lambda c: c, cstate)
    new_search = accept | restart

    num_steps = state.num_steps + (~first).astype(jnp.int32)
    context, fstate = solver.linear_context(ev, state.forcing, num_steps)

    def propose(linearisation):
        model = Model(curvature, cstate, ev, linearisation, context)
        return descent.propose(dstate, x, ev, model, new_search, state.direction)

    nf_extra = nj_extra = _int(0)
    if curvature.needs_linearisation and descent.solves_every_iteration:
        # After a rejected trial the model is needed at the old iterate again.
        def relinearised():
            _, lin, _, _ = curvature.evaluate(problem, x)
            return propose(lin)

        trial, direction, dstate, nlin = jax.lax.cond(
            accept, lambda: propose(lin_t), relinearised
        )
        nf_extra = jnp.where(accept, 0, nf).astype(jnp.int32)
        nj_extra = jnp.where(accept, 0, nj).astype(jnp.int32)
    else:
        trial, direction, dstate, nlin = propose(lin_t)

    tests = solver.termination_tests()
    guard = accept & certified(progress)
    passed = [guard & test(progress) for test in tests]
    converged = functools.reduce(jnp.logical_or, passed, floor)

    result = RESULTS.where(
        give_up | bad_start,
        RESULTS.where(finite_t, RESULTS.search_failed, RESULTS.nonfinite),
        RESULTS.successful,
    )
    termination = Termination.where(floor, Termination.precision, Termination.none)
    for test, ok in reversed(list(zip(tests, passed, strict=True))):
        termination = Termination.where(ok, test.reason, termination)
    hist = state.history
    if hist is not None:
        hist = hist.at[num_steps].set(ev.f)
    return LoopState(
        x=x,
        evaluation=ev,
        trial=trial,
        direction=direction,
        curvature=cstate,
        descent=dstate,
        forcing=fstate,
        f0=f0,
        grad0_norm=grad0_norm,
        grad_norm=grad_norm,
        started=jnp.array(True),
        num_steps=num_steps,
        num_accepted_steps=state.num_accepted_steps
        + (accept & ~first).astype(jnp.int32),
        num_fn_evals=state.num_fn_evals + nf + nf_extra,
        num_jac_evals=state.num_jac_evals + nj + nj_extra,
        num_linear_steps=state.num_linear_steps + nlin,
        done=converged | give_up | bad_start,
        result=result,
        termination=termination,
        history=hist,
        bounded_below=state.bounded_below,
    )
