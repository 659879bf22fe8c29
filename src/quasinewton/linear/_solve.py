"""Solving a damped symmetric positive semi-definite system with Lineax."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float

from .cg import ConjugateGradient
from .context import LinearSolveContext
from .preconditioners import hutchinson_diagonal

_TAGS = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})


def two_norm(v) -> Array:
    return jnp.sqrt(sum(jnp.sum(leaf * leaf) for leaf in jax.tree.leaves(v)))


def is_iterative(solver) -> bool:
    return isinstance(solver, (ConjugateGradient, lx.CG, lx.GMRES, lx.BiCGStab))


def with_forcing(solver: lx.CG, rtol, rhs) -> lx.CG:
    """CG whose stopping test is ‖residual‖₂ ≤ rtol·‖rhs‖₂.

    Lineax's CG stops when both the residual and the last update are within
    `atol + rtol·|·|` elementwise in its norm; with `rtol = 0`, `atol = η‖b‖₂` and
    the two-norm, the residual test is the inexact-Newton one."""
    return eqx.tree_at(
        lambda s: (s.rtol, s.atol, s.norm),
        solver,
        (0.0, rtol * two_norm(rhs), two_norm),
    )


def solve_damped(
    matvec: Callable[[Float[Array, " n"]], Float[Array, " n"]],
    rhs: Float[Array, " n"],
    damping: Float[Array, " n"] | None,
    context: LinearSolveContext,
    diagonal_fn: Callable[[], Float[Array, " n"]],
    default_solver: lx.AbstractLinearSolver,
    estimate_fn: Callable | None = None,
) -> tuple[Float[Array, " n"], Array]:
    """Solve (B + diag(damping)) p = rhs with B = `matvec`, symmetric PSD.

    `diagonal_fn()` gives diag(B) exactly and `estimate_fn(key, num_probes)` by
    random probes (Hutchinson's z ⊙ Bz if `None`), for preconditioners.

    **Returns:** `(p, num_linear_steps)`.
    """
    n, dtype = rhs.shape[0], rhs.dtype
    solver = default_solver if context.solver is None else context.solver

    def damped(v):
        out = matvec(v)
        return out if damping is None else out + damping * v

    structure = jax.ShapeDtypeStruct((n,), dtype)
    operator = lx.FunctionLinearOperator(damped, structure, tags=_TAGS)
    options = {}
    if is_iterative(solver):
        if context.rtol is not None:
            if isinstance(solver, ConjugateGradient):
                solver = eqx.tree_at(
                    lambda s: (s.rtol, s.atol), solver, (context.rtol, 0.0)
                )
            elif isinstance(solver, lx.CG):
                solver = with_forcing(solver, context.rtol, rhs)
        if context.preconditioner is not None:
            key = jax.random.fold_in(
                jax.random.PRNGKey(getattr(context.preconditioner, "seed", 0)),
                context.step,
            )
            if estimate_fn is None:

                def estimate_fn(key, num_probes):
                    return hutchinson_diagonal(matvec, n, dtype, key, num_probes)

            options["preconditioner"] = context.preconditioner.build(
                diagonal_fn, estimate_fn, damping, dtype, key
            )
    else:
        operator = lx.MatrixLinearOperator(operator.as_matrix(), tags=_TAGS)
    sol = lx.linear_solve(operator, rhs, solver, options=options, throw=False)
    steps = sol.stats.get("num_steps", 0) if is_iterative(solver) else 0
    return sol.value, jnp.asarray(steps, jnp.int32)
