"""Descent rules: how far a solver trusts its model."""

from ._base import AbstractDescent
from .line_search import Backtracking, LineSearchState, Zoom

__all__ = ["AbstractDescent", "Backtracking", "LineSearchState", "Zoom"]
