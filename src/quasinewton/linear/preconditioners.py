"""Preconditioners for iterative linear solves of `(B + D) p = −∇f`."""

import abc
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._misc import as_index, check_int


class AbstractPreconditioner(eqx.Module):
    """Builds, at each iteration, a positive definite M ≈ (B + D)⁻¹ for CG."""

    @abc.abstractmethod
    def build(
        self,
        diagonal_fn,
        estimate_fn,
        damping: Float[Array, " n"] | None,
        dtype,
        key: PRNGKeyArray,
    ) -> lx.AbstractLinearOperator:
        """The preconditioner as a Lineax operator.

        **Arguments:** `diagonal_fn()` returns the exact diag(B);
        `estimate_fn(key, num_probes)` a randomised estimate of it; `damping` is D
        (or `None`); `key` seeds any random probes.
        """


def hutchinson_diagonal(
    matvec, n: int, dtype, key: PRNGKeyArray, num_probes: int
) -> Float[Array, " n"]:
    """Hutchinson's estimate of diag(B): the mean of z ⊙ Bz over Rademacher probes z
    (Bekas, Kokiopoulou & Saad, 2007). Unbiased; costs `num_probes` products with B.
    Its error in entry i grows with the off-diagonal entries of row i, so small
    diagonal entries next to large couplings are poorly estimated."""

    def add_probe(i, total):
        z = jax.random.rademacher(jax.random.fold_in(key, i), (n,), dtype=dtype)
        return total + z * matvec(z)

    # One probe at a time: memory of one product, not `num_probes` of them.
    return jax.lax.fori_loop(0, num_probes, add_probe, jnp.zeros(n, dtype)) / num_probes


def gauss_newton_diagonal(
    vjp, m: int, dtype, key: PRNGKeyArray, num_probes: int, *, gaussian: bool = False
) -> Float[Array, " n"]:
    """Rademacher estimate of diag(JᵀJ) from probes w in residual space: the mean of
    (Jᵀw)², since E[JᵀwwᵀJ] = JᵀJ (Martens, Sutskever & Swersky, 2012).

    Unbiased and never negative; the relative error of entry i depends only on column
    i of J (its variance is 2[(Σₖ Jₖᵢ²)² − Σₖ Jₖᵢ⁴]), so unknowns of very different
    scales are all estimated well, which is what Jacobi preconditioning needs. Costs
    `num_probes` vector-Jacobian products.

    With `gaussian=True` the probes are standard normal: the variance of entry i is
    then 2(Σₖ Jₖᵢ²)², a little more, but an entry is zero only where column i of J
    is (with probability one), where Rademacher signs can cancel a column's entries
    (column (1, 1) gives 0 for half the probes)."""
    draw = jax.random.normal if gaussian else jax.random.rademacher

    def add_probe(i, total):
        w = draw(jax.random.fold_in(key, i), (m,), dtype=dtype)
        return total + vjp(w) ** 2

    # One probe at a time: memory of one product, not `num_probes` of them.
    n = jax.eval_shape(vjp, jax.ShapeDtypeStruct((m,), dtype)).shape[0]
    return jax.lax.fori_loop(0, num_probes, add_probe, jnp.zeros(n, dtype)) / num_probes


def squared_column_norms(
    jvp, n: int, dtype, indices: Int[Array, " k"] | None = None, batch_size: int = 64
) -> Float[Array, " k"]:
    """‖J eᵢ‖², the exact diagonal entries (JᵀJ)ᵢᵢ, for every i in `indices` (all n
    unknowns by default): one Jacobian-vector product per entry, `batch_size` of
    them at a time (vectorised), so that J is never formed."""
    indices = jnp.arange(n) if indices is None else indices

    def column_norm(i):
        e = jnp.zeros(n, dtype).at[i].set(1.0)
        col = jvp(e)
        return jnp.dot(col, col)

    return jax.lax.map(
        column_norm, indices, batch_size=max(1, min(indices.shape[0], batch_size))
    )


class Jacobi(AbstractPreconditioner):
    """Jacobi (diagonal) preconditioning: M = diag(B + D)⁻¹.

    Cheap and effective when the unknowns have very different scales (e.g. rotations
    and translations, or pixels with very different sensitivities), which is where
    plain CG on JᵀJ stalls.

    **Arguments:**

    - `diagonal`: `"exact"` uses the model's exact diag(B) (for Gauss–Newton the
      squared column norms of J: free when J is materialised, n Jacobian-vector
      products when matrix-free); `"hutchinson"` estimates it from `num_probes`
      Rademacher probes, whatever n is (for Gauss–Newton by
      [`quasinewton.linear.gauss_newton_diagonal`][], otherwise by
      [`quasinewton.linear.hutchinson_diagonal`][]).
    - `num_probes`: probes for the Hutchinson estimate.
    - `seed`: seed of the probes (fixed, so solves are reproducible).
    """

    diagonal: Literal["exact", "hutchinson"] = eqx.field(default="exact", static=True)
    num_probes: int = eqx.field(default=8, static=True, converter=as_index)
    seed: int = eqx.field(default=0, static=True, converter=as_index)

    def __check_init__(self):
        if self.diagonal not in ("exact", "hutchinson"):
            raise ValueError(
                f"diagonal must be 'exact' or 'hutchinson', got {self.diagonal!r}."
            )
        check_int("num_probes", self.num_probes, 1)
        check_int("seed", self.seed, -(2**63))

    def build(self, diagonal_fn, estimate_fn, damping, dtype, key):
        if self.diagonal == "exact":
            diag = diagonal_fn()
        else:
            diag = estimate_fn(key, self.num_probes)
        if damping is not None:
            diag = diag + damping
        # A zero or negative (estimated) entry would break positive definiteness:
        # floor it at a small fraction of the largest entry.
        floor = jnp.finfo(dtype).eps * jnp.maximum(
            jnp.max(jnp.abs(diag)), jnp.finfo(dtype).tiny
        )
        diag = jnp.maximum(diag, jnp.maximum(floor, jnp.finfo(dtype).tiny))
        return lx.TaggedLinearOperator(
            lx.DiagonalLinearOperator(1.0 / diag),
            frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag}),
        )
