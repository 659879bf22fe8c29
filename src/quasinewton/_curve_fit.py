"""`qn.curve_fit`: SciPy's `curve_fit` signature on qn's least squares."""

import inspect
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._covariance import covariance
from ._solve import least_squares
from .loss import AbstractLoss
from .solvers import LevenbergMarquardt, Solver

__all__ = ["curve_fit"]


def curve_fit(
    model: Callable,
    xdata,
    ydata: Any,
    p0: Any = None,
    sigma=None,
    absolute_sigma: bool = False,
    *,
    solver: Solver | None = None,
    loss: AbstractLoss | None = None,
    max_steps: int = 256,
    throw: bool = True,
    full_output: bool = False,
) -> tuple[Float[Array, " n"], Float[Array, "n n"]] | tuple:
    """Fit `model(xdata, *params)` to `ydata`, as `scipy.optimize.curve_fit` does.

    Minimises ½‖(model(xdata, *p) − ydata)/σ‖² (or with `loss`, its robust form)
    with [`quasinewton.least_squares`][], and returns the fit with its covariance
    from [`quasinewton.covariance`][]. Unlike SciPy's, it runs under `jax.jit` and
    `jax.vmap`: `jax.vmap(lambda y: qn.curve_fit(model, x, y, p0))(ys)` fits many
    datasets at once, each with its own result.

    **Arguments:**

    - `model`: `model(xdata, *params) -> predictions` of the shape of `ydata`,
      written with `jax.numpy`.
    - `xdata`: the independent variable, any pytree (passed to `model` as it is).
    - `ydata`: the data.
    - `p0`: the start, one value per parameter; by default ones, as many as `model`
      takes parameters after `xdata` (from its signature).
    - `sigma`: the data's standard deviations (a scalar or an array like `ydata`),
      or for 1-D data an m×m covariance matrix; see `least_squares`.
    - `absolute_sigma`: whether `sigma` holds absolute standard deviations (the
      covariance is then not rescaled by the reduced χ²).
    - `solver`: default [`quasinewton.LevenbergMarquardt`][]`()`.
    - `loss`: a robust loss, e.g. `qn.loss.Huber(scale)` (see `least_squares`).
    - `max_steps`, `throw`: as for `least_squares` (`throw=True` raises on a failed
      fit, as SciPy does, except under `jax.vmap`).
    - `full_output`: also return the [`quasinewton.Solution`][].

    **Returns:** `(popt, pcov)`, the fitted parameters (1-D) and their covariance
    (n×n, `inf` in the rows and columns of undetermined parameters), or
    `(popt, pcov, sol)` with `full_output=True`.
    """
    if p0 is None:
        parameters = list(inspect.signature(model).parameters.values())
        if len(parameters) < 2 or any(
            p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters[1:]
        ):
            raise ValueError(
                "Pass `p0`: the number of parameters cannot be read from the "
                "signature of `model`."
            )
        p0 = jnp.ones(len(parameters) - 1)
    p0 = jnp.asarray(p0)
    if not jnp.issubdtype(p0.dtype, jnp.floating):
        p0 = p0.astype(float)
    if p0.ndim != 1:
        raise ValueError(f"`p0` must be 1-D, one value per parameter; got {p0.shape}.")
    ydata = jnp.asarray(ydata, p0.dtype)

    def residuals(p, args):
        x, y = args
        return jnp.asarray(model(x, *(p[i] for i in range(p.shape[0])))) - y

    sol = least_squares(
        residuals,
        LevenbergMarquardt() if solver is None else solver,
        p0,
        (xdata, ydata),
        sigma=sigma,
        loss=loss,
        max_steps=max_steps,
        throw=throw,
    )
    # J̃ formed anew at the solution, for the SVD's accuracy whatever the solver.
    cov = covariance(sol, residuals, (xdata, ydata), absolute_sigma=absolute_sigma)
    if full_output:
        return sol.value, cov.matrix, sol
    return sol.value, cov.matrix
