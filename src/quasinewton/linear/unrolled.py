"""Direct solves for very small dense systems, unrolled into scalar arithmetic.

A batched Lineax/LAPACK factorisation of 10⁴ tiny matrices under `jax.vmap` runs
one library call per matrix; written out entry by entry, the same factorisation is
a few hundred elementwise operations over the batch, which XLA fuses into a handful
of vectorised loops. This is the lean path for many small fits.
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

#: Largest n the unrolled solve is used for automatically: the factorisation is
#: about n³/6 multiply-adds, so the traced program grows as n³.
MAX_UNROLLED = 8


def cholesky_solve(
    matrix: Float[Array, "n n"], rhs: Float[Array, " n"]
) -> Float[Array, " n"]:
    """Solve A x = b for symmetric positive definite A by the square-root-free
    Cholesky factorisation A = L D Lᵀ (L unit lower triangular, D diagonal; Golub &
    Van Loan, 2013, §4.1), written out entry by entry for small n.

    Only the lower triangle of `matrix` is read. Each pivot costs one division and
    no square root, which keeps the fused program short (a batch of such solves
    is faster than the LLᵀ form and than batched LAPACK, see the
    [measurements](../benchmarks/defaults.md)). If a pivot is not positive (A is not
    positive definite) every entry of x is nan, which callers treat as a failed
    solve.
    """
    n = rhs.shape[0]
    unit: list[dict[int, Array]] = [{} for _ in range(n)]  # unit[i][k] = L[i, k], k < i
    scaled: list[dict[int, Array]] = [
        {} for _ in range(n)
    ]  # scaled[i][k] = L[i, k]·D[k]
    pivots, inverse = [], []
    for j in range(n):
        pivot = matrix[j, j]
        for k in range(j):
            pivot = pivot - unit[j][k] * scaled[j][k]
        pivots.append(pivot)
        inverse.append(1.0 / pivot)
        for i in range(j + 1, n):
            s = matrix[i, j]
            for k in range(j):
                s = s - unit[i][k] * scaled[j][k]
            scaled[i][j] = s
            unit[i][j] = s * inverse[j]
    # L z = b, then D Lᵀ x = z.
    z: list[Array] = []
    for i in range(n):
        s = rhs[i]
        for k in range(i):
            s = s - unit[i][k] * z[k]
        z.append(s)
    x: list[Array] = [rhs[0]] * n
    for i in reversed(range(n)):
        s = z[i] * inverse[i]
        for k in range(i + 1, n):
            s = s - unit[k][i] * x[k]
        x[i] = s
    positive = pivots[0] > 0
    for pivot in pivots[1:]:
        positive = positive & (pivot > 0)
    return jnp.where(positive, jnp.stack(x), jnp.nan)
