"""Direct solves for very small dense systems, unrolled into scalar arithmetic.

A batched Lineax/LAPACK factorisation of 10⁴ tiny matrices under `jax.vmap` runs
one library call per matrix; written out entry by entry, the same factorisation is
a few hundred elementwise operations over the batch, which XLA fuses into a handful
of vectorised loops. This is the lean path for many small fits.
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

#: Largest n the unrolled solves are used for automatically: the Cholesky
#: factorisation is n³/6 scalar operations, so the traced program grows as n³.
MAX_UNROLLED = 8


def cholesky_solve(
    matrix: Float[Array, "n n"], rhs: Float[Array, " n"]
) -> Float[Array, " n"]:
    """Solve A x = b for symmetric positive definite A by Cholesky, A = LLᵀ, with the
    factorisation and both triangular solves written out entry by entry.

    Only the lower triangle of `matrix` is read. If A is not positive definite
    (a pivot ≤ 0 or not finite) the returned x is not finite, which callers treat
    as a failed solve.
    """
    n = rhs.shape[0]
    a = [[matrix[i, j] for j in range(i + 1)] for i in range(n)]
    low: list[list[Array]] = [[] for _ in range(n)]
    inv_diag = []
    for j in range(n):
        pivot = a[j][j] - sum((low[j][k] ** 2 for k in range(j)), start=jnp.zeros_like(rhs[0]))
        # sqrt of a negative pivot is nan, of zero is 0 (then 1/0 = inf): both
        # make x non-finite, which is how the failure is reported.
        d = jnp.sqrt(pivot)
        inv_diag.append(1.0 / d)
        low[j].append(d)
        for i in range(j + 1, n):
            s = a[i][j] - sum((low[i][k] * low[j][k] for k in range(j)), start=jnp.zeros_like(rhs[0]))
            low[i].append(s * inv_diag[j])
    # L z = b, then Lᵀ x = z.
    z: list[Array] = []
    for i in range(n):
        s = rhs[i] - sum((low[i][k] * z[k] for k in range(i)), start=jnp.zeros_like(rhs[0]))
        z.append(s * inv_diag[i])
    x: list[Array] = [jnp.zeros_like(rhs[0])] * n
    for i in reversed(range(n)):
        s = z[i] - sum((low[k][i] * x[k] for k in range(i + 1, n)), start=jnp.zeros_like(rhs[0]))
        x[i] = s * inv_diag[i]
    return jnp.stack(x)

