"""What a termination test sees, and the interface every test implements."""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Scalar

from .._solution import Termination


class Progress(eqx.Module):
    """The state of a solve after an accepted step, as termination tests see it.

    Every quantity a test compares is either a ratio or is compared with another
    quantity of the same units taken from this solve, so that the tests do not
    depend on the units of the objective: multiplying f (or the residuals) by a
    constant, or adding a constant to f, changes no outcome.

    **Attributes:**

    - `x`: the new iterate (flat).
    - `f`, `grad`: the objective and its gradient at `x`.
    - `step`: the accepted step Δx that led to `x` (zero at the start point).
    - `change`: Δf = f(x) − f(x_old), the change of the objective (≤ 0 after a
      descent step; zero at the start).
    - `f0`, `grad0`: the objective and maxᵢ |∇f(y0)ᵢ| at the start point.
    - `lower`: a known lower bound of f (0 for least squares, since f = ½‖r‖²), or
      `None` when f may be any real number (minimisation).
    - `first`: whether `x` is the start point (no step has been taken yet).
    - `full_step`: whether the step was the model's full step, not one shortened
      by a line search (a shortened step says the model was poor, not that the
      iterate has converged).
    - `rtol`, `atol`: the solver's tolerances.
    - `grad_norm`: maxᵢ |∇fᵢ| at `x`, and `first_order`: G (see
      `first_order_change`). Computed from `grad` and `x` when not given; the loop
      passes the gradient's norm it already has, so that every test and guard
      shares one reduction of each.
    """

    x: Float[Array, " n"]
    f: Scalar
    grad: Float[Array, " n"]
    step: Float[Array, " n"]
    change: Scalar
    f0: Scalar
    grad0: Scalar
    lower: Scalar | None
    first: Bool[Array, ""]
    full_step: Bool[Array, ""]
    rtol: Scalar
    atol: Scalar
    grad_norm: Scalar | None = None
    first_order: Scalar | None = None

    def __post_init__(self):
        if self.grad_norm is None:
            self.grad_norm = jnp.max(jnp.abs(self.grad))
        if self.first_order is None:
            self.first_order = jnp.max(
                jnp.abs(self.grad) * jnp.maximum(jnp.abs(self.x), 1.0)
            )

    def scale(self) -> Scalar:
        """S, the size of the objective the relative tests compare with: the
        decrease available from the start down to the known lower bound,
        f(y0) − `lower` (for least squares f(y0) itself), or without a lower bound
        the decrease made so far, f(y0) − f(x). Both are unchanged by a constant
        added to f and scale with f."""
        if self.lower is None:
            return self.f0 - self.f
        return self.f0 - self.lower

    def first_order_change(self) -> Scalar:
        """G = maxᵢ |∇fᵢ|·max(|xᵢ|, 1): the most a relative change of one
        coordinate could change f to first order."""
        return self.first_order

    def typical_f(self) -> Scalar:
        """The smallest size of f the relative tests compare with: rtol·S by
        default, so that a minimum of f = 0 is measured against the decrease made;
        1 with `atol > 0` (Dennis & Schnabel's typical f)."""
        return jnp.where(self.absolute(), 1.0, self.rtol * self.scale())

    def relative_gradient_within(self, tolerance) -> Bool[Array, ""]:
        """Whether ρ = G/max(|f|, typical f) ≤ `tolerance`: ρ is the relative change
        in f that a relative change of one coordinate would make (Dennis &
        Schnabel, 1996, §7.2). Unchanged by rescaling f; a constant added to f can
        only make it smaller (the tests that use it also need the gradient to have
        fallen, which no constant changes). Written without the division, so that
        ∇f = 0 at f = 0 passes."""
        size = jnp.maximum(jnp.abs(self.f), self.typical_f())
        return self.first_order_change() <= tolerance * size

    def relative_gradient_tolerance(self) -> Scalar:
        """What ρ must fall below in the gradient test: atol + rtol with `atol > 0`,
        else 100·rtol."""
        return jnp.where(self.absolute(), self.atol + self.rtol, 100 * self.rtol)

    def gradient_norm(self) -> Scalar:
        """maxᵢ |∇fᵢ|."""
        return self.grad_norm

    def gradient_fell_by(self, tolerance) -> Bool[Array, ""]:
        """maxᵢ |∇fᵢ| ≤ atol + `tolerance`·maxᵢ |∇f(y0)ᵢ|."""
        return self.gradient_norm() <= self.atol + tolerance * self.grad0

    def absolute(self) -> Bool[Array, ""]:
        """Whether absolute tests were asked for (`atol > 0`)."""
        return self.atol > 0


class AbstractTermination(eqx.Module):
    """A termination test: decides from a [`quasinewton.termination.Progress`][]
    whether the solve has converged.

    A [`quasinewton.Solver`][] runs its tests after every accepted step (and at the
    start point); the first that passes ends the solve as `successful` and is
    reported as `Solution.stats["termination"]`. Tests read the tolerances from
    the `Progress`, so one test serves every solver.

    Subclasses declare `reason`, the [`quasinewton.Termination`][] member they
    report.
    """

    reason: ClassVar[Termination]

    @abc.abstractmethod
    def __call__(self, progress: Progress) -> Bool[Array, ""]:
        """Whether the solve has converged at `progress.x`."""


def stationary(progress: Progress, tolerance) -> Bool[Array, ""]:
    """Whether `x` is stationary to `tolerance`: the gradient has fallen by that
    factor from the start (or below `atol`), or, for least squares, the
    first-order change G is at most `tolerance`·f(y0) (a start at a minimiser)."""
    fell = progress.gradient_fell_by(tolerance)
    if progress.lower is None:
        return fell
    return fell | (
        progress.first_order_change() <= (progress.atol + tolerance) * progress.scale()
    )


def certified(progress: Progress) -> Bool[Array, ""]:
    """The guard every test applies: the gradient has fallen by √rtol from the
    start (or below `atol`), so no test ends a solve where the gradient is still
    of the size it had at the start. This is also what a `precision` stop
    promises."""
    return progress.gradient_fell_by(jnp.sqrt(progress.rtol)) | (
        progress.gradient_norm() == 0
    )
