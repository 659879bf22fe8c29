"""Linear-solve parts: preconditioners and forcing terms for Lineax solvers."""

from .cg import ConjugateGradient
from .forcing import AbstractForcing, ConstantForcing, EisenstatWalker
from .preconditioners import (
    AbstractPreconditioner,
    Jacobi,
    gauss_newton_diagonal,
    hutchinson_diagonal,
)

__all__ = [
    "AbstractForcing",
    "AbstractPreconditioner",
    "ConjugateGradient",
    "ConstantForcing",
    "EisenstatWalker",
    "Jacobi",
    "gauss_newton_diagonal",
    "hutchinson_diagonal",
]
