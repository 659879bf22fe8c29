"""Termination tests: when a solve has converged."""

from ._base import AbstractTermination, Progress, certified, stationary
from .decrease import RelativeDecrease
from .gradient import Gradient
from .step import Step

__all__ = [
    "AbstractTermination",
    "Gradient",
    "Progress",
    "RelativeDecrease",
    "Step",
    "certified",
    "stationary",
]
