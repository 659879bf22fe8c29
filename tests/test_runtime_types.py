"""The test-suite checks shapes and dtypes at runtime: jaxtyping's import hook
instruments `quasinewton` (`--jaxtyping-packages` in pyproject's `addopts`), so
that every annotated function and Equinox module field of the package is checked
(with beartype) whenever the tests call it, under `jax.jit` and `jax.vmap` at
trace time.

These tests make sure the checks are really on, so that they cannot silently be
off: run without the hook (`-o addopts=""`, or another `--jaxtyping-packages`)
the tests that need it are skipped, saying why.
"""

import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxtyping
import pytest

import quasinewton as qn

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
HOOK_OPTION = "--jaxtyping-packages=quasinewton,beartype.beartype"


def _hooked(module) -> bool:
    """Whether `module` was imported through jaxtyping's import hook."""
    return type(module.__loader__).__module__ == "jaxtyping._import_hook"


@pytest.fixture
def hook(request):
    packages = request.config.getoption("jaxtyping_packages", default=None) or ""
    if "quasinewton" not in [p.strip() for p in packages.split(",")[:-1]]:
        pytest.skip(
            "jaxtyping's import hook is not on for quasinewton (pytest was run "
            "without the `addopts` of pyproject.toml, or with another "
            "`--jaxtyping-packages`)"
        )
    assert _hooked(qn.linear.unrolled), (
        f"pytest was given --jaxtyping-packages={packages}, but quasinewton was "
        "imported without jaxtyping's hook (imported before the hook was installed?)"
    )


def test_the_suite_runs_with_the_hook():
    """pyproject.toml's `addopts` turns the hook on for every run of the tests."""
    options = tomllib.loads(PYPROJECT.read_text())["tool"]["pytest"]["ini_options"]
    assert HOOK_OPTION in options["addopts"].split()


def test_every_module_is_instrumented(hook):
    modules = [
        m
        for name, m in sorted(__import__("sys").modules.items())
        if name == "quasinewton" or name.startswith("quasinewton.")
    ]
    assert len(modules) > 20
    assert all(_hooked(m) for m in modules), [
        m.__name__ for m in modules if not _hooked(m)
    ]


def test_a_wrong_shape_is_refused(hook):
    # `cholesky_solve(matrix: Float[Array, "n n"], rhs: Float[Array, " n"])`: one n.
    with pytest.raises(jaxtyping.TypeCheckError, match="rhs"):
        qn.linear.cholesky_solve(jnp.eye(3), jnp.ones(2))


def test_a_wrong_shape_is_refused_under_jit(hook):
    with pytest.raises(jaxtyping.TypeCheckError, match="rhs"):
        jax.jit(qn.linear.cholesky_solve)(jnp.eye(3), jnp.ones(2))


def test_a_wrong_dtype_is_refused(hook):
    with pytest.raises(jaxtyping.TypeCheckError, match="rhs"):
        qn.linear.cholesky_solve(jnp.eye(2), jnp.ones(2, jnp.int32))


def test_a_wrong_return_is_refused(hook):
    # `SumOfSquares.cost(residual: Float[Array, " m"]) -> Scalar`.
    with pytest.raises(jaxtyping.TypeCheckError, match="residual"):
        qn.problem.SumOfSquares().cost(jnp.ones((2, 2)))


def test_module_fields_are_checked(hook):
    ok = qn.evaluation.Evaluation(f=jnp.zeros(()), grad=jnp.zeros(2), aux=None)
    assert ok.grad.shape == (2,)
    with pytest.raises(jaxtyping.TypeCheckError, match="f"):
        qn.evaluation.Evaluation(f=jnp.zeros(2), grad=jnp.zeros(2), aux=None)
    # One `n` across the fields of a module.
    with pytest.raises(jaxtyping.TypeCheckError, match="diag"):
        qn.curvature.BFGSState(
            inverse=jnp.eye(3), count=jnp.zeros((), jnp.int32), diag=jnp.ones(2)
        )
    with pytest.raises(jaxtyping.TypeCheckError, match="count"):
        qn.curvature.BFGSState(
            inverse=jnp.eye(2), count=jnp.zeros(()), diag=jnp.ones(2)
        )
