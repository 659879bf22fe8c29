"""Bad input gets a clear error at trace time; bad values get a result code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn


def f(y, args):
    return jnp.sum((y - 1.0) ** 2)


def test_integer_y0():
    with pytest.raises(TypeError, match="dtype int"):
        qn.minimise(f, qn.LBFGS(), jnp.array([1, 2]))


def test_complex_y0():
    with pytest.raises(TypeError, match="complex"):
        qn.minimise(f, qn.LBFGS(), jnp.array([1.0 + 1j]))


def test_non_array_leaf():
    with pytest.raises(TypeError, match="y0\\['a'\\] is a str"):
        qn.minimise(lambda y, _: 0.0, qn.LBFGS(), {"a": "oops"})


def test_empty_y0():
    with pytest.raises(ValueError, match="no array leaves"):
        qn.minimise(f, qn.LBFGS(), {})


def test_non_scalar_objective():
    with pytest.raises(ValueError, match="needs `fn` to return a scalar; it returned shape \\(3,\\)"):
        qn.minimise(lambda y, _: y - 1.0, qn.LBFGS(), jnp.zeros(3))


def test_integer_objective():
    with pytest.raises(TypeError, match="real floating-point scalar"):
        qn.minimise(lambda y, _: jnp.sum(y > 0), qn.LBFGS(), jnp.zeros(3))


def test_tuple_without_has_aux():
    with pytest.raises(ValueError, match="pass `has_aux=True`"):
        qn.minimise(lambda y, _: (jnp.sum(y**2), 1.0), qn.LBFGS(), jnp.zeros(3))


def test_has_aux_without_pair():
    with pytest.raises(ValueError, match="must return a pair"):
        qn.minimise(f, qn.LBFGS(), jnp.zeros(3), has_aux=True)


def test_mismatched_structure_inside_fn():
    # fn expects {"a", "b"} but y0 has only "a": the user's own KeyError surfaces at
    # trace time, before any iteration.
    with pytest.raises(KeyError):
        qn.minimise(lambda y, _: jnp.sum(y["a"] + y["b"]), qn.LBFGS(), {"a": jnp.zeros(2)})


def test_least_squares_integer_residual():
    with pytest.raises(TypeError, match="floating-point residual"):
        qn.least_squares(lambda y, _: (y > 0).astype(jnp.int32), qn.LBFGS(), jnp.zeros(3))


def test_not_a_solver():
    with pytest.raises(TypeError, match="needs a qn.Solver"):
        qn.minimise(f, "lbfgs", jnp.zeros(3))


def test_bad_parts():
    with pytest.raises(ValueError, match="memory_size"):
        qn.curvature.LBFGS(memory_size=0)
    with pytest.raises(ValueError, match="c1 < c2"):
        qn.descent.Zoom(c1=0.5, c2=0.1)
    with pytest.raises(ValueError, match="line_search"):
        qn.LBFGS(line_search="exact")
    with pytest.raises(ValueError, match="max_steps"):
        qn.minimise(f, qn.LBFGS(), jnp.zeros(2), max_steps=-1)


def test_nonfinite_concrete_y0_raises_at_trace_time():
    with pytest.raises(ValueError, match="`y0` contains nan or inf"):
        qn.minimise(f, qn.LBFGS(), jnp.array([1.0, jnp.nan]))


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf])
def test_nonfinite_y0_reported_without_throw(bad):
    sol = qn.minimise(f, qn.LBFGS(), jnp.array([1.0, bad]), throw=False)
    assert sol.result == qn.RESULTS.nonfinite
    assert int(sol.stats["num_steps"]) == 0


def test_nonfinite_traced_y0_under_jit_raises_runtime_error():
    solve = jax.jit(lambda y0: qn.minimise(f, qn.LBFGS(), y0))
    with pytest.raises(Exception, match="non-finite value"):
        jax.block_until_ready(solve(jnp.array([1.0, jnp.nan])))


def test_nan_region_is_backed_out_of():
    # log is NaN for y ≤ 0: the unit step from y = 0.3 lands there. The search must
    # treat the NaN as "too long", shrink, and converge to y* = 1 (f'(y) = 1 − 1/y).
    def g(y, args):
        return jnp.sum(y - jnp.log(y))

    sol = qn.minimise(g, qn.LBFGS(), jnp.array([0.3]))
    assert sol.result == qn.RESULTS.successful
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-5)


def test_objective_nan_everywhere_after_start_reports_nonfinite():
    # Finite only at the start point itself: every trial is NaN, so the solve ends
    # with RESULTS.nonfinite at the (finite) start, never "successful".
    def g(y, args):
        return jnp.where(jnp.all(y == 0.5), 0.0, jnp.nan) + jnp.sum(y)

    sol = qn.minimise(g, qn.LBFGS(), jnp.array([0.5]), throw=False, max_steps=100)
    assert sol.result == qn.RESULTS.nonfinite
    np.testing.assert_array_equal(sol.value, [0.5])


def test_throw_under_jit_raises_even_if_only_value_is_returned():
    # The check is threaded through `value` as well as `result`, so a jitted
    # function returning only the value cannot drop it.
    solve_value = jax.jit(lambda a: qn.minimise(lambda y, a: jnp.sum((y - a) ** 2), qn.LBFGS(), jnp.zeros(2), a).value)
    np.testing.assert_allclose(solve_value(jnp.ones(2)), 1.0)
    with pytest.raises(Exception, match="non-finite value"):
        jax.block_until_ready(solve_value(jnp.array([1.0, jnp.nan])))
    # ... and derivatives still flow through the checked value.
    np.testing.assert_allclose(jax.grad(lambda a: jnp.sum(solve_value(a)))(jnp.ones(2)), [1.0, 1.0])


def test_preconditioner_and_forcing_checked():
    with pytest.raises(TypeError, match="preconditioner part"):
        qn.Solver(curvature=qn.curvature.GaussNewton(), descent=qn.descent.TrustRegion(), preconditioner="jacobi")
    with pytest.raises(TypeError, match="forcing part"):
        qn.Solver(curvature=qn.curvature.GaussNewton(), descent=qn.descent.TrustRegion(), forcing=0.1)
    with pytest.raises(ValueError, match="would be ignored"):
        qn.Solver(curvature=qn.curvature.LBFGS(), descent=qn.descent.Zoom(), preconditioner=qn.linear.Jacobi())
