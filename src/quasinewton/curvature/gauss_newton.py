"""Gauss–Newton: B = JᵀJ for least squares, dense or matrix-free."""

from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from .._problem import Evaluation, Problem
from ..linear._solve import solve_damped
from ..linear.cg import ConjugateGradient
from ..linear.preconditioners import gauss_newton_diagonal
from ._base import AbstractHessianModel

_DEFAULT_CG = ConjugateGradient(rtol=1e-4, max_steps=100)


class GaussNewton(AbstractHessianModel):
    """The Gauss–Newton model B = JᵀJ of ½‖r(y)‖², J the Jacobian of the residuals.

    **Arguments:**

    - `materialise`: `True` forms J as a dense m×n matrix once per evaluation (by
      forward mode when m ≥ n, else reverse mode) and keeps it, so rejected steps
      cost no re-evaluation and small systems are solved directly; `False` never
      forms J: products Jv and Jᵀu come from one linearisation per evaluation and
      systems are solved iteratively (CG by default); `"auto"` (default)
      materialises when n ≤ 512 and m·n ≤ 4·10⁶.

    Linear solves: with J dense, `lx.QR()` (the default) solves the equivalent
    least-squares problem min ‖[J; √D]p + [r; 0]‖ without squaring the condition
    number (as MINPACK does); `lx.Cholesky()` solves the normal equations (faster for
    many small problems); an iterative Lineax solver works on products. Matrix-free,
    [`quasinewton.linear.ConjugateGradient`][] (default `rtol=1e-4, max_steps=100`) with an optional
    [`quasinewton.linear.Jacobi`][] preconditioner and forcing term.
    """

    materialise: bool | Literal["auto"] = eqx.field(default="auto", static=True)

    needs_residual: ClassVar[bool] = True  # pyright: ignore

    def specialise(self, problem: Problem, x):
        if self.materialise != "auto":
            return self
        m = jax.eval_shape(lambda z: problem.residual(z)[0], x).shape[0]
        n = x.size
        return GaussNewton(materialise=bool(n <= 512 and m * n <= 4_000_000))

    def evaluate(self, problem: Problem, x):
        if self.materialise:
            r, jac, aux = problem.jacobian(x)
            ev = Evaluation(f=0.5 * jnp.sum(r * r), grad=jac.T @ r, aux=aux, residual=r, matrix=jac)
            return ev, None, 1, 1
        r, jvp, vjp, aux = problem.linearise(x)
        ev = Evaluation(f=0.5 * jnp.sum(r * r), grad=vjp(r), aux=aux, residual=r)
        return ev, (jvp, vjp), 1, 1

    def init_state(self, x, evaluation):
        return None

    def _products(self, evaluation: Evaluation, linearisation):
        if self.materialise:
            jac = evaluation.matrix
            return (lambda v: jac @ v), (lambda u: jac.T @ u)
        return linearisation

    def solve(self, state, evaluation, linearisation, damping, context):
        solver = context.solver
        if self.materialise and (solver is None or isinstance(solver, lx.QR)):
            jac, r = evaluation.matrix, evaluation.residual
            n = jac.shape[1]
            if damping is None:
                matrix, target = jac, -r
            else:
                matrix = jnp.concatenate([jac, jnp.diag(jnp.sqrt(damping))])
                target = jnp.concatenate([-r, jnp.zeros(n, r.dtype)])
            sol = lx.linear_solve(lx.MatrixLinearOperator(matrix), target, lx.QR(), throw=False)
            return sol.value, jnp.zeros((), jnp.int32)
        jvp, vjp = self._products(evaluation, linearisation)
        m = evaluation.residual.shape[0]
        return solve_damped(
            lambda v: vjp(jvp(v)),
            -evaluation.grad,
            damping,
            context,
            lambda: self.diagonal(state, evaluation, linearisation),
            lx.Cholesky() if self.materialise else _DEFAULT_CG,
            lambda key, k: gauss_newton_diagonal(vjp, m, evaluation.grad.dtype, key, k),
        )

    def quadratic(self, state, evaluation, linearisation, p):
        jvp, _ = self._products(evaluation, linearisation)
        jp = jvp(p)
        return jnp.dot(jp, jp)

    def diagonal(self, state, evaluation, linearisation):
        if self.materialise:
            return jnp.sum(evaluation.matrix**2, axis=0)
        jvp, _ = self._products(evaluation, linearisation)
        n = evaluation.grad.shape[0]

        def column_norm(i):
            e = jnp.zeros(n, evaluation.grad.dtype).at[i].set(1.0)
            col = jvp(e)
            return jnp.dot(col, col)

        return jax.lax.map(column_norm, jnp.arange(n), batch_size=min(n, 64))
