"""Curvature models: the local quadratic model a solver steps on."""

from ._base import AbstractCurvature, AbstractHessianModel, LinearSolveContext
from .bfgs import BFGS, BFGSState
from .gauss_newton import GaussNewton
from .lbfgs import LBFGS, LBFGSState
from .model import Model
from .newton import Newton
from .sr1 import SR1, SR1State

__all__ = [
    "BFGS",
    "LBFGS",
    "SR1",
    "AbstractCurvature",
    "AbstractHessianModel",
    "BFGSState",
    "GaussNewton",
    "LBFGSState",
    "LinearSolveContext",
    "Model",
    "Newton",
    "SR1State",
]
