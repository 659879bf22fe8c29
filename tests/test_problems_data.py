"""Solver-independent validation of the test-problem collection in ``problems.py``.

Nothing here uses ``quasinewton``. The checks are:

* registry/shape/dtype sanity, jit-ability and float32 dtype preservation;
* f(x0) against reference values that do not come from ``problems.py``: exact
  closed forms worked out by hand from the MGH definitions, values tabulated by
  an independent implementation (Gonum's ``optimize/functions`` tests, which also
  give gradients), and the 7-digit f(x0) values of the Moré & Wild (2009)
  benchmark set built on MGH;
* the data tables of MGH #10, #15 and #17 against the NIST StRD files in
  ``tests/data/nist`` (MGH10, MGH09, MGH17) and the minimisers against NIST's
  certified values;
* the recorded minimum values against the six digits printed by MGH;
* f(xstar) == fstar and grad f(xstar) ~ 0;
* SciPy BFGS and L-BFGS-B (exact JAX gradients) started at x0 reach fstar, or a
  documented local minimum where one is known to attract descent methods.
"""

import jax

jax.config.update("jax_enable_x64", True)

import contextlib
import ctypes
import functools
import math
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

import problems
from problems import PROBLEMS, get

NAMES = [p.name for p in PROBLEMS]
NIST_DIR = pathlib.Path(__file__).parent / "data" / "nist"


# Everything is evaluated through jit-compiled functions: op-by-op (eager) JAX is
# slow enough here to dominate the run time. One compilation per problem yields
# value, gradient, residual and Jacobian together and is shared by all tests.
def _make_evaluator(p):
    def evaluate(x):
        f, g = jax.value_and_grad(p.objective)(x)
        return f, g, p.residual(x), jax.jacfwd(p.residual)(x)

    compiled = jax.jit(evaluate)

    def call(x):
        out = compiled(jnp.asarray(x, dtype=jnp.float64))
        return tuple(np.asarray(v, dtype=np.float64) for v in out)

    return call


@functools.cache
def _evaluator(name):
    return _make_evaluator(get(name))


def _f(name, x):
    return float(_evaluator(name)(x)[0])


# ---------------------------------------------------------------------------
# registry sanity
# ---------------------------------------------------------------------------


def test_registry():
    assert len(PROBLEMS) >= 14
    assert len(set(NAMES)) == len(NAMES)
    assert problems.names() == tuple(NAMES)
    for p in PROBLEMS:
        assert get(p.name) is p
        assert isinstance(p.x0, np.ndarray) and p.x0.dtype == np.float64
        assert p.x0.shape == (p.n,)
        if p.xstar is not None:
            assert p.xstar.dtype == np.float64 and p.xstar.shape == (p.n,)
        assert math.isfinite(p.fstar) and p.fstar >= 0
        assert all(v > p.fstar for v in p.local_fstars)
        assert p.residual is not None  # every problem here is MGH least squares
        assert p.objective.__doc__ and p.residual.__doc__
    with pytest.raises(KeyError):
        get("no_such_problem")


@pytest.mark.parametrize("name", NAMES)
def test_objective_is_jittable_sum_of_squares(name):
    p = get(name)
    f, g, r, jac = _evaluator(name)(p.x0)  # jit-compiled value, grad, r, J
    assert f.shape == () and r.ndim == 1 and r.shape[0] >= p.n - 2
    assert jac.shape == (r.shape[0], p.n)
    # MGH's f is the full sum of squares (not half of it).
    np.testing.assert_allclose(f, np.sum(r**2), rtol=1e-14)
    assert g.shape == (p.n,) and np.all(np.isfinite(g))
    # gradient of sum(r^2) is 2 J^T r
    np.testing.assert_allclose(
        g, 2 * jac.T @ r, rtol=1e-10, atol=1e-12 * np.abs(jac.T @ r).max()
    )


@pytest.mark.parametrize("name", NAMES)
def test_float32_inputs_stay_float32(name):
    """float32 in -> float32 out, even with x64 enabled (no silent promotion)."""
    p = get(name)
    spec = jax.ShapeDtypeStruct((p.n,), jnp.float32)
    f_spec, g_spec = jax.eval_shape(jax.value_and_grad(p.objective), spec)
    assert f_spec.dtype == g_spec.dtype == jnp.float32
    assert jax.eval_shape(p.residual, spec).dtype == jnp.float32
    f32 = jax.jit(p.objective)(jnp.asarray(p.x0, dtype=jnp.float32))
    assert f32.dtype == jnp.float32
    # single precision: x0 itself is rounded to float32 and the residuals carry
    # cancellation, so only a loose agreement is meaningful here.
    np.testing.assert_allclose(float(f32), _f(name, p.x0), rtol=1e-3)


# ---------------------------------------------------------------------------
# f(x0) against independent reference values
# ---------------------------------------------------------------------------

# (value, relative tolerance, source)
EXACT = "closed form from the MGH definition"
GONUM = "Gonum optimize/functions tests (independent implementation)"
# Moré & Wild (2009), "Benchmarking derivative-free optimization algorithms",
# benchmark set built on MGH; f(x0) as tabulated (7 significant digits) in
# estimagic's more_wild.py.
MW = "More & Wild (2009) benchmark set, 7 significant digits"
_MW_TOL = 5e-7  # half a unit in the 7th significant digit (values are rounded)

F0_REFERENCE = {
    "rosenbrock": (24.2, 1e-14, EXACT),  # (10*(1-1.44))^2 + 2.2^2 = 19.36 + 4.84
    "freudenstein_roth": (400.5, 1e-14, EXACT),  # 19.5^2 + (-4.5)^2
    "powell_badly_scaled": (1 + (math.exp(-1) - 1e-4) ** 2, 1e-14, EXACT),
    "brown_badly_scaled": (999998000001 + 0.999998**2 + 1, 1e-14, EXACT),
    "beale": (14.203125, 1e-14, EXACT),  # 1.5^2 + 2.25^2 + 2.625^2
    "jennrich_sampson": (4171.306, _MW_TOL, MW),
    "helical_valley": (2500.0, 1e-14, EXACT),  # theta(-1, 0) = 1/2, f1 = -50
    "bard": (41.68170, _MW_TOL, MW),
    "gaussian": (3.88810699116688e-06, 1e-12, GONUM),
    "meyer": (1.693608e9, _MW_TOL, MW),
    "gulf": (12.11070582556949, 1e-12, GONUM),  # m = 99
    "box3d": (1031.1538106093985, 1e-12, GONUM),
    "powell_singular": (215.0, 1e-14, EXACT),  # 49 + 5 + 1 + 160
    "wood": (19192.0, 1e-14, EXACT),
    "kowalik_osborne": (5.313172e-3, _MW_TOL, MW),
    "brown_dennis": (7926693.33699744, 1e-12, GONUM),
    "biggs_exp6": (0.77907007565597, 1e-12, GONUM),
    "osborne2": (2.093420, _MW_TOL, MW),
    "watson6": (30.0, 1e-14, EXACT),  # x = 0: 29 residuals -1, f30 = 0, f31 = -1
    "watson": (30.0, 1e-14, EXACT),
    "extended_rosenbrock": (5 * 24.2, 1e-14, EXACT),
    "extended_powell": (3 * 215.0, 1e-14, EXACT),
    "penalty1_n4": (885.06264, 1e-13, EXACT),  # 1e-5*14 + 29.75^2
    "penalty1": (148032.56535, 1e-13, EXACT),  # 1e-5*285 + 384.75^2
    "penalty2_n4": (2.34000880546302, 1e-12, GONUM),
    "penalty2": (162.65277656596712, 1e-12, GONUM),
    # x0_j = 1 - j/10: sum (j/10)^2 + s^2 + s^4 with s = -38.5
    "variably_dimensioned": (3.85 + 38.5**2 + 38.5**4, 1e-14, EXACT),
    "trigonometric": (0.00707575946622261, 1e-12, GONUM),
    # nine residuals 0.5 + 5 - 11 = -5.5, and 0.5^10 - 1
    "brown_almost_linear": (9 * 5.5**2 + (1 - 2.0**-10) ** 2, 1e-14, EXACT),
    "broyden_tridiagonal": (21.0, 1e-14, EXACT),  # residuals -2, -1 (x8), -3
    "broyden_banded": (360.0, 1e-14, EXACT),  # every residual is -6
    "linear_full_rank": (50.0, 1e-14, EXACT),  # 10 * (-1)^2 + 10 * (-2)^2
    "linear_rank1": (8658670.0, 1e-14, EXACT),  # sum_{i<=20} (55 i - 1)^2
    "linear_rank1_zero": (4067996.0, 1e-14, EXACT),  # 2 + sum_{k<=18} (44k - 1)^2
    "chebyquad": (3.861770e-2, _MW_TOL, MW),
}

# Further values away from the standard start (or at other sizes), to exercise
# the formulas more broadly: (problem factory, x, f, rtol, source).
F_OTHER_REFERENCE = [
    (lambda: get("rosenbrock"), [-12.0, 10.0], 1.795769e6, _MW_TOL, MW),
    (lambda: get("freudenstein_roth"), [5.0, -20.0], 1.545754e8, _MW_TOL, MW),
    (lambda: get("helical_valley"), [-10.0, 0.0, 0.0], 10600.0, _MW_TOL, MW),
    (lambda: get("bard"), [10.0, 10.0, 10.0], 1306.234, _MW_TOL, MW),
    (lambda: get("osborne1"), [0.5, 1.5, 1.0, 0.01, 0.02], 16.17411, _MW_TOL, MW),
    (lambda: get("osborne2"), list(10 * get("osborne2").x0), 199.6847, _MW_TOL, MW),
    (
        lambda: get("brown_dennis"),
        [250.0, 50.0, -50.0, -10.0],
        3.081064e11,
        _MW_TOL,
        MW,
    ),
    (lambda: get("watson6"), [0.5] * 6, 16.43083, _MW_TOL, MW),
    (lambda: get("watson"), [0.5] * 9, 26.90417, _MW_TOL, MW),
    (
        lambda: problems.make_chebyquad(6),
        list(np.arange(1, 7) / 7),
        4.642817e-2,
        _MW_TOL,
        MW,
    ),
    (
        lambda: problems.make_chebyquad(7),
        list(np.arange(1, 8) / 8),
        3.377064e-2,
        _MW_TOL,
        MW,
    ),
    (
        lambda: problems.make_chebyquad(9),
        list(np.arange(1, 10) / 10),
        2.888298e-2,
        _MW_TOL,
        MW,
    ),
    (lambda: get("beale"), [1.0, 4.0], 4624.453125, 1e-14, GONUM),
    (
        lambda: problems.make_extended_powell(8),
        [3.0, -1.0, 0.0, 3.0] * 2,
        190.0,
        1e-14,
        GONUM,
    ),
    (
        lambda: problems.make_extended_rosenbrock(4),
        [-1.2, 1.0, -1.2, 1.0],
        48.4,
        1e-14,
        EXACT,
    ),
    (lambda: problems.make_watson(6), [0.0] * 6, 30.0, 1e-14, GONUM),
]

# Gradients at x0 tabulated by Gonum (independent implementation).
GRAD_X0_REFERENCE = {
    "beale": [0.0, 27.75],
    "biggs_exp6": [-0.149371887533426, -0.183163468182936, -1.483958013575642,
                   1.428277503849742, -0.149371887533426, -1.483958013575642],
    "box3d": [98.22343149849218, -2.11937420675874, 112.38817362220350],
    "brown_badly_scaled": [-2e6, -4e-6],
    "gaussian": [7.41428466839991e-03, -7.44126392165149e-04, -5.30189685421989e-20],
    "gulf": [2.0879783574289799, 0.0345792619697154, -39.6766801029386400],
    "helical_valley": [0.0, -1.59154943091895e03, -1e03],
    "penalty1_n4": [119.0, 238.00002, 357.00004, 476.00006],
    "penalty2_n4": [12.59999952896435, 8.99999885134508, 5.99999776830493,
                    2.99999875380719],
    "powell_badly_scaled": [-2.00007355588823e04, -2.70596990584991e-01],
    "trigonometric": [0.03562782195259399, 0.01872017956076182,
                      0.00380754216611998, -0.00911009023133202,
                      -0.02003271763159338, -0.02896034003466506,
                      -0.03589295744054654, -0.04083056984923782,
                      -0.04377317726073873, -0.04472077967504980],
    "watson": [0, -60, -60, -61.034482758620697, -62.068965517241381,
               -63.114928861371936, -64.172372791012350, -65.241283655050239,
               -66.321647802373235],
    "wood": [-12008.0, -2080.0, -10808.0, -1880.0],
    "rosenbrock": [-215.6, -88.0],
}  # fmt: skip


def test_reference_tables_cover_collection():
    assert set(F0_REFERENCE) <= set(NAMES)
    assert set(GRAD_X0_REFERENCE) <= set(NAMES)
    # Only problems without any published/hand value at x0 are left out.
    missing = set(NAMES) - set(F0_REFERENCE)
    assert missing <= {
        "osborne1",
        "discrete_boundary_value",
        "discrete_integral_equation",
    }, missing


@pytest.mark.parametrize("name", sorted(F0_REFERENCE))
def test_f_at_x0_matches_reference(name):
    value, rtol, _source = F0_REFERENCE[name]
    np.testing.assert_allclose(_f(name, get(name).x0), value, rtol=rtol)


@pytest.mark.parametrize("case", range(len(F_OTHER_REFERENCE)))
def test_f_at_other_points_matches_reference(case):
    factory, x, value, rtol, _source = F_OTHER_REFERENCE[case]
    p = factory()
    registered = p.name in NAMES and get(p.name) is p
    evaluate = _evaluator(p.name) if registered else _make_evaluator(p)
    np.testing.assert_allclose(float(evaluate(x)[0]), value, rtol=rtol)


@pytest.mark.parametrize("name", sorted(GRAD_X0_REFERENCE))
def test_gradient_at_x0_matches_reference(name):
    g = _evaluator(name)(get(name).x0)[1]
    ref = np.asarray(GRAD_X0_REFERENCE[name], dtype=np.float64)
    # Gonum prints ~15 digits; components that vanish analytically come out as
    # rounding noise, hence the small absolute term relative to the largest entry.
    np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


# ---------------------------------------------------------------------------
# plain-Python transcriptions of the index-heavy MGH definitions
# ---------------------------------------------------------------------------
# Written with 1-based loops straight from the paper's formulas (and, for
# Chebyquad, T_i(y) = cos(i arccos y) instead of the recurrence), so that
# vectorisation/indexing slips in problems.py cannot be mirrored here.


def _ref_broyden_banded(x):
    n = len(x)
    r = []
    for i in range(1, n + 1):
        s = sum(
            x[j - 1] * (1 + x[j - 1])
            for j in range(max(1, i - 5), min(n, i + 1) + 1)
            if j != i
        )
        r.append(x[i - 1] * (2 + 5 * x[i - 1] ** 2) + 1 - s)
    return r


def _ref_broyden_tridiagonal(x):
    n = len(x)
    xx = [0.0] + list(x) + [0.0]
    return [
        (3 - 2 * xx[i]) * xx[i] - xx[i - 1] - 2 * xx[i + 1] + 1 for i in range(1, n + 1)
    ]


def _ref_discrete_boundary_value(x):
    n = len(x)
    h = 1 / (n + 1)
    xx = [0.0] + list(x) + [0.0]
    return [
        2 * xx[i] - xx[i - 1] - xx[i + 1] + h**2 * (xx[i] + i * h + 1) ** 3 / 2
        for i in range(1, n + 1)
    ]


def _ref_discrete_integral_equation(x):
    n = len(x)
    h = 1 / (n + 1)
    t = [j * h for j in range(n + 2)]
    r = []
    for i in range(1, n + 1):
        a = sum(t[j] * (x[j - 1] + t[j] + 1) ** 3 for j in range(1, i + 1))
        b = sum((1 - t[j]) * (x[j - 1] + t[j] + 1) ** 3 for j in range(i + 1, n + 1))
        r.append(x[i - 1] + h * ((1 - t[i]) * a + t[i] * b) / 2)
    return r


def _ref_chebyquad(x):
    n = len(x)
    r = []
    for i in range(1, n + 1):
        mean = sum(math.cos(i * math.acos(2 * xj - 1)) for xj in x) / n
        r.append(mean - (0.0 if i % 2 else -1 / (i * i - 1)))
    return r


def _ref_trigonometric(x):
    n = len(x)
    c = sum(math.cos(xj) for xj in x)
    return [
        n - c + i * (1 - math.cos(x[i - 1])) - math.sin(x[i - 1])
        for i in range(1, n + 1)
    ]


def _ref_watson(x):
    n = len(x)
    r = []
    for i in range(1, 30):
        t = i / 29
        s1 = sum((j - 1) * x[j - 1] * t ** (j - 2) for j in range(2, n + 1))
        s2 = sum(x[j - 1] * t ** (j - 1) for j in range(1, n + 1))
        r.append(s1 - s2**2 - 1)
    return r + [x[0], x[1] - x[0] ** 2 - 1]


def _ref_penalty2(x):
    n = len(x)
    a = 1e-5
    r = [x[0] - 0.2]
    for i in range(2, n + 1):
        y = math.exp(i / 10) + math.exp((i - 1) / 10)
        r.append(math.sqrt(a) * (math.exp(x[i - 1] / 10) + math.exp(x[i - 2] / 10) - y))
    for i in range(n + 1, 2 * n):
        r.append(math.sqrt(a) * (math.exp(x[i - n] / 10) - math.exp(-1 / 10)))
    r.append(sum((n - j + 1) * x[j - 1] ** 2 for j in range(1, n + 1)) - 1)
    return r


def _ref_brown_almost_linear(x):
    n = len(x)
    return [x[i] + sum(x) - (n + 1) for i in range(n - 1)] + [math.prod(x) - 1]


def _ref_variably_dimensioned(x):
    n = len(x)
    s = sum(j * (x[j - 1] - 1) for j in range(1, n + 1))
    return [xj - 1 for xj in x] + [s, s * s]


def _ref_penalty1(x):
    a = 1e-5
    return [math.sqrt(a) * (xj - 1) for xj in x] + [sum(xj**2 for xj in x) - 0.25]


PYTHON_REFERENCE = {
    "broyden_banded": _ref_broyden_banded,
    "broyden_tridiagonal": _ref_broyden_tridiagonal,
    "discrete_boundary_value": _ref_discrete_boundary_value,
    "discrete_integral_equation": _ref_discrete_integral_equation,
    "chebyquad": _ref_chebyquad,
    "trigonometric": _ref_trigonometric,
    "watson": _ref_watson,
    "watson6": _ref_watson,
    "penalty2": _ref_penalty2,
    "penalty2_n4": _ref_penalty2,
    "brown_almost_linear": _ref_brown_almost_linear,
    "variably_dimensioned": _ref_variably_dimensioned,
    "penalty1": _ref_penalty1,
}


@pytest.mark.parametrize("name", sorted(PYTHON_REFERENCE))
def test_residuals_match_plain_python_transcription(name):
    p = get(name)
    rng = np.random.default_rng(0)
    # x0, and a random point in [0.05, 0.95]^n (inside Chebyquad's domain [0, 1])
    for x in (p.x0, rng.uniform(0.05, 0.95, p.n)):
        r = _evaluator(name)(x)[2]
        ref = np.array(PYTHON_REFERENCE[name](list(map(float, x))))
        np.testing.assert_allclose(r, ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())


# ---------------------------------------------------------------------------
# NIST StRD cross-checks (MGH09 = Kowalik-Osborne, MGH10 = Meyer, MGH17 = Osborne 1)
# ---------------------------------------------------------------------------


def _read_nist(fname):
    lines = (NIST_DIR / fname).read_text().splitlines()
    # the table follows the last "Data:" line (the header also has "Data:" lines)
    start = max(i for i, ln in enumerate(lines) if ln.strip().startswith("Data:"))
    data = np.array(
        [[float(v) for v in ln.split()] for ln in lines[start + 1 :] if ln.strip()]
    )
    certified = []
    for ln in lines:
        parts = ln.split()
        # "b1 = <start 1> <start 2> <certified value> <standard deviation>"
        if len(parts) == 6 and parts[0].startswith("b") and parts[1] == "=":
            certified.append(float(parts[4]))
    rss = next(
        float(ln.split()[-1])
        for ln in lines
        if ln.startswith("Residual Sum of Squares")
    )
    return data[:, 0], data[:, 1], np.array(certified), rss  # y, x, b*, RSS


NIST_CASES = {
    "kowalik_osborne": ("MGH09.dat", problems._KOWALIK_Y, problems._KOWALIK_U),
    "meyer": ("MGH10.dat", problems._MEYER_Y, 45 + 5 * np.arange(1, 17)),
    "osborne1": ("MGH17.dat", problems._OSBORNE1_Y, 10 * np.arange(33)),
}


@pytest.mark.parametrize("name", sorted(NIST_CASES))
def test_against_nist_strd(name):
    fname, y_ours, t_ours = NIST_CASES[name]
    y, t, bstar, rss = _read_nist(fname)
    np.testing.assert_array_equal(np.asarray(y_ours), y)
    np.testing.assert_array_equal(np.asarray(t_ours, dtype=np.float64), t)
    p = get(name)
    # NIST certify 11 significant digits.
    np.testing.assert_allclose(p.xstar, bstar, rtol=1e-9)
    np.testing.assert_allclose(p.fstar, rss, rtol=1e-9)
    np.testing.assert_allclose(_f(name, bstar), rss, rtol=1e-9)


# ---------------------------------------------------------------------------
# minimum values against the digits printed in MGH (1981)
# ---------------------------------------------------------------------------

# MGH print six significant digits, sometimes rounded and sometimes truncated
# (e.g. Meyer 87.94585... is printed 87.9458, Biggs 5.6556499...e-3 as 5.65565e-3),
# so we allow one unit in the last printed digit.
MGH_PRINTED_FSTAR = {
    "jennrich_sampson": "124.362",
    "bard": "8.21487e-3",
    "gaussian": "1.12793e-8",
    "meyer": "87.9458",
    "kowalik_osborne": "3.07505e-4",
    "brown_dennis": "85822.2",
    "osborne1": "5.46489e-5",
    "osborne2": "4.01377e-2",
    "watson6": "2.28767e-3",
    "watson": "1.39976e-6",
    "penalty1_n4": "2.24997e-5",
    "penalty1": "7.08765e-5",
    "penalty2_n4": "9.37629e-6",
    "penalty2": "2.93660e-4",
    "chebyquad": "3.51687e-3",
}
# Local (non-global) minimum values: (problem, printed value, source).
PRINTED_LOCAL = [
    ("freudenstein_roth", "48.9842", "MGH #2"),
    ("biggs_exp6", "5.65565e-3", "MGH #18"),
    # MGH give only f* = 0 for #26; 2.79506e-5 (n=10) is the local minimum
    # value commonly reported for descent methods started at x0.
    ("trigonometric", "2.79506e-5", "literature"),
]
# Closed forms: linear full rank m - n; rank 1: m(m-1)/(2(2m+1));
# rank 1 with zero rows/columns: (m^2+3m-6)/(2(2m-3)); here n = 10, m = 20.
CLOSED_FORM_FSTAR = {
    "linear_full_rank": 10.0,
    "linear_rank1": 190 / 41,
    "linear_rank1_zero": 227 / 37,
}


def _one_unit_in_last_digit(printed):
    mant, _, exp = printed.partition("e")
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    return 10.0 ** (-decimals + (int(exp) if exp else 0))


@pytest.mark.parametrize("name", sorted(MGH_PRINTED_FSTAR))
def test_fstar_matches_mgh_printed_digits(name):
    printed = MGH_PRINTED_FSTAR[name]
    assert abs(get(name).fstar - float(printed)) <= _one_unit_in_last_digit(printed)


@pytest.mark.parametrize("name,printed,_source", PRINTED_LOCAL)
def test_local_minimum_values_match_printed_digits(name, printed, _source):
    (value,) = get(name).local_fstars
    assert abs(value - float(printed)) <= _one_unit_in_last_digit(printed)


@pytest.mark.parametrize("name", sorted(CLOSED_FORM_FSTAR))
def test_closed_form_fstar(name):
    assert get(name).fstar == pytest.approx(CLOSED_FORM_FSTAR[name], rel=1e-15)


def test_every_nonzero_fstar_is_checked_against_a_source():
    nonzero = {p.name for p in PROBLEMS if p.fstar != 0}
    assert nonzero <= set(MGH_PRINTED_FSTAR) | set(CLOSED_FORM_FSTAR)


# ---------------------------------------------------------------------------
# the recorded minimiser
# ---------------------------------------------------------------------------

WITH_XSTAR = [p.name for p in PROBLEMS if p.xstar is not None]


@pytest.mark.parametrize("name", WITH_XSTAR)
def test_xstar_attains_fstar_with_zero_gradient(name):
    p = get(name)
    f, g, r, jac = _evaluator(name)(p.xstar)
    # fstar is stored to ~16 digits; 1e-9 relative leaves room for reordered
    # floating-point sums (Meyer's residuals cancel ~4 digits).
    assert abs(f - p.fstar) <= 1e-9 * p.fstar + 1e-20
    # The gradient 2 J^T r is a sum of terms that cancel at a stationary point;
    # compare it with the size of those terms (so Meyer, whose Jacobian entries
    # reach ~1e8, is judged on the same footing as a well-scaled problem) ...
    cancel = 2 * np.abs(jac).T @ np.abs(r)
    # ... plus the gradient change caused by rounding xstar to float64 (~H eps|x|
    # with the Gauss-Newton H = 2 J^T J; e.g. 2e-6 in Brown badly scaled is not
    # representable, which alone leaves |g| ~ 2e-10 there).
    rounding = 2 * np.abs(jac).T @ (np.abs(jac) @ np.abs(p.xstar)) * np.finfo(float).eps
    bound = 1e-9 * cancel + 4 * rounding + 1e-12
    assert np.all(np.abs(g) <= bound), (g, bound)


def test_biggs_subspace_point_is_a_saddle():
    """Backs the note on Biggs EXP6: 5.65565e-3 is attained with x1 = x5,
    x3 = x6 (the subspace containing x0) and is a saddle in the full space."""
    p = get("biggs_exp6")
    x0 = p.x0
    assert x0[0] == x0[4] and x0[2] == x0[5]
    res = _scipy_run("biggs_exp6", "BFGS")
    x = res.x
    assert abs(res.fun - p.local_fstars[0]) <= 1e-6 * p.local_fstars[0]
    np.testing.assert_allclose(x[[0, 2]], x[[4, 5]], rtol=1e-6)
    eig = np.linalg.eigvalsh(np.asarray(jax.jit(jax.hessian(p.objective))(x)))
    assert eig[0] < -5e-3  # ~ -9.8e-3, well outside rounding (|H| ~ 11)


# ---------------------------------------------------------------------------
# SciPy from the standard start
# ---------------------------------------------------------------------------

METHODS = ("BFGS", "L-BFGS-B")
SCIPY_OPTIONS = {
    # gtol far below anything reachable: the runs stop on SciPy's own
    # line-search/precision-loss tests, i.e. as close as SciPy can get.
    "BFGS": dict(gtol=1e-12, maxiter=20_000),
    "L-BFGS-B": dict(gtol=1e-12, ftol=1e-15, maxiter=20_000, maxfun=50_000),
}

# Problems where a descent method from x0 lands on a documented non-global
# minimum (recorded in the problem's local_fstars and notes). Both SciPy methods
# reach it, consistent with the MGH/literature remarks quoted in the notes.
LANDS_ON_LOCAL = {
    "freudenstein_roth": "x0 lies in the basin of the local minimum 48.9842",
    "biggs_exp6": "x0 has x1 = x5, x3 = x6 and gradient steps keep that "
    "symmetry; 5.65565e-3 is the minimum on that subspace",
    "trigonometric": "x0 lies in the basin of the local minimum 2.79506e-5",
}

# SciPy shortfalls that are properties of the SciPy method, not of the formula
# (in each case the other method reaches f*, see
# test_some_scipy_method_reaches_minimum, which has no exceptions).
SCIPY_SHORTFALLS = {
    ("jennrich_sampson", "L-BFGS-B"): (
        "a trial step to x2 ~ 77.6 overflows exp(10 x2) to inf; L-BFGS-B's line "
        "search then stops without progress at f ~ 214.34, |g| ~ 3.7e3"
    ),
    ("meyer", "L-BFGS-B"): (
        "Hessian condition number ~1e16 at the solution; L-BFGS-B stalls "
        "(relative-reduction test) far away, at f ~ 144 (~132 with maxcor=20)"
    ),
    ("powell_badly_scaled", "L-BFGS-B"): (
        "stops at f ~ 1.3e-7 (relative-reduction test; Hessian condition number "
        "~1e18): inside the brief's 1e-5 but not inside our 1e-10 tolerance"
    ),
}


@contextlib.contextmanager
def _single_threaded_openblas():
    """Run OpenBLAS (NumPy's and SciPy's bundled copies) single-threaded.

    SciPy's L-BFGS-B makes many tiny BLAS calls; on a small, busy machine
    OpenBLAS's worker threads make it ~10x slower (measured here: 32 ms vs 4 ms
    per Rosenbrock solve). This only changes speed, never results. Does nothing
    if the libraries cannot be found; restores the previous setting afterwards.
    """
    restore = []
    try:
        with open("/proc/self/maps") as maps:
            paths = {ln.split()[-1] for ln in maps if "openblas" in ln.lower()}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_sym, set_sym in [
            ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
            ("openblas_get_num_threads", "openblas_set_num_threads"),
        ]:
            getter, setter = getattr(lib, get_sym, None), getattr(lib, set_sym, None)
            if getter is not None and setter is not None:
                restore.append((setter, getter()))
                setter(1)
                break
    try:
        yield
    finally:
        for setter, n in restore:
            setter(n)


@functools.cache
def _scipy_run(name, method):
    evaluate = _evaluator(name)  # also returns r and J; cheap at these sizes

    def fun(x):
        f, g, _, _ = evaluate(x)
        return float(f), g

    evaluate(get(name).x0)  # compile outside the single-threaded section
    with _single_threaded_openblas():
        return minimize(
            fun, get(name).x0, jac=True, method=method, options=SCIPY_OPTIONS[method]
        )


def _tolerance(p, target):
    # The brief asks for |f - f*| <= 1e-5 max(1, |f*|). That is an absolute 1e-5
    # for the many problems with tiny f*, which f(x0) itself can satisfy
    # (Gaussian: f(x0) = 3.9e-6), so it would validate nothing there. We use the
    # stricter 1e-6 |target| + 1e-10 and assert it is never looser than the brief
    # (for a documented local minimum the brief measures from that value).
    tol = 1e-6 * abs(target) + 1e-10
    assert tol <= 1e-5 * max(1.0, abs(target))
    return tol


def _reached(name, f):
    p = get(name)
    targets = [p.fstar]
    if name in LANDS_ON_LOCAL:
        targets += list(p.local_fstars)
    return any(abs(f - t) <= _tolerance(p, t) for t in targets)


def _scipy_params():
    for name in NAMES:
        for method in METHODS:
            reason = SCIPY_SHORTFALLS.get((name, method))
            marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
            yield pytest.param(name, method, marks=marks, id=f"{name}-{method}")


@pytest.mark.parametrize("name,method", list(_scipy_params()))
def test_scipy_from_x0_reaches_known_minimum(name, method):
    res = _scipy_run(name, method)
    p = get(name)
    assert _reached(name, res.fun), (
        f"{method} from x0 ended at f={res.fun!r} (f*={p.fstar!r}, "
        f"local={p.local_fstars}); {res.message}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_some_scipy_method_reaches_minimum(name):
    results = {m: _scipy_run(name, m).fun for m in METHODS}
    assert any(_reached(name, f) for f in results.values()), results


def test_local_landings_are_documented():
    for name, reason in LANDS_ON_LOCAL.items():
        p = get(name)
        assert p.local_fstars and reason
        # at least one method really lands on the local value, not f*
        assert any(
            abs(_scipy_run(name, m).fun - p.local_fstars[0])
            <= _tolerance(p, p.local_fstars[0])
            for m in METHODS
        )


def _table():  # pragma: no cover - convenience report: python test_problems_data.py
    head = (
        f"{'problem':27s} {'n':>3s} {'f*':>13s}  {'BFGS f':>13s} {'nfev':>5s}"
        f"  {'L-BFGS-B f':>13s} {'nfev':>5s}"
    )
    print(head)
    print("-" * len(head))
    for p in PROBLEMS:
        b, lb = _scipy_run(p.name, "BFGS"), _scipy_run(p.name, "L-BFGS-B")
        print(
            f"{p.name:27s} {p.n:3d} {p.fstar:13.6e}  {b.fun:13.6e} {b.nfev:5d}"
            f"  {lb.fun:13.6e} {lb.nfev:5d}"
        )


if __name__ == "__main__":  # pragma: no cover
    _table()
