"""The compiled evaluations cached by solves called from Python (`_host._EVALUATORS`)
never serve another objective's program: objectives whose jaxpr text is the same
but whose behaviour is not in the text (a NumPy objective behind
`jax.pure_callback`, custom derivative rules, constants of nested jaxprs) each get
their own answer, the one `jax.jit` gives; objectives that differ only in the
values of their arrays still share one compiled evaluation."""

import gc
import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn
from quasinewton import _host
from quasinewton.problem import make_problem

# Long (one compilation per objective for each cache case):
# run by CI and by `python3 run.py test -m slow`.
pytestmark = pytest.mark.slow

TARGETS = (1.0, 5.0)
Y0 = jnp.zeros(3)
MINIMISERS = [qn.LBFGS(), qn.BFGS()]
FITTERS = [qn.LevenbergMarquardt(), qn.GaussNewton()]
ALL = [("scalar", s) for s in MINIMISERS] + [("residual", s) for s in FITTERS]
IDS = ["lbfgs", "bfgs", "lm", "gn"]


def _solve(kind, fn, solver, y0=Y0, args=None):
    if kind == "scalar":
        return qn.minimise(fn, solver, y0, args, max_steps=200)
    return qn.least_squares(fn, solver, y0, args, max_steps=200)


def _check(kind, fn, solver, expected, args=None):
    """Solves `fn` from Python and under jax.jit; both must reach `expected`."""
    eager = _solve(kind, fn, solver, args=args)
    jitted = jax.jit(lambda y: _solve(kind, fn, solver, y, args))(Y0)
    for sol in (eager, jitted):
        assert sol.result == qn.RESULTS.successful
        np.testing.assert_allclose(sol.value, expected, atol=1e-6)
    np.testing.assert_allclose(eager.value, jitted.value, atol=1e-8)


def numpy_objective(kind, target):
    """An objective computed in NumPy behind `jax.pure_callback`, with a NumPy
    derivative (a custom JVP): Σ d² + d⁴/2 with d = y − target (or the residuals
    [d, d²/2]), minimised at y = target. The target is only in NumPy's closures,
    so every target gives the same jaxpr text."""
    target = np.full(3, target)

    def callback(fun, shape, y):
        return jax.pure_callback(
            fun, jax.ShapeDtypeStruct(shape, y.dtype), y, vmap_method="sequential"
        )

    if kind == "scalar":

        def value(y):
            d = np.asarray(y) - target
            return np.sum(d**2 + 0.5 * d**4)

        def derivative(y):  # the gradient
            d = np.asarray(y) - target
            return 2 * d + 2 * d**3

        out_shape, der_shape = (), (3,)
    else:

        def value(y):
            d = np.asarray(y) - target
            return np.concatenate([d, 0.5 * d**2])

        def derivative(y):  # the Jacobian
            d = np.asarray(y) - target
            return np.concatenate([np.eye(3), np.diag(d)])

        out_shape, der_shape = (6,), (6, 3)

    @jax.custom_jvp
    def f(y):
        return callback(value, out_shape, y)

    @f.defjvp
    def f_jvp(primals, tangents):
        (y,), (t,) = primals, tangents
        return f(y), callback(derivative, der_shape, y) @ t

    return lambda y, args: f(y)


@pytest.mark.parametrize("kind, solver", ALL, ids=IDS)
def test_numpy_objectives_with_other_targets_get_their_own_answers(kind, solver):
    # Solved in turn, each objective reaches its own target (1, then 5), as under
    # jax.jit: the first one's compiled evaluation is not reused for the second,
    # although their jaxprs print the same.
    fns = [numpy_objective(kind, t) for t in TARGETS]
    assert str(make_problem(fns[0], Y0, None, kind, False)[0].fn.jaxpr) == str(
        make_problem(fns[1], Y0, None, kind, False)[0].fn.jaxpr
    )
    for fn, target in zip(fns, TARGETS):
        _check(kind, fn, solver, target)


def test_a_numpy_objective_solved_again_compiles_nothing(caplog):
    # The same function object solved again (another start) reuses its compiled
    # evaluation: keyed by the object, it is still shared where provably safe.
    fn = numpy_objective("scalar", 2.0)
    qn.minimise(fn, qn.LBFGS(), Y0)
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        sol = qn.minimise(fn, qn.LBFGS(), jnp.ones(3))
    assert re.findall(r"Compiling (\S+)", caplog.text) == []
    np.testing.assert_allclose(sol.value, 2.0, atol=1e-6)


def _derivative_rule(rule, c):
    """½‖y − c‖² (minimised at y = c) as a function with a custom JVP or VJP whose
    rule closes over `c` too. `c` is a JAX array, a NumPy array or a Python float:
    in the primal it is a dynamic array of the problem or a literal, but a rule is
    traced only when the evaluation is compiled, with `c` compiled in."""
    if rule == "jvp":

        @jax.custom_jvp
        def f(y):
            return 0.5 * jnp.sum((y - c) ** 2)

        @f.defjvp
        def f_jvp(primals, tangents):
            (y,), (t,) = primals, tangents
            return f(y), jnp.dot(y - c, t)

    else:

        @jax.custom_vjp
        def f(y):
            return 0.5 * jnp.sum((y - c) ** 2)

        def fwd(y):
            return f(y), y

        def bwd(y, g):
            return (g * (y - c),)

        f.defvjp(fwd, bwd)
    return lambda y, args: f(y)


@pytest.mark.parametrize(
    "rule, array, solver",
    [
        ("jvp", jnp.asarray, qn.LBFGS()),
        ("jvp", jnp.asarray, qn.BFGS()),
        ("vjp", jnp.asarray, qn.LBFGS()),
        ("vjp", jnp.asarray, qn.BFGS()),
        ("jvp", np.asarray, qn.LBFGS()),
        ("vjp", np.asarray, qn.LBFGS()),
        ("jvp", float, qn.LBFGS()),
    ],
    ids=[
        "jvp-jax-lbfgs",
        "jvp-jax-bfgs",
        "vjp-jax-lbfgs",
        "vjp-jax-bfgs",
        "jvp-numpy",
        "vjp-numpy",
        "jvp-float",
    ],
)
def test_custom_derivative_rules_over_other_constants_get_their_own_answers(
    rule, array, solver
):
    # With c = 1 and then c = 5 the minimiser is c. Had the second solve reused
    # the first's compiled evaluation, its gradient would be y − 1 while its
    # objective is ½‖y − 5‖²: a wrong point, or a failed search.
    for c in TARGETS:
        value = c if array is float else array(np.full(3, c))
        _check("scalar", _derivative_rule(rule, value), solver, c)


@pytest.mark.parametrize(
    "kind, solver, array, inner_jit",
    [(kind, solver, jnp.asarray, True) for kind, solver in ALL]
    + [
        ("scalar", qn.LBFGS(), np.asarray, True),
        ("scalar", qn.LBFGS(), np.asarray, False),
    ],
    ids=[f"{i}-jax-inner-jit" for i in IDS]
    + ["lbfgs-numpy-inner-jit", "lbfgs-numpy-direct"],
)
def test_closures_over_other_arrays_get_their_own_answers(
    kind, solver, array, inner_jit
):
    # A closure over an array (directly: a constant of the closure-converted
    # jaxpr, passed to the compiled evaluation as an argument; or inside a nested
    # `jax.jit`: a constant of the nested jaxpr, compiled in) reaches the target
    # it closes over, 1 and then 5.
    def make(target):
        centre = array(np.full(3, target))

        def shift(y):
            return y - centre

        if inner_jit:
            shift = jax.jit(shift)
        if kind == "scalar":
            return lambda y, args: jnp.sum(shift(y) ** 2 + 0.5 * shift(y) ** 4)
        return lambda y, args: jnp.concatenate([shift(y), 0.5 * shift(y) ** 2])

    for target in TARGETS:
        _check(kind, make(target), solver, target)


@pytest.mark.parametrize("kind, solver", [ALL[0], ALL[2]], ids=[IDS[0], IDS[2]])
def test_lambdas_made_in_a_loop_get_their_own_answers(kind, solver):
    # Lambdas from one line, told apart only by a default argument (no closure:
    # keyed by the function object) or by a closed-over Python float (a literal of
    # the jaxpr text), each reach their own target: 1, then 5.
    targets = TARGETS
    if kind == "scalar":
        by_default = [
            lambda y, a, t=t: jnp.sum((y - t) ** 2 + (y - t) ** 4) for t in targets
        ]

        def factory(t):
            return lambda y, a: jnp.sum((y - t) ** 2 + (y - t) ** 4)
    else:
        by_default = [
            lambda y, a, t=t: jnp.concatenate([y - t, (y - t) ** 2]) for t in targets
        ]

        def factory(t):
            return lambda y, a: jnp.concatenate([y - t, (y - t) ** 2])

    for fn, t in zip(by_default, targets):
        _check(kind, fn, solver, t)
    for t in targets:
        _check(kind, factory(t), solver, t)


@pytest.mark.parametrize(
    "numpy", [False, True], ids=["default-argument", "numpy-callback"]
)
def test_a_function_deleted_and_recreated_gets_its_own_answer(numpy):
    # A function keyed by its object is held by the cache: a function made after
    # it was deleted cannot take its `id` and so its compiled evaluation. Targets
    # 1, then 5.
    def make(t):
        if numpy:
            return numpy_objective("scalar", t)
        return lambda y, a, t=t: jnp.sum((y - t) ** 2 + (y - t) ** 4)

    fn = make(TARGETS[0])
    _check("scalar", fn, qn.LBFGS(), TARGETS[0])
    del fn
    gc.collect()
    fn = make(TARGETS[1])
    _check("scalar", fn, qn.LBFGS(), TARGETS[1])


CENTRE = jnp.full(3, TARGETS[0])
OFFSET = 0.0


def _offset():
    return OFFSET


def reads_globals(y, args):
    return jnp.sum((y - CENTRE - _offset()) ** 2 + (y - CENTRE - _offset()) ** 4)


def test_a_function_reading_rebound_globals_gets_their_new_values():
    # A function closing over nothing is not traced before its evaluation is
    # compiled, and the globals it reads are compiled in: after `CENTRE` (read by
    # the function) or `OFFSET` (read by a helper of its module) is rebound, the
    # solve reaches the new target (1, then 5, then 7), as under jax.jit.
    global CENTRE, OFFSET
    try:
        _check("scalar", reads_globals, qn.LBFGS(), TARGETS[0])
        CENTRE = jnp.full(3, TARGETS[1])
        _check("scalar", reads_globals, qn.LBFGS(), TARGETS[1])
        OFFSET = 2.0
        _check("scalar", reads_globals, qn.LBFGS(), TARGETS[1] + 2.0)
    finally:
        CENTRE, OFFSET = jnp.full(3, TARGETS[0]), 0.0


def test_closures_over_other_array_values_share_one_evaluation(caplog):
    # Two lambdas with one pure-JAX body, over JAX arrays of other values (1, then
    # 5): the jaxpr text determines the program and the arrays are its
    # arguments, so the second solve compiles nothing and reaches its own target.
    def make(target):
        centre = jnp.full(3, target)
        return lambda y, args: jnp.sum((y - centre) ** 2 + 0.5 * (y - centre) ** 4)

    solver = qn.LBFGS()
    sol = qn.minimise(make(TARGETS[0]), solver, Y0)
    np.testing.assert_allclose(sol.value, TARGETS[0], atol=1e-6)
    before = len(_host._EVALUATORS)
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        sol = qn.minimise(make(TARGETS[1]), solver, Y0)
    assert re.findall(r"Compiling (\S+)", caplog.text) == []
    assert len(_host._EVALUATORS) == before
    np.testing.assert_allclose(sol.value, TARGETS[1], atol=1e-6)


def _program(fn, y0=Y0):
    return _host._program(make_problem(fn, y0, None, "scalar", False)[0].fn)


def test_what_the_key_holds():
    # The text for pure-JAX closures (shared across function objects); the
    # function object for callbacks and custom rules, given by the solve being
    # run; nothing (no caching) if the function object is not known.
    centre = jnp.ones(3)

    def pure(y, args):
        return jnp.sum((y - centre) ** 2)

    def debug(y, args):
        jax.debug.print("{}", y)
        return jnp.sum((y - centre) ** 2)

    def nested(y, args):
        # A `lax.cond` branch holding a callback: found in the nested jaxpr.
        def numpy_sum(z):
            return jax.pure_callback(np.sum, jax.ShapeDtypeStruct((), z.dtype), z)

        return jax.lax.cond(y[0] > 0, jnp.sum, numpy_sum, y - centre)

    assert isinstance(_program(pure)[0], str)
    # Over other JAX arrays: the same program (the arrays are its arguments)...
    other = 2 * centre
    assert _program(pure) == _program(lambda y, args: jnp.sum((y - other) ** 2))

    # ... but not inside a nested jax.jit, where the array is compiled in: told
    # apart by identity (JAX arrays), or not cached at all (NumPy arrays).
    def nested_jit(c):
        return lambda y, args: jnp.sum(jax.jit(lambda z: (z - c) ** 2)(y))

    assert _program(nested_jit(centre)) == _program(nested_jit(centre))
    assert _program(nested_jit(centre)) != _program(nested_jit(2 * centre))
    assert _program(nested_jit(np.ones(3))) is None
    for fn in (debug, nested, numpy_objective("scalar", 1.0)):
        assert _program(fn) is None
        with _host.solving(fn):
            program = _program(fn)
        assert program[1][0] == "function" and program[1][1].obj is fn


def test_callback_objectives_with_other_python_float_args_get_their_own_answers():
    # The target reaches the NumPy objective only through a Python float in `args`
    # (closed over, so compiled in, but not printed in the jaxpr: the callback hides
    # it). Solved in turn from Python, targets 1, 5, 1 give minimisers 1, 5, 1.
    def f(y, target):
        @jax.custom_jvp
        def objective(y):
            value = lambda y: np.asarray(np.sum((np.asarray(y) - target) ** 2))
            return jax.pure_callback(value, jax.ShapeDtypeStruct((), y.dtype), y)

        @objective.defjvp
        def _(primals, tangents):
            (y,), (ty,) = primals, tangents
            grad = lambda y: 2 * (np.asarray(y) - target)
            g = jax.pure_callback(grad, jax.ShapeDtypeStruct(y.shape, y.dtype), y)
            return objective(y), jnp.dot(g, ty)

        return objective(y)

    for target in (1.0, 5.0, 1.0):
        sol = qn.minimise(f, qn.LBFGS(), jnp.zeros(3), target, autodiff_mode="forward")
        np.testing.assert_allclose(np.asarray(sol.value), target, atol=1e-6)
