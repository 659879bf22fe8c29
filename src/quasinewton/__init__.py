"""quasinewton: second-order and quasi-Newton solvers for minimisation and nonlinear
least squares in JAX."""

from . import (
    curvature,
    descent,
    diagnostics,
    evaluation,
    linear,
    loss,
    problem,
    termination,
)
from ._adjoint import ImplicitAdjoint
from ._covariance import Covariance, covariance
from ._curve_fit import curve_fit
from ._report import report
from ._solution import RESULTS, Solution, Termination
from ._solve import least_squares, minimise
from .solvers import (
    BFGS,
    LBFGS,
    GaussNewton,
    LevenbergMarquardt,
    LevenbergMarquardtCG,
    Newton,
    Solver,
)

__version__ = "0.1.0"

__all__ = [
    "BFGS",
    "LBFGS",
    "RESULTS",
    "Covariance",
    "GaussNewton",
    "ImplicitAdjoint",
    "LevenbergMarquardt",
    "LevenbergMarquardtCG",
    "Newton",
    "Solution",
    "Solver",
    "Termination",
    "covariance",
    "curvature",
    "curve_fit",
    "descent",
    "diagnostics",
    "evaluation",
    "least_squares",
    "linear",
    "loss",
    "minimise",
    "problem",
    "report",
    "termination",
]
