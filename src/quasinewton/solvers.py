"""`Solver`, the composition of parts, and the presets."""

from typing import Any, Literal

import equinox as eqx
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Bool, Float, Scalar

from ._misc import default_tolerances
from ._problem import Evaluation
from .curvature._base import AbstractCurvature, LinearSolveContext
from .curvature.bfgs import BFGS as _BFGSCurvature
from .curvature.gauss_newton import GaussNewton as _GaussNewtonCurvature
from .curvature.lbfgs import LBFGS as _LBFGSCurvature
from .curvature.newton import Newton as _NewtonCurvature
from .descent._base import AbstractDescent
from .descent.line_search import Backtracking, Zoom
from .descent.trust_region import TrustRegion
from .linear.forcing import AbstractForcing, EisenstatWalker
from .linear.preconditioners import AbstractPreconditioner, Jacobi


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
      `None` means 1e-6 in float64 and 1e-5 in float32. `atol` is absolute:
      for an objective much smaller than 1 in size, lower it.

    **Termination.** After each accepted step from x to x⁺ the solve succeeds when
    either test holds:

    - *gradient*: maxᵢ |∇f(x⁺)ᵢ|·max(|x⁺ᵢ|, 1) ≤ atol + rtol·|f(x⁺)| — the change
      in f that a relative change in any coordinate would make is negligible
      (Dennis & Schnabel, 1996, §7.2); also checked at the start point;
    - *step*: |f(x⁺) − f(x)| ≤ atol + rtol·|f(x⁺)| and |x⁺ᵢ − xᵢ| ≤ atol + rtol·|x⁺ᵢ|
      for every i — the objective and every coordinate have stopped changing.

    Which test fired is reported as `Solution.stats["termination"]`.
    """

    curvature: AbstractCurvature
    descent: AbstractDescent
    linear_solver: lx.AbstractLinearSolver | None = None
    preconditioner: Any = None
    forcing: Any = None
    rtol: float | None = None
    atol: float | None = None

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
        if self.descent.needs_damping and self.curvature.gives_inverse:
            raise ValueError(
                f"{type(self.descent).__name__} damps a Hessian model B + λD, but "
                f"{type(self.curvature).__name__} gives only an inverse Hessian. Use a "
                "line search (qn.descent.Zoom or qn.descent.Backtracking) with it, or a "
                "Hessian model such as qn.curvature.GaussNewton."
            )
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"`{name}` must be non-negative, got {value}.")

    def tolerances(self, dtype) -> tuple[Any, Any]:
        rtol, atol = default_tolerances(dtype)
        return (
            rtol if self.rtol is None else self.rtol,
            atol if self.atol is None else self.atol,
        )

    def gradient_test(self, x: Float[Array, " n"], ev: Evaluation) -> Bool[Array, ""]:
        rtol, atol = self.tolerances(x.dtype)
        scaled = jnp.max(jnp.abs(ev.grad) * jnp.maximum(jnp.abs(x), 1.0))
        return scaled <= atol + rtol * jnp.abs(ev.f)

    def step_test(
        self, step: Float[Array, " n"], df: Scalar, x: Float[Array, " n"], f: Scalar
    ) -> Bool[Array, ""]:
        rtol, atol = self.tolerances(x.dtype)
        small_f = jnp.abs(df) <= atol + rtol * jnp.abs(f)
        small_x = jnp.all(jnp.abs(step) <= atol + rtol * jnp.abs(x))
        return small_f & small_x

    def linear_context(self, ev: Evaluation, forcing_state, step):
        """The linear-solve settings for iteration `step` and the new forcing state."""
        rtol = None
        if self.forcing is not None:
            rtol, forcing_state = self.forcing(ev, forcing_state)
        context = LinearSolveContext(self.linear_solver, self.preconditioner, rtol, step)
        return context, forcing_state


def _line_search(line_search: Literal["wolfe", "armijo"]) -> AbstractDescent:
    if line_search == "wolfe":
        return Zoom()
    if line_search == "armijo":
        return Backtracking()
    raise ValueError(f"line_search must be 'wolfe' or 'armijo', got {line_search!r}.")


def LBFGS(
    memory_size: int = 10,
    init: Literal["scaled", "ase"] = "scaled",
    *,
    alpha: float = 70.0,
    line_search: Literal["wolfe", "armijo"] = "wolfe",
    rtol: float | None = None,
    atol: float | None = None,
) -> Solver:
    """Limited-memory BFGS with a strong-Wolfe line search: the default minimiser.

    A preset: `Solver(curvature=qn.curvature.LBFGS(memory_size, init, alpha),
    descent=qn.descent.Zoom())`.

    **Arguments:**

    - `memory_size`: the number of curvature pairs kept.
    - `init`: `"scaled"` (H₀ = γI with γ = sᵀy/yᵀy) or `"ase"` (H₀ = I/`alpha`).
    - `alpha`: the stiffness guess for `init="ase"`.
    - `line_search`: `"wolfe"` (strong Wolfe, [`quasinewton.descent.Zoom`][]) or
      `"armijo"` ([`quasinewton.descent.Backtracking`][]).
    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    """
    return Solver(
        curvature=_LBFGSCurvature(memory_size=memory_size, init=init, alpha=alpha),
        descent=_line_search(line_search),
        rtol=rtol,
        atol=atol,
    )


def BFGS(
    *,
    line_search: Literal["wolfe", "armijo"] = "wolfe",
    rtol: float | None = None,
    atol: float | None = None,
) -> Solver:
    """Dense BFGS with a strong-Wolfe line search, for problems of up to a few
    thousand unknowns.

    A preset: `Solver(curvature=qn.curvature.BFGS(), descent=qn.descent.Zoom())`.

    **Arguments:**

    - `line_search`: `"wolfe"` or `"armijo"`, as for [`quasinewton.LBFGS`][].
    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    """
    return Solver(
        curvature=_BFGSCurvature(), descent=_line_search(line_search), rtol=rtol, atol=atol
    )


def Newton(
    *,
    line_search: Literal["wolfe", "armijo"] = "armijo",
    linear_solver: lx.AbstractLinearSolver | None = None,
    materialise: bool | Literal["auto"] = "auto",
    rtol: float | None = None,
    atol: float | None = None,
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
    return Solver(
        curvature=_NewtonCurvature(materialise=materialise),
        descent=_line_search(line_search),
        linear_solver=linear_solver,
        rtol=rtol,
        atol=atol,
    )


def GaussNewton(
    *,
    line_search: Literal["wolfe", "armijo"] = "armijo",
    linear_solver: lx.AbstractLinearSolver | None = None,
    materialise: bool | Literal["auto"] = "auto",
    rtol: float | None = None,
    atol: float | None = None,
) -> Solver:
    """Damped Gauss–Newton for least squares: the Gauss–Newton step JᵀJp = −Jᵀr
    with a line search on ½‖r‖².

    A preset: `Solver(curvature=qn.curvature.GaussNewton(materialise),
    descent=qn.descent.Backtracking(), linear_solver=linear_solver)`. Fast on
    well-posed, small-residual fits; for hard or rank-deficient ones prefer
    [`quasinewton.LevenbergMarquardt`][].

    **Arguments:**

    - `line_search`: `"armijo"` (default) or `"wolfe"`.
    - `linear_solver`: a Lineax solver; `None` is QR on J (dense) or CG (matrix-free).
    - `materialise`: form J densely (`True`), never (`False`) or by size (`"auto"`).
    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    """
    return Solver(
        curvature=_GaussNewtonCurvature(materialise=materialise),
        descent=_line_search(line_search),
        linear_solver=linear_solver,
        rtol=rtol,
        atol=atol,
    )


def LevenbergMarquardt(
    *,
    rtol: float | None = None,
    atol: float | None = None,
    linear_solver: lx.AbstractLinearSolver | None = None,
    scaling: Literal["identity", "marquardt"] = "identity",
    materialise: bool | Literal["auto"] = "auto",
) -> Solver:
    """Levenberg–Marquardt: the default least-squares solver.

    A preset: `Solver(curvature=qn.curvature.GaussNewton(materialise),
    descent=qn.descent.TrustRegion(scaling), linear_solver=linear_solver)`. With a
    dense J (small and medium problems) steps are solved by QR of [J; √(λD)], as in
    MINPACK; see [`quasinewton.LevenbergMarquardtCG`][]
    for problems too large for a dense Jacobian.

    **Arguments:**

    - `rtol`, `atol`: termination tolerances, see [`quasinewton.Solver`][].
    - `linear_solver`: `None` (QR), `lx.Cholesky()` (normal equations: fastest for
      many small fits), or an iterative Lineax solver.
    - `scaling`: the damping's D, see [`quasinewton.descent.TrustRegion`][].
    - `materialise`: form J densely (`True`), never (`False`) or by size (`"auto"`).
    """
    return Solver(
        curvature=_GaussNewtonCurvature(materialise=materialise),
        descent=TrustRegion(scaling=scaling),
        linear_solver=linear_solver,
        rtol=rtol,
        atol=atol,
    )


def LevenbergMarquardtCG(
    *,
    rtol: float | None = None,
    atol: float | None = None,
    preconditioner: AbstractPreconditioner | None = Jacobi(diagonal="hutchinson"),
    forcing: AbstractForcing | None = EisenstatWalker(),
    max_cg_steps: int = 100,
    scaling: Literal["marquardt", "identity"] = "identity",
) -> Solver:
    """Matrix-free Levenberg–Marquardt for large problems: J is never formed.

    Each iteration linearises the residual once and solves (JᵀJ + λD)p = −Jᵀr by
    preconditioned conjugate gradients on products Jv, Jᵀu, to the tolerance an
    Eisenstat–Walker forcing term sets (an inexact Newton method). Memory is a few
    vectors of the size of y and r, whatever the number of unknowns.

    A preset: `Solver(curvature=qn.curvature.GaussNewton(materialise=False),
    descent=qn.descent.TrustRegion(scaling), linear_solver=lx.CG(...),
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
        linear_solver=lx.CG(rtol=1e-4, atol=0.0, max_steps=max_cg_steps),
        preconditioner=preconditioner,
        forcing=forcing,
        rtol=rtol,
        atol=atol,
    )
