"""Limited-memory BFGS: the inverse Hessian from the last few steps."""

from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Scalar

from .._misc import as_float, as_index, check_int, check_real
from ..evaluation import Evaluation
from ._base import AbstractCurvature, unit_length_first_step


class LBFGSState(eqx.Module):
    """Ring buffers of the last `memory_size` curvature pairs.

    **Attributes:**

    - `s`, `y`: rows are steps sₖ and gradient changes yₖ; row `(head - 1) % m` is
      the newest.
    - `rho`: 1/(sₖᵀyₖ) for stored rows, zero for empty ones.
    - `head`: the row the next pair goes to.
    - `count`: how many rows hold pairs.
    - `gamma`: the scale of the initial inverse Hessian H₀ = γD (1 for
      `init="diagonal"`, whose D carries the scale).
    - `num_skipped`: pairs skipped since the last stored one.
    - `diag`: D, the diagonal of H₀'s shape (`scaling="start"`), or `None` for D = I.
      For `init="diagonal"`, H₀ itself, updated with every pair.
    - `diag0`: for `init="diagonal"`, the shape D starts from (and returns to on a
      reset); `None` otherwise.
    """

    s: Float[Array, "m n"]
    y: Float[Array, "m n"]
    rho: Float[Array, " m"]
    head: Int[Array, ""]
    count: Int[Array, ""]
    gamma: Scalar
    num_skipped: Int[Array, ""]
    diag: Float[Array, " n"] | None = None
    diag0: Float[Array, " n"] | None = None


def _curvature_pair(
    s: Float[Array, " n"],
    y: Float[Array, " n"],
    b0: Scalar | float | Float[Array, " n"],
    safeguard: str,
) -> tuple[Float[Array, " n"], Bool[Array, ""]]:
    """Apply the pair safeguard; returns the (possibly damped) y and whether to keep it.

    A pair is unsafe when sᵀy ≤ eps·‖s‖‖y‖ (zero or negative curvature, possible
    after an Armijo-only search or from round-off). `"skip"` drops unsafe pairs.
    `"damp"` repairs them with Powell's damping (Nocedal & Wright, 2006,
    Procedure 18.2) against B₀ = b0·I, or diag(b0) for a vector b0 (H₀ = γD):
    y ← θy + (1−θ)B₀s with θ chosen so that sᵀy = 0.2·sᵀB₀s. Safe pairs are never damped: damping them too would stop the
    model from following a function that flattens out.
    """
    eps = jnp.finfo(s.dtype).eps

    def is_safe(y):
        sy, yy = jnp.dot(s, y), jnp.dot(y, y)
        safe = (sy > eps * jnp.sqrt(jnp.dot(s, s) * yy)) & (yy > 0)
        return safe & jnp.isfinite(sy) & jnp.isfinite(yy)

    if safeguard == "damp":
        sy = jnp.dot(s, y)
        sbs = jnp.dot(s, b0 * s)
        theta = 0.8 * sbs / jnp.maximum(sbs - sy, eps * sbs)
        y = jnp.where(is_safe(y), y, theta * y + (1 - theta) * b0 * s)
    return y, is_safe(y)


class LBFGS(AbstractCurvature):
    """Limited-memory BFGS inverse Hessian (Nocedal, 1980; Liu & Nocedal, 1989).

    The direction H·v comes from the two-loop recursion over the last `memory_size`
    pairs (sₖ, yₖ) = (xₖ₊₁ − xₖ, ∇fₖ₊₁ − ∇fₖ), starting from H₀ = γD.

    **Arguments:**

    - `memory_size`: how many pairs to keep (m).
    - `init`: the initial inverse Hessian H₀.
        - `"diagonal"` (default): H₀ = D, a diagonal matrix that every stored pair
          updates with the diagonal of the BFGS update of D⁻¹, after scaling D by
          the Oren–Luenberger factor sᵀy/yᵀDy (Gilbert & Lemaréchal, 1989; the
          diagonal scaling of their M1QN3 code):

              1/D⁺ᵢ = yᵀDy/(sᵀy·Dᵢ) + yᵢ²/sᵀy − yᵀDy·(sᵢ/Dᵢ)²/(sᵀy·sᵀD⁻¹s).

          D starts from the shape that `scaling` gives (the scaling above makes
          its overall size irrelevant) and returns to it when the memory is reset
          (a failed line search says D is wrong too). Why: one scalar γ takes its
          size from the stiffest direction, and on a problem whose unknowns differ
          in curvature by orders of magnitude the other unknowns then crawl; a
          diagonal learns one scale per unknown from the same pairs, at the cost
          of O(n) per pair.
          On the 103 CUTEst problems with n ≤ 20 it solves 5 more than `"scaled"`
          (98 against 93) with 35% fewer evaluations (see `benchmarks/cutest.py`);
          on the 28 with 20 < n ≤ 1000 it ends at the lower f (or level) on 26
          against 24, with a median of 69 evaluations against 91 where both end
          level.
        - `"scaled"`: γ = sᵀy/yᵀDy of the newest pair (Nocedal & Wright, 2006,
          eq. 7.20, for D = I), so steps of length 1 are usually accepted.
        - `"ase"`: the fixed H₀ = (1/`alpha`)·I of the Atomic Simulation Environment's
          L-BFGS optimiser, where `alpha` (default 70) is a guess of the Hessian's
          size; useful when the objective has a known stiffness.
    - `alpha`: the stiffness for `init="ase"`.
    - `scaling`: the shape D of H₀ = γD for `init="scaled"`, and the start of D for
      `init="diagonal"` (`"ase"` keeps H₀ = I/α).
        - `"start"` (default): D = diag(σᵢ²)/maxⱼ σⱼ² with σᵢ = |y0ᵢ|, the size of
          each unknown at the start (σᵢ = maxⱼ |y0ⱼ| for an unknown that starts at
          zero), if these sizes spread by a factor 1000 or more, else D = I (see
          `start_scaling`). H₀ is then γI in the relative unknowns xᵢ/σᵢ, the
          scaling by typical magnitudes of Dennis & Schnabel (1996, §7.1). γ is
          fitted to the newest pair in the same metric, γ = sᵀy/yᵀDy (the diagonal
          scaling "M3" of Liu & Nocedal, 1989, with a fixed shape). Why: with
          D = I, γ takes its size from the stiffest unknown, and on a fit whose
          parameters differ by orders of magnitude (NIST Misra1a starts at
          b = (500, 1e-4); its Hessian's condition number is 6e13) the first
          steps hardly move the large unknowns, and `init="scaled"` needs 158
          evaluations for Misra1a against 70 from the start shape. On the 103
          CUTEst problems with n ≤ 20 the start shape solves 5 more of them (98
          against 93); see `benchmarks/cutest.py`. The cost: a
          start with an unknown incidentally near zero (random starts) gets a
          shape that describes nothing, and the model must unlearn it; the
          threshold keeps that rare.
        - `"none"`: D = I, the textbook L-BFGS.
    - `safeguard`: what to do with a pair whose sᵀy is not safely positive (possible
      after an Armijo-only line search or with round-off): `"skip"` it (default) or
      `"damp"` it with Powell's damping so that it still teaches the memory
      something; see `_curvature_pair`.
    - `max_skipped`: after this many consecutive skipped pairs the memory is reset,
      so a stale model cannot persist.
    """

    memory_size: int = eqx.field(default=10, static=True, converter=as_index)
    init: Literal["diagonal", "scaled", "ase"] = eqx.field(
        default="diagonal", static=True
    )
    alpha: float = eqx.field(default=70.0, converter=as_float)
    safeguard: Literal["skip", "damp"] = eqx.field(default="skip", static=True)
    max_skipped: int = eqx.field(default=5, static=True, converter=as_index)
    scaling: Literal["start", "none"] = eqx.field(default="start", static=True)

    has_hessian: ClassVar[bool] = False
    solves_linear_system: ClassVar[bool] = False
    padding_is_exact: ClassVar[bool] = True

    def __check_init__(self):
        check_int("memory_size", self.memory_size, 1)
        check_int("max_skipped", self.max_skipped, 0)
        # H₀ = I/alpha for init="ase": zero, negative or nan would make it useless.
        check_real("alpha", self.alpha, low=0.0, open_low=True)
        if self.init not in ("diagonal", "scaled", "ase"):
            raise ValueError(
                f"init must be 'diagonal', 'scaled' or 'ase', got {self.init!r}."
            )
        if self.safeguard not in ("skip", "damp"):
            raise ValueError(
                f"safeguard must be 'skip' or 'damp', got {self.safeguard!r}."
            )
        if self.scaling not in ("start", "none"):
            raise ValueError(
                f"scaling must be 'start' or 'none', got {self.scaling!r}."
            )

    @property
    def _start_shape(self) -> bool:
        return self.scaling == "start" and self.init != "ase"

    def _gamma0(self, dtype) -> Scalar:
        if self.init == "ase":
            return jnp.asarray(1.0 / self.alpha, dtype)
        return jnp.ones((), dtype)

    def init_state(self, x, evaluation):
        diag = start_scaling(x) if self._start_shape else None
        if self.init == "diagonal":
            diag = jnp.ones_like(x) if diag is None else diag
            return self._empty(x, diag, diag)
        return self._empty(x, diag)

    def _empty(self, x, diag, diag0=None) -> LBFGSState:
        m, n, dtype = self.memory_size, x.size, x.dtype
        return LBFGSState(
            s=jnp.zeros((m, n), dtype),
            y=jnp.zeros((m, n), dtype),
            rho=jnp.zeros((m,), dtype),
            head=jnp.zeros((), jnp.int32),
            count=jnp.zeros((), jnp.int32),
            gamma=self._gamma0(dtype),
            num_skipped=jnp.zeros((), jnp.int32),
            diag=diag,
            diag0=diag0,
        )

    def update(self, state: LBFGSState, step, old: Evaluation, new: Evaluation):
        s = step
        y = new.grad - old.grad
        # B₀ = H₀⁻¹ for Powell's damping.
        h0 = state.gamma if state.diag is None else state.gamma * state.diag
        y, keep = _curvature_pair(s, y, 1.0 / h0, self.safeguard)
        sy = jnp.dot(s, y)
        if self.init == "diagonal":
            gamma, diag = (
                jnp.ones_like(state.gamma),
                _diagonal_update(state.diag, s, y, sy),
            )
        elif self.init == "scaled":
            gamma, diag = sy / _dot_scaled(y, state.diag), state.diag
        else:
            gamma, diag = state.gamma, state.diag
        m = self.memory_size
        stored = LBFGSState(
            s=state.s.at[state.head].set(s),
            y=state.y.at[state.head].set(y),
            rho=state.rho.at[state.head].set(1.0 / jnp.where(keep, sy, 1.0)),
            head=(state.head + 1) % m,
            count=jnp.minimum(state.count + 1, m),
            gamma=gamma,
            num_skipped=jnp.zeros((), jnp.int32),
            diag=diag,
            diag0=state.diag0,
        )
        skipped = eqx.tree_at(lambda st: st.num_skipped, state, state.num_skipped + 1)
        # Resetting is cheap (zeros), so a select costs less than a conditional.
        too_many = skipped.num_skipped > self.max_skipped
        fresh = self.reset(state)
        return jax.tree.map(
            lambda a, b, c: jnp.where(keep, a, jnp.where(too_many, c, b)),
            stored,
            skipped,
            fresh,
        )

    def reset(self, state: LBFGSState):
        # A fixed shape D is kept: it describes the unknowns, not the curvature
        # learnt. A learnt diagonal goes back to the shape it started from.
        if self.init == "diagonal":
            return self._empty(state.s[0], state.diag0, state.diag0)
        return self._empty(state.s[0], state.diag)

    def is_reset(self, state: LBFGSState):
        return state.count == 0

    def solve(self, state: LBFGSState, evaluation, linearisation, damping, context):
        # `damping` is always None: Solver rejects inverse models with trust regions.
        return two_loop(state, -evaluation.grad), jnp.zeros((), jnp.int32)

    def initial_step(self, state: LBFGSState, direction):
        if self.init == "ase":
            return jnp.ones((), direction.dtype)
        return unit_length_first_step(state.count, direction)


# The spread of the unknowns' sizes at the start below which `scaling="start"`
# keeps D = I (see `start_scaling`).
_SPREAD = 1000.0


def start_scaling(x: Float[Array, " n"]) -> Float[Array, " n"]:
    """The shape D of H₀ for `scaling="start"`: D = diag(σᵢ²)/maxⱼ σⱼ², σᵢ = |xᵢ|
    (maxⱼ |xⱼ| where |xᵢ| ≤ √eps·maxⱼ |xⱼ|, as good as zero), normalised so that
    D ≤ 1 and the first step, −D∇f, is no longer than −∇f. When the sizes lie within a factor 1000 of each other
    (maxσ/minσ < 1000, e.g. Rosenbrock's (−1.2, 1)) D = I: the unknowns are then
    taken to be of one size, as a shape read from a start point would only perturb
    a well-scaled model (the threshold is chosen by the
    [measurements](../benchmarks/defaults.md) on CUTEst and random starts)."""
    a = jnp.abs(x)
    big = jnp.max(a)
    # A start within rounding of zero (5.6e-17 in the middle of linspace(-1, 1, 7))
    # says as little about the unknown's size as an exact zero.
    zero = a <= jnp.sqrt(jnp.finfo(x.dtype).eps) * big
    sigma = jnp.where(zero, jnp.where(big > 0, big, 1.0), a)
    spread = jnp.max(sigma) / jnp.min(sigma)
    d = sigma * sigma
    return jnp.where(spread >= _SPREAD, d / jnp.max(d), 1.0)


def _diagonal_update(d, s, y, sy) -> Float[Array, " n"]:
    """The next diagonal H₀ of `init="diagonal"` (see `LBFGS`) after the pair
    (s, y), given the current one `d` and sᵀy: the diagonal of the BFGS update of
    the Hessian D⁻¹ after the Oren–Luenberger scaling D⁻¹ ← (yᵀDy/sᵀy)·D⁻¹
    (Gilbert & Lemaréchal, 1989). That scaling makes the result independent of
    D's overall size, so the first pair after a start or reset sets the scale, as
    `init="scaled"` does. The new diagonal is positive whenever sᵀy > 0 (it is the
    diagonal of a positive definite matrix); if rounding makes any entry
    non-positive or not finite, D is kept.

    Reference: J. C. Gilbert and C. Lemaréchal, "Some numerical experiments with
    variable-storage quasi-Newton algorithms", Mathematical Programming 45
    (1989), 407–435."""
    ydy = jnp.dot(y, d * y)
    sds = jnp.dot(s, s / d)
    hess = ydy / (sy * d) + y * y / sy - ydy * (s / d) ** 2 / (sy * sds)
    new = 1.0 / hess
    ok = jnp.all((hess > 0) & jnp.isfinite(new))
    return jnp.where(ok, new, d)


def _dot_scaled(y: Float[Array, " n"], diag: Float[Array, " n"] | None) -> Scalar:
    """yᵀDy (yᵀy for D = I)."""
    return jnp.dot(y, y) if diag is None else jnp.dot(y, diag * y)


def two_loop(state: LBFGSState, v: Float[Array, " n"]) -> Float[Array, " n"]:
    """H·v by the two-loop recursion (Nocedal & Wright, 2006, Algorithm 7.4)."""
    m = state.rho.shape[0]
    # Row indices from newest to oldest; empty rows have rho = 0 and drop out.
    order = (state.head - 1 - jnp.arange(m, dtype=state.head.dtype)) % m

    def backward(q, i):
        a = state.rho[i] * jnp.dot(state.s[i], q)
        return q - a * state.y[i], a

    q, alphas = jax.lax.scan(backward, v, order)

    def forward(r, inputs):
        i, a = inputs
        b = state.rho[i] * jnp.dot(state.y[i], r)
        return r + (a - b) * state.s[i], None

    h0q = state.gamma * q if state.diag is None else state.gamma * (state.diag * q)
    r, _ = jax.lax.scan(forward, h0q, (order[::-1], alphas[::-1]))
    return r
