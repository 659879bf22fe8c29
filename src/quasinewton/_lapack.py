"""Dense factorisations that run one matrix per LAPACK call under `jax.vmap` on CPU.

On CPU, jaxlib's batched LAPACK kernels (`eigh`, `svd`, `cholesky`, triangular
solves, ...) split a large enough batch into chunks, schedule the chunks on XLA's
intra-op thread pool and block the calling thread until they are done. The calling
thread is itself often a worker of that pool. When as many batched factorisations
run at once as the pool has threads (two independent `vmap`-ped solves in one
`jax.jit` on a two-core machine are enough), every worker waits for chunks that no
free worker is left to run, and the program stops without an error, all its
threads idle.

A kernel given a single matrix never splits it, so the wrappers here give each
function a batching rule that, on CPU, maps it over the batch one matrix at a time
(`jax.lax.map`) instead of making one batched call. Other platforms keep the
batched call. Outside `jax.vmap` the functions compute what the `jax.numpy` ones do.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap


def one_matrix_per_call(fn):
    """`fn` (positional array arguments, a pytree of arrays out) with a batching
    rule that on CPU loops over the batch and calls `fn` on one problem at a time;
    nested `jax.vmap`s loop once per level. Arguments not batched are shared by
    every iteration rather than copied along the batch."""

    @custom_vmap
    def wrapped(*args):
        return fn(*args)

    @wrapped.def_vmap
    def _rule(axis_size, in_batched, *args):
        batched = tuple(bool(b) for b in in_batched)

        def merge(mapped):
            it = iter(mapped)
            return [next(it) if b else a for a, b in zip(args, batched, strict=True)]

        mapped = tuple(a for a, b in zip(args, batched, strict=True) if b)

        def looped(*mapped):
            return jax.lax.map(lambda one: wrapped(*merge(one)), mapped)

        def vectorised(*mapped):
            axes = [0 if b else None for b in batched]
            return jax.vmap(fn, in_axes=axes, axis_size=axis_size)(*merge(mapped))

        out = jax.lax.platform_dependent(*mapped, cpu=looped, default=vectorised)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return functools.wraps(fn)(wrapped)


@jax.custom_jvp
def eigh(a):
    """`jnp.linalg.eigh(a)` as `(eigenvalues, eigenvectors)`, for a real symmetric
    `a` (its symmetric part is used). Differentiable in both modes: the derivative
    is the one `jnp.linalg.eigh` has, written in terms of the decomposition."""
    return _eigh(a)


@one_matrix_per_call
def _eigh(a):
    eigenvalues, vectors = jnp.linalg.eigh(a)
    return eigenvalues, vectors


@eigh.defjvp
def _eigh_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    eigenvalues, vectors = eigh(a)
    a_dot = 0.5 * (a_dot + a_dot.T)
    eye = jnp.eye(a.shape[-1], dtype=a.dtype)
    # 1 / (λⱼ − λᵢ) off the diagonal, 0 on it.
    gaps = 1.0 / (eye + eigenvalues[None, :] - eigenvalues[:, None]) - eye
    projected = vectors.T @ a_dot @ vectors
    return (eigenvalues, vectors), (
        jnp.diagonal(projected),
        vectors @ (gaps * projected),
    )


@one_matrix_per_call
def svd(a):
    """`jnp.linalg.svd(a, full_matrices=True)` as `(u, s, vt)` (not differentiable,
    as `jnp.linalg.svd` with full matrices is not)."""
    u, s, vt = jnp.linalg.svd(a, full_matrices=True)
    return u, s, vt


@one_matrix_per_call
def singular_values(a):
    """`jnp.linalg.svd(a, compute_uv=False)`: the singular values alone, descending
    (cheaper than `svd`; not differentiated)."""
    return jnp.linalg.svd(a, compute_uv=False)


@one_matrix_per_call
def symmetric_eigenvalues(a):
    """`jnp.linalg.eigvalsh(a)`: the eigenvalues alone of a real symmetric `a`,
    ascending (cheaper than `eigh`; not differentiated)."""
    return jnp.linalg.eigvalsh(a)
