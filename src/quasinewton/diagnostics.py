"""Diagnostics of a least-squares problem at a point, computed matrix-free."""

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray, PyTree, Scalar

from .linear.preconditioners import gauss_newton_diagonal, hutchinson_diagonal
from .problem import make_problem


def _linearised(fn, y, args, has_aux):
    problem, x, _ = make_problem(fn, y, args, "residual", has_aux)
    r, jvp, vjp, _ = problem.linearise(x)
    return r, jvp, vjp, x, problem.unravel


def max_eigenvalue(
    fn: Callable,
    y: PyTree,
    args: Any = None,
    *,
    has_aux: bool = False,
    max_iterations: int = 200,
    rtol: float = 1e-6,
    key: PRNGKeyArray | None = None,
) -> tuple[Scalar, Array]:
    """The largest eigenvalue of JᵀJ (the square of J's largest singular value) by
    power iteration, J the Jacobian of the residuals `fn(y, args)`.

    It bounds the curvature of ½‖r‖² (a step of 2/λmax is the largest stable
    gradient-descent step) and, with the smallest eigenvalue, the conditioning of
    the Gauss–Newton system. J is linearised once; each iteration is one Jacobian-
    vector and one vector-Jacobian product.

    **Arguments:**

    - `fn`, `y`, `args`, `has_aux`: the residuals and the point, as for
      [`quasinewton.least_squares`][].
    - `max_iterations`: power iterations at most.
    - `rtol`: stop when the estimate changes by at most `rtol` relatively.
    - `key`: seeds the random start vector (default `PRNGKey(0)`).

    **Returns:** `(eigenvalue, num_iterations)`.
    """
    _, jvp, vjp, x, _ = _linearised(fn, y, args, has_aux)

    def product(v):
        return vjp(jvp(v))

    key = jax.random.PRNGKey(0) if key is None else key
    v = jax.random.normal(key, x.shape, x.dtype)
    v = v / jnp.linalg.norm(v)

    def cond(carry):
        _, estimate, previous, i = carry
        return (i < max_iterations) & (
            jnp.abs(estimate - previous) > rtol * jnp.abs(estimate)
        )

    def body(carry):
        v, estimate, _, i = carry
        w = product(v)
        new_estimate = jnp.dot(v, w)  # Rayleigh quotient of the unit vector v
        norm = jnp.linalg.norm(w)
        v = jnp.where(norm > 0, w / jnp.where(norm > 0, norm, 1.0), v)
        return v, new_estimate, estimate, i + 1

    inf = jnp.asarray(jnp.inf, x.dtype)
    _, estimate, _, iterations = jax.lax.while_loop(
        cond, body, (v, jnp.zeros((), x.dtype), inf, jnp.zeros((), jnp.int32))
    )
    return estimate, iterations


def jtj_diagonal(
    fn: Callable,
    y: PyTree,
    args: Any = None,
    *,
    has_aux: bool = False,
    num_probes: int = 32,
    method: Literal["residual", "hutchinson"] = "residual",
    key: PRNGKeyArray | None = None,
) -> PyTree[Array]:
    """A Hutchinson-type estimate of diag(JᵀJ) from Rademacher probes, J the
    Jacobian of the residuals.

    `method="residual"` (default) averages (Jᵀw)² over probes w in residual space
    (E[JᵀwwᵀJ] = JᵀJ; Martens, Sutskever & Swersky, 2012): never negative, one
    vector-Jacobian product per probe, and each entry's relative error depends only
    on its own column of J. `method="hutchinson"` averages z ⊙ JᵀJz over probes z in
    parameter space (Bekas, Kokiopoulou & Saad, 2007): one product each way per
    probe. Both are unbiased with a standard error falling as 1/√`num_probes`,
    whatever the number of unknowns. The entries are the squared sensitivities of
    the residuals to each unknown: what Jacobi preconditioning and Marquardt
    scaling divide by.

    **Arguments:**

    - `fn`, `y`, `args`, `has_aux`: the residuals and the point, as for
      [`quasinewton.least_squares`][].
    - `num_probes`: the number of random probes.
    - `method`: `"residual"` or `"hutchinson"`, as above.
    - `key`: seeds the probes (default `PRNGKey(0)`).

    **Returns:** the estimate, with the structure of `y`.
    """
    r, jvp, vjp, x, unravel = _linearised(fn, y, args, has_aux)
    key = jax.random.PRNGKey(0) if key is None else key
    if method == "residual":
        return unravel(gauss_newton_diagonal(vjp, r.size, x.dtype, key, num_probes))
    if method == "hutchinson":
        return unravel(
            hutchinson_diagonal(lambda v: vjp(jvp(v)), x.size, x.dtype, key, num_probes)
        )
    raise ValueError(f"method must be 'residual' or 'hutchinson', got {method!r}.")
