"""NIST StRD nonlinear regression: certified accuracy with qn.LevenbergMarquardt.

All 27 datasets, both starts, float64, `LevenbergMarquardt(rtol=1e-12, atol=1e-12)`,
`max_steps=1000`. A run matches when every parameter agrees with the certified value
to at least 6 significant digits (log relative error, McCullough 1999). Peers on the
same 54 runs: SciPy lm with exact Jacobian 53, Optimistix LM 52, JAXopt LM 49.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nist
import quasinewton as qn

# Long (54 NIST StRD runs to certified digits):
# run by CI and by `python3 run.py test -m slow`.
pytestmark = pytest.mark.slow

# The one run we do not solve: MGH10 (Meyer's function) from start 1 = (2, 4e5, 2.5e4)
# crawls along a curved valley and is still far off after 1000 steps. SciPy's lm
# solves it only with its internal scaling, x_scale="jac" (296 evaluations).
KNOWN_MISSES = {("MGH10", 1)}


def _solve_both_starts(problem):
    def residual(b, args):
        return problem.residual(b)

    solver = qn.LevenbergMarquardt(rtol=1e-12, atol=1e-12)

    @jax.jit
    def solve(starts):
        return jax.vmap(
            lambda b0: qn.least_squares(residual, solver, b0, max_steps=1000)
        )(starts)

    return solve(jnp.asarray(np.stack(problem.starts)))


def test_nist_strd_certified_values():
    rows, matched, misses, false_successes = [], 0, [], []
    for name in nist.NAMES:
        problem = nist.load(name)
        sol = _solve_both_starts(problem)
        values = np.asarray(sol.value)
        for start in (1, 2):
            lre = nist.significant_digits(values[start - 1], problem.certified)
            ok = bool(np.min(lre) >= 6)
            success = bool(np.asarray(sol.result == qn.RESULTS.successful)[start - 1])
            matched += ok
            if not ok:
                misses.append((name, start))
                if success:
                    false_successes.append((name, start))
            rows.append(
                f"{name:9s} {start}  LRE {np.min(lre):5.2f}  steps "
                f"{int(sol.stats['num_steps'][start - 1]):4d}  "
                f"{'ok' if ok else 'MISS'}  result={'successful' if success else 'failed'}"
            )
    print("\nNIST StRD, qn.LevenbergMarquardt(rtol=1e-12, atol=1e-12), float64")
    print("\n".join(rows))
    print(f"matched {matched}/54")
    assert matched >= 53
    assert set(misses) <= KNOWN_MISSES, misses
    # A run that misses the certified values must not claim success.
    assert not false_successes, false_successes
