"""Differentiating through a solve by the implicit function theorem."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx

from ._host import can_run_on_host, run_on_host
from ._loop import run
from ._problem import Problem
from .linear.cg import ConjugateGradient


class ImplicitAdjoint(eqx.Module):
    """Derivatives of the solution by the implicit function theorem.

    At a minimiser y∗(θ) of f(y, θ), ∇ᵧf(y∗, θ) = 0, so
    dy∗/dθ = −(∇²ᵧᵧf)⁻¹ ∇²ᵧθf. No derivative is taken through the iterations: the
    cost is one linear solve with the Hessian at the solution, whatever the number
    of steps. θ is `args` together with any arrays `fn` closes over. For least
    squares f = ½‖r‖² and the exact Hessian (not JᵀJ) is used.

    **Arguments:**

    - `linear_solver`: the Lineax solver for the Hessian system. The default
      materialises the Hessian (n Hessian-vector products) and factorises it; for
      large problems pass an iterative solver, e.g. `lx.CG(rtol=1e-8, atol=1e-8)`
      or [`quasinewton.linear.ConjugateGradient`][] (the Hessian is tagged symmetric,
      and for these two positive semi-definite, as it is at a minimiser).
    """

    linear_solver: lx.AbstractLinearSolver = lx.AutoLinearSolver(well_posed=None)

    def solve(self, problem: Problem, x0, solver, max_steps: int, history: bool):
        if can_run_on_host(problem, solver, x0):
            # Nothing is traced, so nothing can be differentiated: no adjoint needed.
            return run_on_host(problem, solver, x0, max_steps, history)
        x, aux, rest = _implicit(problem, x0, solver, max_steps, history, self.linear_solver)
        return eqx.tree_at(
            lambda s: (s.x, s.evaluation.aux),
            rest,
            (x, aux),
            is_leaf=lambda v: v is None,
        )


def _split(state):
    rest = eqx.tree_at(
        lambda s: (s.x, s.evaluation.aux), state, (None, None), is_leaf=lambda v: v is None
    )
    return state.x, state.evaluation.aux, rest


@eqx.filter_custom_jvp
def _implicit(problem, x0, solver, max_steps, history, linear_solver):
    del linear_solver
    state = run(problem, solver, x0, max_steps, history)
    return _split(state)


def _is_none(x):
    return x is None


@_implicit.def_jvp
def _implicit_jvp(primals, tangents):
    problem, x0, solver, max_steps, history, linear_solver = primals
    t_problem = tangents[0]
    x, aux, rest = _implicit(problem, x0, solver, max_steps, history, linear_solver)

    no_tangent = jtu.tree_map(_is_none, t_problem, is_leaf=_is_none)
    nondiff, diff = eqx.partition(problem, no_tangent, is_leaf=_is_none)
    t_diff = eqx.filter(t_problem, eqx.is_array)

    def grad_at(y, theta):
        return eqx.combine(theta, nondiff).value_and_grad(y).grad

    # −∂θ(∇ᵧf)·tθ, then solve with the Hessian ∇²ᵧᵧf at the solution.
    _, rhs = jax.jvp(lambda theta: grad_at(x, theta), (diff,), (t_diff,))
    # The Hessian is symmetric, and at a minimiser positive semi-definite; that
    # second tag is what conjugate gradients require, and is given to them only, so
    # that the default solver still factorises an indefinite Hessian honestly.
    tags = [lx.symmetric_tag]
    if isinstance(linear_solver, (lx.CG, ConjugateGradient)):
        tags.append(lx.positive_semidefinite_tag)
    hessian = lx.JacobianLinearOperator(lambda y, _: grad_at(y, diff), x, None, tags=tags)
    t_x = -lx.linear_solve(hessian, rhs, linear_solver, throw=False).value

    def aux_at(y, theta):
        return eqx.combine(theta, nondiff).scalar(y)[1]

    if aux is None:
        t_aux = None
    else:
        _, t_aux = jax.jvp(aux_at, (x, diff), (t_x, t_diff))
    t_rest = jax.custom_derivatives.zero_from_primal(rest, symbolic_zeros=True)
    return (x, aux, rest), (t_x, t_aux, t_rest)
