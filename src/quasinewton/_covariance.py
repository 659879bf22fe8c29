"""The covariance of fitted parameters: `qn.covariance` and its `Covariance`."""

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from . import _lapack
from ._solution import RESULTS, Solution
from .evaluation import JacobianEvaluation, NormalEvaluation
from .linear.cg import ConjugateGradient
from .linear.preconditioners import gauss_newton_diagonal, squared_column_norms
from .problem import Problem, SumOfSquares, make_problem

__all__ = ["Covariance", "covariance"]


class Covariance(eqx.Module):
    """The covariance of a least-squares fit's unknowns, from
    [`quasinewton.covariance`][].

    Under `jax.vmap` (or for a batched `Solution`) every field gains the batch axes.
    For a solve that did not end `successful`, `matrix`, `standard_errors`,
    `variances`, `variance_errors` and `correlation` are `nan`.

    With `matrix_free=True` only the diagonal is computed: `matrix`, `correlation`,
    `rank` and `condition_number` are `None`.

    **Attributes:**

    - `matrix`: the covariance matrix, n×n over the unknowns flattened as
      `jax.flatten_util.ravel_pytree(sol.value)` orders them. Rows and columns of
      undetermined unknowns are `inf`, and every entry is `inf` when the residual
      variance cannot be estimated (m ≤ n without `absolute_sigma`). `None` with
      `matrix_free=True`.
    - `standard_errors`: the square roots of its diagonal, in the structure of
      `y0`. With `probes`, `nan` where the estimated variance is not positive (too
      few probes to resolve it); with `select`, `nan` for the unknowns not
      selected.
    - `variances`: the diagonal itself, in the structure of `y0` (with `probes` an
      unbiased estimate, which may come out negative where it is not resolved).
    - `variance_errors`: with `probes`, the standard error of each estimated
      variance (the spread of the probes' values over √k), in the structure of
      `y0`; `None` for the exact methods.
    - `correlation`: Cᵢⱼ/√(CᵢᵢCⱼⱼ), n×n; `nan` in the rows and columns of
      undetermined unknowns. It does not depend on the residual variance. `None`
      with `matrix_free=True`.
    - `rank`: the numerical rank of the weighted Jacobian J̃ at the solution
      (`None` with `matrix_free=True`).
    - `condition_number`: σ_max/σ_min of J̃ with its columns scaled to unit norm
      (so that it does not depend on the units of the unknowns; `inf` when m < n
      or a column is zero; `None` with `matrix_free=True`).
    - `determined`: whether each unknown is determined by the data (its direction
      has no component in the null space of J̃), in the structure of `y0`. With
      `select`, `False` for the unknowns not selected (not judged).
    - `residual_variance`: s², the factor the matrix was scaled by: χ²/(m − n)
      (the reduced χ²), or 1 with `absolute_sigma=True`.
    - `degrees_of_freedom`: m − n.
    """

    matrix: Float[Array, "*batch n n"] | None
    standard_errors: PyTree[Array]
    variances: PyTree[Array]
    variance_errors: PyTree[Array] | None
    correlation: Float[Array, "*batch n n"] | None
    rank: Int[Array, "*batch"] | None
    condition_number: Float[Array, "*batch"] | None
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


def _spectrum(jacobian, normal, m, vectors: bool = True):
    """The column scales d (‖J̃ eⱼ‖), and the singular values σ (descending, n of
    them, zeros where m < n) and right singular vectors (the rows of an n×n matrix;
    `None` unless `vectors`) of the column-scaled J̃ D⁻¹, with the threshold below
    which σ counts as zero.

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
        if vectors:
            _, sv, vt = _lapack.svd(scaled)
        else:
            sv, vt = _lapack.singular_values(scaled), None
        sv = jnp.pad(sv, (0, n - sv.size))
        # The rounding of an SVD: singular values below σ_max·max(m, n)·ε are
        # indistinguishable from zero (as NumPy's `pinv` and SciPy's `curve_fit`
        # take it).
        eps = jnp.finfo(sv.dtype).eps
        return scales, sv, vt, eps * max(m, n) * sv[0]
    scales = _negligible_as_zero(jnp.sqrt(jnp.maximum(jnp.diag(normal), 0.0)), m)
    inverse = jnp.where(scales > 0, 1.0 / jnp.where(scales > 0, scales, 1.0), 0.0)
    scaled = inverse[:, None] * normal * inverse
    if vectors:
        eigenvalues, vt = _lapack.eigh(scaled)
        eigenvalues, vt = eigenvalues[::-1], vt[:, ::-1].T
    else:
        eigenvalues, vt = _lapack.symmetric_eigenvalues(scaled)[::-1], None
    sv = jnp.sqrt(jnp.maximum(eigenvalues, 0.0))
    return (
        scales,
        sv,
        vt,
        sv[0] * jnp.sqrt(_normal_rounding(m, sv.size, sv.dtype)),
    )


def jacobian_rank(
    problem: Problem, evaluation, x: Float[Array, " n"], m
) -> Int[Array, ""]:
    """The numerical rank of J̃ at `x` by the rule of [`quasinewton.covariance`][]
    (the singular values of the column-scaled J̃ above its threshold), from the J̃
    or J̃ᵀJ̃ that `evaluation` holds, or else from J̃ formed densely at `x`. Not
    differentiated: the rank is an integer."""
    x = jax.lax.stop_gradient(x)
    jacobian = normal = None
    if isinstance(evaluation, JacobianEvaluation):
        jacobian = evaluation.jacobian
    elif isinstance(evaluation, NormalEvaluation):
        normal = evaluation.normal
    else:
        _, _, jacobian, _ = problem.dense_linear_model(x)
    jacobian, normal = jax.lax.stop_gradient((jacobian, normal))
    _, sv, _, threshold = _spectrum(jacobian, normal, m, vectors=False)
    return jnp.sum(sv > threshold).astype(jnp.int32)


def _normal_rounding(m, n: int, dtype):
    """τ = max(m, n)·ε: J̃ᵀJ̃ (formed, or applied as products) holds σ² rounded to
    about τ·σ_max², so an eigenvalue below τ·λ_max (a σ below σ_max·√τ) is lost in
    the rounding and counts as zero."""
    return jnp.finfo(dtype).eps * jnp.maximum(m, n).astype(dtype)


def _residual_variance(sol: Solution, m, n: int, dtype, absolute_sigma: bool):
    """s² (χ²/(m − n), or 1 with `absolute_sigma`), whether it can be estimated
    (m > n, or `absolute_sigma`), and the degrees of freedom m − n."""
    dof = jnp.asarray(m - n, jnp.int32)
    if absolute_sigma:
        return jnp.ones((), dtype), jnp.array(True), dof
    chi2 = 2 * jnp.asarray(sol.stats["value"], dtype)
    estimable = dof > 0
    variance = jnp.where(estimable, chi2 / jnp.maximum(dof, 1).astype(dtype), jnp.inf)
    return variance, estimable, dof


def _unravel_bool(unravel, flags, dtype):
    """Booleans over the flat unknowns in the structure of `y0` (`ravel_pytree`'s
    unravel takes the unknowns' dtype)."""
    return jtu.tree_map(lambda leaf: leaf > 0.5, unravel(flags.astype(dtype)))


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
    variance, estimable, dof = _residual_variance(sol, m, n, dtype, absolute_sigma)
    matrix = jnp.where(both & estimable, unscaled * variance, jnp.inf)
    standard_errors = jnp.sqrt(jnp.diag(matrix))
    condition = jnp.where(
        sv[-1] > 0, sv[0] / jnp.where(sv[-1] > 0, sv[-1], 1.0), jnp.inf
    )
    return Covariance(
        matrix=matrix,
        standard_errors=unravel(standard_errors),
        variances=unravel(jnp.diag(matrix)),
        variance_errors=None,
        correlation=correlation,
        rank=rank.astype(jnp.int32),
        condition_number=condition,
        determined=_unravel_bool(unravel, determined, dtype),
        residual_variance=variance,
        degrees_of_freedom=dof,
    )


def _nan_unless_successful(sol: Solution, cov: Covariance) -> Covariance:
    """Away from a minimiser s²(J̃ᵀJ̃)⁺ is no covariance of anything: a failed solve
    gets nan, never finite numbers that read as error bars."""
    failed = sol.result != RESULTS.successful

    def nan(tree):
        return jtu.tree_map(lambda leaf: jnp.where(failed, jnp.nan, leaf), tree)

    return dataclasses.replace(
        cov,
        matrix=nan(cov.matrix),
        standard_errors=nan(cov.standard_errors),
        variances=nan(cov.variances),
        variance_errors=nan(cov.variance_errors),
        correlation=nan(cov.correlation),
    )


#: Residual-space probes of the column scales where they are not computed exactly
#: (`probes`, `select`): they only scale the operator and find the zero columns.
_SCALE_PROBES = 16
#: Entries (vectors × n) of one vectorised batch of CG solves.
_BATCH_ENTRIES = 2**20
#: The true residual a CG solve may end with, in units of `rtol`·‖b‖ (its own
#: test reads the recurrence, which drifts from the true residual by rounding).
_CONVERGED = 2.0


def _batch_size(count: int, size: int) -> int:
    """How many of `count` solves to vectorise at once, each with vectors of
    `size` = max(m, n) entries."""
    return max(1, min(count, _BATCH_ENTRIES // size))


def _selected(select, y0, n: int) -> Int[Array, " k"]:
    """The flat indices of `select`: a boolean mask in the structure of `y0` (each
    leaf broadcast to its leaf of `y0`), or a 1-D integer array of indices into the
    flattened unknowns."""
    leaves = jtu.tree_leaves(select)
    if len(leaves) == 1 and jnp.issubdtype(jnp.result_type(leaves[0]), jnp.integer):
        indices = leaves[0]
        if jnp.ndim(indices) != 1 or jnp.size(indices) == 0:
            raise ValueError(
                "`select` as integers is a 1-D array of indices into the flattened "
                f"unknowns; got shape {jnp.shape(indices)}."
            )
        if not isinstance(indices, jax.core.Tracer):
            concrete = np.asarray(indices)
            if concrete.min() < -n or concrete.max() >= n:
                raise ValueError(
                    f"`select` holds indices outside the {n} flattened unknowns."
                )
        return jnp.asarray(indices, jnp.int32) % n
    y0_leaves, treedef = jtu.tree_flatten(y0)
    try:
        masks = treedef.flatten_up_to(select)
    except (ValueError, TypeError):
        raise ValueError(
            "`select` must be a boolean mask in the structure of `y0` "
            f"({treedef}), or a 1-D integer array of flat indices; got "
            f"{jtu.tree_structure(select)}."
        ) from None
    flat = []
    for mask, leaf in zip(masks, y0_leaves, strict=True):
        if isinstance(mask, jax.core.Tracer):
            raise TypeError(
                "A boolean `select` must be concrete (its count fixes the number of "
                "CG solves); under `jax.jit` give it as a constant, or pass integer "
                "indices, which may be traced."
            )
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(
                f"`select` as a mask holds booleans; got dtype {mask.dtype}."
            )
        try:
            flat.append(np.broadcast_to(mask, jnp.shape(leaf)).ravel())
        except ValueError:
            raise ValueError(
                f"`select` of shape {mask.shape} does not broadcast to its unknowns "
                f"of shape {jnp.shape(leaf)}."
            ) from None
    indices = np.flatnonzero(np.concatenate(flat))
    if indices.size == 0:
        raise ValueError("`select` selects no unknown.")
    return jnp.asarray(indices, jnp.int32)


def _probe_moments(sample, count: int, solves: int, batch: int):
    """The mean and the sum of squared deviations (M₂) of `sample(i)` over
    i = 0, …, count − 1, and whether the solves of all i < `solves` converged:
    `batch` samples at a time (vectorised), merged by the update of Chan, Golub &
    LeVeque (1983), so that memory holds one batch, not every sample."""
    n, dtype = (lambda out: (out.shape[0], out.dtype))(
        jax.eval_shape(sample, jnp.zeros((), jnp.int32))[0]
    )

    def body(carry, chunk):
        total, mean, m2, ok = carry
        i = chunk * batch + jnp.arange(batch)
        values, converged = jax.vmap(sample)(i)
        valid = (i < count)[:, None]
        size = jnp.sum(valid).astype(dtype)
        chunk_mean = jnp.sum(jnp.where(valid, values, 0.0), 0) / jnp.maximum(size, 1)
        deviation = jnp.where(valid, values - chunk_mean, 0.0)
        delta = chunk_mean - mean
        new_total = total + size
        weight = size / jnp.maximum(new_total, 1)
        mean = mean + delta * weight
        m2 = m2 + jnp.sum(deviation * deviation, 0) + delta * delta * total * weight
        ok = ok & jnp.all(converged | (i >= solves))
        return (new_total, mean, m2, ok), None

    zeros = jnp.zeros(n, dtype)
    carry = (jnp.zeros((), dtype), zeros, zeros, jnp.array(True))
    chunks = jnp.arange(-(-solves // batch))
    (_, mean, m2, ok), _ = jax.lax.scan(body, carry, chunks)
    return mean, m2, ok


def _matrix_free(
    sol: Solution,
    problem: Problem,
    x: Float[Array, " n"],
    absolute_sigma: bool,
    select,
    probes: int | None,
    key: PRNGKeyArray | None,
    rtol: float | None,
    max_steps: int | None,
) -> Covariance:
    """The diagonal of s²(J̃ᵀJ̃)⁻¹ from products with J̃ and J̃ᵀ alone (see
    `covariance`, `matrix_free=True`)."""
    n, dtype = x.size, x.dtype
    m = problem.residual_size(x)
    size = max(m, n)
    _, unravel = ravel_pytree(sol.value)
    # One linearisation at the solution; every product below reuses it.
    _, product, transpose = problem.linear_model(x)
    indices = (
        None
        if probes is not None or select is None
        else _selected(select, sol.value, n)
    )
    if probes is not None:
        scale_key, probe_key = jax.random.split(key)
    else:
        scale_key = jax.random.PRNGKey(0)
    # The column scales d = (‖J̃eⱼ‖): exactly (n products) when every variance is
    # solved for exactly, else from Gaussian residual-space probes, which are zero
    # only for a zero column, with the selected columns exact.
    if probes is None and indices is None:
        squares = squared_column_norms(
            product, n, dtype, batch_size=_batch_size(n, size)
        )
    else:
        squares = gauss_newton_diagonal(
            transpose, m, dtype, scale_key, _SCALE_PROBES, gaussian=True
        )
        if indices is not None:
            exact = squared_column_norms(
                product, n, dtype, indices, _batch_size(indices.shape[0], size)
            )
            squares = squares.at[indices].set(exact)
    scales = _negligible_as_zero(jnp.sqrt(squares), m)
    kept = scales > 0
    inverse = jnp.where(kept, 1.0 / jnp.where(kept, scales, 1.0), 0.0)

    # Â = D⁻¹J̃ᵀJ̃D⁻¹ on the unknowns with nonzero columns (unit diagonal: CG on it
    # is Jacobi-preconditioned CG, and its tolerance does not depend on the units),
    # the identity on the others, which are undetermined.
    def scaled(v):
        return inverse * transpose(product(inverse * v)) + jnp.where(kept, 0.0, v)

    operator = lx.FunctionLinearOperator(
        scaled,
        jax.ShapeDtypeStruct((n,), dtype),
        tags=frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag}),
    )
    rtol = float(np.sqrt(np.finfo(dtype).eps)) if rtol is None else rtol
    cg = ConjugateGradient(
        rtol=rtol, max_steps=1000 if max_steps is None else max_steps
    )

    def solve(b):
        z, _, _ = cg.compute(cg.init(operator, {}), b, {})
        # Converged by the true residual: a singular Â leaves b's null-space
        # component in every residual, and CG stops at `max_steps` without it.
        error = jnp.linalg.norm(scaled(z) - b)
        return z, error <= _CONVERGED * rtol * jnp.linalg.norm(b)

    # A scaled variance beyond 1/τ needs an eigenvalue of Â below τ·λ_max
    # (λ_max ≥ 1, Â's diagonal being 1): one lost in the rounding of J̃ᵀJ̃.
    limit = 1.0 / _normal_rounding(m, n, dtype)
    s2, estimable, dof = _residual_variance(sol, m, n, dtype, absolute_sigma)
    if probes is None:
        wanted = jnp.arange(n) if indices is None else indices

        def one(j):
            z, converged = solve(jnp.zeros(n, dtype).at[j].set(1.0))
            return z[j], converged

        values, converged = jax.lax.map(
            one, wanted, batch_size=_batch_size(wanted.shape[0], size)
        )
        good = converged & kept[wanted] & (values <= limit) & jnp.isfinite(values)
        variances = jnp.where(
            good & estimable, s2 * values * inverse[wanted] ** 2, jnp.inf
        )
        full = jnp.full(n, jnp.nan, dtype).at[wanted].set(variances)
        determined = jnp.zeros(n, bool).at[wanted].set(good)
        standard_errors = jnp.sqrt(full)
        variance_errors = None
    else:
        mask = kept.astype(dtype)

        # Bekas, Kokiopoulou & Saad (2007): diag(Â⁻¹) ≈ (Σₖ vₖ ⊙ Â⁻¹vₖ) ⊘ (Σₖ vₖ ⊙ vₖ),
        # the denominator k for Rademacher vₖ, so each entry is a mean over probes.
        # vₖ is the sign of a normal vector g (a Rademacher vector); one solve
        # more, with g itself, tests whether Â is singular: g has a nonzero
        # component in any null space (with probability one), where Rademacher
        # signs can miss one ((1, −1) is orthogonal to half of them).
        def sample(i):
            g = jax.random.normal(jax.random.fold_in(probe_key, i), (n,), dtype)
            v = mask * jnp.where(i < probes, jnp.where(g < 0, -1.0, 1.0), g)
            z, converged = solve(v)
            return v * z, converged

        solves = probes + 1
        mean, m2, regular = _probe_moments(
            sample, probes, solves, _batch_size(solves, size)
        )
        good = kept & regular & (mean <= limit) & jnp.isfinite(mean)
        spread = jnp.sqrt(m2 / ((probes - 1) * probes))
        factor = jnp.where(good & estimable, s2 * inverse**2, jnp.inf)
        full = jnp.where(good & estimable, factor * mean, jnp.inf)
        variance_errors = unravel(jnp.where(good & estimable, factor * spread, jnp.inf))
        determined = good
        standard_errors = jnp.where(full > 0, jnp.sqrt(jnp.abs(full)), jnp.nan)
    return Covariance(
        matrix=None,
        standard_errors=unravel(standard_errors),
        variances=unravel(full),
        variance_errors=variance_errors,
        correlation=None,
        rank=None,
        condition_number=None,
        determined=_unravel_bool(unravel, determined, dtype),
        residual_variance=s2,
        degrees_of_freedom=dof,
    )


def _problem_at(sol: Solution, fn: Callable, args: Any, has_aux: bool, autodiff_mode):
    """The fit's `Problem` (with the solve's `sigma` and `loss`) and the flat
    solution."""
    objective = sol.objective if sol.objective is not None else SumOfSquares()
    problem, x, _ = make_problem(
        fn, sol.value, args, "residual", has_aux, autodiff_mode
    )
    return dataclasses.replace(problem, objective=objective), x


def _at_solution(
    sol: Solution,
    fn: Callable | None,
    args: Any,
    absolute_sigma: bool,
    has_aux: bool,
    autodiff_mode,
    matrix_free: dict | None,
) -> Covariance:
    evaluation = sol.state.evaluation
    if matrix_free is not None:
        problem, x = _problem_at(sol, fn, args, has_aux, autodiff_mode)
        return _matrix_free(sol, problem, x, absolute_sigma, **matrix_free)
    if fn is not None:
        problem, x = _problem_at(sol, fn, args, has_aux, autodiff_mode)
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
    matrix_free: bool = False,
    select: PyTree | None = None,
    probes: int | None = None,
    key: PRNGKeyArray | None = None,
    rtol: float | None = None,
    max_steps: int | None = None,
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
    the formula means nothing: its `matrix`, `standard_errors`, `variances` and
    `correlation` are `nan`.

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
    - `matrix_free`: `True` computes only the variances, the diagonal of
      s²(J̃ᵀJ̃)⁻¹, from products J̃v and J̃ᵀu of one linearisation of `fn` at the
      solution, never forming J̃ or an n×n matrix: for fits with too many unknowns
      for the dense path (images, volumes). Needs `fn`. `matrix`, `correlation`,
      `rank` and `condition_number` are then `None`. Exact by default: one
      conjugate-gradient solve (J̃ᵀJ̃)zⱼ = eⱼ per wanted unknown, Cⱼⱼ = s²(zⱼ)ⱼ;
      with `probes`, estimated.
    - `select`: with `matrix_free`, the unknowns whose variances are wanted, when
      not all are: a boolean mask in the structure of `y0` (each leaf broadcast to
      its leaf of `y0`; concrete, since it fixes the number of solves), or a 1-D
      integer array of indices into the flattened unknowns (may be traced). The
      others get `nan` standard errors and are not judged `determined`.
    - `probes`: with `matrix_free`, estimate every variance at once from this many
      (k ≥ 2) Rademacher probes vₖ instead of n solves, by the estimator of Bekas,
      Kokiopoulou & Saad (2007), diag(A⁻¹) ≈ (Σₖ vₖ ⊙ A⁻¹vₖ) ⊘ (Σₖ vₖ ⊙ vₖ): unbiased,
      with a standard error (reported in `variance_errors`) falling as 1/√k and
      growing with the correlations of each unknown with the others. The cost is
      k + 1 solves whatever n is.
    - `key`: with `probes`, the `jax.random` key of the probes.
    - `rtol`: with `matrix_free`, the relative residual tolerance of each CG solve
      (default √ε of the dtype). The variance from a solve with residual r has a
      relative error of about κ·(‖r‖/‖b‖)², κ the condition number of the
      column-scaled J̃ᵀJ̃.
    - `max_steps`: with `matrix_free`, CG iterations per solve at most (default
      1000); a solve that does not converge within them counts as singular.

    **Returns:** a [`quasinewton.Covariance`][].

    The columns of J̃ are scaled to unit norm first (Jacobi scaling), so that the
    rank and the accuracy do not depend on the units of the unknowns; a column
    below max(m, n)·ε of the largest counts as zero. On the normal-equations path
    J̃ᵀJ̃ holds σ² of the scaled J̃ rounded to about max(m, n)·ε, so directions with
    σ < σ_max·√(max(m, n)·ε) count as undetermined and the relative accuracy is
    about ε·κ², κ the condition number of the scaled J̃; pass `fn` for the SVD's
    ε·κ.

    The matrix-free path solves with Â = D⁻¹J̃ᵀJ̃D⁻¹, D the column norms of J̃
    (CG on Â is Jacobi-preconditioned CG, and its tolerance is free of units),
    and works on J̃ᵀJ̃ as the normal-equations path does. D is computed exactly
    (n products J̃eⱼ) when every variance is solved for, else estimated from
    Gaussian residual-space probes (an estimate that is zero only for a zero
    column), the selected columns exactly. An unknown is undetermined, with
    infinite variance, when its column is zero, when its solve does not converge
    (a singular J̃ᵀJ̃ leaves eⱼ's null-space component in every residual), or when
    its scaled variance exceeds 1/(max(m, n)·ε), which only an eigenvalue lost in
    the rounding of J̃ᵀJ̃ gives. With `probes` each probe involves every unknown:
    one more solve, with a Gaussian vector, tests whether J̃ᵀJ̃ is singular, and if
    it is, or a probe's solve does not converge, every unknown with a nonzero
    column is undetermined (`select` then finds which).
    """
    if sol.stats.get("num_residuals") is None:
        raise TypeError(
            "`qn.covariance` needs the Solution of `qn.least_squares`; this one is "
            "from `qn.minimise`."
        )
    options = _matrix_free_options(
        fn, matrix_free, select, probes, key, rtol, max_steps
    )
    batch = jnp.ndim(sol.result._value)
    if batch and fn is not None:
        raise ValueError(
            "With `fn`, `qn.covariance` forms J̃ for one fit: call it inside the "
            "`jax.vmap` of the batch, e.g. `jax.vmap(lambda s, a: "
            "qn.covariance(s, fn, a))(sol, args)`."
        )

    def single(sol):
        cov = _at_solution(
            sol, fn, args, absolute_sigma, has_aux, autodiff_mode, options
        )
        return _nan_unless_successful(sol, cov)

    for _ in range(batch):
        single = jax.vmap(single)
    return single(sol)


def _matrix_free_options(fn, matrix_free, select, probes, key, rtol, max_steps):
    """The options of `matrix_free=True` as keywords of `_matrix_free` (`None`
    without it), with clear errors for options that do not fit together."""
    given = {
        "select": select,
        "probes": probes,
        "key": key,
        "rtol": rtol,
        "max_steps": max_steps,
    }
    if not matrix_free:
        named = [name for name, value in given.items() if value is not None]
        if named:
            raise ValueError(
                f"`{'`, `'.join(named)}` are options of `matrix_free=True` (the "
                "dense covariance takes none)."
            )
        return None
    if fn is None:
        raise TypeError(
            "`matrix_free=True` takes products with J̃ at the solution from the "
            "residual function: pass it and its arguments, "
            "`qn.covariance(sol, fn, args, matrix_free=True)`."
        )
    if probes is not None:
        if isinstance(probes, bool) or not isinstance(probes, int) or probes < 2:
            raise ValueError(
                "`probes` is the number of random probes, an int ≥ 2 (their spread "
                f"gives the estimate's error); got {probes!r}."
            )
        if key is None:
            raise ValueError(
                "`probes` needs a `key` (e.g. `jax.random.key(0)`) to draw them."
            )
        if select is not None:
            raise ValueError(
                "`select` picks unknowns for exact solves; `probes` estimates every "
                "variance at once. Give one of them."
            )
    elif key is not None:
        raise ValueError(
            "`key` seeds the `probes`; the exact solves (without `probes`) use none."
        )
    return given
