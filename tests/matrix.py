"""The solver × problem matrix: every preset and every valid composition of parts,
run on one shared problem set (as Optimistix's `tests/helpers.py` does), so that a
new part meets every existing test by being added to `CURVATURES`, `DESCENTS` or
`PRESETS`.

A composition is valid when the `Solver` accepts it (a descent rule that needs a
Hessian model with a model that gives one) and the entry point suits the model
(Gauss–Newton models need residuals, so they run under `least_squares` only).
"""

from collections.abc import Callable
from dataclasses import dataclass

import quasinewton as qn

#: Curvature parts by name.
CURVATURES: dict[str, Callable[[], qn.curvature.AbstractCurvature]] = {
    "lbfgs": qn.curvature.LBFGS,
    "bfgs": qn.curvature.BFGS,
    "sr1": qn.curvature.SR1,
    "newton-dense": lambda: qn.curvature.Newton(materialise=True),
    "newton-hvp": lambda: qn.curvature.Newton(materialise=False),
    "gn-normal": lambda: qn.curvature.GaussNewton(True, normal_equations=True),
    "gn-qr": lambda: qn.curvature.GaussNewton(True, normal_equations=False),
    "gn-matrix-free": lambda: qn.curvature.GaussNewton(materialise=False),
}

#: Descent parts by name.
DESCENTS: dict[str, Callable[[], qn.descent.AbstractDescent]] = {
    "zoom": qn.descent.Zoom,
    "backtracking": qn.descent.Backtracking,
    "trust-region": qn.descent.TrustRegion,
    "dogleg": qn.descent.Dogleg,
}

#: The presets, by name.
PRESETS: dict[str, Callable[[], qn.Solver]] = {
    "LBFGS": qn.LBFGS,
    "BFGS": qn.BFGS,
    "Newton": qn.Newton,
    "GaussNewton": qn.GaussNewton,
    "LevenbergMarquardt": qn.LevenbergMarquardt,
    "LevenbergMarquardtCG": qn.LevenbergMarquardtCG,
}


#: One solver for each way a sum of squares reaches the loop: the normal
#: equations (dense, the lean path for n ≤ 8), QR of J, matrix-free CG, a
#: Gauss–Newton line search, and a quasi-Newton model of f alone.
SUM_OF_SQUARES_PATHS: dict[str, qn.Solver] = {
    "lm-normal": qn.LevenbergMarquardt(),
    "lm-qr": qn.Solver(
        CURVATURES["gn-qr"](),
        qn.descent.TrustRegion(),
    ),
    "lm-cg": qn.LevenbergMarquardtCG(),
    "gn": qn.GaussNewton(),
    "lbfgs": qn.LBFGS(),
}


@dataclass(frozen=True)
class Entry:
    """One solver of the matrix and the entry points it runs under."""

    name: str
    make: Callable[[], qn.Solver]
    kinds: tuple[str, ...]  # "scalar" (minimise) and/or "residual" (least_squares)


def _kinds(solver: qn.Solver) -> tuple[str, ...]:
    if solver.curvature.needs_residual:
        return ("residual",)
    return ("scalar", "residual")


def _valid(curvature, descent) -> bool:
    return not (descent.needs_hessian and not curvature.has_hessian)


def entries() -> list[Entry]:
    """Every preset, then every valid curvature × descent composition."""
    out = [Entry(name, make, _kinds(make())) for name, make in PRESETS.items()]
    for c_name, curvature in CURVATURES.items():
        for d_name, descent in DESCENTS.items():
            if not _valid(curvature(), descent()):
                continue

            def make(curvature=curvature, descent=descent):
                return qn.Solver(curvature=curvature(), descent=descent())

            out.append(Entry(f"{c_name}+{d_name}", make, _kinds(make())))
    return out


#: The shared problem set: Moré–Garbow–Hillstrom problems (tests/problems.py) that
#: every composition solves from the standard start: curved valleys (Rosenbrock,
#: helical valley), a zero-residual fit with a badly scaled exponential (box 3-D),
#: and a non-zero-residual fit (Bard).
PROBLEM_NAMES = ("rosenbrock", "helical_valley", "bard", "box3d")

#: The one problem every composition is run on in the default test run.
QUICK_PROBLEM = "rosenbrock"
