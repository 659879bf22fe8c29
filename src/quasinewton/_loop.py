"""The one loop that drives every solver: one objective evaluation per iteration."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Scalar

from ._problem import Evaluation, Problem, tree_where
from ._solution import RESULTS, Termination
from .curvature._model import Model


class LoopState(eqx.Module):
    """Everything the loop carries between iterations: arrays only.

    **Attributes:**

    - `x`, `evaluation`: the current iterate (flat) and its evaluation.
    - `trial`, `direction`: the next point to evaluate and the search direction
      (or trust-region step) that made it.
    - `curvature`, `descent`, `forcing`: the states of the solver's parts.
    - `grad0_norm`: maxᵢ |∇f(y0)ᵢ|, the scale of the relative gradient test.
    - `num_*`: counters reported in `Solution.stats`.
    - `done`, `result`, `termination`: whether and how the solve ended.
    - `history`: the objective after each iteration, if recorded.
    """

    x: Float[Array, " n"]
    evaluation: Evaluation
    trial: Float[Array, " n"]
    direction: Float[Array, " n"]
    curvature: Any
    descent: Any
    forcing: Any
    grad0_norm: Scalar
    num_steps: Int[Array, ""]
    num_accepted_steps: Int[Array, ""]
    num_fn_evals: Int[Array, ""]
    num_jac_evals: Int[Array, ""]
    num_linear_steps: Int[Array, ""]
    done: Bool[Array, ""]
    result: RESULTS
    termination: Termination
    history: Float[Array, " steps"] | None


def all_finite(evaluation: Evaluation) -> Bool[Array, ""]:
    """Whether the objective, gradient and residual are all finite."""
    ok = jnp.isfinite(evaluation.f) & jnp.all(jnp.isfinite(evaluation.grad))
    if evaluation.residual is not None:
        ok = ok & jnp.all(jnp.isfinite(evaluation.residual))
    return ok


def _int(value) -> Int[Array, ""]:
    return jnp.asarray(value, jnp.int32)


def run(problem: Problem, solver, x0: Float[Array, " n"], max_steps: int, history: bool):
    """Run `solver` on `problem` from `x0`; returns the final `LoopState`."""
    curvature, descent = solver.curvature, solver.descent

    ev0, lin0, nf0, nj0 = curvature.evaluate(problem, x0)
    finite0 = all_finite(ev0)
    cstate = curvature.init_state(x0, ev0)
    dstate = descent.init_state(x0, ev0)
    context, fstate = solver.linear_context(ev0, None, 0)
    model = Model(curvature, cstate, ev0, lin0, context)
    trial, direction, dstate, nlin = descent.propose(
        dstate, x0, ev0, model, jnp.array(True), jnp.zeros_like(x0)
    )
    grad0_norm = jnp.max(jnp.abs(ev0.grad))
    converged0 = finite0 & solver.gradient_test(x0, ev0, jnp.zeros_like(grad0_norm))
    hist = None
    if history:
        hist = jnp.full((max_steps + 1,), jnp.nan, x0.dtype).at[0].set(ev0.f)
    init = LoopState(
        x=x0,
        evaluation=ev0,
        trial=trial,
        direction=direction,
        curvature=cstate,
        descent=dstate,
        forcing=fstate,
        grad0_norm=grad0_norm,
        num_steps=_int(0),
        num_accepted_steps=_int(0),
        num_fn_evals=_int(nf0),
        num_jac_evals=_int(nj0),
        num_linear_steps=_int(nlin),
        done=~finite0 | converged0,
        result=RESULTS.where(finite0, RESULTS.successful, RESULTS.nonfinite),
        termination=Termination.where(converged0, Termination.gradient, Termination.none),
        history=hist,
    )

    def cond_fun(state: LoopState):
        return ~state.done & (state.num_steps < max_steps)

    def body_fun(state: LoopState):
        ev_t, lin_t, nf, nj = curvature.evaluate(problem, state.trial)
        finite_t = all_finite(ev_t)
        accept, failed, dstate = descent.judge(
            state.descent, state.x, state.evaluation, ev_t, finite_t, state.direction
        )
        step = state.trial - state.x
        cstate = jax.lax.cond(
            accept,
            lambda c: curvature.update(c, step, state.evaluation, ev_t),
            lambda c: c,
            state.curvature,
        )
        x = jnp.where(accept, state.trial, state.x)
        ev = tree_where(accept, ev_t, state.evaluation)

        grad_ok = accept & solver.gradient_test(x, ev, state.grad0_norm)
        # A step shortened by the descent rule (a backtracked line search) says the
        # model was poor, not that the iterate has converged: only full steps count.
        full_step = accept & descent.full_step(state.descent)
        step_ok = full_step & solver.step_test(step, ev_t.f - state.evaluation.f, x, ev)
        converged = grad_ok | step_ok

        # A failed search restarts once from a cleared memory; a second failure, or a
        # failure of a memoryless model, ends the solve.
        floor = failed & descent.at_precision_floor(dstate)
        memoryless = curvature.is_reset(cstate)
        restart = failed & ~memoryless & ~floor
        give_up = failed & memoryless & ~floor
        converged = converged | floor
        cstate = jax.lax.cond(restart, lambda c: curvature.reset(c), lambda c: c, cstate)
        new_search = accept | restart

        context, fstate = solver.linear_context(ev, state.forcing, state.num_steps + 1)

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

        num_steps = state.num_steps + 1
        result = RESULTS.where(
            give_up,
            RESULTS.where(finite_t, RESULTS.search_failed, RESULTS.nonfinite),
            RESULTS.successful,
        )
        termination = Termination.where(
            grad_ok,
            Termination.gradient,
            Termination.where(
                step_ok,
                Termination.step,
                Termination.where(floor, Termination.precision, Termination.none),
            ),
        )
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
            grad0_norm=state.grad0_norm,
            num_steps=num_steps,
            num_accepted_steps=state.num_accepted_steps + accept.astype(jnp.int32),
            num_fn_evals=state.num_fn_evals + nf + nf_extra,
            num_jac_evals=state.num_jac_evals + nj + nj_extra,
            num_linear_steps=state.num_linear_steps + nlin,
            done=converged | give_up,
            result=result,
            termination=termination,
            history=hist,
        )

    final = jax.lax.while_loop(cond_fun, body_fun, init)
    out_of_steps = ~final.done
    return eqx.tree_at(
        lambda s: s.result,
        final,
        RESULTS.where(out_of_steps, RESULTS.max_steps_reached, final.result),
    )
