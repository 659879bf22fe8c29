"""Dense factorisations under `jax.vmap` on CPU: one matrix per LAPACK call.

jaxlib's batched LAPACK kernels split a large batch into chunks on XLA's intra-op
thread pool and block until the chunks are done; two of them running at once on a
two-thread pool wait for each other forever. qn's factorisations therefore loop
over a batch on CPU (`quasinewton._lapack`), and these tests check that no batched
LAPACK call is left in the compiled programs, that the results and derivatives
are those of `jax.numpy`, and that the program which hung now finishes.
"""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn
from quasinewton import _lapack


def _lapack_operand_ranks(fn, *args) -> list[int]:
    """The rank of the first operand of every LAPACK custom call in `fn`'s compiled
    program (2 for one matrix, 3 or more for a batch of them)."""
    text = jax.jit(fn).lower(*args).compile().as_text()
    shapes = {}
    for line in text.splitlines():
        match = re.match(r"\s*(?:ROOT )?(%[\w.\-]+) = \w+\[([0-9,]*)\]", line)
        if match:
            shapes[match.group(1)] = match.group(2)
    ranks = []
    for line in text.splitlines():
        if 'custom_call_target="lapack_' not in line:
            continue
        operand = re.search(r"custom-call\((%[\w.\-]+)", line).group(1)
        ranks.append(len(shapes[operand].split(",")))
    return ranks


pytestmark = pytest.mark.skipif(
    jax.default_backend() != "cpu", reason="the LAPACK kernels are CPU ones"
)

_T = jnp.linspace(0.0, 6.0, 40)


def _decay(params, data):
    a, k, c = params
    return a * jnp.exp(-k * _T) + c - data


def _fit_with_errors(data, loss):
    sol = qn.least_squares(
        _decay,
        qn.LevenbergMarquardt(),
        jnp.array([3.0, 0.5, 0.0]),
        data,
        sigma=0.1,
        loss=loss,
    )
    return sol.value, qn.covariance(sol, absolute_sigma=True).standard_errors


def _data(num_sets):
    clean = 5.0 * jnp.exp(-0.8 * _T) + 1.0
    noise = 0.1 * jax.random.normal(jax.random.PRNGKey(0), (num_sets, _T.size))
    return clean + noise


def test_covariance_of_a_batch_calls_lapack_one_matrix_at_a_time():
    def both(data):
        plain = jax.vmap(lambda d: _fit_with_errors(d, None))(data)
        robust = jax.vmap(lambda d: _fit_with_errors(d, qn.loss.Cauchy(scale=3.0)))(
            data
        )
        return plain, robust

    ranks = _lapack_operand_ranks(both, _data(4))
    assert ranks and all(rank == 2 for rank in ranks)


def test_covariance_from_a_jacobian_under_vmap_calls_lapack_one_matrix_at_a_time():
    def one(data):
        sol = qn.least_squares(
            _decay, qn.LevenbergMarquardt(), jnp.array([3.0, 0.5, 0.0]), data
        )
        return qn.covariance(sol, _decay, data).standard_errors

    ranks = _lapack_operand_ranks(jax.vmap(one), _data(4))
    assert ranks and all(rank == 2 for rank in ranks)


def test_newton_under_vmap_calls_lapack_one_matrix_at_a_time():
    def f(x, c):
        return jnp.sum((x - c) ** 4) + jnp.sum((x - c) ** 2)

    def one(c):
        return qn.minimise(f, qn.Newton(materialise=True), jnp.zeros(3), c).value

    centres = jnp.arange(12.0).reshape(4, 3)
    ranks = _lapack_operand_ranks(jax.vmap(one), centres)
    assert ranks and all(rank == 2 for rank in ranks)
    np.testing.assert_allclose(jax.vmap(one)(centres), centres, rtol=1e-6)


def test_eigh_and_svd_agree_with_jax_numpy_under_nested_vmap():
    a = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 4, 4))
    a = a @ jnp.swapaxes(a, -1, -2) + jnp.eye(4)
    eigenvalues, vectors = jax.vmap(jax.vmap(_lapack.eigh))(a)
    ref_values, ref_vectors = jnp.linalg.eigh(a)
    np.testing.assert_allclose(eigenvalues, ref_values, rtol=1e-12)
    np.testing.assert_allclose(jnp.abs(vectors), jnp.abs(ref_vectors), atol=1e-10)
    assert _lapack_operand_ranks(jax.vmap(jax.vmap(_lapack.eigh)), a) == [2]

    j = jax.random.normal(jax.random.PRNGKey(2), (3, 7, 4))
    u, s, vt = jax.vmap(_lapack.svd)(j)
    ref_u, ref_s, ref_vt = jnp.linalg.svd(j, full_matrices=True)
    np.testing.assert_allclose(s, ref_s, rtol=1e-12)
    assert u.shape == ref_u.shape and vt.shape == ref_vt.shape


def test_eigh_derivatives_are_those_of_jax_numpy():
    a = jax.random.normal(jax.random.PRNGKey(3), (5, 3, 3))
    a = a @ jnp.swapaxes(a, -1, -2) + jnp.eye(3)

    def scalar(eigh):
        def f(m):
            values, vectors = eigh(m)
            return jnp.sum(values**2) + jnp.sum(jnp.abs(vectors[:, 0]))

        return f

    ours, theirs = scalar(_lapack.eigh), scalar(jnp.linalg.eigh)
    expected = jax.vmap(jax.grad(theirs))(a)
    np.testing.assert_allclose(jax.vmap(jax.grad(ours))(a), expected, rtol=1e-10)
    np.testing.assert_allclose(
        jax.grad(lambda m: jnp.sum(jax.vmap(ours)(m)))(a), expected, rtol=1e-10
    )
    np.testing.assert_allclose(
        jax.vmap(jax.jacfwd(ours))(a), jax.vmap(jax.jacfwd(theirs))(a), rtol=1e-10
    )


@pytest.mark.slow
def test_two_large_batches_with_covariance_in_one_jit_finish():
    """The reported program: two batches of 1,500 fits (enough for jaxlib to split
    each batched eigh) with their covariances, in one `jax.jit`. Run in a fresh
    process so that a hang fails the test instead of stopping the suite."""
    script = textwrap.dedent(
        """
        import jax, jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        import quasinewton as qn
        from test_lapack import _data, _fit_with_errors

        @jax.jit
        def both(data):
            plain = jax.vmap(lambda d: _fit_with_errors(d, None))(data)
            robust = jax.vmap(
                lambda d: _fit_with_errors(d, qn.loss.Cauchy(scale=3.0))
            )(data)
            return plain, robust

        (value, se), _ = jax.block_until_ready(both(_data(1500)))
        assert bool(jnp.all(jnp.isfinite(se))), se
        print("finished")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=str(Path(__file__).parent),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "finished" in result.stdout
