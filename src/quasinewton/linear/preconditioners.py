"""Preconditioners for iterative linear solves of `(B + D) p = −∇f`."""

import abc
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, PRNGKeyArray


class AbstractPreconditioner(eqx.Module):
    """Builds, at each iteration, a positive definite M ≈ (B + D)⁻¹ for CG."""

    @abc.abstractmethod
    def build(
        self,
        diagonal_fn,
        matvec,
        damping: Float[Array, " n"] | None,
        n: int,
        dtype,
        key: PRNGKeyArray,
    ) -> lx.AbstractLinearOperator:
        """The preconditioner as a Lineax operator.

        **Arguments:** `diagonal_fn()` returns the exact diag(B); `matvec(v)` is B·v;
        `damping` is D (or `None`); `key` seeds any random probes.
        """


def hutchinson_diagonal(
    matvec, n: int, dtype, key: PRNGKeyArray, num_probes: int
) -> Float[Array, " n"]:
    """Hutchinson's estimate of diag(B): the mean of z ⊙ Bz over Rademacher probes z
    (Bekas, Kokiopoulou & Saad, 2007). Unbiased; costs `num_probes` products."""
    probes = jax.random.rademacher(key, (num_probes, n), dtype=dtype)
    return jnp.mean(probes * jax.vmap(matvec)(probes), axis=0)


class Jacobi(AbstractPreconditioner):
    """Jacobi (diagonal) preconditioning: M = diag(B + D)⁻¹.

    Cheap and effective when the unknowns have very different scales (e.g. rotations
    and translations, or pixels with very different sensitivities), which is where
    plain CG on JᵀJ stalls.

    **Arguments:**

    - `diagonal`: `"exact"` uses the model's exact diag(B) (for Gauss–Newton the
      squared column norms of J: free when J is materialised, n Jacobian-vector
      products when matrix-free); `"hutchinson"` estimates it from `num_probes`
      products with Rademacher vectors, whatever n is.
    - `num_probes`: probes for the Hutchinson estimate.
    - `seed`: seed of the probes (fixed, so solves are reproducible).
    """

    diagonal: Literal["exact", "hutchinson"] = eqx.field(default="exact", static=True)
    num_probes: int = eqx.field(default=8, static=True)
    seed: int = eqx.field(default=0, static=True)

    def __check_init__(self):
        if self.diagonal not in ("exact", "hutchinson"):
            raise ValueError(f"diagonal must be 'exact' or 'hutchinson', got {self.diagonal!r}.")
        if self.num_probes < 1:
            raise ValueError(f"num_probes must be at least 1, got {self.num_probes}.")

    def build(self, diagonal_fn, matvec, damping, n, dtype, key):
        if self.diagonal == "exact":
            diag = diagonal_fn()
        else:
            diag = hutchinson_diagonal(matvec, n, dtype, key, self.num_probes)
        if damping is not None:
            diag = diag + damping
        # A zero or negative (estimated) entry would break positive definiteness:
        # floor it at a small fraction of the largest entry.
        floor = jnp.finfo(dtype).eps * jnp.maximum(jnp.max(jnp.abs(diag)), jnp.finfo(dtype).tiny)
        diag = jnp.maximum(diag, jnp.maximum(floor, jnp.finfo(dtype).tiny))
        return lx.DiagonalLinearOperator(1.0 / diag)
