"""The covariance of fitted parameters: `qn.covariance` and its `Covariance`."""

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int, PyTree

from . import _lapack
from ._solution import RESULTS, Solution
from .evaluation import JacobianEvaluation, NormalEvaluation
from .problem import SumOfSquares, make_problem

__all__ = ["Covariance", "covariance"]


class Covariance(eqx.Module):
    """The covariance of a least-squares fit's unknowns, from
    [`quasinewton.covariance`][].

    Under `jax.vmap` (or for a batched `Solution`) every field gains the batch axes.
    For a solve that did not end `successful`, `matrix`, `standard_errors` and
    `correlation` are `nan`.

    **Attributes:**

    - `matrix`: the covariance matrix, n×n over the unknowns flattened as
      `jax.flatten_util.ravel_pytree(sol.value)` orders them. Rows and columns of
      undetermined unknowns are `inf`, and every entry is `inf` when the residual
      variance cannot be estimated (m ≤ n without `absolute_sigma`).
    - `standard_errors`: the square roots of its diagonal, in the structure of
      `y0`.
    - `correlation`: Cᵢⱼ/√(CᵢᵢCⱼⱼ), n×n; `nan` in the rows and columns of
      undetermined unknowns. It does not depend on the residual variance.
    - `rank`: the numerical rank of the weighted Jacobian J̃ at the solution.
    - `condition_number`: σ_max/σ_min of J̃ with its columns scaled to unit norm
      (so that it does not depend on the units of the unknowns; `inf` when m < n
      or a column is zero).
    - `determined`: whether each unknown is determined by the data (its direction
      has no component in the null space of J̃), in the structure of `y0`.
    - `residual_variance`: s², the factor the matrix was scaled by: χ²/(m − n)
      (the reduced χ²), or 1 with `absolute_sigma=True`.
    - `degrees_of_freedom`: m − n.
    """

    matrix: Float[Array, "*batch n n"]
    standard_errors: PyTree[Array]
    correlation: Float[Array, "*batch n n"]
    rank: Int[Array, "*batch"]
    condition_number: Float[Array, "*batch"]
    determined: PyTree[Array]
    residual_variance: Float[Array, "*batch"]
    degrees_of_freedom: Int[Array, "*batch"]

    @property
    def all_determined(self) -> Bool[Array, "*batch"]:
        """Whether every unknown is determined (per fit under a batch)."""
        leaves = [jnp.all(leaf) for leaf in jtu.tree_leaves(self.determined)]
        return jnp.all(jnp.stack(leaves))


def _negligible_as_zero(scales, m):
    """The column norms, with those below the rounding of the largest (SciPy's SVD
    threshold max(m, n)·ε, applied to the columns) set to 0: such an unknown does
    not move the residuals in floating point, whatever its units."""
    eps = jnp.finfo(scales.dtype).eps
    size = jnp.maximum(m, scales.size).astype(scales.dtype)
    return jnp.where(scales > eps * size * jnp.max(scales), scales, 0.0)


def _spectrum(jacobian, normal, m):
    """The column scales d (‖J̃ eⱼ‖), and the singular values σ (descending, n of
    them, zeros where m < n) and right singular vectors (the rows of an n×n matrix)
    of the column-scaled J̃ D⁻¹, with the threshold below which σ counts as zero.

    Scaling the columns to unit norm makes the rank, the condition number and the
    accuracy independent of the units of the unknowns (a rate in 1/s or 1/ms), and
    lets the normal-equations path resolve badly scaled but well-posed fits, where
    κ(J̃) itself is far beyond 1/√ε."""
    if jacobian is not None:
        n = jacobian.shape[1]
        scales = _negligible_as_zero(jnp.sqrt(jnp.sum(jacobian * jacobian, axis=0)), m)
        scaled = jnp.where(
            scales > 0, jacobian / jnp.where(scales > 0, scales, 1.0), 0.0
        )
        _, sv, vt = _lapack.svd(scaled)
        sv = jnp.pad(sv, (0, n - sv.size))
        # The rounding of an SVD: singular values below σ_max·max(m, n)·ε are
        # indistinguishable from zero (as NumPy's `pinv` and SciPy's `curve_fit`
        # take it).
        eps = jnp.finfo(sv.dtype).eps
        return scales, sv, vt, eps * max(m, n) * sv[0]
    scales = _negligible_as_zero(jnp.sqrt(jnp.maximum(jnp.diag(normal), 0.0)), m)
    inverse = jnp.where(scales > 0, 1.0 / jnp.where(scales > 0, scales, 1.0), 0.0)
    eigenvalues, vectors = _lapack.eigh(inverse[:, None] * normal * inverse)
    eigenvalues, vectors = eigenvalues[::-1], vectors[:, ::-1]
    sv = jnp.sqrt(jnp.maximum(eigenvalues, 0.0))
    # J̃ᵀJ̃ holds σ² rounded to about max(m, n)·ε·σ_max²: a σ below
    # σ_max·√(max(m, n)·ε) is lost in the rounding and counts as zero.
    eps = jnp.finfo(sv.dtype).eps
    size = jnp.maximum(m, normal.shape[0]).astype(sv.dtype)
    return scales, sv, vectors.T, sv[0] * jnp.sqrt(eps * size)


def _from_jacobian(sol: Solution, jacobian, normal, absolute_sigma: bool):
    flat, unravel = ravel_pytree(sol.value)
    n = flat.size
    if jacobian is not None:
        m = jacobian.shape[0]
    else:
        m = jnp.asarray(sol.stats["num_residuals"])
    scales, sv, vt, threshold = _spectrum(jacobian, normal, m)
    dtype = sv.dtype
    kept = sv > threshold
    rank = jnp.sum(kept)
    inverse_square = jnp.where(kept, 1.0 / jnp.where(kept, sv, 1.0) ** 2, 0.0)
    scaled = (vt.T * inverse_square) @ vt
    # An unknown is undetermined when its direction leaves the span of the kept
    # right singular vectors (a zero column of J̃ among them): its variance is
    # infinite, not the pseudo-inverse's.
    in_span = jnp.sum(jnp.where(kept[:, None], vt * vt, 0.0), axis=0)
    determined = (1.0 - in_span <= jnp.sqrt(jnp.finfo(dtype).eps)) & (scales > 0)
    both = determined[:, None] & determined[None, :]
    root = jnp.sqrt(jnp.where(determined, jnp.diag(scaled), 1.0))
    correlation = jnp.where(both, scaled / (root[:, None] * root[None, :]), jnp.nan)
    inverse_scales = 1.0 / jnp.where(scales > 0, scales, 1.0)
    unscaled = inverse_scales[:, None] * scaled * inverse_scales[None, :]
    dof = jnp.asarray(m - n, jnp.int32)
    chi2 = 2 * jnp.asarray(sol.stats["value"], dtype)
    if absolute_sigma:
        variance = jnp.ones((), dtype)
        estimable = jnp.array(True)
    else:
        estimable = dof > 0
        variance = jnp.where(
            estimable, chi2 / jnp.maximum(dof, 1).astype(dtype), jnp.inf
        )
    matrix = jnp.where(both & estimable, unscaled * variance, jnp.inf)
    standard_errors = jnp.sqrt(jnp.diag(matrix))
    condition = jnp.where(
        sv[-1] > 0, sv[0] / jnp.where(sv[-1] > 0, sv[-1], 1.0), jnp.inf
    )
    return Covariance(
        matrix=matrix,
        standard_errors=unravel(standard_errors),
        correlation=correlation,
        rank=rank.astype(jnp.int32),
        condition_number=condition,
        determined=jtu.tree_map(
            lambda leaf: leaf > 0.5, unravel(determined.astype(dtype))
        ),
        residual_variance=variance,
        degrees_of_freedom=dof,
    )


def _nan_unless_successful(sol: Solution, cov: Covariance) -> Covariance:
    """Away from a minimiser s²(J̃ᵀJ̃)⁺ is no covariance of anything: a failed solve
    gets nan, never finite numbers that read as error bars."""
    failed = sol.result != RESULTS.successful
    return eqx.tree_at(
        lambda c: (c.matrix, c.standard_errors, c.correlation),
        cov,
        jtu.tree_map(
            lambda leaf: jnp.where(failed, jnp.nan, leaf),
            (cov.matrix, cov.standard_errors, cov.correlation),
        ),
    )


def _at_solution(
    sol: Solution,
    fn: Callable | None,
    args: Any,
    absolute_sigma: bool,
    has_aux: bool,
    autodiff_mode,
) -> Covariance:
    evaluation = sol.state.evaluation
    if fn is not None:
        objective = sol.objective if sol.objective is not None else SumOfSquares()
        problem, x, _ = make_problem(
            fn, sol.value, args, "residual", has_aux, autodiff_mode
        )
        problem = dataclasses.replace(problem, objective=objective)
        _, _, jacobian, _ = problem.dense_linear_model(x)
        return _from_jacobian(sol, jacobian, None, absolute_sigma)
    if isinstance(evaluation, JacobianEvaluation):
        return _from_jacobian(sol, evaluation.jacobian, None, absolute_sigma)
    if isinstance(evaluation, NormalEvaluation):
        return _from_jacobian(sol, None, evaluation.normal, absolute_sigma)
    raise TypeError(
        "This solution's model keeps no Jacobian at the solution (a quasi-Newton or "
        "matrix-free solve, or `minimise`). Pass the residual function and its "
        "arguments, `qn.covariance(sol, fn, args)`, to form J at the solution."
    )


def covariance(
    sol: Solution,
    fn: Callable | None = None,
    args: Any = None,
    *,
    absolute_sigma: bool = False,
    has_aux: bool = False,
    autodiff_mode: Literal["auto", "forward", "reverse"] = "auto",
) -> Covariance:
    """The covariance of the unknowns of a [`quasinewton.least_squares`][] fit.

    With J̃ the Jacobian of the weighted (`sigma`) and loss-corrected (`loss`)
    residuals at the solution, the covariance is s²(J̃ᵀJ̃)⁺ with the pseudo-inverse
    taken from an SVD of J̃ (singular values below σ_max·max(m, n)·ε dropped, as in
    SciPy's `curve_fit`), and s² the reduced χ² = 2f/(m − n) (f the cost at the
    solution), or s² = 1 with `absolute_sigma=True`, when `sigma` holds the true
    standard deviations of the data. This is the asymptotic covariance of the
    estimates for independent errors (Seber & Wild, *Nonlinear Regression*, 1989,
    §2.1).

    Undetermined unknowns (m < n, or a J̃ that is rank-deficient in their direction)
    get infinite variance, never a finite wrong number; `rank`, `determined` and
    `condition_number` say which and how close to it the fit is. A solve that did
    not end `successful` (under `jax.vmap`, per fit) is not at a minimiser, where
    the formula means nothing: its `matrix`, `standard_errors` and `correlation`
    are `nan`.

    **Arguments:**

    - `sol`: a `Solution` of `least_squares`. Dense Gauss–Newton models
      ([`quasinewton.LevenbergMarquardt`][], [`quasinewton.GaussNewton`][]) keep J̃
      (or J̃ᵀJ̃ on the normal-equations path, n ≤ 8) at the solution, so nothing is
      evaluated anew. A batched `Solution` (from `jax.vmap`) gives a batched
      `Covariance`, one per fit.
    - `fn`, `args`: the residual function and its arguments, as given to
      `least_squares`; needed only for models that keep no Jacobian (L-BFGS, BFGS,
      matrix-free CG): J̃ is then formed at the solution. Also accepted for dense
      models, to use the SVD of J̃ rather than the normal matrix. With `fn`, call
      `covariance` inside the `jax.vmap` of a batch.
    - `absolute_sigma`: take `sigma` as absolute standard deviations (s² = 1)
      rather than relative weights (s² = reduced χ²).
    - `has_aux`, `autodiff_mode`: as given to `least_squares`, with `fn`.

    **Returns:** a [`quasinewton.Covariance`][].

    The columns of J̃ are scaled to unit norm first (Jacobi scaling), so that the
    rank and the accuracy do not depend on the units of the unknowns; a column
    below max(m, n)·ε of the largest counts as zero. On the normal-equations path
    J̃ᵀJ̃ holds σ² of the scaled J̃ rounded to about max(m, n)·ε, so directions with
    σ < σ_max·√(max(m, n)·ε) count as undetermined and the relative accuracy is
    about ε·κ², κ the condition number of the scaled J̃; pass `fn` for the SVD's
    ε·κ.
    """
    if sol.stats.get("num_residuals") is None:
        raise TypeError(
            "`qn.covariance` needs the Solution of `qn.least_squares`; this one is "
            "from `qn.minimise`."
        )
    batch = jnp.ndim(sol.result._value)
    if batch and fn is not None:
        raise ValueError(
            "With `fn`, `qn.covariance` forms J̃ for one fit: call it inside the "
            "`jax.vmap` of the batch, e.g. `jax.vmap(lambda s, a: "
            "qn.covariance(s, fn, a))(sol, args)`."
        )

    def single(sol):
        cov = _at_solution(sol, fn, args, absolute_sigma, has_aux, autodiff_mode)
        return _nan_unless_successful(sol, cov)

    for _ in range(batch):
        single = jax.vmap(single)
    return single(sol)
