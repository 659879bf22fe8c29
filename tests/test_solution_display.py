"""How results read: RESULTS/Termination members, a Solution's line and summary,
indexing a batch from jax.vmap, and the error a failed solve raises under jax.jit."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn
from quasinewton._misc import throw_if_failed

T = jnp.linspace(0.0, 4.0, 20)
RATES = jnp.linspace(0.2, 3.0, 50)
START = jnp.array([1.0, 1.0, 0.0])


def exp_decay(p, args):
    t, y = args
    return p[0] * jnp.exp(-p[1] * t) + p[2] - y


def _fit(y, max_steps=8):
    solver = qn.LevenbergMarquardt()
    return qn.least_squares(
        exp_decay, solver, START, (T, y), throw=False, max_steps=max_steps
    )


@pytest.fixture(scope="module")
def batch():
    # 50 noise-free fits of 2·exp(-b·t) + 0.5 with b from 0.2 to 3, from (1, 1, 0).
    # Fit 7 has a NaN in its data. With max_steps=8 the slow decays (small b, far
    # from the start's b = 1) run out of steps: fits 0-4 need 9 to 19 steps
    # (measured with max_steps=100), fits 5 and 6 exactly 8, every other fit at
    # most 6. (One jitted vmap, compiled once for the module.)
    ys = (2.0 * jnp.exp(-RATES[:, None] * T) + 0.5).at[7, 3].set(jnp.nan)
    return jax.jit(jax.vmap(_fit))(ys)


def test_members_print_by_name():
    # str and repr both give the class and member names.
    assert repr(qn.RESULTS.successful) == "RESULTS.successful"
    assert str(qn.RESULTS.max_steps_reached) == "RESULTS.max_steps_reached"
    assert str(qn.Termination.gradient) == "Termination.gradient"
    assert f"{qn.Termination.step!r}" == "Termination.step"
    assert qn.RESULTS.nonfinite.name == "nonfinite"
    # The message stays available both ways, and is empty for success.
    assert qn.RESULTS.nonfinite.message == qn.RESULTS[qn.RESULTS.nonfinite]
    assert qn.RESULTS.nonfinite.message.startswith("A non-finite value")
    assert qn.RESULTS.successful.message == ""
    assert qn.RESULTS.successful.counts() == {"successful": 1}


def test_members_still_behave_as_equinox_enumerations():
    R = qn.RESULTS
    assert isinstance(R.successful, R) and not isinstance(R.successful, qn.Termination)
    assert bool(R.successful == R.successful) and bool(R.successful != R.nonfinite)
    with pytest.raises(ValueError, match="same type"):
        R.successful == qn.Termination.none  # noqa: B015
    # `where` builds members of the same class (a loop carrying one keeps its type).
    picked = R.where(jnp.array(False), R.successful, R.search_failed)
    assert repr(picked) == "RESULTS.search_failed"
    assert type(picked) is type(R.successful)
    out = jax.jit(lambda: R.where(jnp.array(True), R.nonfinite, R.successful))()
    assert repr(out) == "RESULTS.nonfinite"


def test_single_solution_line_and_summary():
    # The slowest decay, b = 0.2, from b = 1 with 2 steps: not converged, so
    # max_steps_reached with Termination.none after 2 steps and 3 evaluations (the
    # start and one trial per step); f = 0.433 and max|∇f| = 4.85 (measured, and far
    # from zero, so their printed 3 digits do not depend on rounding).
    sol = _fit(2.0 * jnp.exp(-0.2 * T) + 0.5, max_steps=2)
    text = repr(sol)
    assert text == (
        "Solution(result=RESULTS.max_steps_reached, termination=Termination.none, "
        "value=[1.063, 0.2431, 1.358], f=0.433, steps=2, evals=3)"
    )
    assert str(sol) == text  # one line, where Equinox's default shows every field
    assert sol.summary() == (
        "RESULTS.max_steps_reached after 2 steps and 3 evaluations of fn: "
        "f = 0.433, max|∇f| = 4.85"
    )


def test_successful_summary_names_the_termination(batch):
    # Fit 17 converges on the gradient test in 5 steps (see `batch`).
    assert (
        batch[17]
        .summary()
        .startswith(
            "RESULTS.successful (Termination.gradient) after 5 steps and 6 evaluations "
            "of fn: f = "
        )
    )


def test_value_prints_numbers_when_small_and_shapes_when_large(batch):
    one = batch[17]

    def with_value(value):
        return repr(eqx.tree_at(lambda s: s.value, one, value))

    small = {"a": jnp.array(1.0), "b": jnp.array([1.5, 2.0, 2.5])}
    assert "value={'a': 1, 'b': [1.5, 2, 2.5]}," in with_value(small)
    # More than six elements: the dtype and shape.
    assert "value=f64[100]," in with_value(jnp.zeros(100))
    assert "value=i32[2,4]," in with_value(jnp.zeros((2, 4), jnp.int32))
    # Ten leaves of five numbers would make the line too wide: shapes.
    assert "value=[f64[5], f64[5], f64[5]," in with_value([jnp.zeros(5)] * 10)


def test_traced_values_print_as_shapes(batch):
    seen = []

    def record(sol):
        seen.append((repr(sol), repr(sol.result), sol.summary()))
        return sol.value

    # Under jit (here only traced, by eval_shape) and under vmap the codes are
    # unknown: repr falls back to shapes and never raises.
    jax.eval_shape(record, batch[17])
    jax.eval_shape(jax.vmap(record), batch[:3])
    for line, result, summary in seen:
        assert line == (
            "Solution(result=RESULTS[traced], termination=Termination[traced], "
            "value=f64[3], f=f64[], steps=i32[], evals=i32[])"
        )
        assert result == "RESULTS[traced]"
        assert summary == (
            "Solution of traced values: its results are known only at run time."
        )
    # A batch traced under jit: its size is known, its codes are not.
    lines = []
    jax.eval_shape(lambda sols: lines.append(repr(sols)), batch[:3])
    assert lines == [
        "Solution(batch=3, result=RESULTS[traced (3,)], "
        "termination=Termination[traced (3,)], value=f64[3,3])"
    ]


def test_batch_counts_and_line(batch):
    # See `batch`: fits 0-4 run out of steps, fit 7 is NaN, the 44 others converge
    # on the gradient test.
    assert len(batch) == 50
    assert batch.result.counts() == {
        "successful": 44,
        "max_steps_reached": 5,
        "nonfinite": 1,
    }
    assert repr(batch.result) == (
        "RESULTS[successful ×44, max_steps_reached ×5, nonfinite ×1]"
    )
    # Termination is `none` for the 6 fits that did not succeed.
    assert repr(batch.stats["termination"]) == "Termination[none ×6, gradient ×44]"
    assert repr(batch) == (
        "Solution(batch=50, result=RESULTS[successful ×44, max_steps_reached ×5, "
        "nonfinite ×1], termination=Termination[none ×6, gradient ×44], "
        "value=f64[50,3])"
    )
    # The step counts: the NaN fit takes none, most fits 5, the slowest 8.
    assert batch.summary() == (
        "50 solves: RESULTS[successful ×44, max_steps_reached ×5, nonfinite ×1]\n"
        "successful ones by termination: Termination[gradient ×44]\n"
        "num_steps: min 0, median 5, max 8"
    )


def test_batched_member_indexes(batch):
    assert batch.result[17] == qn.RESULTS.successful
    assert batch.result[3] == qn.RESULTS.max_steps_reached
    assert repr(batch.result[7]) == "RESULTS.nonfinite"
    assert repr(batch.result[-1]) == "RESULTS.successful"
    assert batch.result[7].message == qn.RESULTS.nonfinite.message
    # Fits 5, 6 succeed at step 8, 7 is NaN, 8 succeeds.
    assert repr(batch.result[3:9]) == (
        "RESULTS[successful ×3, max_steps_reached ×2, nonfinite ×1]"
    )
    names = [member.name for member in batch.result][:9]
    assert names == ["max_steps_reached"] * 5 + ["successful"] * 2 + [
        "nonfinite",
        "successful",
    ]
    with pytest.raises(ValueError, match="index it first"):
        batch.result.name  # noqa: B018
    with pytest.raises(TypeError, match="single member"):
        qn.RESULTS.successful[0]
    with pytest.raises(IndexError):
        batch.result[50]  # checked: JAX itself would clamp to the last fit


def test_batched_solution_indexes_every_field(batch):
    one = batch[17]
    assert isinstance(one, qn.Solution)
    # Every leaf loses the batch axis: value (3,), scalars, the loop's state.
    for full, picked in zip(
        jax.tree_util.tree_leaves(batch), jax.tree_util.tree_leaves(one)
    ):
        assert picked.shape == full.shape[1:]
    np.testing.assert_array_equal(one.value, batch.value[17])
    assert one.result == qn.RESULTS.successful
    assert one.stats["termination"] == qn.Termination.gradient
    # Fit 17 is b = 0.2 + 17·(2.8/49), noise-free: the fit recovers (2, b, 0.5).
    np.testing.assert_allclose(one.value, [2.0, float(RATES[17]), 0.5], rtol=1e-6)
    assert repr(one).startswith("Solution(result=RESULTS.successful, ")
    with pytest.raises(TypeError, match="single solve"):
        one[0]
    with pytest.raises(TypeError, match="single solve"):
        len(one)
    assert bool(one)  # truth testing does not go through `len`
    # Slices, integer arrays and masks give smaller batches.
    assert len(batch[2:5]) == 3
    assert repr(batch[np.array([0, 7, 17])].result) == (
        "RESULTS[successful ×1, max_steps_reached ×1, nonfinite ×1]"
    )
    failed = batch[np.asarray(batch.result != qn.RESULTS.successful)]
    assert len(failed) == 6
    assert [s.result.name for s in failed][-1] == "nonfinite"


def test_twice_vmapped_solution_indexes_the_outer_axis(batch):
    grid = jax.tree_util.tree_map(lambda x: x[:48].reshape(6, 8, *x.shape[1:]), batch)
    assert len(grid) == 6
    # The first 48 fits: the 50 but 48 and 49, which succeed.
    assert repr(grid.result) == (
        "RESULTS[(6, 8): successful ×42, max_steps_reached ×5, nonfinite ×1]"
    )
    row = grid[1]  # fits 8-15
    assert len(row) == 8
    np.testing.assert_array_equal(row.value, batch.value[8:16])
    np.testing.assert_array_equal(grid[1, 2].value, batch.value[10])
    assert grid.summary().startswith("48 solves (batch shape (6, 8)): ")


def test_error_names_the_result_on_its_first_line():
    # The check an unbatched solve ends with, called from Python (nothing traced):
    # the message alone, its first line naming the result, then the explanation.
    with pytest.raises(RuntimeError) as info:
        throw_if_failed(qn.RESULTS.nonfinite, jnp.ones(2))
    first, second = str(info.value).splitlines()
    assert first == "quasinewton: the solve failed with RESULTS.nonfinite."
    assert second == qn.RESULTS.nonfinite.message
    # A successful result passes, unchanged.
    result, x = throw_if_failed(qn.RESULTS.successful, jnp.ones(2))
    assert result == qn.RESULTS.successful


@pytest.mark.parametrize("jit", [jax.jit, eqx.filter_jit], ids=["jax", "equinox"])
def test_jit_error_carries_the_same_line(jit):
    # The check a jitted solve ends with, on its own (a solve would take seconds to
    # compile; test_bad_input.py runs whole jitted solves). XLA's error opens with
    # its own line and the callback's frames, which no code inside the program can
    # change (docs/concepts.md); qn's first line follows as a line of its own.
    check = jit(lambda code, x: throw_if_failed(qn.RESULTS.where(code, code_of, ok), x))
    ok, code_of = qn.RESULTS.successful, qn.RESULTS.search_failed
    np.testing.assert_array_equal(check(jnp.array(False), jnp.ones(2))[1], [1.0, 1.0])
    with pytest.raises(Exception) as info:
        jax.block_until_ready(check(jnp.array(True), jnp.ones(2)))
    lines = str(info.value).splitlines()
    line = "quasinewton: the solve failed with RESULTS.search_failed."
    assert any(text == line or text.endswith(": " + line) for text in lines)
    if jit is jax.jit:
        assert lines[0].startswith("INTERNAL: CpuCallback error")
