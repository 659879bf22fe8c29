"""SR1: the symmetric rank-one quasi-Newton Hessian approximation."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, Int

from .._misc import as_float, check_real
from ..evaluation import Evaluation
from ..linear._solve import is_iterative, solve_damped
from ..linear.unrolled import MAX_UNROLLED, cholesky_solve
from ._base import AbstractCurvature
from .newton import _modified_newton_step


class SR1State(eqx.Module):
    """**Attributes:** `hessian`, the n×n Hessian approximation B (the identity
    while `count` is 0, when the model is ‖∇f‖·I instead, see
    [`quasinewton.curvature.SR1`][]); `count`, the number of updates applied since
    the last reset."""

    hessian: Float[Array, "n n"]
    count: Int[Array, ""]


class SR1(AbstractCurvature):
    """Symmetric rank-one Hessian approximation (Nocedal & Wright, 2006, §6.2).

    After an accepted step s, with y the change of ∇f and v = y − Bs,

        B ← B + vvᵀ/(vᵀs)

    (eq. 6.24): the only symmetric rank-one change that makes B satisfy the
    secant equation Bs = y. Unlike BFGS it does not keep B positive definite, so
    the model can follow negative curvature; on a quadratic, n linearly
    independent steps give its Hessian exactly (Theorem 6.1; here the n steps
    after the first, which sets the scale, see below), and the matrices
    approach the Hessian at a minimiser along uniformly independent steps (Conn,
    Gould & Toint, 1991). Pair it with [`quasinewton.descent.TrustRegion`][],
    which damps an indefinite B: a step solves (B + λI)p = −∇f, and while B + λI
    is not positive definite its Cholesky factorisation fails, the trial is
    rejected and λ grows (a trust-region SR1 method, Byrd, Khalfan & Schnabel,
    1996). O(n²) memory and O(n³) work per solve: for n up to a few thousand.

    An update is skipped when |vᵀs| < r‖s‖‖v‖ (eq. 6.26, r = `skip`), where the
    update would be large and poorly determined, and when anything in it is not
    finite (the gradient change of a step into an overflow, say).

    **Scale.** The identity carries no units, so the model takes its scale from
    the objective: before the first update it is ‖∇f‖·I, whose undamped step
    −∇f/‖∇f‖ has unit length whatever the units of f (as the initial trust
    radius of 1 of SciPy's `trust-constr`), and the first pair sets B = γI with
    γ = yᵀy/|sᵀy| (as SciPy's `SR1(init_scale="auto")`; eq. 6.20 for B). Both
    scale with f, so multiplying f by a constant changes no step. Why this γ: on
    a quadratic with Hessian A, yᵀy/sᵀy = sᵀA²s/sᵀAs, the larger of the two
    curvature estimates one pair gives (sᵀy/sᵀs is the other), and SR1 keeps
    B − A positive semidefinite once it is (the update of E = B − A is
    E − EssᵀE/sᵀEs): an overestimate keeps B positive definite and the first
    steps short. At that first pair the rank-one change is made only when
    sᵀy < 0, where it keeps the negative curvature (sᵀBs = sᵀy): from γI with
    sᵀy > 0 it would make B singular, mapping the direction of span{s, y}
    orthogonal to y to 0 (SciPy makes it), a direction of zero curvature that
    the trust region would discover only through rejected trials. A reset
    (after a failed search) returns to ‖∇f‖·I.

    **Steps.** With a trust region the damped system is solved by Cholesky (for
    n ≤ 8 written out entry by entry, see [`quasinewton.linear.cholesky_solve`][]),
    or by the Lineax solver of the [`quasinewton.Solver`][]: a factorisation of
    indefinite matrices (`lx.LU()`) gives the stationary point of an indefinite
    model instead, which the trust region accepts only when f falls as predicted;
    an iterative solver works on products Bv. With a line search (no damping) the
    step uses B with its eigenvalues replaced by their absolute values, floored at
    √eps times the largest, as [`quasinewton.curvature.Newton`][] does, so that it
    is always a descent direction.

    **Arguments:**

    - `skip`: r of the skip rule, in [0, 1): an update is made only when
      |vᵀs| ≥ r‖s‖‖v‖ (at least the dtype's eps, below which vᵀs is rounding).
      Nocedal & Wright suggest 1e-8 (default).
    """

    skip: float = eqx.field(default=1e-8, converter=as_float)

    has_hessian: ClassVar[bool] = True
    solves_linear_system: ClassVar[bool] = True
    # Not exact: padded unknowns keep a block γI that never couples to the others,
    # but its γ enters the max-based floors of the line-search step's eigenvalues
    # and of Marquardt's scaling.
    padding_is_exact: ClassVar[bool] = False

    def __check_init__(self):
        check_real("skip", self.skip, low=0.0, high=1.0, open_high=True)

    def init_state(self, x, evaluation):
        return SR1State(
            hessian=jnp.eye(x.shape[0], dtype=x.dtype),
            count=jnp.zeros((), jnp.int32),
        )

    def update(self, state: SR1State, step, old: Evaluation, new: Evaluation):
        s = step
        y = new.grad - old.grad
        eye = jnp.eye(s.shape[0], dtype=s.dtype)
        first = state.count == 0
        sy = jnp.dot(s, y)
        gamma = jnp.dot(y, y) / jnp.abs(sy)
        scaled = jnp.isfinite(gamma) & (gamma > 0)
        b = jnp.where(first, jnp.where(scaled, gamma, 1.0) * eye, state.hessian)
        v = y - b @ s
        vs = jnp.dot(v, s)
        r = jnp.maximum(jnp.asarray(self.skip, s.dtype), jnp.finfo(s.dtype).eps)
        threshold = r * jnp.linalg.norm(s) * jnp.linalg.norm(v)
        rank_one = (jnp.abs(vs) >= threshold) & (vs != 0)
        # From γI with sᵀy > 0 the change would make B singular: it maps the
        # w ⊥ y in span{s, y} to 0. So the first pair only scales B unless it
        # shows negative curvature, which the change then keeps (sᵀBs = sᵀy).
        rank_one = rank_one & ~(first & (sy > 0))
        # outer(v, v)/vᵀs rather than outer(v, v/vᵀs): symmetric to the last bit.
        new_b = jnp.where(
            rank_one, b + jnp.outer(v, v) / jnp.where(rank_one, vs, 1.0), b
        )
        # The first pair always teaches the scale γ; later ones change B only
        # through the rank-one change.
        changed = jnp.where(first, scaled, rank_one)
        finite = jnp.all(jnp.isfinite(s)) & jnp.all(jnp.isfinite(y))
        keep = changed & finite & jnp.all(jnp.isfinite(new_b))
        return SR1State(
            hessian=jnp.where(keep, new_b, state.hessian),
            count=jnp.where(keep, state.count + 1, state.count),
        )

    def reset(self, state: SR1State):
        return SR1State(
            hessian=jnp.eye(state.hessian.shape[0], dtype=state.hessian.dtype),
            count=jnp.zeros((), jnp.int32),
        )

    def is_reset(self, state: SR1State):
        return state.count == 0

    @staticmethod
    def _start_scale(evaluation: Evaluation):
        """‖∇f‖ (1 where it is zero or not finite): the model is ‖∇f‖·I before the
        first update."""
        norm = jnp.linalg.norm(evaluation.grad)
        return jnp.where(jnp.isfinite(norm) & (norm > 0), norm, 1.0)

    def _matrix(self, state: SR1State, evaluation: Evaluation):
        """B as the model uses it at this evaluation."""
        start = self._start_scale(evaluation) * jnp.eye(
            state.hessian.shape[0], dtype=state.hessian.dtype
        )
        return jnp.where(state.count == 0, start, state.hessian)

    def solves_exactly(self, context):
        return not is_iterative(context.solver)

    def solve(self, state: SR1State, evaluation, linearisation, damping, context):
        grad = evaluation.grad
        b = self._matrix(state, evaluation)
        solver = context.solver
        none = jnp.zeros((), jnp.int32)
        if is_iterative(solver):
            return solve_damped(
                lambda v: b @ v,
                -grad,
                damping,
                context,
                lambda: jnp.diagonal(b),
                solver,
            )
        if damping is None and solver is None:
            return _modified_newton_step(b, grad), none
        matrix = b if damping is None else b + jnp.diag(damping)
        if solver is None and grad.shape[0] <= MAX_UNROLLED:
            return cholesky_solve(matrix, -grad), none
        if solver is None:
            solver = lx.Cholesky()
        # Cholesky needs the tag; other factorisations must not take an indefinite
        # B for a positive one.
        tags = (
            (lx.symmetric_tag, lx.positive_semidefinite_tag)
            if isinstance(solver, lx.Cholesky)
            else lx.symmetric_tag
        )
        operator = lx.MatrixLinearOperator(matrix, tags)
        sol = lx.linear_solve(operator, -grad, solver, throw=False)
        return sol.value, none

    def quadratic(self, state: SR1State, evaluation, linearisation, p):
        start = self._start_scale(evaluation) * jnp.dot(p, p)
        return jnp.where(state.count == 0, start, jnp.dot(p, state.hessian @ p))

    def diagonal(self, state: SR1State, evaluation, linearisation):
        b = state.hessian
        n = b.shape[0]
        if n <= MAX_UNROLLED:
            # Static slices: jnp.diagonal lowers to a gather, a kernel of its own
            # in the compiled loop.
            diag = jnp.stack([b[i, i] for i in range(n)])
        else:
            diag = jnp.diagonal(b)
        start = jnp.full((n,), self._start_scale(evaluation), b.dtype)
        return jnp.where(state.count == 0, start, diag)
