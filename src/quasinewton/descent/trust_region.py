"""Levenberg–Marquardt damping driven by the ratio of actual to predicted reduction."""

from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Scalar

from .._misc import as_float, check_real
from ._base import AbstractDescent
from .ratio import damping_update, ratio_test


class TrustRegionState(eqx.Module):
    """**Attributes:**

    - `damping`: λ, the current damping factor (negative before the first step,
      when λ₀ is still to be scaled to the problem).
    - `growth`: ν, the factor λ grows by at the next rejection (doubles each time).
    - `predicted`: the reduction the model predicted for the pending trial.
    - `scale`: D, the diagonal scaling (Marquardt: the running max of diag(B);
      identity: I).
    - `unit`: what λ's range is relative to: max diag(B) at the start with
      identity scaling (λ has the units of B), 1 with Marquardt's.
    - `floor`: the last rejection was at the floating-point floor.
    - `memoryless`: the model that made the pending trial held no quasi-Newton
      memory (always, for Gauss–Newton and Newton).
    """

    damping: Scalar
    growth: Scalar
    predicted: Scalar
    scale: Float[Array, " n"]
    unit: Scalar
    floor: Bool[Array, ""]
    memoryless: Bool[Array, ""]


class TrustRegion(AbstractDescent):
    """Levenberg–Marquardt: steps solve (B + λD)p = −∇f, with λ adapted to how well
    the model predicted the last trial (Levenberg, 1944; Marquardt, 1963).

    Trials are judged by [`quasinewton.descent.ratio_test`][]: with ρ the ratio of
    the actual to the predicted reduction, a trial is accepted when ρ > `accept`,
    and a non-finite trial is rejected like a poor one (the iterate never moves to
    it). λ then follows [`quasinewton.descent.damping_update`][] (Nielsen, 1999,
    who caps the decrease at 3), within [`min_damping`, `max_damping`]. The rule
    fails when λ reaches `max_damping`, and stops at the precision floor when both
    the predicted and the actual change of a rejected trial are within rounding of
    f.

    **Arguments:**

    - `scaling`: D. `"identity"` (default): D = I, with λ₀ and λ's range
      relative to c, the largest diagonal entry of B at the start (Madsen, Nielsen
      & Tingleff, 2004, scale λ₀ by it), so that they keep their size relative to
      B whatever the units of the residuals; it needs no diag(B), which costs n
      products matrix-free. `"marquardt"`: the running maximum of diag(B), as in
      MINPACK (Moré, 1978), which makes the method invariant to rescaling the
      unknowns: prefer it when unknowns differ in scale by many orders of
      magnitude and no preconditioner is used. The two are compared on the NIST
      problems in the [benchmarks](../benchmarks/defaults.md).
    - `initial_damping`: λ₀, relative to c (identity) or to D (Marquardt).
    - `accept`: the least ρ for which a trial is accepted.
    - `max_decrease`: the most λ may shrink by after one very good step (Nielsen's
      3 shrinks λ more slowly after a run of good steps; the default is compared
      with it in the [benchmarks](../benchmarks/defaults.md)).
    - `min_damping`, `max_damping`: the range of λ, relative as λ₀ is.
    """

    scaling: Literal["identity", "marquardt"] = eqx.field(
        default="identity", static=True
    )
    initial_damping: float = eqx.field(default=1e-3, converter=as_float)
    accept: float = eqx.field(default=1e-4, converter=as_float)
    max_decrease: float = eqx.field(default=30.0, converter=as_float)
    min_damping: float = eqx.field(default=1e-24, converter=as_float)
    max_damping: float = eqx.field(default=1e16, converter=as_float)

    solves_every_iteration: ClassVar[bool] = True
    needs_hessian: ClassVar[bool] = True

    def __check_init__(self):
        if self.scaling not in ("identity", "marquardt"):
            raise ValueError(
                f"scaling must be 'identity' or 'marquardt', got {self.scaling!r}."
            )
        check_real("initial_damping", self.initial_damping, low=0.0, open_low=True)
        check_real("accept", self.accept, low=0.0, high=1.0, open_high=True)
        check_real("max_decrease", self.max_decrease, low=1.0, open_low=True)
        check_real("min_damping", self.min_damping, low=0.0, open_low=True)
        check_real("max_damping", self.max_damping, low=0.0, open_low=True)
        if not 0 <= self.accept < 1:
            raise ValueError(f"accept must lie in [0, 1), got {self.accept}.")
        if not self.max_decrease > 1:
            raise ValueError(f"max_decrease must exceed 1, got {self.max_decrease}.")
        if not 0 < self.min_damping < self.max_damping:
            raise ValueError("Need 0 < min_damping < max_damping.")

    def init_state(self, x, evaluation):
        dtype = x.dtype
        return TrustRegionState(
            damping=-jnp.ones((), dtype),
            growth=jnp.asarray(2.0, dtype),
            predicted=jnp.zeros((), dtype),
            scale=jnp.zeros_like(x),
            unit=jnp.ones((), dtype),
            floor=jnp.array(False),
            memoryless=jnp.array(True),
        )

    def judge(
        self, state: TrustRegionState, x, current, trial, trial_finite, direction
    ):
        predicted = state.predicted
        verdict = ratio_test(current.f, trial.f, predicted, trial_finite, self.accept)
        damping, growth = damping_update(
            state.damping, state.growth, verdict, predicted, self.max_decrease
        )
        low, high = self.min_damping * state.unit, self.max_damping * state.unit
        damping = jnp.clip(damping, low, high).astype(x.dtype)
        failed = ~verdict.accept & ((state.damping >= high) | verdict.floor)
        new_state = TrustRegionState(
            damping=damping,
            growth=growth.astype(x.dtype),
            predicted=predicted,
            scale=state.scale,
            unit=state.unit,
            floor=verdict.floor,
            memoryless=state.memoryless,
        )
        return verdict.accept, failed, new_state

    def at_precision_floor(self, state: TrustRegionState):
        # Only a memoryless model's tiny prediction is the floor, as for the line
        # searches: a quasi-Newton B that overestimates the curvature along some
        # direction (SR1's memory of a stiffer region) also predicts a decrease
        # below the rounding of f, far from the floor. Its failure restarts the
        # model instead, and the floor is declared if the memoryless model fails
        # there too.
        return state.floor & state.memoryless

    def undamped_decrease(self, state: TrustRegionState):
        # λ at most √eps relative to its unit changes (B + λD)p = −∇f by less than
        # the rounding of a linear solve in all but directions B hardly sees.
        # Judged after the update, which only grows λ after a rejection.
        eps = jnp.finfo(state.damping.dtype).eps
        undamped = state.memoryless & (state.damping <= jnp.sqrt(eps) * state.unit)
        return jnp.where(undamped, jnp.abs(state.predicted), jnp.inf)

    def propose(
        self, state: TrustRegionState, x, evaluation, model, new_search, direction
    ):
        damping = state.damping
        if self.scaling == "marquardt":
            scale = jnp.maximum(state.scale, model.diagonal())
            # Unknowns the residual does not (yet) depend on still get some damping.
            scale = jnp.maximum(scale, jnp.finfo(x.dtype).eps * jnp.max(scale))
            scale = jnp.where(scale > 0, scale, 1.0)
            unit = state.unit
        else:
            # D = I, with λ₀ and λ's range [min_damping, max_damping] relative to
            # c, the largest diagonal entry of B at the start: whatever the units of
            # the residuals, λ keeps its size relative to B. (D stays the constant
            # I rather than cI: XLA folds it away in the small unrolled solves.)
            unit = jnp.where(damping < 0, model.largest_diagonal(), state.unit)
            scale = jnp.ones_like(x)
        first = (self.initial_damping * unit).astype(x.dtype)
        damping = jnp.where(damping < 0, first, damping)
        p, num_linear = model.step(damping * scale)
        if model.solves_exactly:
            # (B + λD)p = −∇f exactly, so the predicted reduction −(∇fᵀp + ½pᵀBp)
            # equals ½pᵀ(λDp − ∇f) (Madsen, Nielsen & Tingleff, 2004, eq. 3.9): one
            # pass over p, no product with B.
            predicted = 0.5 * jnp.dot(p, damping * scale * p - evaluation.grad)
        else:
            # From B itself, so that inexact (CG) solves are judged correctly.
            predicted = -(jnp.dot(evaluation.grad, p) + 0.5 * model.quadratic(p))
        # A failed solve (e.g. Cholesky of an indefinite B + λD, or CG breaking down
        # at once) gives no step: the trial stays at x with a nan prediction, so it
        # is rejected, λ grows, and it can never pass for convergence at the
        # precision floor. A non-finite p makes the prediction non-finite and p = 0
        # makes it 0, so one test on the prediction covers both (fewer uses of p
        # also keep XLA from recomputing a small fused solve once per use).
        solved = jnp.isfinite(predicted) & (predicted != 0)
        predicted = jnp.where(solved, predicted, jnp.nan)
        p = jnp.where(solved, p, 0.0)
        new_state = eqx.tree_at(
            lambda s: (s.damping, s.predicted, s.scale, s.unit, s.memoryless),
            state,
            (damping, predicted, scale, unit, model.is_reset()),
        )
        return x + p, p, new_state, num_linear
