"""Gauss–Newton: B = JᵀJ for least squares, dense or matrix-free."""

import dataclasses
from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
import lineax as lx

from ..evaluation import Evaluation, JacobianEvaluation, NormalEvaluation
from ..linear._solve import solve_damped
from ..linear.cg import ConjugateGradient
from ..linear.preconditioners import gauss_newton_diagonal, squared_column_norms
from ..linear.unrolled import MAX_UNROLLED, cholesky_solve
from ..problem import Problem
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

    - `normal_equations`: `True` keeps, with J dense, only JᵀJ and Jᵀr (n×n and n
      numbers instead of m×n) and solves (JᵀJ + D)p = −Jᵀr by Cholesky: the lean
      path for many small fits under `jax.vmap`. For n ≤ 8 the factorisation is
      written out entry by entry ([`quasinewton.linear.cholesky_solve`][]),
      so a batch of 10⁴ fits is a few fused vector loops rather than 10⁴ LAPACK
      calls ([measured](../benchmarks/defaults.md)). It squares J's condition
      number, so it loses accuracy where cond(J) approaches 1/√eps (~10⁸ in
      float64, ~4·10³ in float32). `"auto"` uses it when J is dense and n ≤ 8;
      `False` (default) keeps J.

    Linear solves: with J dense, `lx.QR()` (the default) solves the equivalent
    least-squares problem min ‖[J; √D]p + [r; 0]‖ without squaring the condition
    number (as MINPACK does); `lx.Cholesky()` solves the normal equations; an
    iterative Lineax solver works on products. Matrix-free,
    [`quasinewton.linear.ConjugateGradient`][] (default `rtol=1e-4, max_steps=100`) with an optional
    [`quasinewton.linear.Jacobi`][] preconditioner and forcing term.
    """

    materialise: bool | Literal["auto"] = eqx.field(default="auto", static=True)
    normal_equations: bool | Literal["auto"] = eqx.field(default=False, static=True)

    needs_residual: ClassVar[bool] = True  # pyright: ignore

    def specialise(self, problem: Problem, x):
        materialise, normal = self.materialise, self.normal_equations
        if materialise == "auto":
            m = problem.residual_size(x)
            materialise = bool(x.size <= 512 and m * x.size <= 4_000_000)
        if normal == "auto":
            normal = x.size <= MAX_UNROLLED
        # `replace` keeps the type and every other field (a subclass's too).
        return dataclasses.replace(
            self, materialise=materialise, normal_equations=bool(normal and materialise)
        )

    def __check_init__(self):
        if self.normal_equations is True and self.materialise is False:
            raise ValueError(
                "normal_equations=True needs a dense J (materialise=True or 'auto')."
            )

    def evaluate(self, problem: Problem, x):
        if self.materialise:
            f, residual, jac, aux = problem.dense_linear_model(x)
            grad = jac.T @ residual
            # The normal-equations form keeps JᵀJ in place of J, and not r, which
            # only the QR solve reads: neither is carried through the loop.
            if self.normal_equations:
                ev = NormalEvaluation(f=f, grad=grad, aux=aux, normal=jac.T @ jac)
            else:
                ev = JacobianEvaluation(
                    f=f, grad=grad, aux=aux, residual=residual, jacobian=jac
                )
            return ev, None, 1, 1
        ev, product, transpose = problem.linear_model(x)
        return ev, (product, transpose), 1, 1

    def init_state(self, x, evaluation):
        return None

    def _products(self, evaluation: Evaluation, linearisation):
        """v ↦ Jv and u ↦ Jᵀu, from the dense J or the linearisation."""
        if self.materialise:
            jac = evaluation.jacobian
            return (lambda v: jac @ v), (lambda u: jac.T @ u)
        return linearisation

    def _matvec(self, evaluation: Evaluation, linearisation):
        """v ↦ JᵀJv."""
        if self.normal_equations:
            return lambda v: evaluation.normal @ v
        product, transpose = self._products(evaluation, linearisation)
        return lambda v: transpose(product(v))

    def _direct(self, solver) -> Literal["cholesky", "qr", None]:
        """Which direct dense solve `solve` uses with this Lineax solver, if any."""
        if self.normal_equations and (
            solver is None or isinstance(solver, lx.Cholesky)
        ):
            return "cholesky"
        if (
            self.materialise
            and not self.normal_equations
            and (solver is None or isinstance(solver, lx.QR))
        ):
            return "qr"
        return None

    def solves_exactly(self, context):
        return self._direct(context.solver) is not None

    def solve(self, state, evaluation, linearisation, damping, context):
        solver = context.solver
        direct = self._direct(solver)
        if direct == "cholesky":
            normal = evaluation.normal
            if damping is not None:
                normal = normal + jnp.diag(damping)
            if evaluation.grad.shape[0] <= MAX_UNROLLED:
                p = cholesky_solve(normal, -evaluation.grad)
            else:
                operator = lx.MatrixLinearOperator(normal, lx.positive_semidefinite_tag)
                p = lx.linear_solve(
                    operator, -evaluation.grad, lx.Cholesky(), throw=False
                ).value
            return p, jnp.zeros((), jnp.int32)
        if direct == "qr":
            jac, r = evaluation.jacobian, evaluation.residual
            n = jac.shape[1]
            if damping is None:
                matrix, target = jac, -r
            else:
                matrix = jnp.concatenate([jac, jnp.diag(jnp.sqrt(damping))])
                target = jnp.concatenate([-r, jnp.zeros(n, r.dtype)])
            sol = lx.linear_solve(
                lx.MatrixLinearOperator(matrix), target, lx.QR(), throw=False
            )
            return sol.value, jnp.zeros((), jnp.int32)
        estimate = None  # Hutchinson probes of JᵀJ itself
        if not self.normal_equations:
            _, vjp = self._products(evaluation, linearisation)
            m = evaluation.residual.shape[0]

            def estimate(key, k):
                return gauss_newton_diagonal(vjp, m, evaluation.grad.dtype, key, k)

        return solve_damped(
            self._matvec(evaluation, linearisation),
            -evaluation.grad,
            damping,
            context,
            lambda: self.diagonal(state, evaluation, linearisation),
            lx.Cholesky() if self.materialise else _DEFAULT_CG,
            estimate,
        )

    def quadratic(self, state, evaluation, linearisation, p):
        if self.normal_equations:
            return jnp.dot(p, evaluation.normal @ p)
        jvp, _ = self._products(evaluation, linearisation)
        jp = jvp(p)
        return jnp.dot(jp, jp)

    def diagonal(self, state, evaluation, linearisation):
        if self.normal_equations:
            a = evaluation.normal
            if a.shape[0] <= MAX_UNROLLED:
                # Static slices: jnp.diagonal lowers to a gather, a kernel of its
                # own in the compiled loop.
                return jnp.stack([a[i, i] for i in range(a.shape[0])])
            return jnp.diagonal(a)
        if self.materialise:
            return jnp.sum(evaluation.jacobian**2, axis=0)
        jvp, _ = self._products(evaluation, linearisation)
        return squared_column_norms(
            jvp, evaluation.grad.shape[0], evaluation.grad.dtype
        )
