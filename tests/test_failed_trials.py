"""A descent rule that could not find a finite, better point never ends `successful`.

Trust regions used to stop at the "precision floor" after rejected nan trials had
pushed the damping up: the model then predicted a decrease below the rounding of f
and the solve reported `successful`, far from any minimiser. The floor now counts
as success only where the iterate is also stationary to √rtol, or where the
undamped model itself predicts no gain beyond the tolerance.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn

START = np.array([3.0, -2.0])
TRUST_REGIONS = {
    "LevenbergMarquardt": qn.LevenbergMarquardt,
    "LevenbergMarquardtCG": qn.LevenbergMarquardtCG,
}
ALL = {**TRUST_REGIONS, "GaussNewton": qn.GaussNewton, "LBFGS": qn.LBFGS}


def nan_hole(y, centre):
    # The minimiser (centre) lies inside a disc of radius 0.1 where r is nan: no
    # solver can reach it; stopping at its edge (gradient ~0.08, from ~2.5 at the
    # start) is not convergence.
    return jnp.where(jnp.linalg.norm(y - centre) < 0.1, jnp.nan, y - centre)


def nan_but_start(y, start):
    # Finite only at the start point: every trial is nan.
    return jnp.where(jnp.all(y == start), y - 1.0, jnp.nan)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("mode", ["python", "jit"])
@pytest.mark.parametrize("name", sorted(ALL))
def test_minimiser_inside_a_nan_region_is_not_a_success(name, mode, dtype):
    def solve(y0, centre):
        return qn.least_squares(nan_hole, ALL[name](), y0, centre, throw=False)

    if mode == "jit":
        solve = jax.jit(solve)
    sol = solve(jnp.asarray(START, dtype), jnp.ones(2, dtype))
    assert sol.result != qn.RESULTS.successful
    assert bool(jnp.all(jnp.isfinite(sol.value)))


@pytest.mark.parametrize("mode", ["python", "jit"])
@pytest.mark.parametrize("name", sorted(ALL))
def test_every_trial_nan_reports_nonfinite(name, mode):
    def solve(y0):
        return qn.least_squares(nan_but_start, ALL[name](), y0, y0, throw=False)

    if mode == "jit":
        solve = jax.jit(solve)
    sol = solve(jnp.asarray(START))
    assert sol.result == qn.RESULTS.nonfinite
    np.testing.assert_array_equal(np.asarray(sol.value), START)
    assert int(sol.stats["num_accepted_steps"]) == 0


@pytest.mark.parametrize("name", sorted(TRUST_REGIONS))
def test_batch_of_float32_fits_with_bad_ones(name):
    # 1,000 float32 fits, 200 of them with their minimiser inside a nan region:
    # every good fit succeeds at its minimiser, no bad fit reports success.
    rng = np.random.default_rng(0)
    centres = rng.uniform(-1.0, 1.0, (1000, 2)).astype(np.float32)
    bad = np.zeros(1000, bool)
    bad[rng.choice(1000, 200, replace=False)] = True

    def residuals(y, args):
        centre, is_bad = args
        return jnp.where(
            is_bad & (jnp.linalg.norm(y - centre) < 0.1), jnp.nan, y - centre
        )

    def solve(centre, is_bad):
        y0 = jnp.asarray(START, jnp.float32)
        return qn.least_squares(
            residuals, TRUST_REGIONS[name](), y0, (centre, is_bad), throw=False
        )

    sols = jax.jit(jax.vmap(solve))(jnp.asarray(centres), jnp.asarray(bad))
    success = np.asarray(sols.result == qn.RESULTS.successful)
    assert not success[bad].any(), int(success[bad].sum())
    assert success[~bad].all()
    np.testing.assert_allclose(np.asarray(sols.value)[~bad], centres[~bad], atol=1e-5)
