"""Bad input gets a clear error at trace time; bad values get a result code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn
from unchecked import unchecked


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
    with pytest.raises(
        ValueError, match="needs `fn` to return a scalar; it returned shape \\(3,\\)"
    ):
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
        qn.minimise(
            lambda y, _: jnp.sum(y["a"] + y["b"]), qn.LBFGS(), {"a": jnp.zeros(2)}
        )


def test_least_squares_integer_residual():
    with pytest.raises(TypeError, match="floating-point residual"):
        qn.least_squares(
            lambda y, _: (y > 0).astype(jnp.int32), qn.LBFGS(), jnp.zeros(3)
        )


def test_not_a_solver():
    with unchecked(), pytest.raises(TypeError, match="needs a qn.Solver"):
        qn.minimise(f, "lbfgs", jnp.zeros(3))


def test_bad_parts():
    with pytest.raises(ValueError, match="memory_size"):
        qn.curvature.LBFGS(memory_size=0)
    with pytest.raises(ValueError, match="c1 < c2"):
        qn.descent.Zoom(c1=0.5, c2=0.1)
    with unchecked(), pytest.raises(ValueError, match="line_search"):
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
    solve_value = jax.jit(
        lambda a: (
            qn.minimise(
                lambda y, a: jnp.sum((y - a) ** 2), qn.LBFGS(), jnp.zeros(2), a
            ).value
        )
    )
    np.testing.assert_allclose(solve_value(jnp.ones(2)), 1.0)
    with pytest.raises(Exception, match="non-finite value"):
        jax.block_until_ready(solve_value(jnp.array([1.0, jnp.nan])))
    # ... and derivatives still flow through the checked value.
    np.testing.assert_allclose(
        jax.grad(lambda a: jnp.sum(solve_value(a)))(jnp.ones(2)), [1.0, 1.0]
    )


def test_preconditioner_and_forcing_checked():
    with unchecked(), pytest.raises(TypeError, match="preconditioner part"):
        qn.Solver(
            curvature=qn.curvature.GaussNewton(),
            descent=qn.descent.TrustRegion(),
            preconditioner="jacobi",
        )
    with unchecked(), pytest.raises(TypeError, match="forcing part"):
        qn.Solver(
            curvature=qn.curvature.GaussNewton(),
            descent=qn.descent.TrustRegion(),
            forcing=0.1,
        )
    with pytest.raises(ValueError, match="would be ignored"):
        qn.Solver(
            curvature=qn.curvature.LBFGS(),
            descent=qn.descent.Zoom(),
            preconditioner=qn.linear.Jacobi(),
        )


# --- Issue 13: never a silent wrong answer -------------------------------------------


def _residuals(y, args):
    return y - jnp.arange(1.0, 1.0 + y.size, dtype=y.dtype)


def _vmapped(solve, y0):
    return jax.vmap(solve)(jnp.stack([y0, y0]))


_MODES = ["python", "jit", "vmap"]


def _run(mode, solve, y0):
    """`solve(y0)` called from Python, under jax.jit, or under jax.vmap over two starts."""
    if mode == "python":
        return solve(y0)
    if mode == "jit":
        return jax.jit(solve)(y0)
    return _vmapped(solve, y0)


@pytest.mark.parametrize("mode", _MODES)
def test_least_squares_pair_without_has_aux(mode):
    # The aux would be taken for residuals and fitted, and the solve report success.
    def fn(y, _):
        return _residuals(y, None), jnp.sum(y)

    solve = lambda y0: qn.least_squares(fn, qn.LevenbergMarquardt(), y0)
    with pytest.raises(
        ValueError,
        match="pass `has_aux=True`; to return groups of residuals use a list, dict",
    ):
        _run(mode, solve, jnp.zeros(3))


def test_least_squares_pair_without_has_aux_lbfgs():
    with pytest.raises(
        ValueError, match="tuple of two elements without `has_aux=True`"
    ):
        qn.least_squares(lambda y, _: (y - 1.0, y + 1.0), qn.LBFGS(), jnp.zeros(3))


@pytest.mark.parametrize("group", [list, dict, "triple"])
def test_least_squares_groups_of_residuals_accepted(group):
    def fn(y, _):
        parts = [y[:2] - 1.0, y[2:] - 2.0]
        if group is dict:
            return {"a": parts[0], "b": parts[1]}
        if group == "triple":
            return parts[0], parts[1], 0.0 * y[:1]
        return parts

    sol = qn.least_squares(fn, qn.LevenbergMarquardt(), jnp.zeros(3))
    np.testing.assert_allclose(sol.value, [1.0, 1.0, 2.0], atol=1e-6)


def test_least_squares_pair_with_has_aux_is_fine():
    sol = qn.least_squares(
        lambda y, _: (_residuals(y, None), jnp.sum(y)),
        qn.LevenbergMarquardt(),
        jnp.zeros(3),
        has_aux=True,
    )
    np.testing.assert_allclose(sol.value, [1.0, 2.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(sol.aux, 6.0, atol=1e-5)


def _shifted(y, args):
    a = args[0] if isinstance(args, tuple) else args
    return jnp.sum((y - a) ** 2)


@pytest.mark.parametrize(
    "dtype", [pytest.param(jnp.float32, marks=pytest.mark.slow), jnp.float64]
)
@pytest.mark.parametrize(
    "args",
    [(float("nan"),), pytest.param(float("nan"), marks=pytest.mark.slow)],
    ids=["tuple", "bare"],
)
@pytest.mark.parametrize("mode", _MODES)
def test_nan_python_float_in_args_is_nonfinite(mode, args, dtype):
    # nan != nan: compared as a static argument it gave Equinox's opaque "different
    # static arguments"; it is closed over, so the objective is simply nan.
    solve = lambda y0: qn.minimise(_shifted, qn.LBFGS(), y0, args, throw=False).result
    result = _run(mode, solve, jnp.zeros(2, dtype))
    assert np.all(np.asarray(result._value) == qn.RESULTS.nonfinite._value)


@pytest.mark.parametrize("mode", ["python", "jit"])
def test_nan_python_float_in_args_raises_nonfinite(mode):
    solve = lambda y0: qn.minimise(_shifted, qn.LBFGS(), y0, (float("nan"),)).value
    with pytest.raises(Exception, match="non-finite value"):
        jax.block_until_ready(_run(mode, solve, jnp.zeros(2)))


def test_python_float_args_are_not_confused_between_solves():
    # Called from Python the compiled evaluation is cached on the traced program, in
    # which a closed-over float is a literal: 1.0 and 5.0 must not share an entry.
    def closure_free(y, a):
        return jnp.sum((y - a) ** 2)

    offset = jnp.zeros(2)

    def closure(y, a):
        return jnp.sum((y - offset - a) ** 2)

    for fn in (closure_free, closure):
        for a in (1.0, 5.0, 1.0):
            sol = qn.minimise(fn, qn.LBFGS(), jnp.zeros(2), a)
            np.testing.assert_allclose(sol.value, [a, a], rtol=1e-6)
        sol = qn.least_squares(
            lambda y, a: y - a, qn.LevenbergMarquardt(), jnp.zeros(2), 5.0
        )
        np.testing.assert_allclose(sol.value, [5.0, 5.0], rtol=1e-6)


def test_python_scalars_in_args_drive_python_control_flow():
    def fn(y, args):
        power, name = args
        if power == 2 and name == "quadratic":
            return jnp.sum((y - 1.0) ** 2)
        return jnp.sum((y - 3.0) ** 4)

    np.testing.assert_allclose(
        qn.minimise(fn, qn.LBFGS(), jnp.zeros(2), (2, "quadratic")).value,
        1.0,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        qn.minimise(fn, qn.LBFGS(), jnp.zeros(2), (4, "quartic")).value, 3.0, atol=0.05
    )
    jitted = jax.jit(lambda y0: qn.minimise(fn, qn.LBFGS(), y0, (2, "quadratic")).value)
    np.testing.assert_allclose(jitted(jnp.zeros(2)), 1.0, atol=1e-5)


@pytest.mark.parametrize("mode", ["python", "jit"])
@pytest.mark.parametrize("max_steps", [2**31 - 1, 2**31, 2**40])
def test_max_steps_beyond_int32_counters(mode, max_steps):
    solve = lambda y0: qn.minimise(f, qn.LBFGS(), y0, max_steps=max_steps).value
    with pytest.raises(ValueError, match="counts steps in int32"):
        _run(mode, solve, jnp.zeros(2))


def test_max_steps_at_the_limit_is_accepted():
    sol = qn.minimise(f, qn.LBFGS(), jnp.zeros(2), max_steps=2**31 - 2)
    assert sol.result == qn.RESULTS.successful


@pytest.mark.parametrize("mode", ["python", "jit"])
def test_history_buffer_too_large(mode):
    # max_steps + 1 floats would be allocated at the start (18 GB for 2**31 steps).
    solve = lambda y0: (
        qn.minimise(f, qn.LBFGS(), y0, max_steps=2**24, history=True).value
    )
    with pytest.raises(ValueError, match="history buffer holds max_steps \\+ 1"):
        _run(mode, solve, jnp.zeros(2))


@pytest.mark.parametrize("mode", ["python", "jit"])
def test_numpy_integer_max_steps(mode):
    solve = lambda y0: qn.minimise(
        f, qn.LBFGS(), y0, max_steps=np.int64(50), history=True
    ).stats["loss_history"]
    assert _run(mode, solve, jnp.zeros(2)).shape == (51,)


@pytest.mark.parametrize("bad", [True, 2.5, 50.0, np.float64(50), "50", None])
def test_max_steps_must_be_an_integer(bad):
    with unchecked(), pytest.raises(TypeError, match="`max_steps` must be an integer"):
        qn.minimise(f, qn.LBFGS(), jnp.zeros(2), max_steps=bad)


@pytest.mark.parametrize(
    "mode", [pytest.param("python", marks=pytest.mark.slow), "jit"]
)
def test_numpy_integer_memory_size(mode):
    for solver in (
        qn.LBFGS(memory_size=np.int64(5)),
        qn.LBFGS(memory_size=np.int32(3), init="ase", alpha=2.0),
    ):
        assert type(solver.curvature.memory_size) is int
        solve = lambda y0: qn.minimise(f, solver, y0).value
        np.testing.assert_allclose(_run(mode, solve, jnp.zeros(3)), 1.0, atol=1e-5)


@pytest.mark.parametrize("make", [qn.LBFGS, qn.curvature.LBFGS])
def test_lbfgs_arguments_checked(make):
    for bad in (2.5, True, "5", None):
        with unchecked(), pytest.raises(TypeError, match="`memory_size` must be an"):
            make(memory_size=bad)
    with pytest.raises(ValueError, match="`memory_size` must be at least 1"):
        make(memory_size=np.int64(0))
    for bad in (0, 0.0, -70.0):
        with pytest.raises(ValueError, match="`alpha` must lie in \\(0, inf\\)"):
            make(init="ase", alpha=bad)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="`alpha` must be finite"):
            make(init="ase", alpha=bad)
    with unchecked(), pytest.raises(TypeError, match="`alpha` must be a real number"):
        make(init="ase", alpha="70")
    with pytest.raises(TypeError, match="`max_skipped` must be an integer"):
        qn.curvature.LBFGS(max_skipped=1.5)


@pytest.mark.parametrize("name", ["rtol", "atol"])
@pytest.mark.parametrize(
    "make",
    [
        qn.LBFGS,
        qn.BFGS,
        qn.Newton,
        qn.GaussNewton,
        qn.LevenbergMarquardt,
        qn.LevenbergMarquardtCG,
    ],
)
def test_tolerances_checked(make, name):
    for bad in ("1e-8", True, jnp.ones(2), 1j):
        with unchecked(), pytest.raises(TypeError, match=f"`{name}` must be a real"):
            make(**{name: bad})
    for bad in (float("nan"), float("inf"), np.float64("nan")):
        with pytest.raises(ValueError, match=f"`{name}` must be finite"):
            make(**{name: bad})
    with pytest.raises(ValueError, match=f"`{name}` must lie in \\[0, inf\\)"):
        make(**{name: -1e-8})
    # Zero, NumPy and JAX scalars and None are all fine.
    for good in (0, 0.0, np.float32(1e-6), jnp.asarray(1e-6), None):
        make(**{name: good})


@pytest.mark.slow
def test_tolerances_traced_under_vmap_are_not_checked():
    # A batch of tolerances: their values are not known at trace time.
    def solve(rtol):
        return qn.minimise(f, qn.LBFGS(rtol=rtol), jnp.zeros(2)).value

    np.testing.assert_allclose(jax.vmap(solve)(jnp.array([1e-6, 1e-8])), 1.0, atol=1e-5)


def test_other_parts_arguments_checked():
    cases = [
        (lambda: qn.descent.Zoom(c1="0.1"), TypeError, "`c1` must be a real number"),
        (lambda: qn.descent.Zoom(c2=float("nan")), ValueError, "`c2` must be finite"),
        (
            lambda: qn.descent.Zoom(max_trials=2.5),
            TypeError,
            "`max_trials` must be an integer",
        ),
        (
            lambda: qn.descent.Zoom(max_trials=0),
            ValueError,
            "`max_trials` must be at least 1",
        ),
        (
            lambda: qn.descent.Zoom(max_growth=1.0),
            ValueError,
            "`max_growth` must lie in \\(1, inf\\)",
        ),
        (
            lambda: qn.descent.Backtracking(c1=0.0),
            ValueError,
            "`c1` must lie in \\(0, 1\\)",
        ),
        (
            lambda: qn.descent.Backtracking(max_trials=True),
            TypeError,
            "`max_trials` must be an integer",
        ),
        (
            lambda: qn.descent.TrustRegion(initial_damping=0.0),
            ValueError,
            "`initial_damping` must lie in \\(0, inf\\)",
        ),
        (
            lambda: qn.descent.TrustRegion(initial_damping=float("nan")),
            ValueError,
            "`initial_damping` must be finite",
        ),
        (
            lambda: qn.descent.TrustRegion(accept="0.1"),
            TypeError,
            "`accept` must be a real number",
        ),
        (
            lambda: qn.descent.TrustRegion(max_decrease=float("nan")),
            ValueError,
            "`max_decrease` must be finite",
        ),
        (
            lambda: qn.descent.TrustRegion(min_damping=-1.0),
            ValueError,
            "`min_damping` must lie in \\(0, inf\\)",
        ),
        (
            lambda: qn.linear.ConjugateGradient(rtol=-1.0),
            ValueError,
            "`rtol` must lie in \\[0, inf\\)",
        ),
        (
            lambda: qn.linear.ConjugateGradient(atol=float("nan")),
            ValueError,
            "`atol` must be finite",
        ),
        (
            lambda: qn.linear.ConjugateGradient(max_steps=10.0),
            TypeError,
            "`max_steps` must be an integer",
        ),
        (
            lambda: qn.LevenbergMarquardtCG(max_cg_steps=0),
            ValueError,
            "`max_steps` must be at least 1",
        ),
        (
            lambda: qn.linear.ConstantForcing(rtol=1.5),
            ValueError,
            "`rtol` must lie in \\[0, 1\\)",
        ),
        (
            lambda: qn.linear.EisenstatWalker(gamma=0.0),
            ValueError,
            "`gamma` must lie in \\(0, 1\\]",
        ),
        (
            lambda: qn.linear.EisenstatWalker(exponent=3.0),
            ValueError,
            "`exponent` must lie in \\(1, 2\\]",
        ),
        (
            lambda: qn.linear.EisenstatWalker(min_rtol=0.5, max_rtol=0.1),
            ValueError,
            "min_rtol <= max_rtol",
        ),
        (
            lambda: qn.linear.EisenstatWalker(initial_rtol=float("nan")),
            ValueError,
            "`initial_rtol` must be finite",
        ),
        (
            lambda: qn.linear.Jacobi(num_probes=2.5),
            TypeError,
            "`num_probes` must be an integer",
        ),
        (lambda: qn.linear.Jacobi(seed="0"), TypeError, "`seed` must be an integer"),
    ]
    for make, error, message in cases:
        with pytest.raises(error, match=message):
            make()
    # NumPy integers are accepted and stored as Python ints.
    assert type(qn.linear.Jacobi(num_probes=np.int64(4)).num_probes) is int
    assert type(qn.linear.ConjugateGradient(max_steps=np.int64(4)).max_steps) is int
    assert type(qn.descent.Zoom(max_trials=np.int64(4)).max_trials) is int
    # NumPy floats are stored as Python floats: weakly typed, they do not promote a
    # float32 solve to float64.
    assert type(qn.descent.Zoom(c1=np.float64(1e-4)).c1) is float
    assert type(qn.curvature.LBFGS(alpha=np.float32(3.0)).alpha) is float
    assert (
        type(qn.descent.TrustRegion(initial_damping=np.float64(1e-2)).initial_damping)
        is float
    )
    sol = qn.minimise(
        f,
        qn.Solver(qn.curvature.LBFGS(), qn.descent.Zoom(c1=np.float64(1e-4))),
        jnp.zeros(2, jnp.float32),
    )
    assert sol.value.dtype == jnp.float32


_EMPTY = [
    jnp.zeros((0,)),
    jnp.zeros((2, 0)),
    {"a": jnp.zeros((0,)), "b": jnp.zeros((0, 3))},
]


@pytest.mark.parametrize("y0", _EMPTY, ids=["(0,)", "(2, 0)", "dict"])
@pytest.mark.parametrize("mode", ["python", "jit"])
@pytest.mark.parametrize("make", [qn.LBFGS, qn.Newton, qn.LevenbergMarquardt])
def test_y0_without_elements(make, mode, y0):
    kind = qn.least_squares if make is qn.LevenbergMarquardt else qn.minimise
    fn = (
        (lambda y, _: y)
        if kind is qn.least_squares
        else (lambda y, _: sum(jnp.sum(v) for v in jax.tree.leaves(y)))
    )
    solve = lambda y0: kind(fn, make(), y0).value
    with pytest.raises(
        ValueError, match="`y0` has no elements .*: nothing to solve for"
    ):
        solve(y0) if mode == "python" else jax.jit(solve)(y0)


def test_y0_without_elements_under_vmap():
    solve = lambda y0: qn.minimise(f, qn.LBFGS(), y0).value
    with pytest.raises(ValueError, match="`y0` has no elements"):
        jax.vmap(solve)(jnp.zeros((3, 0)))


_PRESETS = [
    (qn.LBFGS, qn.minimise),
    (qn.BFGS, qn.minimise),
    (qn.Newton, qn.minimise),
    (qn.GaussNewton, qn.least_squares),
    (qn.LevenbergMarquardt, qn.least_squares),
    (qn.LevenbergMarquardtCG, qn.least_squares),
]


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("mode", _MODES)
@pytest.mark.parametrize(
    "make,kind", _PRESETS, ids=lambda v: getattr(v, "__name__", "")
)
def test_half_precision_refused(make, kind, mode, dtype):
    fn = f if kind is qn.minimise else (lambda y, _: y - 1.0)
    solve = lambda y0: kind(fn, make(), y0).value
    with pytest.raises(
        TypeError,
        match="has dtype .*float16; qn works in float32 or float64. Cast y0 with `.astype\\(jnp.float32\\)`",
    ):
        _run(mode, solve, jnp.zeros(3, dtype))


def test_half_precision_leaf_named():
    with pytest.raises(TypeError, match="y0\\['b'\\] has dtype float16"):
        qn.minimise(
            lambda y, _: jnp.sum(y["a"] ** 2),
            qn.LBFGS(),
            {"a": jnp.zeros(2), "b": jnp.zeros(2, jnp.float16)},
        )


@pytest.mark.slow
def test_weak_float_arg_under_jit_takes_the_dtype_of_y():
    # Under jax.jit a Python float argument is a weakly typed float64 (with x64);
    # made strongly typed in its own dtype it would promote a float32 fn to float64
    # (an error under strict dtype promotion). It takes y's dtype instead.
    def fn(y, a):
        return jnp.sum(a * (y - 1.0) ** 2), a

    for dtype in (jnp.float32, jnp.float64):
        sol = jax.jit(lambda y0, a: qn.minimise(fn, qn.LBFGS(), y0, a, has_aux=True))(
            jnp.zeros(2, dtype), 3.0
        )
        assert sol.aux.dtype == dtype
        np.testing.assert_allclose(sol.value, 1.0, atol=1e-4)
    grad = jax.grad(
        lambda a: jnp.sum(
            qn.minimise(
                lambda y, a: jnp.sum((y - a) ** 2),
                qn.LBFGS(),
                jnp.zeros(2, jnp.float32),
                a,
            ).value
        )
    )(2.0)
    np.testing.assert_allclose(grad, 2.0, rtol=1e-4)
