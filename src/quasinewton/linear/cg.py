"""Preconditioned conjugate gradients with a scale-free breakdown test."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, PyTree

from .._misc import as_float, as_index, check_int, check_real


class ConjugateGradient(lx.AbstractLinearSolver):
    """Preconditioned conjugate gradients (Hestenes & Stiefel, 1952) for symmetric
    positive definite operators, as a Lineax solver.

    Stops when ‖Ax − b‖₂ ≤ `atol` + `rtol`·‖b‖₂ — the inexact-Newton test a
    forcing term sets — or after `max_steps` iterations, returning the iterate
    reached (a truncated solve is still a useful step). Accepts a
    `"preconditioner"` option (a positive definite Lineax operator M ≈ A⁻¹).

    Why not `lineax.CG`: Lineax 0.1.1 declares breakdown when pᵀAp ≤ 200·eps·n·rᵀz,
    a threshold that grows with the size n. In float32 with a Jacobi
    preconditioner (where pᵀAp/rᵀz is of order 1) every solve with more than about
    42,000 unknowns breaks down at its first iteration. Here breakdown is only
    pᵀAp ≤ 0 (or not finite), which does not depend on n or on scaling.

    **Arguments:**

    - `rtol`, `atol`: the residual tolerance, relative to ‖b‖₂ and absolute.
    - `max_steps`: iterations at most.
    """

    rtol: float = eqx.field(default=1e-4, converter=as_float)
    atol: float = eqx.field(default=0.0, converter=as_float)
    max_steps: int = eqx.field(default=100, static=True, converter=as_index)

    def __check_init__(self):
        check_real("rtol", self.rtol)
        check_real("atol", self.atol)
        check_int("max_steps", self.max_steps, 1)

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        if operator.in_structure() != operator.out_structure():
            raise ValueError("ConjugateGradient needs a square operator.")
        if not lx.is_symmetric(operator):
            raise ValueError(
                "ConjugateGradient needs an operator tagged symmetric (and positive "
                "definite), e.g. `tags=[lx.symmetric_tag, lx.positive_semidefinite_tag]`."
            )
        return operator

    def compute(self, state, vector: PyTree[Array], options: dict[str, Any]):
        operator = state
        b, unravel = jax.flatten_util.ravel_pytree(vector)
        preconditioner = options.get("preconditioner")

        def apply(op, v):
            return jax.flatten_util.ravel_pytree(op.mv(unravel(v)))[0]

        def precondition(r):
            return r if preconditioner is None else apply(preconditioner, r)

        threshold = self.atol + self.rtol * jnp.linalg.norm(b)
        x = jnp.zeros_like(b)
        r = b
        z = precondition(r)
        gamma = jnp.dot(r, z)

        def cond(carry):
            _, r, _, _, step, broken = carry
            return (step < self.max_steps) & ~broken & (jnp.linalg.norm(r) > threshold)

        def body(carry):
            x, r, p, gamma, step, _ = carry
            ap = apply(operator, p)
            curvature = jnp.dot(p, ap)
            broken = ~(curvature > 0) | ~jnp.isfinite(curvature)
            alpha = jnp.where(broken, 0.0, gamma / jnp.where(broken, 1.0, curvature))
            x = x + alpha * p
            r = r - alpha * ap
            z = precondition(r)
            new_gamma = jnp.dot(r, z)
            beta = new_gamma / jnp.where(gamma > 0, gamma, 1.0)
            p = jnp.where(broken, p, z + beta * p)
            return x, r, p, jnp.where(broken, gamma, new_gamma), step + 1, broken

        carry = (x, r, z, gamma, jnp.zeros((), jnp.int32), jnp.array(False))
        x, r, _, _, steps, broken = jax.lax.while_loop(cond, body, carry)
        # Breakdown before any progress means the operator is not positive definite.
        failed = broken & (steps == 1)
        result = lx.RESULTS.where(failed, lx.RESULTS.singular, lx.RESULTS.successful)
        return unravel(x), result, {"num_steps": steps - broken.astype(jnp.int32)}

    def transpose(self, state, options):
        transposed = dict(options)
        if "preconditioner" in options:
            transposed["preconditioner"] = options["preconditioner"].transpose()
        return state.transpose(), transposed

    def conj(self, state, options):
        return state, options

    def assume_full_rank(self):
        return True

    def allow_dependent_columns(self, operator):
        return False

    def allow_dependent_rows(self, operator):
        return False
