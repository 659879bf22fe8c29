"""NIST StRD nonlinear-regression reference problems, as JAX-ready test fixtures.

The Statistical Reference Datasets (StRD) of the U.S. National Institute of
Standards and Technology hold 27 nonlinear least-squares problems. Each comes
with two starting points and "certified" parameter values, standard deviations
and residual sum of squares, computed to about 11 significant digits in
128-bit arithmetic. They are the usual yardstick for the *accuracy* of a
nonlinear least-squares solver:

    https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml

This module reads the original ``.dat`` files kept in ``tests/data/nist`` and
writes every model formula in ``jax.numpy`` so that residuals can be jitted and
differentiated. Accuracy is scored with the log relative error (LRE) of
McCullough (1999), see :func:`significant_digits`.

The module deliberately does not import ``quasinewton``: it describes the
problems, not a way to solve them, so it can check the data independently of
any solver.

Conventions
-----------
* Parameters ``b1..bk`` of the NIST files are ``b[0]..b[k-1]``.
* ``x`` is ``(n_obs,)`` for one predictor and ``(n_obs, k)`` for ``k``
  predictors (only Nelson has two: ``x1 = time``, ``x2 = temperature``).
* ``y`` is the response column exactly as printed in the file.
* Residuals are ``model(b, x) - g(y)`` where ``g`` is the identity except for
  Nelson, whose model is stated for ``log[y]`` (see :data:`LOG_RESPONSE`).

Example
-------
>>> import jax
>>> jax.config.update("jax_enable_x64", True)
>>> p = load("Misra1a")
>>> rss = float((p.residual(p.certified) ** 2).sum())   # ~= p.certified_rss

References
----------
NIST Statistical Reference Datasets, Nonlinear Regression,
https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml

McCullough, B. D. (1999). Assessing the reliability of statistical software:
Part II. The American Statistician, 53(2), 149-159.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "DATA_DIR",
    "LOG_RESPONSE",
    "NAMES",
    "NISTProblem",
    "load",
    "load_all",
    "model",
    "significant_digits",
]

#: Directory holding the unmodified NIST ``.dat`` files.
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data" / "nist"

# ---------------------------------------------------------------------------
# Models
#
# Each function is a transcription of the "Model:" section of the named .dat
# file, with b1..bk -> b[0]..b[k-1], exp[..] -> jnp.exp(..), arctan ->
# jnp.arctan and x**p -> x**p. Several problems share one model; the sharing
# is spelled out in ``_MODELS`` below rather than hidden.
# ---------------------------------------------------------------------------


def _bennett5(b, x):
    # y = b1 * (b2+x)**(-1/b3)
    return b[0] * (b[1] + x) ** (-1.0 / b[2])


def _boxbod_misra1a(b, x):
    # y = b1*(1-exp[-b2*x])             (BoxBOD and Misra1a)
    return b[0] * (1.0 - jnp.exp(-b[1] * x))


def _chwirut(b, x):
    # y = exp[-b1*x]/(b2+b3*x)          (Chwirut1 and Chwirut2)
    return jnp.exp(-b[0] * x) / (b[1] + b[2] * x)


def _danwood(b, x):
    # y = b1*x**b2
    return b[0] * x ** b[1]


def _enso(b, x):
    # y = b1 + b2*cos( 2*pi*x/12 ) + b3*sin( 2*pi*x/12 )
    #        + b5*cos( 2*pi*x/b4 ) + b6*sin( 2*pi*x/b4 )
    #        + b8*cos( 2*pi*x/b7 ) + b9*sin( 2*pi*x/b7 )
    # (arguments in radians, as the file says)
    t = 2.0 * jnp.pi * x
    return (
        b[0]
        + b[1] * jnp.cos(t / 12.0)
        + b[2] * jnp.sin(t / 12.0)
        + b[4] * jnp.cos(t / b[3])
        + b[5] * jnp.sin(t / b[3])
        + b[7] * jnp.cos(t / b[6])
        + b[8] * jnp.sin(t / b[6])
    )


def _eckerle4(b, x):
    # y = (b1/b2) * exp[-0.5*((x-b3)/b2)**2]
    return (b[0] / b[1]) * jnp.exp(-0.5 * ((x - b[2]) / b[1]) ** 2)


def _gauss(b, x):
    # y = b1*exp( -b2*x ) + b3*exp( -(x-b4)**2 / b5**2 )
    #                     + b6*exp( -(x-b7)**2 / b8**2 )   (Gauss1, 2, 3)
    return (
        b[0] * jnp.exp(-b[1] * x)
        + b[2] * jnp.exp(-((x - b[3]) ** 2) / b[4] ** 2)
        + b[5] * jnp.exp(-((x - b[6]) ** 2) / b[7] ** 2)
    )


def _cubic_over_cubic(b, x):
    # y = (b1+b2*x+b3*x**2+b4*x**3) / (1+b5*x+b6*x**2+b7*x**3)   (Hahn1, Thurber)
    num = b[0] + b[1] * x + b[2] * x**2 + b[3] * x**3
    den = 1.0 + b[4] * x + b[5] * x**2 + b[6] * x**3
    return num / den


def _kirby2(b, x):
    # y = (b1 + b2*x + b3*x**2) / (1 + b4*x + b5*x**2)
    return (b[0] + b[1] * x + b[2] * x**2) / (1.0 + b[3] * x + b[4] * x**2)


def _lanczos(b, x):
    # y = b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)   (Lanczos1, 2, 3)
    return (
        b[0] * jnp.exp(-b[1] * x)
        + b[2] * jnp.exp(-b[3] * x)
        + b[4] * jnp.exp(-b[5] * x)
    )


def _mgh09(b, x):
    # y = b1*(x**2+x*b2) / (x**2+x*b3+b4)
    return b[0] * (x**2 + x * b[1]) / (x**2 + x * b[2] + b[3])


def _mgh10(b, x):
    # y = b1 * exp[b2/(x+b3)]
    return b[0] * jnp.exp(b[1] / (x + b[2]))


def _mgh17(b, x):
    # y = b1 + b2*exp[-x*b4] + b3*exp[-x*b5]
    return b[0] + b[1] * jnp.exp(-x * b[3]) + b[2] * jnp.exp(-x * b[4])


def _misra1b(b, x):
    # y = b1 * (1-(1+b2*x/2)**(-2))
    return b[0] * (1.0 - (1.0 + b[1] * x / 2.0) ** (-2))


def _misra1c(b, x):
    # y = b1 * (1-(1+2*b2*x)**(-.5))
    return b[0] * (1.0 - (1.0 + 2.0 * b[1] * x) ** (-0.5))


def _misra1d(b, x):
    # y = b1*b2*x*((1+b2*x)**(-1))
    return b[0] * b[1] * x * ((1.0 + b[1] * x) ** (-1))


def _nelson(b, x):
    # log[y] = b1 - b2*x1 * exp[-b3*x2]
    # Two predictors: column 0 is x1 (time), column 1 is x2 (temperature).
    # The value returned models log(y), not y; see LOG_RESPONSE.
    x1, x2 = x[:, 0], x[:, 1]
    return b[0] - b[1] * x1 * jnp.exp(-b[2] * x2)


def _rat42(b, x):
    # y = b1 / (1+exp[b2-b3*x])
    return b[0] / (1.0 + jnp.exp(b[1] - b[2] * x))


def _rat43(b, x):
    # y = b1 / ((1+exp[b2-b3*x])**(1/b4))
    return b[0] / ((1.0 + jnp.exp(b[1] - b[2] * x)) ** (1.0 / b[3]))


def _roszman1(b, x):
    # pi = 3.141592653589793238462643383279E0   (jnp.pi is that value in float64)
    # y =  b1 - b2*x - arctan[b3/(x-b4)]/pi     (arctan in radians)
    return b[0] - b[1] * x - jnp.arctan(b[2] / (x - b[3])) / jnp.pi


_MODELS: dict[str, Callable] = {
    "Bennett5": _bennett5,
    "BoxBOD": _boxbod_misra1a,
    "Chwirut1": _chwirut,
    "Chwirut2": _chwirut,
    "DanWood": _danwood,
    "ENSO": _enso,
    "Eckerle4": _eckerle4,
    "Gauss1": _gauss,
    "Gauss2": _gauss,
    "Gauss3": _gauss,
    "Hahn1": _cubic_over_cubic,
    "Kirby2": _kirby2,
    "Lanczos1": _lanczos,
    "Lanczos2": _lanczos,
    "Lanczos3": _lanczos,
    "MGH09": _mgh09,
    "MGH10": _mgh10,
    "MGH17": _mgh17,
    "Misra1a": _boxbod_misra1a,
    "Misra1b": _misra1b,
    "Misra1c": _misra1c,
    "Misra1d": _misra1d,
    "Nelson": _nelson,
    "Rat42": _rat42,
    "Rat43": _rat43,
    "Roszman1": _roszman1,
    "Thurber": _cubic_over_cubic,
}

#: The 27 problem names, alphabetical (case-insensitive; NIST groups by difficulty).
NAMES: tuple[str, ...] = tuple(sorted(_MODELS, key=str.lower))

#: Problems whose model is stated for log(y) rather than y. Nelson.dat reads
#: ``log[y] = b1 - b2*x1 * exp[-b3*x2]  +  e``, and its certified residual sum
#: of squares is on that log scale, so the residual is ``model - log(y)``.
LOG_RESPONSE: frozenset[str] = frozenset({"Nelson"})


def model(name: str) -> Callable:
    """Return the NIST model ``f(b, x) -> prediction`` for problem ``name``.

    ``b`` is the parameter vector (``b[0]`` is NIST's ``b1``) and ``x`` the
    predictor array as stored in :class:`NISTProblem`. The function uses only
    ``jax.numpy`` so it can be jitted, vmapped and differentiated. For Nelson
    the prediction is of ``log(y)``.
    """
    try:
        return _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown NIST problem {name!r}; choose from {NAMES}") from None


# ---------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class NISTProblem:
    """One NIST StRD nonlinear least-squares problem.

    Attributes:
        name: dataset name, e.g. ``"MGH09"``.
        x: predictor values, ``(n_obs,)`` or ``(n_obs, n_predictors)``.
        y: response values exactly as in the file (Nelson: raw ``y``, not its
            log; :meth:`residual` applies the log).
        starts: NIST's ``(Start 1, Start 2)`` parameter vectors. Start 1 is
            the far one, Start 2 is closer to the solution.
        certified: certified parameter values ``b1..bk``.
        certified_std: certified standard deviations of the parameters.
        certified_rss: certified residual sum of squares.
        certified_residual_sd: certified residual standard deviation,
            ``sqrt(rss / (n_obs - n_params))``.
        difficulty: NIST's rating, ``"Lower"``, ``"Average"`` or ``"Higher"``.
        formula: the model formula as printed in the file, whitespace
            normalised (for reports).

    The arrays are read-only so that a problem can be shared between tests
    safely. ``eq=False`` keeps identity equality and hashing: field-wise
    ``==`` on arrays would be ambiguous.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    starts: tuple[np.ndarray, np.ndarray]
    certified: np.ndarray
    certified_std: np.ndarray
    certified_rss: float
    certified_residual_sd: float
    difficulty: str
    formula: str

    @property
    def n_params(self) -> int:
        """Number of parameters ``k``."""
        return self.certified.shape[0]

    @property
    def n_obs(self) -> int:
        """Number of observations."""
        return self.y.shape[0]

    @property
    def model(self) -> Callable:
        """The model function ``f(b, x)``; see :func:`model`."""
        return model(self.name)

    def residual(self, b, x=None, y=None):
        """Residual vector ``model(b, x) - g(y)`` as a JAX array.

        ``g`` is ``log`` for problems in :data:`LOG_RESPONSE` (Nelson) and the
        identity otherwise. ``x`` and ``y`` default to the problem's data; pass
        them to evaluate on a subset or perturbed data (``y`` always on the
        file's scale). The sign convention (model minus data) does not affect
        the sum of squares.
        """
        x = self.x if x is None else x
        y = self.y if y is None else y
        return _residual_fn(self.name)(b, x, y)

    def rss(self, b) -> float:
        """Residual sum of squares ``sum(residual(b)**2)`` as a Python float."""
        r = self.residual(b)
        return float(jnp.sum(r * r))


@functools.cache
def _residual_fn(name: str) -> Callable:
    """Jitted ``(b, x, y) -> model(b, x) - g(y)`` for problem ``name``.

    Jitting matters only for speed: evaluated op by op, JAX compiles every
    primitive on first use, which makes a single eager Jacobian of Gauss1 take
    about a second. The jitted function composes with ``jax.grad``,
    ``jax.jacfwd`` and ``jax.jit`` like any other.
    """
    f = model(name)
    log_response = name in LOG_RESPONSE

    def residual(b, x, y):
        target = jnp.log(y) if log_response else y
        return f(b, x) - target

    return jax.jit(residual)


# ---------------------------------------------------------------------------
# Parsing
#
# Every StRD nonlinear file has the same layout. The header states the
# 1-based line ranges of the parts:
#
#     File Format:   ASCII
#                    Starting Values   (lines 41 to 43)
#                    Certified Values  (lines 41 to 48)
#                    Data              (lines 61 to 274)
#
# The parameter lines ``  b1 =  start1  start2  certified  std`` begin at the
# first line of "Starting Values"; the certified block continues with the
# "Residual Sum of Squares:" ... "Number of Observations:" lines; the line
# just above the data range names the columns (``Data:   y   x``), and that
# header, not an assumed order, decides which column is the response.
# ---------------------------------------------------------------------------

_RANGE = r"\(lines\s+(\d+)\s+to\s+(\d+)\)"
_PARAM = re.compile(r"^\s*b(\d+)\s*=\s*(.*)$")


def _line_range(text: str, label: str) -> tuple[int, int]:
    """0-based half-open ``[start, stop)`` of the header's ``label (lines a to b)``."""
    m = re.search(label + r"\s+" + _RANGE, text)
    if m is None:
        raise ValueError(f"no '{label} (lines a to b)' entry in header")
    return int(m.group(1)) - 1, int(m.group(2))


def _labelled_number(lines: list[str], label: str) -> float:
    """The number following ``label:`` on the one line starting with it."""
    hits = [ln for ln in lines if ln.strip().startswith(label + ":")]
    if len(hits) != 1:
        raise ValueError(f"expected one '{label}:' line, found {len(hits)}")
    return float(hits[0].split(":", 1)[1])


def _parse(name: str, text: str) -> NISTProblem:
    lines = text.splitlines()

    # Parameter block: b_i = start1 start2 certified std.
    p0, p1 = _line_range(text, "Starting Values")
    rows = []
    for i, ln in enumerate(lines[p0:p1], start=1):
        m = _PARAM.match(ln)
        if m is None or int(m.group(1)) != i:
            raise ValueError(f"{name}: expected line 'b{i} = ...', got {ln!r}")
        fields = m.group(2).split()
        if len(fields) != 4:
            raise ValueError(f"{name}: b{i} line needs 4 numbers, got {fields}")
        rows.append([float(f) for f in fields])
    params = np.array(rows, dtype=np.float64)

    # Summary statistics, inside the certified-values block.
    c0, c1 = _line_range(text, "Certified Values")
    block = lines[c0:c1]
    rss = _labelled_number(block, "Residual Sum of Squares")
    residual_sd = _labelled_number(block, "Residual Standard Deviation")
    n_obs = int(_labelled_number(block, "Number of Observations"))

    # Data block; the column names are on the line just above it.
    d0, d1 = _line_range(text, "Data")
    header = lines[d0 - 1]
    if not header.startswith("Data:"):
        raise ValueError(f"{name}: expected column header above data, got {header!r}")
    columns = header.split(":", 1)[1].split()
    table = np.array([ln.split() for ln in lines[d0:d1]], dtype=np.float64)
    if table.shape != (n_obs, len(columns)):
        raise ValueError(
            f"{name}: data is {table.shape}, expected ({n_obs}, {len(columns)})"
        )
    y = table[:, columns.index("y")]
    predictors = [c for c in columns if c != "y"]
    x = table[:, [columns.index(c) for c in predictors]]  # file order: x or x1, x2
    if x.shape[1] == 1:
        x = x[:, 0]

    # Difficulty and formula from the descriptive sections.
    m = re.search(r"(Lower|Average|Higher) Level of Difficulty", text)
    if m is None:
        raise ValueError(f"{name}: no 'Level of Difficulty' line")
    difficulty = m.group(1)
    formula = _formula(lines)

    return NISTProblem(
        name=name,
        x=_frozen(x),
        y=_frozen(y),
        starts=(_frozen(params[:, 0]), _frozen(params[:, 1])),
        certified=_frozen(params[:, 2]),
        certified_std=_frozen(params[:, 3]),
        certified_rss=rss,
        certified_residual_sd=residual_sd,
        difficulty=difficulty,
        formula=formula,
    )


def _frozen(a: np.ndarray) -> np.ndarray:
    """A contiguous read-only copy of ``a``."""
    a = np.array(a, dtype=np.float64, copy=True)
    a.flags.writeable = False
    return a


def _formula(lines: list[str]) -> str:
    """The formula text of the file's ``Model:`` section, whitespace-normalised.

    The section is ``Model: <class>``, ``k Parameters (...)``, a blank line,
    then the formula up to the next blank line, possibly over several lines
    (continuations start with ``+`` or ``(``) and possibly preceded by a
    definition such as Roszman1's ``pi = ...``. Separate statements are
    joined with ``"; "``, continuation lines with a space.
    """
    i = next(k for k, ln in enumerate(lines) if ln.startswith("Model:")) + 2
    while not lines[i].strip():
        i += 1
    statements: list[str] = []
    while lines[i].strip():
        ln = " ".join(lines[i].split())
        if re.match(r"^[\w\[\]]+ =", ln) or not statements:
            statements.append(ln)
        else:
            statements[-1] += " " + ln
        i += 1
    return "; ".join(statements)


def load(name: str) -> NISTProblem:
    """Parse ``tests/data/nist/<name>.dat`` into a :class:`NISTProblem`."""
    if name not in _MODELS:
        raise KeyError(f"unknown NIST problem {name!r}; choose from {NAMES}")
    return _parse(name, (DATA_DIR / f"{name}.dat").read_text())


def load_all() -> tuple[NISTProblem, ...]:
    """All 27 problems, in the order of :data:`NAMES`."""
    return tuple(load(n) for n in NAMES)


# ---------------------------------------------------------------------------
# Accuracy
# ---------------------------------------------------------------------------


def significant_digits(estimate, certified, max_digits: float = 15.0):
    """Log relative error (LRE): the number of leading digits that agree.

    ``LRE = -log10(|estimate - certified| / |certified|)``, or
    ``-log10(|estimate|)`` (absolute error) when ``certified == 0``. This is
    the accuracy measure of McCullough (1999), used with the NIST StRD. The
    result is clipped to ``[0, max_digits]``: an exact match gives
    ``max_digits`` (15 ~ the precision of float64) instead of infinity, and,
    as in McCullough, anything with no correct digit scores 0.

    Works elementwise on scalars or arrays; returns a float for scalar input.
    To score a fit use ``significant_digits(b, p.certified).min()``. Note
    that NIST certifies values to 11 digits, so LREs above ~11 only mean
    "agrees with the printed value".
    """
    est = np.asarray(estimate, dtype=np.float64)
    cert = np.asarray(certified, dtype=np.float64)
    err = np.abs(est - cert)
    scale = np.where(cert == 0.0, 1.0, np.abs(cert))
    with np.errstate(divide="ignore", invalid="ignore"):
        lre = -np.log10(err / scale)
    lre = np.where(np.isnan(lre), 0.0, lre)  # NaN/inf estimates: no digits
    lre = np.clip(lre, 0.0, max_digits)
    return float(lre) if lre.ndim == 0 else lre
