"""Descent rules: how far a solver trusts its model."""

from ._base import AbstractDescent
from .dogleg import Dogleg, DoglegState
from .line_search import Backtracking, LineSearchState, Zoom
from .ratio import Verdict, damping_update, radius_update, ratio_test
from .trust_region import TrustRegion, TrustRegionState

__all__ = [
    "AbstractDescent",
    "Backtracking",
    "Dogleg",
    "DoglegState",
    "LineSearchState",
    "TrustRegion",
    "TrustRegionState",
    "Verdict",
    "Zoom",
    "damping_update",
    "radius_update",
    "ratio_test",
]
