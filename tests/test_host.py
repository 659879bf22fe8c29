"""Solves called outside any JAX transformation run their loop from Python
(`quasinewton._host`): same iterations as the compiled loop, the solver's step
compiled once and reused across objectives, and the compiled loop whenever anything
is traced."""

import collections
import logging
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn
from quasinewton import _host, _solve
from quasinewton.problem import make_problem


def rosenbrock(y, args=None):
    return jnp.sum(100.0 * (y[1:] - y[:-1] ** 2) ** 2 + (1.0 - y[:-1]) ** 2)


def exp_residual(p, args):
    t, y = args
    return p[0] * jnp.exp(-p[1] * t) + p[2] - y


T = jnp.linspace(0.0, 4.0, 30)
DATA = (T, 2.0 * jnp.exp(-1.3 * T) + 0.5 + 0.01 * jnp.sin(7.0 * T))
Y0 = jnp.array([-1.2, 1.0, -1.2, 1.0])


def _summary(sol):
    return (
        np.asarray(sol.value),
        int(sol.result._value),
        int(sol.stats["num_steps"]),
        int(sol.stats["num_fn_evals"]),
        int(sol.stats["termination"]._value),
    )


@pytest.mark.parametrize(
    "solver",
    [qn.LBFGS(), qn.BFGS(), qn.LBFGS(line_search="armijo"), qn.Newton()],
    ids=["lbfgs", "bfgs", "lbfgs-armijo", "newton"],
)
def test_eager_solve_takes_the_jitted_iterations(solver):
    # Both paths run `_loop.advance` on the same evaluations: the same number of
    # steps and evaluations, the same termination, the same point up to rounding.
    eager = qn.minimise(rosenbrock, solver, Y0, max_steps=500)
    jitted = jax.jit(lambda y: qn.minimise(rosenbrock, solver, y, max_steps=500))(Y0)
    e, j = _summary(eager), _summary(jitted)
    assert e[1:] == j[1:]
    np.testing.assert_allclose(e[0], j[0], rtol=1e-12, atol=1e-12)
    assert e[1] == int(qn.RESULTS.successful._value)
    np.testing.assert_allclose(e[0], 1.0, atol=1e-6)


@pytest.mark.parametrize("linear_solver", [None, "qr"], ids=["lean", "qr"])
def test_eager_least_squares_matches_jitted(linear_solver):
    import lineax as lx

    kwargs = {} if linear_solver is None else {"linear_solver": lx.QR()}
    solver = qn.LevenbergMarquardt(**kwargs)
    y0 = jnp.array([1.0, 1.0, 0.0])
    eager = qn.least_squares(exp_residual, solver, y0, DATA)
    jitted = jax.jit(lambda y, d: qn.least_squares(exp_residual, solver, y, d))(
        y0, DATA
    )
    assert _summary(eager)[1:] == _summary(jitted)[1:]
    np.testing.assert_allclose(eager.value, jitted.value, rtol=1e-10)
    assert int(eager.stats["num_jac_evals"]) == int(jitted.stats["num_jac_evals"])


def test_compiled_step_is_reused_by_a_new_objective():
    # The step does not depend on the objective: a second objective of the same
    # size, dtype and solver compiles only its own evaluation.
    solver = qn.LBFGS(memory_size=7)  # a configuration no other test uses
    y0 = jnp.linspace(-1.0, 1.0, 6)
    qn.minimise(rosenbrock, solver, y0)
    size = _host._advance._cache_size()

    def quartic(y, args):
        return jnp.sum((y - 0.3) ** 4 + (y - 0.3) ** 2)

    sol = qn.minimise(quartic, solver, y0)
    assert _host._advance._cache_size() == size
    np.testing.assert_allclose(sol.value, 0.3, atol=1e-5)
    # Sizes 1 to 32 share the step compiled for 32 unknowns (padded with zeros)...
    for n in (1, 7, 32):
        sol = qn.minimise(quartic, solver, jnp.zeros(n))
        assert _host._advance._cache_size() == size
        assert sol.value.shape == (n,) and sol.state.x.shape == (n,)
        np.testing.assert_allclose(sol.value, 0.3, atol=1e-5)
    # ... and size 33 is another compilation (for 64).
    qn.minimise(quartic, solver, jnp.zeros(33))
    assert _host._advance._cache_size() == size + 1


@pytest.mark.parametrize("solver", [qn.LBFGS(), qn.BFGS()], ids=["lbfgs", "bfgs"])
def test_padded_step_solves_like_the_unpadded_loop(solver):
    # n = 5 runs in a step compiled for 32 unknowns; the padding is exact, so the
    # solve reaches the same minimiser, with the same number of evaluations up to
    # rounding in the longer inner products (measured: equal here).
    y0 = jnp.array([-1.2, 1.0, -1.2, 1.0, 0.5])
    assert _host.padded_size(solver.curvature, 5) == 32
    eager = qn.minimise(rosenbrock, solver, y0, max_steps=500)
    jitted = jax.jit(lambda y: qn.minimise(rosenbrock, solver, y, max_steps=500))(y0)
    assert eager.result == qn.RESULTS.successful == jitted.result
    np.testing.assert_allclose(eager.value, jitted.value, atol=1e-7)
    np.testing.assert_allclose(eager.value, 1.0, atol=1e-6)
    e, j = int(eager.stats["num_fn_evals"]), int(jitted.stats["num_fn_evals"])
    assert abs(e - j) <= 0.1 * j, (e, j)
    assert eager.state.evaluation.grad.shape == (5,)


def test_padded_size():
    lbfgs, newton = qn.LBFGS().curvature, qn.Newton().curvature
    assert [_host.padded_size(lbfgs, n) for n in (1, 2, 5, 32, 33, 64, 65, 1000)] == [
        32,
        32,
        32,
        32,
        64,
        64,
        128,
        1024,
    ]
    assert _host.padded_size(lbfgs, 1025) == 1025  # beyond _MAX_PADDED: exact size
    assert _host.padded_size(newton, 5) == 5  # a singular padded Hessian: never


@pytest.mark.slow
def test_traced_solves_use_the_compiled_loop():
    problem_y0 = jnp.array([0.5, 0.5])

    def shifted(y, a):
        return jnp.sum((y - a) ** 2) + 0.1 * jnp.sum(y**4)

    seen = []
    original = _host.can_run_on_host

    def spy(problem, solver, x0):
        out = original(problem, solver, x0)
        seen.append(out)
        return out

    _solve.can_run_on_host = spy
    try:
        qn.minimise(shifted, qn.LBFGS(), problem_y0, jnp.array(1.0))
        one = jnp.array(1.0)
        jax.jit(lambda a: qn.minimise(shifted, qn.LBFGS(), problem_y0, a).value)(one)
        jax.vmap(lambda a: qn.minimise(shifted, qn.LBFGS(), problem_y0, a).value)(
            jnp.ones(3)
        )
        grad = jax.grad(
            lambda a: qn.minimise(shifted, qn.LBFGS(), problem_y0, a).value[0]
        )(one)
        # A closure over a traced value is traced too.
        jax.grad(
            lambda a: qn.minimise(
                lambda y, _: shifted(y, a), qn.LBFGS(), problem_y0
            ).value[0]
        )(one)
    finally:
        _solve.can_run_on_host = original
    assert seen == [True, False, False, False, False]
    # dy*/da from the optimality condition 2(y − a) + 0.4y³ = 0: dy/da = 2/(2 + 1.2y²).
    y = float(qn.minimise(shifted, qn.LBFGS(), problem_y0, jnp.array(1.0)).value[0])
    np.testing.assert_allclose(float(grad), 2.0 / (2.0 + 1.2 * y**2), rtol=1e-6)


def test_matrix_free_models_use_the_compiled_loop():
    # A linearisation (a function) cannot cross between compiled functions.
    y0 = jnp.array([1.0, 1.0, 0.0])
    problem, x0, _ = make_problem(exp_residual, y0, DATA, "residual", False)
    solver = qn.LevenbergMarquardtCG()
    solver = eqx.tree_at(
        lambda s: s.curvature, solver, solver.curvature.specialise(problem, x0)
    )
    assert solver.curvature.needs_linearisation
    assert not _host.can_run_on_host(problem, solver, x0)
    sol = qn.least_squares(exp_residual, qn.LevenbergMarquardtCG(), y0, DATA)
    assert sol.result == qn.RESULTS.successful


def test_eager_failures_are_reported_like_jitted_ones():
    # A start at which f is not finite: `nonfinite`, and an error with throw=True.
    def log_barrier(y, args):
        return -jnp.sum(jnp.log(y)) + jnp.sum(y)

    bad = jnp.array([-1.0, 1.0])
    sol = qn.minimise(log_barrier, qn.LBFGS(), bad, throw=False)
    jitted = jax.jit(lambda y: qn.minimise(log_barrier, qn.LBFGS(), y, throw=False))(
        bad
    )
    assert sol.result == qn.RESULTS.nonfinite == jitted.result
    with pytest.raises(Exception, match="(?i)non-?finite|nan|inf"):
        qn.minimise(log_barrier, qn.LBFGS(), bad)
    # Running out of steps.
    short = qn.minimise(rosenbrock, qn.LBFGS(), Y0, max_steps=5, throw=False)
    assert short.result == qn.RESULTS.max_steps_reached
    assert int(short.stats["num_steps"]) == 5


@pytest.mark.slow
def test_eager_history_matches_jitted():
    eager = qn.minimise(rosenbrock, qn.LBFGS(), Y0, history=True, max_steps=100)
    jitted = jax.jit(
        lambda y: qn.minimise(rosenbrock, qn.LBFGS(), y, history=True, max_steps=100)
    )(Y0)
    np.testing.assert_allclose(
        eager.stats["loss_history"], jitted.stats["loss_history"], rtol=1e-12
    )
    steps = int(eager.stats["num_steps"])
    assert np.all(np.isfinite(np.asarray(eager.stats["loss_history"])[: steps + 1]))
    assert np.all(np.isnan(np.asarray(eager.stats["loss_history"])[steps + 1 :]))


def test_static_arguments_interned_and_bounded(monkeypatch):
    # Equal static arguments become one object (jit then compares them by
    # identity); the table keeps only the most recently used.
    monkeypatch.setattr(_host, "_MAX_INTERNED", 3)
    monkeypatch.setattr(_host._Static, "_interned", collections.OrderedDict())
    a = _host._Static.of("solver", 1)
    assert _host._Static.of("solver", 1) is a
    for k in range(2, 6):
        _host._Static.of("solver", k)
    assert len(_host._Static._interned) == 3
    # `a` was evicted: an equal new object is made, and it still compares equal,
    # so compiled functions cached for `a` are still found.
    b = _host._Static.of("solver", 1)
    assert b is not a and b == a and hash(b) == hash(a)


def test_a_new_size_compiles_only_the_evaluation(caplog):
    # After one solve, a solve of a new objective with another n ≤ 32 compiles its
    # evaluation and nothing else: the step is shared (padded to 32) and the
    # padding, cutting and unravelling around the loop run in NumPy. Each
    # operation compiled op by op for a new shape costs 10–30 ms on a 2-core CPU.
    solver = qn.LBFGS(memory_size=6)  # a configuration no other test uses
    qn.minimise(rosenbrock, solver, jnp.full(4, 0.5))

    def quartic(y, args):
        return jnp.sum((y - 0.3) ** 4 + (y - 0.3) ** 2)

    y0 = jnp.zeros(11)
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        sol = qn.minimise(quartic, solver, y0)
    compiled = re.findall(r"Compiling (\S+)", caplog.text)
    assert compiled == ["jit(evaluate)"], compiled
    np.testing.assert_allclose(sol.value, 0.3, atol=1e-5)
    assert sol.stats["gradient_norm"] == jnp.max(jnp.abs(sol.state.evaluation.grad))


@pytest.mark.parametrize("closes_over_array", [False, True], ids=["plain", "closure"])
def test_a_first_solve_traces_the_objective_once(closes_over_array):
    # Tracing a user's objective can take longer than compiling it: the output
    # check reads the shapes of the one trace the evaluation makes (or, for a
    # function closing over arrays, of the closure conversion's jaxpr), instead
    # of tracing `fn` again.
    calls = []
    centre = jnp.array([0.1, 0.2, 0.3])

    if closes_over_array:

        def fn(y, args):
            calls.append(1)
            return jnp.sum((y - centre) ** 2)
    else:

        def fn(y, args):
            calls.append(1)
            return jnp.sum((y - args) ** 2)

    sol = qn.minimise(fn, qn.LBFGS(), jnp.zeros(3), centre)
    assert len(calls) == 1
    np.testing.assert_allclose(sol.value, centre, atol=1e-6)


def test_packing_the_loop_state_round_trips():
    # The step takes and returns the loop state as one buffer per dtype; packing
    # and unpacking must give back every leaf exactly, whatever its dtype and shape
    # (the user's aux can hold any), in NumPy on the host and in JAX.
    leaves = [
        np.arange(6.0).reshape(2, 3),
        np.array(7, np.int32),
        np.array([True, False]),
        np.array(2.5),
        np.zeros((0,), np.float64),
        np.array([1, 2, 3], np.int8),
        np.arange(4, dtype=np.int32),
    ]
    layout = _host._layout(leaves)
    for xp in (np, jnp):
        buffers = _host._pack(leaves, layout, xp)
        assert [b.dtype for b in buffers] == [np.float64, np.int32, np.bool_, np.int8]
        assert [b.shape for b in buffers] == [(7,), (5,), (2,), (3,)]
        back = _host._unpack(buffers, layout)
        for a, b in zip(leaves, back):
            assert b.shape == a.shape and b.dtype == a.dtype
            np.testing.assert_array_equal(b, a)


@pytest.mark.slow
def test_aux_of_any_dtype_passes_through_the_host_loop():
    # The loop state (which holds the user's aux) is packed by dtype for the
    # compiled step; a PRNG key has no NumPy form and is passed as it is. The
    # solve called from Python returns the same as under jax.jit.
    def f(y, args):
        aux = {
            "key": jax.random.key(3),
            "count": jnp.int8(7),
            "phase": jnp.complex64(1j),
        }
        return jnp.sum((y - 1.0) ** 2), aux

    def solve(y0):
        return qn.minimise(f, qn.LBFGS(), y0, has_aux=True)

    eager, jitted = solve(jnp.zeros(3)), jax.jit(solve)(jnp.zeros(3))
    for sol in (eager, jitted):
        np.testing.assert_allclose(sol.value, 1.0, atol=1e-6)
        assert int(sol.aux["count"]) == 7 and complex(sol.aux["phase"]) == 1j
        np.testing.assert_array_equal(
            jax.random.key_data(sol.aux["key"]), jax.random.key_data(jax.random.key(3))
        )


def _counted(fn):
    """`fn` that also adds 1 to a Python counter each time it runs on the device."""
    runs = []

    def counted(y, args):
        jax.debug.callback(lambda _: runs.append(1), y)
        return fn(y, args)

    return counted, runs


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, solver",
    [
        ("scalar", qn.LBFGS()),
        ("scalar", qn.BFGS()),
        ("scalar", qn.Newton()),
        ("residual", qn.LevenbergMarquardt()),
        ("residual", qn.GaussNewton()),
        ("residual", qn.LevenbergMarquardtCG()),
    ],
    ids=["lbfgs", "bfgs", "newton", "lm", "gn", "lm-cg"],
)
def test_evaluation_counts_are_the_objectives_runs(kind, solver):
    # `num_fn_evals` (and `num_jac_evals`) count every run of `fn`, called from
    # Python and under jax.jit alike: the host loop queues one evaluation past the
    # last iteration, which skips the objective once the solve has ended, and the
    # compiled loop counts the re-linearisations after rejected LM trials (lm-cg,
    # matrix-free, always uses it). Every evaluation runs `fn` once (forward and
    # reverse mode alike), so the counter is exactly `num_fn_evals`.
    if kind == "scalar":
        fn, runs = _counted(rosenbrock)
        y0 = Y0

        def solve(y0):
            return qn.minimise(fn, solver, y0, max_steps=500)
    else:
        fn, runs = _counted(exp_residual)
        y0 = jnp.array([1.0, 0.5, 0.0])

        def solve(y0):
            return qn.least_squares(fn, solver, y0, DATA, max_steps=500)

    counts = {}
    for path, run in (("host", solve), ("jit", jax.jit(solve))):
        runs.clear()
        sol = run(y0)
        jax.effects_barrier()
        assert sol.result == qn.RESULTS.successful
        assert int(sol.stats["num_fn_evals"]) == len(runs), path
        if kind == "residual":
            # Every evaluation forms J (or a linearisation) with the residual.
            assert int(sol.stats["num_jac_evals"]) == len(runs), path
        counts[path] = len(runs)
    # Both paths take the same iterations, so they run `fn` equally often.
    assert counts["host"] == counts["jit"]
