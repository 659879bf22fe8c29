"""Robust losses for least squares: f = ½ Σᵢ s² ρ(rᵢ²/s²), passed as `loss=` to
[`quasinewton.least_squares`][]."""

from ._base import AbstractLoss
from .linear import Linear

__all__ = ["AbstractLoss", "Linear"]
