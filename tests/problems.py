"""Classic unconstrained minimisation test problems, written in ``jax.numpy``.

Almost all problems come from

    J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing Unconstrained
    Optimization Software", ACM Trans. Math. Software 7(1), 17-41 (1981),

referred to below as "MGH", and are numbered as in that paper (MGH #1 ... #35).
Every MGH problem is a sum of squares: the paper defines residuals
``f_1(x), ..., f_m(x)`` and the objective ``f(x) = sum_i f_i(x)**2`` (the full sum
of squares, *not* half of it). Here ``residual(x)`` returns the vector
``(f_1(x), ..., f_m(x))`` and ``objective(x) == jnp.sum(residual(x) ** 2)``.

Conventions
-----------
* ``x0`` is MGH's standard starting point (float64 numpy array).
* ``fstar`` is the global minimum value where it is known (0 for zero-residual
  problems). For data-fitting problems MGH print only six significant digits;
  ``fstar`` then holds the value refined to (near) double precision at ``xstar``
  and the printed MGH value is quoted in ``notes``. The test module checks that
  the two agree to the printed digits.
* ``xstar`` is a minimiser where one is known (exact for analytic problems; for
  data-fitting problems it was refined numerically in float64 with a
  Levenberg-Marquardt solve and agrees with the published digits -- NIST StRD
  certified values for Kowalik-Osborne (MGH09), Meyer (MGH10) and Osborne 1
  (MGH17)). ``None`` where no closed form/published minimiser is recorded.
* ``local_fstars`` lists other (non-global) minimum values documented for the
  problem, e.g. Freudenstein-Roth's 48.98... which descent methods started at
  ``x0`` usually reach; ``notes`` says which ones attract such methods. Tests
  accept one of these instead of ``fstar`` only where documented, and say so.

All objectives and residuals are pure ``jax.numpy`` functions: jit-able,
differentiable, and dtype-preserving (float32 in -> float32 out; constants are
Python scalars or are cast to ``x.dtype``). Problems whose size is a parameter
have a ``make_*`` factory; ``PROBLEMS`` holds the standard sizes used by MGH's
tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["PROBLEMS", "TestProblem", "get", "names"]


@dataclass(frozen=True)
class TestProblem:
    """One test problem: objective, optional residual, start and known optimum."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    n: int
    residual: Callable | None  # r(x) -> (m,) jnp array, or None if not least squares
    objective: Callable  # f(x) -> scalar jnp array
    x0: np.ndarray  # standard start (float64)
    fstar: float  # known global minimum value
    xstar: np.ndarray | None  # known minimiser where known
    notes: str = ""  # e.g. multiple local minima
    local_fstars: tuple[float, ...] = ()  # other documented local minimum values

    @property
    def m(self) -> int | None:
        """Number of residuals (None for non-least-squares problems)."""
        if self.residual is None:
            return None
        return int(jax.eval_shape(self.residual, jnp.asarray(self.x0)).shape[0])


# Minimum values refined in float64 (Levenberg-Marquardt, then Newton polishing, at
# the xstar recorded below); each agrees with the value MGH print to the printed
# digits (checked in test_problems_data.py).
_FS_JENNRICH = 124.3621823556148
_FS_BARD = 0.008214877306578989
_FS_GAUSSIAN = 1.1279327696190517e-08
_FS_MEYER = 87.94585517079597
_FS_KOWALIK = 0.0003075056038492388
_FS_BROWN_DENNIS = 85822.20162635633
_FS_OSBORNE1 = 5.464894697482633e-05
_FS_OSBORNE2 = 0.04013773629354768
_FS_WATSON6 = 0.0022876700535524267
_FS_WATSON9 = 1.3997601380963036e-06
_FS_P1_4 = 2.2499775008999375e-05
_FS_P1_10 = 7.087651467090368e-05
_FS_P2_4 = 9.37629300735544e-06
_FS_P2_10 = 0.00029366053745674605
_FS_CHEBYQUAD8 = 0.00351687372567793
_FS_FR_LOCAL = 48.98425367924003
_FS_BIGGS_SUBSPACE = 0.005655649925499919
_FS_TRIG_LOCAL = 2.7950561218801254e-05

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _float(x):
    """``x`` as a floating jnp array (integers are promoted to the default float)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _const(values, x):
    """A numpy/Python constant array cast to ``x``'s dtype (never promotes x)."""
    return jnp.asarray(np.asarray(values, dtype=np.float64), dtype=x.dtype)


def _index(m, x, start=1):
    """``[start, start+1, ..., start+m-1]`` in ``x``'s dtype."""
    return jnp.arange(start, start + m, dtype=x.dtype)


def _sumsq(residual):
    def objective(x):
        r = residual(x)
        return jnp.sum(r * r)

    objective.__doc__ = f"Sum of squares of :func:`{residual.__name__}` (MGH f)."
    objective.__name__ = residual.__name__.replace("_residual", "_objective")
    return objective


def _arr(values):
    return np.asarray(values, dtype=np.float64)


def _ls(name, residual, x0, fstar, xstar=None, notes="", local_fstars=()):
    x0 = _arr(x0)
    return TestProblem(
        name=name,
        n=int(x0.shape[0]),
        residual=residual,
        objective=_sumsq(residual),
        x0=x0,
        fstar=float(fstar),
        xstar=None if xstar is None else _arr(xstar),
        notes=notes,
        local_fstars=tuple(float(v) for v in local_fstars),
    )


# ---------------------------------------------------------------------------
# MGH #1  Rosenbrock
# ---------------------------------------------------------------------------


def rosenbrock_residual(x):
    """MGH #1, Rosenbrock function (n=2, m=2).

    f1 = 10 (x2 - x1^2),  f2 = 1 - x1.  f* = 0 at (1, 1); f(x0) = 24.2.
    """
    x = _float(x)
    return jnp.stack([10 * (x[1] - x[0] ** 2), 1 - x[0]])


# ---------------------------------------------------------------------------
# MGH #2  Freudenstein and Roth
# ---------------------------------------------------------------------------


def freudenstein_roth_residual(x):
    """MGH #2, Freudenstein and Roth function (n=2, m=2).

    f1 = -13 + x1 + ((5 - x2) x2 - 2) x2,
    f2 = -29 + x1 + ((x2 + 1) x2 - 14) x2.
    f* = 0 at (5, 4); local minimum f = 48.9842... at (11.41..., -0.8968...).
    """
    x = _float(x)
    x1, x2 = x[0], x[1]
    return jnp.stack(
        [
            -13 + x1 + ((5 - x2) * x2 - 2) * x2,
            -29 + x1 + ((x2 + 1) * x2 - 14) * x2,
        ]
    )


# ---------------------------------------------------------------------------
# MGH #3  Powell badly scaled
# ---------------------------------------------------------------------------


def powell_badly_scaled_residual(x):
    """MGH #3, Powell badly scaled function (n=2, m=2).

    f1 = 10^4 x1 x2 - 1,  f2 = exp(-x1) + exp(-x2) - 1.0001.
    f* = 0 at (1.098...e-5, 9.106...).
    """
    x = _float(x)
    return jnp.stack([1e4 * x[0] * x[1] - 1, jnp.exp(-x[0]) + jnp.exp(-x[1]) - 1.0001])


# ---------------------------------------------------------------------------
# MGH #4  Brown badly scaled
# ---------------------------------------------------------------------------


def brown_badly_scaled_residual(x):
    """MGH #4, Brown badly scaled function (n=2, m=3).

    f1 = x1 - 10^6,  f2 = x2 - 2e-6,  f3 = x1 x2 - 2.  f* = 0 at (1e6, 2e-6).
    """
    x = _float(x)
    return jnp.stack([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2])


# ---------------------------------------------------------------------------
# MGH #5  Beale
# ---------------------------------------------------------------------------

_BEALE_Y = (1.5, 2.25, 2.625)


def beale_residual(x):
    """MGH #5, Beale function (n=2, m=3).

    f_i = y_i - x1 (1 - x2^i),  y = (1.5, 2.25, 2.625).  f* = 0 at (3, 0.5).
    """
    x = _float(x)
    i = _index(3, x)
    return _const(_BEALE_Y, x) - x[0] * (1 - x[1] ** i)


# ---------------------------------------------------------------------------
# MGH #6  Jennrich and Sampson
# ---------------------------------------------------------------------------


def make_jennrich_sampson(m: int = 10) -> TestProblem:
    """MGH #6, Jennrich and Sampson function (n=2, m >= n; MGH tabulate m=10).

    f_i = 2 + 2i - (exp(i x1) + exp(i x2)),  i = 1..m.
    For m = 10: f* = 124.362... at x1 = x2 = 0.2578... .
    """
    if m != 10:
        raise ValueError("only m=10 has a recorded minimum here")

    def jennrich_sampson_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_jennrich_sampson`."""
        x = _float(x)
        i = _index(m, x)
        return 2 + 2 * i - (jnp.exp(i * x[0]) + jnp.exp(i * x[1]))

    return _ls(
        "jennrich_sampson",
        jennrich_sampson_residual,
        [0.3, 0.4],
        _FS_JENNRICH,
        [0.2578252136703641, 0.2578252136703641],
        notes="MGH #6, m=10. MGH print f* = 124.362 at x1 = x2 = 0.2578.",
    )


# ---------------------------------------------------------------------------
# MGH #7  Helical valley
# ---------------------------------------------------------------------------


def helical_valley_residual(x):
    """MGH #7, helical valley function (n=3, m=3).

    f1 = 10 [x3 - 10 theta(x1, x2)],  f2 = 10 [sqrt(x1^2 + x2^2) - 1],  f3 = x3,
    theta = arctan(x2/x1) / (2 pi) for x1 > 0, and arctan(x2/x1)/(2 pi) + 0.5 for
    x1 < 0. MGH's theta therefore ranges over (-1/4, 3/4); we evaluate it with
    arctan2 (identical values, smooth across x1 = 0, x2 > 0) and shift the branch
    (-1/2, -1/4) up by 1 to match MGH.  f* = 0 at (1, 0, 0).
    """
    x = _float(x)
    theta = jnp.arctan2(x[1], x[0]) / (2 * math.pi)
    theta = jnp.where(theta < -0.25, theta + 1, theta)
    return jnp.stack(
        [
            10 * (x[2] - 10 * theta),
            10 * (jnp.sqrt(x[0] ** 2 + x[1] ** 2) - 1),
            x[2],
        ]
    )


# ---------------------------------------------------------------------------
# MGH #8  Bard
# ---------------------------------------------------------------------------

_BARD_Y = (
    0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39,
    0.37, 0.58, 0.73, 0.96, 1.34, 2.10, 4.39,
)  # fmt: skip


def bard_residual(x):
    """MGH #8, Bard function (n=3, m=15).

    f_i = y_i - (x1 + u_i / (v_i x2 + w_i x3)),  u_i = i, v_i = 16 - i,
    w_i = min(u_i, v_i).  f* = 8.21487...e-3; also f = 17.4286... as
    x2, x3 -> -inf with x1 = 0.8406... .
    """
    x = _float(x)
    u = _index(15, x)
    v = 16 - u
    w = jnp.minimum(u, v)
    return _const(_BARD_Y, x) - (x[0] + u / (v * x[1] + w * x[2]))


# ---------------------------------------------------------------------------
# MGH #9  Gaussian
# ---------------------------------------------------------------------------

_GAUSSIAN_Y = (
    0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989,
    0.3521, 0.2420, 0.1295, 0.0540, 0.0175, 0.0044, 0.0009,
)  # fmt: skip


def gaussian_residual(x):
    """MGH #9, Gaussian function (n=3, m=15).

    f_i = x1 exp(-x2 (t_i - x3)^2 / 2) - y_i,  t_i = (8 - i) / 2.
    f* = 1.12793...e-8.
    """
    x = _float(x)
    t = (8 - _index(15, x)) / 2
    return x[0] * jnp.exp(-x[1] * (t - x[2]) ** 2 / 2) - _const(_GAUSSIAN_Y, x)


# ---------------------------------------------------------------------------
# MGH #10  Meyer
# ---------------------------------------------------------------------------

_MEYER_Y = (
    34780.0, 28610.0, 23650.0, 19630.0, 16370.0, 13720.0, 11540.0, 9744.0,
    8261.0, 7030.0, 6005.0, 5147.0, 4427.0, 3820.0, 3307.0, 2872.0,
)  # fmt: skip


def meyer_residual(x):
    """MGH #10, Meyer function (n=3, m=16); NIST StRD "MGH10".

    f_i = x1 exp(x2 / (t_i + x3)) - y_i,  t_i = 45 + 5 i.  f* = 87.9458... .
    """
    x = _float(x)
    t = 45 + 5 * _index(16, x)
    return x[0] * jnp.exp(x[1] / (t + x[2])) - _const(_MEYER_Y, x)


# ---------------------------------------------------------------------------
# MGH #11  Gulf research and development
# ---------------------------------------------------------------------------


def make_gulf(m: int = 99) -> TestProblem:
    """MGH #11, Gulf research and development function (n=3, 3 <= m <= 100).

    f_i = exp(-|y_i - x2|^x3 / x1) - t_i,  t_i = i/100,
    y_i = 25 + (-50 ln t_i)^(2/3).  f* = 0 at (50, 25, 1.5).

    m defaults to 99: with m = 100, y_100 = 25 = x2* exactly, and the derivative
    of |y - x2|^x3 with respect to x3 at the solution is 0 * log(0) = NaN.
    """
    if not 3 <= m <= 99:
        raise ValueError("m must be in [3, 99]")
    t_np = np.arange(1, m + 1, dtype=np.float64) / 100
    y_np = 25 + (-50 * np.log(t_np)) ** (2 / 3)

    def gulf_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_gulf`."""
        x = _float(x)
        t = _const(t_np, x)
        y = _const(y_np, x)
        return jnp.exp(-(jnp.abs(y - x[1]) ** x[2]) / x[0]) - t

    return _ls(
        "gulf",
        gulf_residual,
        [5.0, 2.5, 0.15],
        0.0,
        [50.0, 25.0, 1.5],
        notes=f"MGH #11 with m={m}. Zero-residual problem.",
    )


# ---------------------------------------------------------------------------
# MGH #12  Box three-dimensional
# ---------------------------------------------------------------------------


def make_box3d(m: int = 10) -> TestProblem:
    """MGH #12, Box three-dimensional function (n=3, m >= n; MGH use m=10).

    f_i = exp(-t_i x1) - exp(-t_i x2) - x3 (exp(-t_i) - exp(-10 t_i)),
    t_i = 0.1 i.  f* = 0 at (1, 10, 1), (10, 1, -1) and on the line
    x1 = x2, x3 = 0.
    """

    def box3d_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_box3d`."""
        x = _float(x)
        t = _index(m, x) / 10
        return (
            jnp.exp(-t * x[0])
            - jnp.exp(-t * x[1])
            - x[2] * (jnp.exp(-t) - jnp.exp(-10 * t))
        )

    return _ls(
        "box3d",
        box3d_residual,
        [0.0, 10.0, 20.0],
        0.0,
        [1.0, 10.0, 1.0],
        notes=(
            f"MGH #12 with m={m}. Global minima f=0 at (1,10,1), (10,1,-1) and "
            "the line x1=x2, x3=0; a solver may legitimately reach any of them."
        ),
    )


# ---------------------------------------------------------------------------
# MGH #13  Powell singular / MGH #22 extended Powell singular
# ---------------------------------------------------------------------------


def extended_powell_residual(x):
    """MGH #22 (and #13 for n=4), (extended) Powell singular function.

    For each block k of four variables (x_{4k-3}, ..., x_{4k}):
    f_{4k-3} = x_{4k-3} + 10 x_{4k-2},  f_{4k-2} = sqrt(5) (x_{4k-1} - x_{4k}),
    f_{4k-1} = (x_{4k-2} - 2 x_{4k-1})^2,  f_{4k} = sqrt(10) (x_{4k-3} - x_{4k})^2.
    f* = 0 at the origin, where the Hessian is singular (rank 2 per block).
    """
    x = _float(x)
    b = x.reshape(-1, 4)
    a, bb, c, d = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    r = jnp.stack(
        [
            a + 10 * bb,
            math.sqrt(5.0) * (c - d),
            (bb - 2 * c) ** 2,
            math.sqrt(10.0) * (a - d) ** 2,
        ],
        axis=1,
    )
    return r.reshape(-1)


def make_extended_powell(n: int = 4) -> TestProblem:
    """MGH #13 (n = 4, "powell_singular") / #22 (n = 4k, "extended_powell").

    x0 = (3, -1, 0, 1, 3, -1, 0, 1, ...); f* = 0 at the origin.
    """
    if n % 4:
        raise ValueError("n must be a multiple of 4")
    name = "powell_singular" if n == 4 else "extended_powell"
    num = "#13" if n == 4 else "#22"
    return _ls(
        name,
        extended_powell_residual,
        np.tile([3.0, -1.0, 0.0, 1.0], n // 4),
        0.0,
        np.zeros(n),
        notes=(
            f"MGH {num}, n={n}. Singular Hessian at the minimiser, so "
            "Newton-type methods converge only linearly here."
        ),
    )


# ---------------------------------------------------------------------------
# MGH #14  Wood
# ---------------------------------------------------------------------------


def wood_residual(x):
    """MGH #14, Wood function (n=4, m=6).

    f1 = 10 (x2 - x1^2), f2 = 1 - x1, f3 = sqrt(90) (x4 - x3^2), f4 = 1 - x3,
    f5 = sqrt(10) (x2 + x4 - 2), f6 = 10^(-1/2) (x2 - x4).  f* = 0 at (1,1,1,1).
    """
    x = _float(x)
    return jnp.stack(
        [
            10 * (x[1] - x[0] ** 2),
            1 - x[0],
            math.sqrt(90.0) * (x[3] - x[2] ** 2),
            1 - x[2],
            math.sqrt(10.0) * (x[1] + x[3] - 2),
            (x[1] - x[3]) / math.sqrt(10.0),
        ]
    )


# ---------------------------------------------------------------------------
# MGH #15  Kowalik and Osborne
# ---------------------------------------------------------------------------

_KOWALIK_Y = (
    0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627,
    0.0456, 0.0342, 0.0323, 0.0235, 0.0246,
)  # fmt: skip
_KOWALIK_U = (
    4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625,
)  # fmt: skip


def kowalik_osborne_residual(x):
    """MGH #15, Kowalik and Osborne function (n=4, m=11); NIST StRD "MGH09".

    f_i = y_i - x1 (u_i^2 + u_i x2) / (u_i^2 + u_i x3 + x4).
    f* = 3.07505...e-4; also f = 1.02734...e-3 as x1 -> inf, x3, x4 -> -inf.
    """
    x = _float(x)
    u = _const(_KOWALIK_U, x)
    return _const(_KOWALIK_Y, x) - x[0] * (u * u + u * x[1]) / (u * u + u * x[2] + x[3])


# ---------------------------------------------------------------------------
# MGH #16  Brown and Dennis
# ---------------------------------------------------------------------------


def make_brown_dennis(m: int = 20) -> TestProblem:
    """MGH #16, Brown and Dennis function (n=4, m >= n; MGH tabulate m=20).

    f_i = (x1 + t_i x2 - exp(t_i))^2 + (x3 + x4 sin t_i - cos t_i)^2,
    t_i = i/5.  For m = 20: f* = 85822.2... .
    """
    if m != 20:
        raise ValueError("only m=20 has a recorded minimum here")

    def brown_dennis_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_brown_dennis`."""
        x = _float(x)
        t = _index(m, x) / 5
        return (x[0] + t * x[1] - jnp.exp(t)) ** 2 + (
            x[2] + x[3] * jnp.sin(t) - jnp.cos(t)
        ) ** 2

    return _ls(
        "brown_dennis",
        brown_dennis_residual,
        [25.0, 5.0, -5.0, -1.0],
        _FS_BROWN_DENNIS,
        [
            -11.594439904762162,
            13.203630051207202,
            -0.4034394881768612,
            0.2367787744557347,
        ],
        notes="MGH #16, m=20. MGH print f* = 85822.2.",
    )


# ---------------------------------------------------------------------------
# MGH #17  Osborne 1
# ---------------------------------------------------------------------------

_OSBORNE1_Y = (
    0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751,
    0.718, 0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490,
    0.478, 0.467, 0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411, 0.406,
)  # fmt: skip


def osborne1_residual(x):
    """MGH #17, Osborne 1 function (n=5, m=33); NIST StRD "MGH17".

    f_i = y_i - (x1 + x2 exp(-t_i x4) + x3 exp(-t_i x5)),  t_i = 10 (i - 1).
    f* = 5.46489...e-5.
    """
    x = _float(x)
    t = 10 * _index(33, x, start=0)
    return _const(_OSBORNE1_Y, x) - (
        x[0] + x[1] * jnp.exp(-t * x[3]) + x[2] * jnp.exp(-t * x[4])
    )


# ---------------------------------------------------------------------------
# MGH #18  Biggs EXP6
# ---------------------------------------------------------------------------


def make_biggs_exp6(m: int = 13) -> TestProblem:
    """MGH #18, Biggs EXP6 function (n=6, m >= n; MGH tabulate m=13).

    f_i = x3 exp(-t_i x1) - x4 exp(-t_i x2) + x6 exp(-t_i x5) - y_i,
    t_i = 0.1 i,  y_i = exp(-t_i) - 5 exp(-10 t_i) + 3 exp(-4 t_i).
    f* = 0 at (1, 10, 1, 5, 4, 3); for m = 13 there is also a local minimum
    f = 5.65565...e-3.
    """
    if m != 13:
        raise ValueError("only m=13 has a recorded local minimum here")

    def biggs_exp6_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_biggs_exp6`."""
        x = _float(x)
        t = _index(m, x) / 10
        y = jnp.exp(-t) - 5 * jnp.exp(-10 * t) + 3 * jnp.exp(-4 * t)
        return (
            x[2] * jnp.exp(-t * x[0])
            - x[3] * jnp.exp(-t * x[1])
            + x[5] * jnp.exp(-t * x[4])
            - y
        )

    return _ls(
        "biggs_exp6",
        biggs_exp6_residual,
        [1.0, 2.0, 1.0, 1.0, 1.0, 1.0],
        0.0,
        [1.0, 10.0, 1.0, 5.0, 4.0, 3.0],
        notes=(
            "MGH #18, m=13. Global f*=0 at (1,10,1,5,4,3) (and at (4,10,3,5,1,1), "
            "swapping the two positive exponential terms). MGH also list "
            "f = 5.65565e-3: x0 lies in the subspace {x1 = x5, x3 = x6}, which "
            "is invariant under gradient steps (the two terms stay merged), and "
            "5.65565e-3 is the minimum within it, at about (1.7114, 17.683, "
            "1.1631, 5.1866, 1.7114, 1.1631). In the full space that point is "
            "a saddle (one Hessian eigenvalue ~ -9.8e-3), but gradient methods "
            "from x0 (SciPy BFGS and L-BFGS-B) converge to it."
        ),
        local_fstars=(_FS_BIGGS_SUBSPACE,),
    )


# ---------------------------------------------------------------------------
# MGH #19  Osborne 2
# ---------------------------------------------------------------------------

_OSBORNE2_Y = (
    1.366, 1.191, 1.112, 1.013, 0.991, 0.885, 0.831, 0.847, 0.786, 0.725,
    0.746, 0.679, 0.608, 0.655, 0.616, 0.606, 0.602, 0.626, 0.651, 0.724,
    0.649, 0.649, 0.694, 0.644, 0.624, 0.661, 0.612, 0.558, 0.533, 0.495,
    0.500, 0.423, 0.395, 0.375, 0.372, 0.391, 0.396, 0.405, 0.428, 0.429,
    0.523, 0.562, 0.607, 0.653, 0.672, 0.708, 0.633, 0.668, 0.645, 0.632,
    0.591, 0.559, 0.597, 0.625, 0.739, 0.710, 0.729, 0.720, 0.636, 0.581,
    0.428, 0.292, 0.162, 0.098, 0.054,
)  # fmt: skip


def osborne2_residual(x):
    """MGH #19, Osborne 2 function (n=11, m=65).

    f_i = y_i - (x1 exp(-t_i x5) + x2 exp(-(t_i - x9)^2 x6)
                 + x3 exp(-(t_i - x10)^2 x7) + x4 exp(-(t_i - x11)^2 x8)),
    t_i = (i - 1)/10.  f* = 4.01377...e-2.
    """
    x = _float(x)
    t = _index(65, x, start=0) / 10
    model = (
        x[0] * jnp.exp(-t * x[4])
        + x[1] * jnp.exp(-((t - x[8]) ** 2) * x[5])
        + x[2] * jnp.exp(-((t - x[9]) ** 2) * x[6])
        + x[3] * jnp.exp(-((t - x[10]) ** 2) * x[7])
    )
    return _const(_OSBORNE2_Y, x) - model


# ---------------------------------------------------------------------------
# MGH #20  Watson
# ---------------------------------------------------------------------------


def make_watson(n: int = 9) -> TestProblem:
    """MGH #20, Watson function (2 <= n <= 31, m = 31).

    For 1 <= i <= 29, t_i = i/29:
      f_i = sum_{j=2}^n (j-1) x_j t_i^(j-2) - (sum_{j=1}^n x_j t_i^(j-1))^2 - 1;
    f_30 = x1,  f_31 = x2 - x1^2 - 1.
    f* = 2.28767e-3 (n=6), 1.39976e-6 (n=9), 4.72238e-10 (n=12).
    """
    table = {
        6: (
            _FS_WATSON6,
            [
                -0.015725086401458317,
                1.0124348693691096,
                -0.23299162595673556,
                1.2604300877996022,
                -1.513728922722272,
                0.9929964324311319,
            ],
            "2.28767e-3",
        ),
        9: (
            _FS_WATSON9,
            [
                -1.530703652142907e-05,
                0.9997897039319481,
                0.014763963693574468,
                0.1463423282991522,
                1.0008211030057608,
                -2.6177311405216663,
                4.104403164482395,
                -3.1436122785588267,
                1.0526264080108052,
            ],
            "1.39976e-6",
        ),
    }
    if n not in table:
        raise ValueError(f"n must be one of {sorted(table)}")
    fstar, xstar, printed = table[n]
    # powers t_i^k, k = 0..n-1, and the derivative weights (j-1) t_i^(j-2)
    t_np = np.arange(1, 30, dtype=np.float64) / 29
    k = np.arange(n, dtype=np.float64)
    pw_np = t_np[:, None] ** k[None, :]  # (29, n): t^(j-1), j = 1..n
    dpw_np = np.zeros_like(pw_np)
    dpw_np[:, 1:] = k[None, 1:] * t_np[:, None] ** (k[None, 1:] - 1)

    def watson_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_watson`."""
        x = _float(x)
        pw = _const(pw_np, x)
        dpw = _const(dpw_np, x)
        poly = pw @ x
        r = dpw @ x - poly**2 - 1
        return jnp.concatenate([r, jnp.stack([x[0], x[1] - x[0] ** 2 - 1])])

    return _ls(
        "watson" if n == 9 else f"watson{n}",
        watson_residual,
        np.zeros(n),
        fstar,
        xstar,
        notes=f"MGH #20, n={n}. MGH print f* = {printed}. Ill-conditioned.",
    )


# ---------------------------------------------------------------------------
# MGH #21  Extended Rosenbrock
# ---------------------------------------------------------------------------


def extended_rosenbrock_residual(x):
    """MGH #21, extended Rosenbrock function (n even, m = n).

    f_{2i-1} = 10 (x_{2i} - x_{2i-1}^2),  f_{2i} = 1 - x_{2i-1}.
    f* = 0 at (1, ..., 1).
    """
    x = _float(x)
    b = x.reshape(-1, 2)
    return jnp.stack([10 * (b[:, 1] - b[:, 0] ** 2), 1 - b[:, 0]], axis=1).reshape(-1)


def make_extended_rosenbrock(n: int = 10) -> TestProblem:
    """MGH #21, extended Rosenbrock; x0 = (-1.2, 1, -1.2, 1, ...), f* = 0."""
    if n % 2:
        raise ValueError("n must be even")
    return _ls(
        "extended_rosenbrock",
        extended_rosenbrock_residual,
        np.tile([-1.2, 1.0], n // 2),
        0.0,
        np.ones(n),
        notes=f"MGH #21, n={n}.",
    )


# ---------------------------------------------------------------------------
# MGH #23  Penalty I
# ---------------------------------------------------------------------------


def make_penalty1(n: int = 10) -> TestProblem:
    """MGH #23, penalty function I (n variable, m = n + 1).

    f_i = sqrt(a) (x_i - 1), 1 <= i <= n;  f_{n+1} = (sum_j x_j^2) - 1/4;
    a = 1e-5;  x0_j = j.  f* = 2.24997e-5 (n=4), 7.08765e-5 (n=10).
    """
    table = {
        4: (_FS_P1_4, 0.2500074995875379, "2.24997e-5"),
        10: (_FS_P1_10, 0.15812230111311634, "7.08765e-5"),
    }
    if n not in table:
        raise ValueError(f"n must be one of {sorted(table)}")
    fstar, xs, printed = table[n]
    sqrt_a = math.sqrt(1e-5)

    def penalty1_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_penalty1`."""
        x = _float(x)
        return jnp.concatenate([sqrt_a * (x - 1), (jnp.sum(x * x) - 0.25)[None]])

    return _ls(
        "penalty1" if n == 10 else f"penalty1_n{n}",
        penalty1_residual,
        np.arange(1, n + 1, dtype=np.float64),
        fstar,
        np.full(n, xs),
        notes=f"MGH #23, n={n}. MGH print f* = {printed}. Minimiser has all "
        "components equal (to the root of a cubic).",
    )


# ---------------------------------------------------------------------------
# MGH #24  Penalty II
# ---------------------------------------------------------------------------


def make_penalty2(n: int = 10) -> TestProblem:
    """MGH #24, penalty function II (n variable, m = 2n).

    f_1 = x1 - 0.2;
    f_i = sqrt(a) (exp(x_i/10) + exp(x_{i-1}/10) - y_i),  2 <= i <= n;
    f_i = sqrt(a) (exp(x_{i-n+1}/10) - exp(-1/10)),  n < i < 2n;
    f_2n = (sum_{j=1}^n (n - j + 1) x_j^2) - 1;
    a = 1e-5,  y_i = exp(i/10) + exp((i-1)/10);  x0 = (1/2, ..., 1/2).
    f* = 9.37629e-6 (n=4), 2.93660e-4 (n=10).
    """
    table = {
        4: (
            _FS_P2_4,
            [
                0.1999993333503804,
                0.1913167009927725,
                0.48010148533262326,
                0.5188454043902003,
            ],
            "9.37629e-6",
        ),
        10: (
            _FS_P2_10,
            [
                0.19998360519782363,
                0.010350648471292304,
                0.01960493448043841,
                0.032089067220685656,
                0.049932677399641315,
                0.0765139951539936,
                0.1186240728695042,
                0.19214487233557667,
                0.34732058694184365,
                0.36916437415935077,
            ],
            "2.93660e-4",
        ),
    }
    if n not in table:
        raise ValueError(f"n must be one of {sorted(table)}")
    fstar, xstar, printed = table[n]
    sqrt_a = math.sqrt(1e-5)
    i_np = np.arange(2, n + 1, dtype=np.float64)
    y_np = np.exp(i_np / 10) + np.exp((i_np - 1) / 10)
    wts_np = np.arange(n, 0, -1, dtype=np.float64)  # n - j + 1

    def penalty2_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_penalty2`."""
        x = _float(x)
        e = jnp.exp(x / 10)
        return jnp.concatenate(
            [
                (x[0] - 0.2)[None],
                sqrt_a * (e[1:] + e[:-1] - _const(y_np, x)),
                sqrt_a * (e[1:] - math.exp(-0.1)),
                (jnp.sum(_const(wts_np, x) * x * x) - 1)[None],
            ]
        )

    return _ls(
        "penalty2" if n == 10 else f"penalty2_n{n}",
        penalty2_residual,
        np.full(n, 0.5),
        fstar,
        xstar,
        notes=f"MGH #24, n={n}. MGH print f* = {printed}.",
    )


# ---------------------------------------------------------------------------
# MGH #25  Variably dimensioned
# ---------------------------------------------------------------------------


def variably_dimensioned_residual(x):
    """MGH #25, variably dimensioned function (n variable, m = n + 2).

    f_i = x_i - 1 (1 <= i <= n),  f_{n+1} = sum_j j (x_j - 1),
    f_{n+2} = (sum_j j (x_j - 1))^2.  x0_j = 1 - j/n.  f* = 0 at (1, ..., 1).
    """
    x = _float(x)
    j = _index(x.shape[0], x)
    s = jnp.sum(j * (x - 1))
    return jnp.concatenate([x - 1, jnp.stack([s, s * s])])


# ---------------------------------------------------------------------------
# MGH #26  Trigonometric
# ---------------------------------------------------------------------------


def trigonometric_residual(x):
    """MGH #26, trigonometric function (n variable, m = n).

    f_i = n - sum_j cos x_j + i (1 - cos x_i) - sin x_i.  x0 = (1/n, ..., 1/n).
    f* = 0.
    """
    x = _float(x)
    n = x.shape[0]
    i = _index(n, x)
    c = jnp.cos(x)
    return n - jnp.sum(c) + i * (1 - c) - jnp.sin(x)


# ---------------------------------------------------------------------------
# MGH #27  Brown almost-linear
# ---------------------------------------------------------------------------


def brown_almost_linear_residual(x):
    """MGH #27, Brown almost-linear function (n variable, m = n).

    f_i = x_i + sum_j x_j - (n + 1), 1 <= i < n;  f_n = (prod_j x_j) - 1.
    f* = 0 at (a, ..., a, a^(1-n)) with n a^n - (n+1) a^(n-1) + 1 = 0 -- in
    particular at (1, ..., 1); f = 1 at (0, ..., 0, n + 1).
    """
    x = _float(x)
    n = x.shape[0]
    return jnp.concatenate([x[:-1] + jnp.sum(x) - (n + 1), (jnp.prod(x) - 1)[None]])


# ---------------------------------------------------------------------------
# MGH #28  Discrete boundary value
# ---------------------------------------------------------------------------


def discrete_boundary_value_residual(x):
    """MGH #28, discrete boundary value function (n variable, m = n).

    h = 1/(n+1), t_i = i h, x_0 = x_{n+1} = 0:
    f_i = 2 x_i - x_{i-1} - x_{i+1} + h^2 (x_i + t_i + 1)^3 / 2.
    x0_j = t_j (t_j - 1).  f* = 0.
    """
    x = _float(x)
    n = x.shape[0]
    h = 1.0 / (n + 1)
    t = _index(n, x) * h
    zero = jnp.zeros((1,), x.dtype)
    xl = jnp.concatenate([zero, x[:-1]])
    xr = jnp.concatenate([x[1:], zero])
    return 2 * x - xl - xr + h * h * (x + t + 1) ** 3 / 2


# ---------------------------------------------------------------------------
# MGH #29  Discrete integral equation
# ---------------------------------------------------------------------------


def discrete_integral_equation_residual(x):
    """MGH #29, discrete integral equation function (n variable, m = n).

    h = 1/(n+1), t_i = i h:
    f_i = x_i + h [ (1 - t_i) sum_{j<=i} t_j (x_j + t_j + 1)^3
                    + t_i sum_{j>i} (1 - t_j) (x_j + t_j + 1)^3 ] / 2.
    x0_j = t_j (t_j - 1).  f* = 0.
    """
    x = _float(x)
    n = x.shape[0]
    h = 1.0 / (n + 1)
    t_np = np.arange(1, n + 1, dtype=np.float64) * h
    ti, tj = t_np[:, None], t_np[None, :]
    kern_np = np.where(tj <= ti, (1 - ti) * tj, ti * (1 - tj))
    t = _const(t_np, x)
    return x + h / 2 * (_const(kern_np, x) @ (x + t + 1) ** 3)


def _bvp_start(n):
    t = np.arange(1, n + 1, dtype=np.float64) / (n + 1)
    return t * (t - 1)


# Common zero of MGH #28 and #29 for n = 10 (the two are equivalent discretisations
# of the same two-point boundary value problem: the integral form uses the exact
# discrete Green's function of the second-difference operator). Computed by a
# float64 Newton solve; residual norm ~1e-16.
_BVP10_XSTAR = [
    -0.04316498251876487, -0.08157715653538687, -0.11448571438052929,
    -0.14097357686259668, -0.1599086961819831, -0.1698772023127749,
    -0.16908998378120835, -0.1552495352218318, -0.12535589167893496,
    -0.07541653368589203,
]  # fmt: skip


# ---------------------------------------------------------------------------
# MGH #30  Broyden tridiagonal
# ---------------------------------------------------------------------------


def broyden_tridiagonal_residual(x):
    """MGH #30, Broyden tridiagonal function (n variable, m = n).

    f_i = (3 - 2 x_i) x_i - x_{i-1} - 2 x_{i+1} + 1,  x_0 = x_{n+1} = 0.
    x0 = (-1, ..., -1).  f* = 0.
    """
    x = _float(x)
    zero = jnp.zeros((1,), x.dtype)
    xl = jnp.concatenate([zero, x[:-1]])
    xr = jnp.concatenate([x[1:], zero])
    return (3 - 2 * x) * x - xl - 2 * xr + 1


# ---------------------------------------------------------------------------
# MGH #31  Broyden banded
# ---------------------------------------------------------------------------


def broyden_banded_residual(x):
    """MGH #31, Broyden banded function (n variable, m = n).

    f_i = x_i (2 + 5 x_i^2) + 1 - sum_{j in J_i} x_j (1 + x_j),
    J_i = {j != i : max(1, i - 5) <= j <= min(n, i + 1)}.
    x0 = (-1, ..., -1).  f* = 0.
    """
    x = _float(x)
    n = x.shape[0]
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    band_np = ((j >= i - 5) & (j <= i + 1) & (j != i)).astype(np.float64)
    return x * (2 + 5 * x * x) + 1 - _const(band_np, x) @ (x * (1 + x))


# ---------------------------------------------------------------------------
# MGH #32-34  Linear functions
# ---------------------------------------------------------------------------


def make_linear_full_rank(n: int = 10, m: int = 20) -> TestProblem:
    """MGH #32, linear function -- full rank (m >= n).

    f_i = x_i - (2/m) sum_j x_j - 1 (i <= n);  f_i = -(2/m) sum_j x_j - 1 (i > n).
    x0 = (1, ..., 1).  f* = m - n at (-1, ..., -1).
    """
    if m < n:
        raise ValueError("need m >= n")

    def linear_full_rank_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_linear_full_rank`."""
        x = _float(x)
        s = jnp.sum(x) * (2.0 / m)
        return jnp.concatenate([x - s - 1, jnp.full((m - n,), -1, x.dtype) - s])

    return _ls(
        "linear_full_rank",
        linear_full_rank_residual,
        np.ones(n),
        float(m - n),
        -np.ones(n),
        notes=f"MGH #32, n={n}, m={m}. Linear least squares; unique minimiser.",
    )


def make_linear_rank1(n: int = 10, m: int = 20) -> TestProblem:
    """MGH #33, linear function -- rank 1 (m >= n).

    f_i = i (sum_j j x_j) - 1.  x0 = (1, ..., 1).
    f* = m (m - 1) / (2 (2m + 1)) on the hyperplane sum_j j x_j = 3 / (2m + 1).
    """
    fstar = m * (m - 1) / (2 * (2 * m + 1))
    j_np = np.arange(1, n + 1, dtype=np.float64)
    xstar = j_np * (3 / (2 * m + 1)) / np.sum(j_np * j_np)  # one minimiser

    def linear_rank1_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_linear_rank1`."""
        x = _float(x)
        s = jnp.sum(_index(n, x) * x)
        return _index(m, x) * s - 1

    return _ls(
        "linear_rank1",
        linear_rank1_residual,
        np.ones(n),
        fstar,
        xstar,
        notes=f"MGH #33, n={n}, m={m}. Minimisers form a hyperplane; xstar is "
        "the minimum-norm one.",
    )


def make_linear_rank1_zero(n: int = 10, m: int = 20) -> TestProblem:
    """MGH #34, linear function -- rank 1 with zero columns and rows (m >= n).

    f_1 = -1,  f_i = (i - 1) (sum_{j=2}^{n-1} j x_j) - 1 (2 <= i <= m-1),
    f_m = -1.  x0 = (1, ..., 1).
    f* = (m^2 + 3m - 6) / (2 (2m - 3)) on the hyperplane
    sum_{j=2}^{n-1} j x_j = 3 / (2m - 3).
    """
    fstar = (m * m + 3 * m - 6) / (2 * (2 * m - 3))
    w_np = np.arange(1, n + 1, dtype=np.float64)
    w_np[0] = 0.0
    w_np[-1] = 0.0
    xstar = w_np * (3 / (2 * m - 3)) / np.sum(w_np * w_np)  # min-norm minimiser

    def linear_rank1_zero_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_linear_rank1_zero`."""
        x = _float(x)
        s = jnp.sum(_const(w_np, x) * x)
        k = _index(m - 2, x)  # i - 1 for i = 2..m-1
        minus_one = jnp.full((1,), -1, x.dtype)
        return jnp.concatenate([minus_one, k * s - 1, minus_one])

    return _ls(
        "linear_rank1_zero",
        linear_rank1_zero_residual,
        np.ones(n),
        fstar,
        xstar,
        notes=f"MGH #34, n={n}, m={m}. Minimisers form a hyperplane; x1 and xn "
        "do not enter the objective (zero gradient components).",
    )


# ---------------------------------------------------------------------------
# MGH #35  Chebyquad
# ---------------------------------------------------------------------------


def make_chebyquad(n: int = 8, m: int | None = None) -> TestProblem:
    """MGH #35, Chebyquad function (n variable, m >= n).

    f_i = (1/n) sum_j T_i(x_j) - integral_0^1 T_i(s) ds, where T_i is the i-th
    Chebyshev polynomial shifted to [0, 1]; the integral is 0 for odd i and
    -1/(i^2 - 1) for even i.  x0_j = j/(n+1).
    f* = 0 for m = n, 1 <= n <= 7 and n = 9 (minimisers not recorded here);
    f* = 3.51687e-3 for n = m = 8.  Only m = n is supported.
    """
    m = n if m is None else m
    table = {
        8: (
            _FS_CHEBYQUAD8,
            [
                0.043152760151016614,
                0.1930908403841861,
                0.26632870689027294,
                0.5,
                0.5,
                0.733671293109727,
                0.8069091596158139,
                0.9568472398489833,
            ],
            "3.51687e-3",
        ),
    }
    for k in (1, 2, 3, 4, 5, 6, 7, 9):
        table[k] = (0.0, None, "0")
    if m != n or n not in table:
        raise ValueError(f"only n = m in {sorted(table)} recorded here")
    fstar, xstar, printed = table[n]
    ints_np = np.array([0.0 if i % 2 else -1.0 / (i * i - 1) for i in range(1, m + 1)])

    def chebyquad_residual(x):
        """Residual vector (f_1, ..., f_m); see :func:`make_chebyquad`."""
        x = _float(x)
        y = 2 * x - 1
        tprev, tcur = jnp.ones_like(y), y
        rows = [tcur]
        for _ in range(1, m):
            tprev, tcur = tcur, 2 * y * tcur - tprev
            rows.append(tcur)
        return jnp.mean(jnp.stack(rows), axis=1) - _const(ints_np, x)

    return _ls(
        "chebyquad" if n == 8 else f"chebyquad{n}",
        chebyquad_residual,
        np.arange(1, n + 1, dtype=np.float64) / (n + 1),
        fstar,
        xstar,
        notes=f"MGH #35, n=m={n}. MGH print f* = {printed}. The objective is "
        "invariant under permutations of x (many equivalent minimisers).",
    )


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------


def _build() -> tuple[TestProblem, ...]:
    return (
        _ls(
            "rosenbrock",
            rosenbrock_residual,
            [-1.2, 1.0],
            0.0,
            [1.0, 1.0],
            notes="MGH #1.",
        ),
        _ls(
            "freudenstein_roth",
            freudenstein_roth_residual,
            [0.5, -2.0],
            0.0,
            [5.0, 4.0],
            notes=(
                "MGH #2. Global f*=0 at (5,4); local minimum "
                "f=48.98425367924 at (11.41277899, -0.89680525) (MGH print "
                "48.9842). Descent methods from x0 usually reach the local "
                "minimum (SciPy BFGS and L-BFGS-B both do)."
            ),
            local_fstars=(_FS_FR_LOCAL,),
        ),
        _ls(
            "powell_badly_scaled",
            powell_badly_scaled_residual,
            [0.0, 1.0],
            0.0,
            [1.0981593296998218e-05, 9.106146739866489],
            notes="MGH #3. Badly scaled zero-residual problem.",
        ),
        _ls(
            "brown_badly_scaled",
            brown_badly_scaled_residual,
            [1.0, 1.0],
            0.0,
            [1e6, 2e-6],
            notes="MGH #4. Badly scaled; f(x0) ~ 1e12.",
        ),
        _ls("beale", beale_residual, [1.0, 1.0], 0.0, [3.0, 0.5], notes="MGH #5."),
        make_jennrich_sampson(10),
        _ls(
            "helical_valley",
            helical_valley_residual,
            [-1.0, 0.0, 0.0],
            0.0,
            [1.0, 0.0, 0.0],
            notes="MGH #7. theta has a branch cut on x1 = 0, x2 < 0.",
        ),
        _ls(
            "bard",
            bard_residual,
            [1.0, 1.0, 1.0],
            _FS_BARD,
            [0.08241055974978899, 1.1330360920297227, 2.343695178642536],
            notes=(
                "MGH #8. MGH print f* = 8.21487e-3; also f -> 17.4286 as "
                "x2, x3 -> -inf (x1 = 0.8406)."
            ),
        ),
        _ls(
            "gaussian",
            gaussian_residual,
            [0.4, 1.0, 0.0],
            _FS_GAUSSIAN,
            [0.3989561378387567, 1.0000190844878056, 0.0],
            notes="MGH #9. MGH print f* = 1.12793e-8; tiny f, use relative tests.",
        ),
        _ls(
            "meyer",
            meyer_residual,
            [0.02, 4000.0, 250.0],
            _FS_MEYER,
            [0.005609636471028504, 6181.346346286303, 345.2236346241341],
            notes=(
                "MGH #10 (NIST MGH10). MGH print f* = 87.9458; NIST certified "
                "RSS 87.945855171. Extremely badly scaled; hard for "
                "first-order and quasi-Newton methods."
            ),
        ),
        make_gulf(99),
        make_box3d(10),
        make_extended_powell(4),
        _ls(
            "wood",
            wood_residual,
            [-3.0, -1.0, -3.0, -1.0],
            0.0,
            [1.0, 1.0, 1.0, 1.0],
            notes="MGH #14 (Colville).",
        ),
        _ls(
            "kowalik_osborne",
            kowalik_osborne_residual,
            [0.25, 0.39, 0.415, 0.39],
            _FS_KOWALIK,
            [
                0.1928069345790379,
                0.19128232873436726,
                0.12305650692632097,
                0.13606233068379497,
            ],
            notes=(
                "MGH #15 (NIST MGH09 start 2). MGH print f* = 3.07505e-4; NIST "
                "certified RSS 3.0750560385e-4. Also f -> 1.02734e-3 as "
                "x1 -> inf, x3, x4 -> -inf."
            ),
        ),
        make_brown_dennis(20),
        _ls(
            "osborne1",
            osborne1_residual,
            [0.5, 1.5, -1.0, 0.01, 0.02],
            _FS_OSBORNE1,
            [
                0.3754100521069519,
                1.9358469127123539,
                -1.4646871366134093,
                0.01286753464005726,
                0.02212269966167266,
            ],
            notes=(
                "MGH #17 (NIST MGH17 start 2). MGH print f* = 5.46489e-5; NIST "
                "certified RSS 5.4648946975e-5."
            ),
        ),
        make_biggs_exp6(13),
        _ls(
            "osborne2",
            osborne2_residual,
            [1.3, 0.65, 0.65, 0.7, 0.6, 3.0, 5.0, 7.0, 2.0, 4.5, 5.5],
            _FS_OSBORNE2,
            [
                1.3099771546273005,
                0.4315537946029888,
                0.633661698960724,
                0.5994305347859161,
                0.7541832263280109,
                0.9042885798596347,
                1.365811835237027,
                4.823698817227159,
                2.3986848661317546,
                4.568874597667672,
                5.6753414705806415,
            ],
            notes="MGH #19. MGH print f* = 4.01377e-2.",
        ),
        make_watson(6),
        make_watson(9),
        make_extended_rosenbrock(10),
        make_extended_powell(12),
        make_penalty1(4),
        make_penalty1(10),
        make_penalty2(4),
        make_penalty2(10),
        _ls(
            "variably_dimensioned",
            variably_dimensioned_residual,
            1 - np.arange(1, 11, dtype=np.float64) / 10,
            0.0,
            np.ones(10),
            notes="MGH #25, n=10. f(x0) ~ 2.2e6.",
        ),
        _ls(
            "trigonometric",
            trigonometric_residual,
            np.full(10, 0.1),
            0.0,
            None,
            notes=(
                "MGH #26, n=10. Global f*=0 (minimiser not recorded); there "
                "is a local minimum f = 2.79506e-5 at about (0.05515, 0.05684, "
                "0.05876, 0.06099, 0.06363, 0.06684, 0.20816, 0.16436, 0.08501, "
                "0.09143), which descent methods from x0 usually reach (SciPy "
                "BFGS and L-BFGS-B both do)."
            ),
            local_fstars=(_FS_TRIG_LOCAL,),
        ),
        _ls(
            "brown_almost_linear",
            brown_almost_linear_residual,
            np.full(10, 0.5),
            0.0,
            np.ones(10),
            notes=(
                "MGH #27, n=10. f*=0 at (1,...,1) (and at other roots a of "
                "n a^n - (n+1) a^(n-1) + 1 = 0); MGH also list f=1 at "
                "(0,...,0,n+1). SciPy BFGS and L-BFGS-B from x0 reach f*=0."
            ),
            local_fstars=(1.0,),
        ),
        _ls(
            "discrete_boundary_value",
            discrete_boundary_value_residual,
            _bvp_start(10),
            0.0,
            _BVP10_XSTAR,
            notes="MGH #28, n=10. xstar computed numerically (same as #29).",
        ),
        _ls(
            "discrete_integral_equation",
            discrete_integral_equation_residual,
            _bvp_start(10),
            0.0,
            _BVP10_XSTAR,
            notes="MGH #29, n=10. xstar computed numerically (same as #28).",
        ),
        _ls(
            "broyden_tridiagonal",
            broyden_tridiagonal_residual,
            -np.ones(10),
            0.0,
            [
                -0.5707221320112248,
                -0.6818069499842752,
                -0.7022100760176601,
                -0.7055106298950804,
                -0.7049061557287437,
                -0.7014966070298512,
                -0.6918893223547983,
                -0.6657965144058536,
                -0.5960351090263657,
                -0.4164122575286934,
            ],
            notes="MGH #30, n=10. xstar computed numerically (Newton, float64).",
        ),
        _ls(
            "broyden_banded",
            broyden_banded_residual,
            -np.ones(10),
            0.0,
            [
                -0.4283028635872503,
                -0.47659642435629024,
                -0.5196524636468617,
                -0.5580993248321808,
                -0.5925061568294574,
                -0.624503682199468,
                -0.6232394714405911,
                -0.6213938417965735,
                -0.6204535966590874,
                -0.5864692707204351,
            ],
            notes=(
                "MGH #31, n=10 (ml=5, mu=1). xstar computed numerically "
                "(Newton, float64)."
            ),
        ),
        make_linear_full_rank(10, 20),
        make_linear_rank1(10, 20),
        make_linear_rank1_zero(10, 20),
        make_chebyquad(8),
    )


PROBLEMS: tuple[TestProblem, ...] = _build()
_BY_NAME = {p.name: p for p in PROBLEMS}
assert len(_BY_NAME) == len(PROBLEMS), "duplicate problem names"


def names() -> tuple[str, ...]:
    """Names of all problems in :data:`PROBLEMS`, in MGH order."""
    return tuple(_BY_NAME)


def get(name: str) -> TestProblem:
    """The problem called ``name`` (see :func:`names`)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"unknown problem {name!r}; known: {', '.join(_BY_NAME)}"
        ) from None
