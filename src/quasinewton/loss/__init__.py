"""Robust losses for least squares: f = ½ Σᵢ s² ρ(rᵢ²/s²), passed as `loss=` to
[`quasinewton.least_squares`][]."""

from ._base import AbstractLoss
from .arctan import Arctan
from .cauchy import Cauchy
from .huber import Huber
from .linear import Linear
from .soft_l1 import SoftL1
from .tukey import Tukey

__all__ = ["AbstractLoss", "Arctan", "Cauchy", "Huber", "Linear", "SoftL1", "Tukey"]
