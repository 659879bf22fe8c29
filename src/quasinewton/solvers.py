"""`Solver`, the composition of parts, and the presets."""

from typing import Any, Literal

import equinox as eqx
import lineax as lx
import numpy as np
from jaxtyping import ArrayLike, Real

from ._misc import check_real, default_tolerances
from .curvature._base import AbstractCurvature
from .curvature.bfgs import BFGS as _BFGSCurvature
from .curvature.gauss_newton import GaussNewton as _GaussNewtonCurvature
from .curvature.lbfgs import LBFGS as _LBFGSCurvature
from .curvature.newton import Newton as _NewtonCurvature
from .descent._base import AbstractDescent
from .descent.line_search import Backtracking, Zoom
from .descent.trust_region import TrustRegion
from .evaluation import Evaluation
from .linear.cg import ConjugateGradient
from .linear.context import LinearSolveContext
from .linear.forcing import AbstractForcing, EisenstatWalker
from .linear.preconditioners import AbstractPreconditioner, Jacobi
from .termination import AbstractTermination, Gradient, RelativeDecrease, Step


class Solver(eqx.Module):
    """A solver composed of a curvature model, a linear solve and a descent rule.

    **Arguments:**

    - `curvature`: the local model, e.g. [`quasinewton.curvature.LBFGS`][] or
      [`quasinewton.curvature.GaussNewton`][].
    - `descent`: the globalisation, e.g. [`quasinewton.descent.Zoom`][] (strong
      Wolfe) or [`quasinewton.descent.TrustRegion`][] (Levenberg–Marquardt).
    - `linear_solver`: a Lineax solver for models that give a Hessian approximation
      B (e.g. `lx.Cholesky()`, `lx.QR()`, `lx.CG(rtol, atol)`); `None` picks a
      default suited to the model. Unused by inverse models (L-BFGS, BFGS).
    - `preconditioner`: a preconditioner part for iterative linear solvers, e.g.
      [`quasinewton.linear.Jacobi`][].
    - `forcing`: a forcing term for the tolerance of iterative linear solvers, e.g.
      [`quasinewton.linear.EisenstatWalker`][].
    - `rtol`, `atol`: relative and absolute tolerances of the termination tests;
      `None` means rtol = 1e-8 in float64 and 1e-5 in lower precision, and
      atol = 0. The tests are relative by default, so that the outcome of a solve
      does not depend on the units of the objective: multiplying f (or the
      residuals) by a constant, or adding a constant to f, changes no result. A
      positive `atol` adds absolute tests (on the gradient, the change in f and
      the step), for users who know the size of what they solve.
    - `termination`: the tests that end a solve as `successful`, checked after
      every accepted step (and at the start point) in order: a tuple of
      [`quasinewton.termination.AbstractTermination`][] parts. `None` means
      `(termination.Gradient(), termination.Step())`; the quasi-Newton presets
      ([`quasinewton.LBFGS`][], [`quasinewton.BFGS`][]) add
      [`quasinewton.termination.RelativeDecrease`][].

    **Precision.** When the descent rule can find no better point and the
    decrease its model predicts is below √eps·|f| (the tolerances ask for more
    than the arithmetic allows), the solve ends `successful` (termination
    `precision`) only if the iterate is stationary to √rtol (the gradient has
    fallen by that factor from the start, or the first-order change G is at most
    √rtol·S, see [`quasinewton.termination.Progress`][]) or the model's own
    undamped step, without quasi-Newton memory, predicts a gain of at most rtol·S
    (see `AbstractDescent.undamped_decrease`); otherwise a quasi-Newton
    memory is cleared and the search restarted once, and then the solve reports
    `search_failed` (or `nonfinite` when the last trial was not finite). A
    descent rule that could not find a finite, better point therefore never ends
    `successful` far from a stationary point, whatever the units.

    Which test fired is reported as `Solution.stats["termination"]`.
    """

    curvature: AbstractCurvature
    descent: AbstractDescent
    linear_solver: lx.AbstractLinearSolver | None = None
    preconditioner: AbstractPreconditioner | None = None
    forcing: AbstractForcing | None = None
    rtol: Real[ArrayLike, ""] | None = None
    atol: Real[ArrayLike, ""] | None = None
    termination: tuple[AbstractTermination, ...] | None = None

    def __check_init__(self):
        if not isinstance(self.curvature, AbstractCurvature):
            raise TypeError(
                "`curvature` must be a curvature part such as qn.curvature.LBFGS(); "
                f"got {type(self.curvature).__name__}."
            )
        if not isinstance(self.descent, AbstractDescent):
            raise TypeError(
                "`descent` must be a descent part such as qn.descent.Zoom(); "
                f"got {type(self.descent).__name__}."
            )
        if self.termination is not None and not all(
            isinstance(test, AbstractTermination) for test in self.termination
        ):
            raise TypeError(
                "`termination` must be a tuple of termination parts such as "
                "(qn.termination.Gradient(), qn.termination.Step())."
            )
        if self.descent.needs_hessian and not self.curvature.has_hessian:
            raise ValueError(
                f"{type(self.descent).__name__} needs a Hessian model B, but "
                f"{type(self.curvature).__name__} gives only an inverse Hessian. Use a "
                "line search (qn.descent.Zoom or qn.descent.Backtracking) with it, or a "
                "Hessian model such as qn.curvature.GaussNewton."
            )
        if self.preconditioner is not None and not isinstance(
            self.preconditioner, AbstractPreconditioner
        ):
            raise TypeError(
                "`preconditioner` must be a preconditioner part such as "
                f"qn.linear.Jacobi(); got {type(self.preconditioner).__name__}."
            )
        if self.forcing is not None and not isinstance(self.forcing, AbstractForcing):
            raise TypeError(
                "`forcing` must be a forcing part such as qn.linear.EisenstatWalker(); "
                f"got {type(self.forcing).__name__}."
            )
        if (self.preconditioner is not None or self.forcing is not None) and (
            not self.curvature.solves_linear_system
        ):
            raise ValueError(
                f"{type(self.curvature).__name__} solves no linear system, so a "
                "preconditioner or forcing term would be ignored; drop them or use a "
                "Hessian model (qn.curvature.GaussNewton, qn.curvature.Newton)."
            )
        for name in ("rtol", "atol"):
            # A real number ≥ 0 and finite, or None for the default.
            check_real(name, getattr(self, name), allow_none=True)

    def tolerances(self, dtype) -> tuple[Any, Any]:
        """`(rtol, atol)` for arrays of `dtype`, defaults filled in."""
        rtol, atol = default_tolerances(dtype)
        return (
            rtol if self.rtol is None else self.rtol,
            atol if self.atol is None else self.atol,
        )

    def termination_tests(self) -> tuple[AbstractTermination, ...]:
        """The termination tests, defaults filled in."""
        if self.termination is None:
            return (Gradient(), Step())
        return tuple(self.termination)

    def linear_context(self, ev: Evaluation, forcing_state, step):
        """The linear-solve settings for iteration `step` and the new forcing state."""
        rtol = None
        if self.forcing is not None:
            rtol, forcing_state = self.forcing(ev, forcing_state)
        context = LinearSolveContext(
            self.linear_solver, self.preconditioner, rtol, step
        )
        return context, forcing_state


#: The quasi-Newton presets' tests: the defaults and L-BFGS-B's relative decrease.
_QUASI_NEWTON_TESTS = (Gradient(), Step(), RelativeDecrease())


def _line_search(line_search: Literal["wolfe", "armijo"]) -> AbstractDescent:
    if line_search == "wolfe":
        return Zoom()
    if line_search == "armijo":
        return Backtracking()
    raise ValueError(f"line_search must be 'wolfe' or 'armijo', got {line_search!r}.")


def _line_search_preset(curvature, line_search, linear_solver, rtol, atol) -> Solver:
    return Solver(
        curvature=curvature,
        descent=_line_search(line_search),
        linear_solver=linear_solver,
        rtol=rtol,
        atol=atol,
    )


def LBFGS(
    memory_size: int | np.integer = 10,
    init: Literal["diagonal", "scaled", "ase"] = "diagonal",
    *,
    alpha: Real[ArrayLike, ""] = 70.0,
    scaling: Literal["start", "none"] = "start",
    line_search: Literal["wolfe", "armijo"] = "wolfe",
    rtol: Real[ArrayLike, ""] | None = None,
    atol: Real[ArrayLike, ""] | None = None,
) -> Solver:
    """Limited-memory BFGS with a strong-Wolfe line search: the default minimiser.

    A preset: `Solver(curvature=qn.curvature.LBFGS(memory_size, init, alpha,
    scaling=scaling), descent=qn.descent.Zoom(), termination=(Gradient(), Step(),
    RelativeDecrease()))`, the tests from [`quasinewton.termination`][].

    **Arguments:**

    - `memory_size`: the number of curvature pairs kept.
    - `init`: `"diagonal"` (H₀ = D, a diagonal learnt from the curvature pairs),
      `"scaled"` (H₀ = γI with γ = sᵀy/yᵀy) or `"ase"` (H₀ = I/`alpha`); see
      [`quasinewton.curvature.LBFGS`][].
    - `alpha`: the stiffness guess for `init="ase"`.
    - `scaling`: `"start"` (H₀ starts from a shape D given by the sizes of the
      unknowns at the start when they differ by a factor 1000 or more) or `"none"`
      (from I); see [`quasinewton.curvature.LBFGS`][].
    - `line_search`: `"wolfe"` (strong Wolfe, [`quasinewton.descent.Zoom`][]) or
      `"armijo"` ([`quasinewton.descent.Backtracking`][]).
    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    """
    return Solver(
        curvature=_LBFGSCurvature(
            memory_size=memory_size, init=init, alpha=alpha, scaling=scaling
        ),
        descent=_line_search(line_search),
        rtol=rtol,
        atol=atol,
        termination=_QUASI_NEWTON_TESTS,
    )


def BFGS(
    *,
    scaling: Literal["start", "none"] = "start",
    line_search: Literal["wolfe", "armijo"] = "wolfe",
    rtol: Real[ArrayLike, ""] | None = None,
    atol: Real[ArrayLike, ""] | None = None,
) -> Solver:
    """Dense BFGS with a strong-Wolfe line search, for problems of up to a few
    thousand unknowns.

    A preset: `Solver(curvature=qn.curvature.BFGS(scaling=scaling),
    descent=qn.descent.Zoom(), termination=(Gradient(), Step(), RelativeDecrease()))`,
    the tests from [`quasinewton.termination`][].

    **Arguments:**

    - `scaling`: the shape of H₀, `"start"` (from the sizes of the unknowns at the
      start when they differ by a factor 1000 or more) or `"none"` (I); see
      [`quasinewton.curvature.BFGS`][].
    - `line_search`: `"wolfe"` or `"armijo"`, as for [`quasinewton.LBFGS`][].
    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    """
    return Solver(
        curvature=_BFGSCurvature(scaling=scaling),
        descent=_line_search(line_search),
        rtol=rtol,
        atol=atol,
        termination=_QUASI_NEWTON_TESTS,
    )


def Newton(
    *,
    line_search: Literal["wolfe", "armijo"] = "armijo",
    linear_solver: lx.AbstractLinearSolver | None = None,
    materialise: bool | Literal["auto"] = "auto",
    rtol: Real[ArrayLike, ""] | None = None,
    atol: Real[ArrayLike, ""] | None = None,
) -> Solver:
    """Newton's method with a line search: steps solve ∇²f p = −∇f with the exact
    Hessian (dense and Cholesky for small n, Hessian-vector products and CG —
    Newton–CG — for large n).

    A preset: `Solver(curvature=qn.curvature.Newton(materialise),
    descent=qn.descent.Backtracking(), linear_solver=linear_solver)`. Quadratic
    convergence near a minimiser at the price of second derivatives; for
    non-convex problems prefer a trust region,
    `Solver(curvature=qn.curvature.Newton(), descent=qn.descent.TrustRegion())`.

    **Arguments:**

    - `line_search`: `"armijo"` (default) or `"wolfe"`.
    - `linear_solver`: a Lineax solver; `None` is Cholesky (dense) or CG.
    - `materialise`: form the Hessian (`True`), never (`False`) or by size (`"auto"`).
    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    """
    return _line_search_preset(
        _NewtonCurvature(materialise=materialise),
        line_search,
        linear_solver,
        rtol,
        atol,
    )


def GaussNewton(
    *,
    line_search: Literal["wolfe", "armijo"] = "armijo",
    linear_solver: lx.AbstractLinearSolver | None = None,
    materialise: bool | Literal["auto"] = "auto",
    rtol: Real[ArrayLike, ""] | None = None,
    atol: Real[ArrayLike, ""] | None = None,
) -> Solver:
    """Damped Gauss–Newton for least squares: the Gauss–Newton step JᵀJp = −Jᵀr
    with a line search on ½‖r‖².

    A preset: `Solver(curvature=qn.curvature.GaussNewton(materialise,
    normal_equations), descent=qn.descent.Backtracking(),
    linear_solver=linear_solver)`, with `normal_equations="auto"` when no linear
    solver is named, `True` for `lx.Cholesky()` and `False` otherwise. Fast on
    well-posed, small-residual fits; for hard or rank-deficient ones prefer
    [`quasinewton.LevenbergMarquardt`][].

    **Arguments:**

    - `line_search`: `"armijo"` (default) or `"wolfe"`.
    - `linear_solver`: a Lineax solver; `None` is Cholesky of JᵀJ for n ≤ 8 (the
      lean path, see `normal_equations` of [`quasinewton.curvature.GaussNewton`][]),
      else QR on J (dense) or CG (matrix-free).
    - `materialise`: form J densely (`True`), never (`False`) or by size (`"auto"`).
    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    """
    return _line_search_preset(
        _gauss_newton(materialise, linear_solver),
        line_search,
        linear_solver,
        rtol,
        atol,
    )


def _gauss_newton(materialise, linear_solver) -> _GaussNewtonCurvature:
    """Gauss–Newton in its normal-equations form when the solve is a Cholesky, and
    by size (n ≤ 8, the lean path) when no solver is named."""
    if materialise is False:
        normal = False
    elif linear_solver is None:
        normal = "auto"
    else:
        normal = isinstance(linear_solver, lx.Cholesky)
    return _GaussNewtonCurvature(materialise=materialise, normal_equations=normal)


def LevenbergMarquardt(
    *,
    rtol: Real[ArrayLike, ""] | None = None,
    atol: Real[ArrayLike, ""] | None = None,
    linear_solver: lx.AbstractLinearSolver | None = None,
    scaling: Literal["identity", "marquardt"] = "identity",
    materialise: bool | Literal["auto"] = "auto",
) -> Solver:
    """Levenberg–Marquardt: the default least-squares solver.

    A preset: `Solver(curvature=qn.curvature.GaussNewton(materialise,
    normal_equations), descent=qn.descent.TrustRegion(scaling),
    linear_solver=linear_solver)`, with `normal_equations` chosen from the linear
    solver as for [`quasinewton.GaussNewton`][]. With a
    dense J, steps of small problems (n ≤ 8) solve the normal equations
    (JᵀJ + λD)p = −Jᵀr by a Cholesky factorisation written out entry by entry (the
    lean path for many small fits under `jax.vmap`), and larger ones use QR of
    [J; √(λD)], as MINPACK does; see [`quasinewton.LevenbergMarquardtCG`][] for
    problems too large for a dense Jacobian.

    **Arguments:**

    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    - `linear_solver`: `None` (by size, as above), `lx.QR()` (always QR: use it for
      ill-conditioned small problems, cond(J) near 1/√eps), `lx.Cholesky()` (always
      the normal equations; see `normal_equations` of
      [`quasinewton.curvature.GaussNewton`][]), or an iterative Lineax solver.
    - `scaling`: the damping's D, see [`quasinewton.descent.TrustRegion`][].
    - `materialise`: form J densely (`True`), never (`False`) or by size (`"auto"`).
    """
    return Solver(
        curvature=_gauss_newton(materialise, linear_solver),
        descent=TrustRegion(scaling=scaling),
        linear_solver=linear_solver,
        rtol=rtol,
        atol=atol,
    )


def LevenbergMarquardtCG(
    *,
    rtol: Real[ArrayLike, ""] | None = None,
    atol: Real[ArrayLike, ""] | None = None,
    preconditioner: AbstractPreconditioner | None = Jacobi(diagonal="hutchinson"),
    forcing: AbstractForcing | None = EisenstatWalker(),
    max_cg_steps: int | np.integer = 100,
    scaling: Literal["marquardt", "identity"] = "identity",
) -> Solver:
    """Matrix-free Levenberg–Marquardt for large problems: J is never formed.

    Each iteration linearises the residual once and solves (JᵀJ + λD)p = −Jᵀr by
    preconditioned conjugate gradients on products Jv, Jᵀu, to the tolerance an
    Eisenstat–Walker forcing term sets (an inexact Newton method). Memory is a few
    vectors of the size of y and r, whatever the number of unknowns.

    A preset: `Solver(curvature=qn.curvature.GaussNewton(materialise=False),
    descent=qn.descent.TrustRegion(scaling),
    linear_solver=qn.linear.ConjugateGradient(...),
    preconditioner=preconditioner, forcing=forcing)`.

    **Arguments:**

    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    - `preconditioner`: default Jacobi from a Hutchinson estimate of diag(JᵀJ);
      `qn.linear.Jacobi("exact")` costs n products per iteration; `None` for none.
    - `forcing`: the CG tolerance rule; `None` keeps CG's rtol = 1e-4.
    - `max_cg_steps`: CG iterations per linear solve at most.
    - `scaling`: D; `"identity"` by default since an exact diag(JᵀJ) costs n products.
    """
    return Solver(
        curvature=_GaussNewtonCurvature(materialise=False),
        descent=TrustRegion(scaling=scaling),
        linear_solver=ConjugateGradient(rtol=1e-4, max_steps=max_cg_steps),
        preconditioner=preconditioner,
        forcing=forcing,
        rtol=rtol,
        atol=atol,
    )
