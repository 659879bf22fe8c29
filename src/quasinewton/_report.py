"""A fit report: `qn.report`, the numbers a paper or a lab book needs."""

import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from ._covariance import covariance
from ._solution import RESULTS, Solution

__all__ = ["report"]

#: Correlations of at most this size are left out of the report (lmfit's default).
MIN_CORRELATION = 0.1


def _names(value) -> list[str]:
    """A name for each flattened unknown: `y` with the pytree path and the index
    within the leaf, e.g. `y['rate']`, `y[2]` or `y['centres'][3]`."""
    names = []
    for path, leaf in jtu.tree_leaves_with_path(value):
        base = "y" + jtu.keystr(path)
        for index in np.ndindex(*np.shape(leaf)):
            names.append(base + "".join(f"[{i}]" for i in index))
    return names


def _g(x) -> str:
    return f"{float(x):.6g}"


def report(
    sol: Solution,
    fn: Callable | None = None,
    args: Any = None,
    *,
    absolute_sigma: bool = False,
) -> str:
    """A readable report of a [`quasinewton.least_squares`][] fit, in the manner of
    lmfit's `fit_report`.

    For one fit: the method, result and termination test, evaluations, data points
    m, unknowns n, the cost f, χ² = 2f (the weighted sum of squares ‖r/σ‖², or
    twice the robust cost with a loss), the reduced χ²/(m − n), Akaike's and the
    Bayesian information criterion (AIC = m·ln(χ²/m) + 2n and
    BIC = m·ln(χ²/m) + n·ln m, as lmfit defines them), each unknown's value ±
    standard error (and relative, in %), the correlations larger than 0.1 in size,
    and warnings (undetermined unknowns, a failed solve). For a batch (a `Solution`
    from `jax.vmap`): the number of fits with each result and the spread of each
    unknown over the successful fits (min, median, max, and the median standard
    error).

    **Arguments:**

    - `sol`: the `Solution` of `least_squares`.
    - `fn`, `args`, `absolute_sigma`: passed to [`quasinewton.covariance`][] (`fn`
      only for models that keep no Jacobian, and only for a single fit).

    **Returns:** the report, a `str` of several lines.
    """
    cov = covariance(sol, fn, args, absolute_sigma=absolute_sigma)
    batch = np.shape(sol.result._value)
    names = _names(sol[0].value if batch else sol.value)
    if batch:
        return _batch_report(sol, cov, names)
    return _single_report(sol, cov, names)


def _header(sol: Solution) -> list[str]:
    lines = ["[[Fit]]"]
    if getattr(sol, "method", ""):
        lines.append(f"    method             = {sol.method}")
    return lines


def _single_report(sol: Solution, cov, names: list[str]) -> str:
    stats = sol.stats
    m = int(stats["num_residuals"])
    n = len(names)
    f = float(stats["value"])
    chi2 = 2 * f
    result = f"{sol.result!r}"
    if sol.result == RESULTS.successful:
        result += f" ({stats['termination']!r})"
    lines = _header(sol)
    lines.append(f"    result             = {result}")
    lines.append(
        f"    evaluations        = {int(stats['num_fn_evals'])} "
        f"({int(stats['num_steps'])} steps)"
    )
    lines.append(f"    data points        = {m}")
    lines.append(f"    unknowns           = {n}")
    lines.append(f"    cost               = {_g(f)}")
    lines.append(f"    chi-square         = {_g(chi2)}")
    if m > n:
        lines.append(f"    reduced chi-square = {_g(chi2 / (m - n))}")
    if chi2 > 0:
        log_likelihood = m * math.log(chi2 / m)
        lines.append(f"    Akaike info crit   = {_g(log_likelihood + 2 * n)}")
        lines.append(f"    Bayesian info crit = {_g(log_likelihood + n * math.log(m))}")
    lines.append(
        f"    rank               = {int(cov.rank)} of {n} "
        f"(condition number {_g(cov.condition_number)})"
    )
    values = np.asarray(
        jnp.concatenate([jnp.ravel(v) for v in jtu.tree_leaves(sol.value)])
    )
    errors = np.asarray(
        jnp.concatenate([jnp.ravel(v) for v in jtu.tree_leaves(cov.standard_errors)])
    )
    width = max(len(name) for name in names)
    lines.append("[[Values]]")
    for name, value, error in zip(names, values, errors, strict=True):
        text = f"    {name:<{width}} = {value: .6g}"
        if np.isfinite(error):
            relative = abs(error / value) * 100 if value != 0 else math.inf
            text += f" ± {error:.4g}"
            text += f" ({relative:.2f}%)" if np.isfinite(relative) else ""
        else:
            text += " ± inf (undetermined)" if np.isinf(error) else " ± nan"
        lines.append(text)
    correlation = np.asarray(cov.correlation)
    pairs = [
        (abs(correlation[i, j]), names[i], names[j], correlation[i, j])
        for i in range(n)
        for j in range(i + 1, n)
        if np.isfinite(correlation[i, j]) and abs(correlation[i, j]) > MIN_CORRELATION
    ]
    if pairs:
        lines.append(f"[[Correlations]] (|C| > {MIN_CORRELATION})")
        for _, a, b, c in sorted(pairs, reverse=True):
            lines.append(f"    C({a}, {b}) = {c: .4f}")
    warnings = []
    if sol.result != RESULTS.successful:
        warnings.append(f"the solve failed: {sol.result.message}")
    determined = np.concatenate([np.ravel(v) for v in jtu.tree_leaves(cov.determined)])
    undetermined = [name for name, ok in zip(names, determined, strict=True) if not ok]
    if undetermined:
        warnings.append(
            "not determined by the data (infinite variance): " + ", ".join(undetermined)
        )
    if m <= n:
        warnings.append(
            f"{m} data points for {n} unknowns: the residual variance cannot be "
            "estimated"
        )
    if warnings:
        lines.append("[[Warnings]]")
        lines.extend(f"    {text}" for text in warnings)
    return "\n".join(lines)


def _batch_report(sol: Solution, cov, names: list[str]) -> str:
    batch = np.shape(sol.result._value)
    size = int(np.prod(batch))
    lines = _header(sol)
    lines.append(f"    fits               = {size}")
    lines.append(f"    results            = {sol.result!r}")
    lines.append(
        f"    data points        = {int(np.ravel(sol.stats['num_residuals'])[0])}"
    )
    lines.append(f"    unknowns           = {len(names)}")
    ok = np.ravel(np.asarray(sol.result == RESULTS.successful))
    values = np.concatenate(
        [np.reshape(np.asarray(v), (size, -1)) for v in jtu.tree_leaves(sol.value)],
        axis=1,
    )
    errors = np.concatenate(
        [
            np.reshape(np.asarray(v), (size, -1))
            for v in jtu.tree_leaves(cov.standard_errors)
        ],
        axis=1,
    )
    determined = np.all(
        np.concatenate(
            [
                np.reshape(np.asarray(v), (size, -1))
                for v in jtu.tree_leaves(cov.determined)
            ],
            axis=1,
        ),
        axis=1,
    )
    if ok.any():
        width = max(len(name) for name in names)
        lines.append(f"[[Values]] (over the {int(ok.sum())} successful fits)")
        lines.append(
            f"    {'':<{width}}   {'min':>11} {'median':>11} {'max':>11} "
            f"{'median s.e.':>11}"
        )
        for k, name in enumerate(names):
            column = values[ok, k]
            error = errors[ok, k]
            finite = error[np.isfinite(error)]
            median_error = (
                f"{np.median(finite):11.4g}" if finite.size else f"{'inf':>11}"
            )
            lines.append(
                f"    {name:<{width}} = {column.min():11.5g} {np.median(column):11.5g} "
                f"{column.max():11.5g} {median_error}"
            )
    undetermined = int((~determined).sum())
    if undetermined:
        lines.append("[[Warnings]]")
        lines.append(
            f"    {undetermined} fit{'s' if undetermined != 1 else ''} with unknowns "
            "not determined by the data (infinite variance)"
        )
    return "\n".join(lines)
