"""Linear-solve parts: preconditioners and forcing terms for Lineax solvers, and the
unrolled small dense solve of the lean path."""

from .cg import ConjugateGradient
from .context import LinearSolveContext
from .forcing import AbstractForcing, ConstantForcing, EisenstatWalker
from .preconditioners import (
    AbstractPreconditioner,
    Jacobi,
    gauss_newton_diagonal,
    hutchinson_diagonal,
)
from .unrolled import cholesky_solve

__all__ = [
    "AbstractForcing",
    "AbstractPreconditioner",
    "ConjugateGradient",
    "ConstantForcing",
    "EisenstatWalker",
    "Jacobi",
    "LinearSolveContext",
    "cholesky_solve",
    "gauss_newton_diagonal",
    "hutchinson_diagonal",
]
