"""Newton: the exact Hessian, dense or as Hessian-vector products."""

import dataclasses
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from .. import _lapack
from ..evaluation import Evaluation, HessianEvaluation
from ..linear._solve import solve_damped
from ..linear.cg import ConjugateGradient
from ..problem import Problem
from ._base import AbstractHessianModel

_DEFAULT_CG = ConjugateGradient(rtol=1e-4, max_steps=100)


class Newton(AbstractHessianModel):
    """The exact Hessian B = ∇²f (for least squares, of ½‖r‖², second-order terms
    included).

    **Arguments:**

    - `materialise`: `True` forms the n×n Hessian at each evaluation (forward over
      reverse mode; reverse over reverse with `autodiff_mode="reverse"`, forward
      over forward with `"forward"`) and solves with Cholesky by default; `False`
      uses Hessian-vector products from one linearisation of ∇f per evaluation and
      CG by default (Newton–CG); `"auto"` (default) materialises when n ≤ 256.

    Far from a minimiser the Hessian may be indefinite. With a dense Hessian and a
    line search the step uses the Hessian with its eigenvalues replaced by their
    absolute values, floored at √eps times the largest (Nocedal & Wright, 2006,
    §3.4), so it is always a descent direction. With Hessian-vector products a CG
    step that is not a descent direction is replaced by −∇f. With
    [`quasinewton.descent.TrustRegion`][] the damping λ grows until B + λD is
    positive definite (a regularised Newton method).
    """

    materialise: bool | Literal["auto"] = eqx.field(default="auto", static=True)

    def specialise(self, problem: Problem, x):
        if self.materialise != "auto":
            return self
        # `replace` keeps the type and every other field (a subclass's too).
        return dataclasses.replace(self, materialise=bool(x.size <= 256))

    def evaluate(self, problem: Problem, x):
        def grad_and_rest(z):
            ev = problem.value_and_grad(z)
            return ev.grad, ev

        # With autodiff_mode="reverse" reverse over reverse (the Hessian is
        # symmetric, so a vjp of ∇f is a Hessian-vector product); otherwise forward
        # over the gradient's own mode.
        reverse = problem.autodiff_mode == "reverse"
        if self.materialise:
            jac = jax.jacrev if reverse else jax.jacfwd
            hessian, ev = jac(grad_and_rest, has_aux=True)(x)
            ev = HessianEvaluation(f=ev.f, grad=ev.grad, aux=ev.aux, hessian=hessian)
            return ev, None, 1, 1
        if reverse:
            _, vjp, ev = jax.vjp(grad_and_rest, x, has_aux=True)
            return ev, (lambda v: vjp(v)[0]), 1, 1
        _, hvp, ev = jax.linearize(grad_and_rest, x, has_aux=True)
        return ev, hvp, 1, 1

    def init_state(self, x, evaluation):
        return None

    def _product(self, evaluation: Evaluation, linearisation):
        if self.materialise:
            return lambda v: evaluation.hessian @ v
        return linearisation

    def solve(self, state, evaluation, linearisation, damping, context):
        if self.materialise and damping is None and context.solver is None:
            return _modified_newton_step(
                evaluation.hessian, evaluation.grad
            ), jnp.zeros((), jnp.int32)
        return solve_damped(
            self._product(evaluation, linearisation),
            -evaluation.grad,
            damping,
            context,
            lambda: self.diagonal(state, evaluation, linearisation),
            lx.Cholesky() if self.materialise else _DEFAULT_CG,
        )

    def quadratic(self, state, evaluation, linearisation, p):
        return jnp.dot(p, self._product(evaluation, linearisation)(p))

    def diagonal(self, state, evaluation, linearisation):
        if self.materialise:
            return jnp.diag(evaluation.hessian)
        hvp = self._product(evaluation, linearisation)
        n = evaluation.grad.shape[0]

        def entry(i):
            e = jnp.zeros(n, evaluation.grad.dtype).at[i].set(1.0)
            return hvp(e)[i]

        return jax.lax.map(entry, jnp.arange(n), batch_size=min(n, 64))


def _modified_newton_step(hessian, grad):
    """−|H|⁻¹∇f with |H| = V·max(|Λ|, δ)·Vᵀ, δ = √eps·max|Λ|."""
    eigenvalues, vectors = _lapack.eigh(0.5 * (hessian + hessian.T))
    magnitude = jnp.abs(eigenvalues)
    floor = jnp.sqrt(jnp.finfo(grad.dtype).eps) * jnp.maximum(
        jnp.max(magnitude), jnp.finfo(grad.dtype).tiny
    )
    return -(vectors @ ((vectors.T @ grad) / jnp.maximum(magnitude, floor)))
