"""Every preset and every valid composition of parts on the shared problem set
(`tests/matrix.py`), under `minimise` and `least_squares`: each solve succeeds and
reaches the known minimum, in float64.

The default run solves one problem with each preset; the whole matrix is marked
slow.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import quasinewton as qn
from matrix import PRESETS, PROBLEM_NAMES, QUICK_PROBLEM, entries
from problems import get

CASES = [
    (entry, kind, name)
    for entry in entries()
    for kind in entry.kinds
    for name in PROBLEM_NAMES
]


def _id(case) -> str:
    entry, kind, name = case
    return f"{entry.name}-{'minimise' if kind == 'scalar' else 'lsq'}-{name}"


def _marks(case):
    entry, _, name = case
    quick = name == QUICK_PROBLEM and entry.name in PRESETS
    return [] if quick else [pytest.mark.slow]


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=_marks(c), id=_id(c)) for c in CASES]
)
def test_composition_solves_problem(case):
    entry, kind, name = case
    problem = get(name)
    y0 = jnp.asarray(problem.x0, jnp.float64)
    if kind == "scalar":
        sol = qn.minimise(
            lambda y, _: problem.objective(y), entry.make(), y0, max_steps=2000
        )
        f = float(sol.stats["value"])
    else:
        sol = qn.least_squares(
            lambda y, _: problem.residual(y), entry.make(), y0, max_steps=2000
        )
        f = 2.0 * float(sol.stats["value"])  # the MGH f is Σr², qn's ½Σr²
    assert sol.result == qn.RESULTS.successful
    # The default rtol (1e-8 in float64) asks f to within about √rtol = 1e-4 of
    # its scale; problems.py gives f* to full precision.
    scale = max(1.0, float(problem.objective(jnp.asarray(problem.x0))))
    assert abs(f - problem.fstar) <= 1e-6 * scale, (f, problem.fstar)
    if problem.xstar is not None and problem.fstar == 0.0:
        # A zero-residual minimum is isolated here: the iterate is at x*.
        error = np.max(np.abs(np.asarray(sol.value) - problem.xstar))
        assert error <= 1e-3 * max(1.0, float(np.max(np.abs(problem.xstar))))


def test_matrix_covers_every_part():
    names = {entry.name for entry in entries()}
    assert "gn-qr+trust-region" in names and "lbfgs+zoom" in names
    # Inverse models never meet a trust region.
    assert "lbfgs+trust-region" not in names and "bfgs+trust-region" not in names
