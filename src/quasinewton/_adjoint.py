"""Differentiating through a solve by the implicit function theorem."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.tree_util as jtu
import lineax as lx
from jaxtyping import Array, Float

from ._loop import LoopState
from .linear.cg import ConjugateGradient
from .problem import Problem


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

    The derivatives of `fn` are taken in the solve's `autodiff_mode`: with `"auto"`
    Hessian-vector products are forward over reverse, with `"reverse"` reverse
    over reverse (vjps of ∇f; the Hessian is symmetric), with `"forward"` forward
    over forward, so that a `fn` with only one mode can still be differentiated.

    **A singular Hessian** at the solution (a solution that is not isolated: a
    direction along which f is flat, e.g. residuals depending on y₀ + y₁ only)
    gives the minimum-norm derivative dy∗/dθ = −(∇²ᵧᵧf)⁺ ∇²ᵧθf, the one orthogonal
    to the flat directions, and never raises, whatever `throw` says (the solve
    itself did succeed). With a direct solver (the default) the Hessian is
    factorised, and if that fails (non-finite output) the system is solved again
    by an SVD (`lx.SVD()`), which costs O(n³) for those solves only (under
    `jax.vmap`, for every fit of the batch). An iterative solver's answer is kept
    as it is: conjugate gradients from zero reach the minimum-norm solution of a
    consistent singular system (as in `jax.jvp` through the solve), but the
    systems `jax.grad` solves, with a cotangent for right-hand side, are in
    general inconsistent, and CG then gives nan for that fit. Under `jax.vmap`
    each fit gets its own derivative and a singular fit never aborts the batch. A
    Hessian that is nearly but not exactly singular is solved as it is: its
    derivative is large, as the true one is.
    """

    linear_solver: lx.AbstractLinearSolver = lx.AutoLinearSolver(well_posed=None)

    def solve(
        self,
        driver: Callable[[Problem, Float[Array, " n"], Any], LoopState],
        problem: Problem,
        x0: Float[Array, " n"],
        solver: Any,
    ) -> LoopState:
        """`driver(problem, x0, solver)`, the final loop state of a solve, with the
        derivatives of its solution by the implicit function theorem (none is taken
        through the driver's iterations)."""
        x, aux, rest = _implicit(driver, problem, x0, solver, self.linear_solver)
        return eqx.tree_at(
            lambda s: (s.x, s.evaluation.aux),
            rest,
            (x, aux),
            is_leaf=lambda v: v is None,
        )


def _split(state):
    rest = eqx.tree_at(
        lambda s: (s.x, s.evaluation.aux),
        state,
        (None, None),
        is_leaf=lambda v: v is None,
    )
    return state.x, state.evaluation.aux, rest


@eqx.filter_custom_jvp
def _implicit(driver, problem, x0, solver, linear_solver):
    del linear_solver
    return _split(driver(problem, x0, solver))


def _is_none(x):
    return x is None


#: How the Hessian operator of the adjoint is differentiated in each mode.
_HESSIAN_JAC = {"auto": None, "forward": "fwd", "reverse": "bwd"}

#: Linear solvers that work on products (the Hessian is not materialised for them).
_ITERATIVE = (lx.CG, lx.BiCGStab, lx.GMRES, lx.LSMR, ConjugateGradient)


def _push_forward(fn, primals, tangents, mode):
    """The tangent of `fn`'s inexact outputs along `tangents`: `jax.jvp`, or with
    `autodiff_mode="reverse"` the transpose of `jax.vjp` (the same linear map)."""
    if mode != "reverse":
        return jax.jvp(fn, primals, tangents)[1]

    def inexact(*args):
        return eqx.filter(fn(*args), eqx.is_inexact_array)

    out, vjp = jax.vjp(inexact, *primals)
    return jax.linear_transpose(vjp, out)(tangents)[0]


def _solve_hessian(hessian, rhs, linear_solver):
    """H⁻¹·rhs for the symmetric Hessian H, without raising.

    A direct solver sees the materialised Hessian; where its factorisation fails
    (H singular: non-finite output) the minimum-norm solution H⁺·rhs is taken from
    an SVD instead. An iterative solver's answer is kept as it is (CG from zero
    gives the minimum-norm solution of a consistent singular system itself, and
    nan for an inconsistent one).

    `jax.lax.custom_linear_solve` makes the transpose (for `jax.grad`) the same
    solve, again with `throw=False`: Lineax's own transpose rule solves with
    `throw=True`, which raised for a singular Hessian, and under `jax.vmap`
    aborted the whole batch for one singular fit.
    """
    if not isinstance(linear_solver, _ITERATIVE):
        hessian = lx.materialise(hessian)

    def solve(_, b):
        sol = lx.linear_solve(hessian, b, linear_solver, throw=False)
        if isinstance(linear_solver, _ITERATIVE):
            return sol.value

        def min_norm():
            return lx.linear_solve(hessian, b, lx.SVD(), throw=False).value

        failed = sol.result != lx.RESULTS.successful
        return jax.lax.cond(failed, min_norm, lambda: sol.value)

    return jax.lax.custom_linear_solve(hessian.mv, rhs, solve, symmetric=True)


@_implicit.def_jvp
def _implicit_jvp(primals, tangents):
    driver, problem, x0, solver, linear_solver = primals
    t_problem = tangents[1]
    x, aux, rest = _implicit(driver, problem, x0, solver, linear_solver)
    mode = problem.autodiff_mode

    no_tangent = jtu.tree_map(_is_none, t_problem, is_leaf=_is_none)
    nondiff, diff = eqx.partition(problem, no_tangent, is_leaf=_is_none)
    t_diff = eqx.filter(t_problem, eqx.is_array)

    def grad_at(y, theta):
        # ∇ᵧf by the problem's mode: with "forward", the derivatives below are
        # forward over forward; with "reverse", reverse over reverse.
        return eqx.combine(theta, nondiff).value_and_grad(y).grad

    # −∂θ(∇ᵧf)·tθ, then solve with the Hessian ∇²ᵧᵧf at the solution.
    rhs = _push_forward(lambda theta: grad_at(x, theta), (diff,), (t_diff,), mode)
    # The Hessian is symmetric, and at a minimiser positive semi-definite; that
    # second tag is what conjugate gradients require, and is given to them only, so
    # that the default solver still factorises an indefinite Hessian honestly.
    tags = [lx.symmetric_tag]
    if isinstance(linear_solver, (lx.CG, ConjugateGradient)):
        tags.append(lx.positive_semidefinite_tag)
    hessian = lx.JacobianLinearOperator(
        lambda y, _: grad_at(y, diff), x, None, tags=tags, jac=_HESSIAN_JAC[mode]
    )
    t_x = -_solve_hessian(hessian, rhs, linear_solver)

    def aux_at(y, theta):
        return eqx.combine(theta, nondiff).scalar(y)[1]

    if aux is None:
        t_aux = None
    else:
        t_aux = _push_forward(aux_at, (x, diff), (t_x, t_diff), mode)
    t_rest = jax.custom_derivatives.zero_from_primal(rest, symbolic_zeros=True)
    return (x, aux, rest), (t_x, t_aux, t_rest)
