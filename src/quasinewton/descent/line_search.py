"""Line searches along a quasi-Newton direction: Armijo backtracking and strong Wolfe."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Int, Scalar

from .._misc import as_float, as_index, check_int, check_real
from ._base import AbstractDescent


class LineSearchState(eqx.Module):
    """One line search φ(α) = f(x + αp) in progress.

    **Attributes:**

    - `alpha`: the step of the trial being evaluated.
    - `alpha0`: the first step tried in this search.
    - `count`: trials made in this search.
    - `zooming`: whether a bracket [lo, hi] containing acceptable steps is known.
    - `force`: the trial is a fallback to the best known step and is accepted as is.
    - `memoryless`: the direction is the model's memoryless step (an empty
      quasi-Newton memory, a Newton or Gauss–Newton model) or steepest descent.
    - `noise_before`: the previous search started from the same point (this one is
      the restart after its failure) and predicted a decrease below the rounding
      of f.
    - `phi0`, `dphi0`: φ(0) and φ′(0) = ∇f(x)ᵀp.
    - `prev_*`: the previous trial while bracketing (α, φ, φ′).
    - `lo_*`, `hi_*`: the bracket while zooming; `lo` satisfies sufficient decrease
      and has the lowest φ seen.
    """

    alpha: Scalar
    alpha0: Scalar
    count: Int[Array, ""]
    zooming: Bool[Array, ""]
    force: Bool[Array, ""]
    memoryless: Bool[Array, ""]
    noise_before: Bool[Array, ""]
    phi0: Scalar
    dphi0: Scalar
    prev_alpha: Scalar
    prev_phi: Scalar
    prev_dphi: Scalar
    lo_alpha: Scalar
    lo_phi: Scalar
    lo_dphi: Scalar
    hi_alpha: Scalar
    hi_phi: Scalar
    hi_dphi: Scalar


def _fresh_state(
    alpha, phi0, dphi0, memoryless=True, noise_before=False
) -> LineSearchState:
    zero = jnp.zeros_like(phi0)
    return LineSearchState(
        alpha=jnp.asarray(alpha, phi0.dtype),
        alpha0=jnp.asarray(alpha, phi0.dtype),
        count=jnp.zeros((), jnp.int32),
        zooming=jnp.array(False),
        force=jnp.array(False),
        memoryless=jnp.asarray(memoryless),
        noise_before=jnp.asarray(noise_before),
        phi0=phi0,
        dphi0=dphi0,
        prev_alpha=zero,
        prev_phi=phi0,
        prev_dphi=dphi0,
        lo_alpha=zero,
        lo_phi=phi0,
        lo_dphi=dphi0,
        hi_alpha=zero,
        hi_phi=phi0,
        hi_dphi=dphi0,
    )


def cubic_minimiser(a, fa, dfa, b, fb, dfb):
    """Minimiser of the cubic matching φ and φ′ at a and b (Nocedal & Wright, 2006,
    eq. 3.59); `nan` where the cubic has no minimiser."""
    d1 = dfa + dfb - 3 * (fa - fb) / (a - b)
    disc = d1 * d1 - dfa * dfb
    d2 = jnp.sign(b - a) * jnp.sqrt(jnp.where(disc >= 0, disc, jnp.nan))
    return b - (b - a) * (dfb + d2 - d1) / (dfb - dfa + 2 * d2)


def quadratic_minimiser(a, fa, dfa, b, fb):
    """Minimiser of the quadratic matching φ(a), φ′(a), φ(b); `nan` if it is concave."""
    h = b - a
    curv = fb - fa - dfa * h
    return jnp.where(
        curv > 0, a - dfa * h * h / (2 * jnp.where(curv > 0, curv, 1)), jnp.nan
    )


# Trials after which a memoryless search whose predicted decrease is below the
# rounding of f gives up (see `_LineSearch._exhausted`).
_NOISE_TRIALS = 3


def _below_noise(state) -> Bool[Array, ""]:
    """Whether the decrease the first trial predicts, α₀|φ′(0)|/2, is below √eps·|f|."""
    eps = jnp.finfo(state.phi0.dtype).eps
    predicted = 0.5 * state.alpha0 * jnp.abs(state.dphi0)
    return predicted <= jnp.sqrt(eps) * jnp.abs(state.phi0)


def _clamp(candidate, fallback, low, high):
    """`candidate` moved into [low, high] if it is finite, else `fallback`.

    Moved, not replaced by the fallback: an interpolant whose minimiser lies below
    the safeguard interval says the step must shrink a lot, and the interval's end
    is the nearest step that obeys both (Dennis & Schnabel, 1996, A6.3.1; Moré &
    Thuente, 1994). Falling back to halving instead needs 30 trials to shrink a step
    by 1e-9 (on VESUVIALS the search gave up after 20, far from a minimum)."""
    return jnp.where(jnp.isfinite(candidate), jnp.clip(candidate, low, high), fallback)


class _LineSearch(AbstractDescent):
    solves_every_iteration: ClassVar[bool] = False
    needs_hessian: ClassVar[bool] = False

    def init_state(self, x, evaluation):
        return _fresh_state(1.0, evaluation.f, jnp.zeros_like(evaluation.f))

    def propose(self, state, x, evaluation, model, new_search, direction):
        def start(state):
            g = evaluation.grad
            p, num_linear = model.step()
            dphi0 = jnp.dot(g, p)
            # A model that fails to give a descent direction is replaced by -g.
            bad = ~(dphi0 < 0) | ~jnp.all(jnp.isfinite(p))
            gnorm = jnp.linalg.norm(g)
            p = jnp.where(bad, -g, p)
            alpha0 = jnp.where(
                bad,
                jnp.minimum(1.0, 1.0 / jnp.where(gnorm > 0, gnorm, 1.0)),
                model.initial_step(p),
            )
            memoryless = bad | model.is_reset()
            # A search from the point the last one started from is the restart
            # after its failure.
            same_point = (state.count > 0) & (state.phi0 == evaluation.f)
            noise_before = same_point & _below_noise(state)
            fresh = _fresh_state(
                alpha0, evaluation.f, jnp.dot(g, p), memoryless, noise_before
            )
            return p, fresh, num_linear

        def carry_on(state):
            return direction, state, jnp.zeros((), jnp.int32)

        direction, state, num_linear = jax.lax.cond(new_search, start, carry_on, state)
        return x + state.alpha * direction, direction, state, num_linear

    def full_step(self, state):
        return state.count == 0

    def at_precision_floor(self, state):
        # The full first step predicts a decrease of about α₀|φ′(0)|/2. If a search
        # along a descent direction found no decrease at all, f's rounding error is
        # at least that large; when it is below √eps·|f| — rounding in a sum of
        # small squared residuals is easily 10³·eps·|f| — the iterate is at the
        # floor of what f can resolve. Only a memoryless direction is judged so: a
        # quasi-Newton memory fitted to the stiff unknowns of a badly scaled
        # problem (e.g. H₀ = γI with γ from the stiffest pair) also predicts a
        # tiny decrease, far from the floor; its failure restarts the model instead,
        # and the floor is declared if the memoryless search from the same point
        # fails too (its own prediction, or the one before it, below √eps·|f|).
        return state.memoryless & (_below_noise(state) | state.noise_before)

    def _exhausted(self, state, next_alpha, direction, x):
        """Out of trials, or the step no longer moves x, or a memoryless search is
        below the rounding of f: `_NOISE_TRIALS` trials found no acceptable step
        although the decrease predicted was below √eps·|f| (more trials only sample
        rounding noise; the loop then stops at the precision floor). A quasi-Newton
        direction gets all its trials: on ill-conditioned problems (PALMER1C,
        HAHN1LS) its predicted decrease is tiny long before the floor, and its
        longer searches still find decreases."""
        below = _below_noise(state)
        noise = below & state.memoryless & (state.count >= _NOISE_TRIALS)
        return self._out_of_room(state, next_alpha, direction, x) | noise

    def _out_of_room(self, state, next_alpha, direction, x):
        """Out of trials, or the step no longer moves any coordinate of x in
        floating point. The test is per coordinate: on a badly scaled problem
        (unknowns of 500 and 1e-4, say) a step can still move the small unknowns
        when it is far below eps·maxᵢ|xᵢ|."""
        eps = jnp.finfo(state.phi0.dtype).eps
        too_small = jnp.all(jnp.abs(next_alpha * direction) <= eps * jnp.abs(x))
        return (state.count >= self.max_trials) | too_small


class Backtracking(_LineSearch):
    """Armijo backtracking with quadratic/cubic interpolation (Nocedal & Wright, 2006,
    §3.5; Dennis & Schnabel, 1996, Algorithm A6.3.1).

    A step α is accepted when φ(α) ≤ φ(0) + c₁αφ′(0). A rejected step is replaced by
    the minimiser of the quadratic (first) or cubic (later) interpolant, kept within
    [0.1α, 0.5α]; a non-finite φ(α) halves α. Cheaper per trial than
    [`quasinewton.descent.Zoom`][] but gives no curvature guarantee, so quasi-Newton
    pairs may be skipped. A memoryless search whose first step predicts a decrease
    below √eps·|f| gives up after 3 trials: more would only sample the rounding of f.

    **Arguments:**

    - `c1`: the sufficient-decrease constant, 0 < c₁ < 1.
    - `max_trials`: trials before the search is declared failed.
    """

    c1: float = eqx.field(default=1e-4, converter=as_float)
    max_trials: int = eqx.field(default=30, static=True, converter=as_index)

    def __check_init__(self):
        check_real("c1", self.c1, low=0.0, high=1.0, open_low=True, open_high=True)
        check_int("max_trials", self.max_trials, 1)

    def judge(self, state, x, current, trial, trial_finite, direction):
        alpha, phi = state.alpha, trial.f
        armijo = trial_finite & (phi <= state.phi0 + self.c1 * alpha * state.dphi0)
        accept = armijo | (state.force & trial_finite)
        # Quadratic on the first backtrack, cubic through the last two trials after.
        quad = quadratic_minimiser(0.0, state.phi0, state.dphi0, alpha, phi)
        cubic = _backtrack_cubic(state, alpha, phi)
        candidate = jnp.where(state.count == 0, quad, cubic)
        candidate = jnp.where(jnp.isfinite(candidate), candidate, quad)
        new_alpha = _clamp(candidate, 0.5 * alpha, 0.1 * alpha, 0.5 * alpha)
        new_alpha = jnp.where(trial_finite, new_alpha, 0.5 * alpha)
        new_state = eqx.tree_at(
            lambda s: (s.alpha, s.count, s.prev_alpha, s.prev_phi),
            state,
            (new_alpha, state.count + 1, alpha, jnp.where(trial_finite, phi, jnp.inf)),
        )
        failed = ~accept & self._exhausted(new_state, new_alpha, direction, x)
        return accept, failed, new_state


def _backtrack_cubic(state, alpha, phi):
    """The cubic through φ(0), φ′(0), φ(α) and the previous trial (N&W, 2006, §3.5)."""
    a0, a1 = state.prev_alpha, alpha
    r1 = phi - state.phi0 - state.dphi0 * a1
    r0 = state.prev_phi - state.phi0 - state.dphi0 * a0
    denom = a0 * a0 * a1 * a1 * (a1 - a0)
    a = (a0 * a0 * r1 - a1 * a1 * r0) / denom
    b = (-a0 * a0 * a0 * r1 + a1 * a1 * a1 * r0) / denom
    disc = b * b - 3 * a * state.dphi0
    root = (-b + jnp.sqrt(jnp.where(disc >= 0, disc, jnp.nan))) / (3 * a)
    return jnp.where(jnp.abs(a) > 0, root, -state.dphi0 / (2 * b))


class Zoom(_LineSearch):
    """Strong-Wolfe line search by bracketing and zoom (Nocedal & Wright, 2006,
    Algorithms 3.5 and 3.6, with the cubic interpolation of eq. 3.59).

    Accepts α when φ(α) ≤ φ(0) + c₁αφ′(0) and |φ′(α)| ≤ c₂|φ′(0)|. While no bracket
    is known the step grows by cubic extrapolation (so steps longer than 1 are
    found), the growth kept within [1.1, `max_growth`] times the last increase;
    once one is known it shrinks by cubic interpolation kept within the middle 80%
    of the bracket (safeguards as in Moré & Thuente, 1994, ACM TOMS 20, 286–307). A
    non-finite φ(α) is treated as a step that is too long. If the search runs out
    of trials it falls back to the best step with sufficient decrease, if any. A
    memoryless search (steepest descent, an empty quasi-Newton memory) whose first
    step predicts a decrease below √eps·|f| stops after 3 trials, at the precision
    floor: more would only sample the rounding of f.
    The curvature condition keeps sᵀy > 0, so quasi-Newton memories never stall.

    **Arguments:**

    - `c1`: sufficient-decrease constant.
    - `c2`: curvature constant, c₁ < c₂ < 1 (0.9 for quasi-Newton directions).
    - `max_trials`: trials before falling back or failing.
    - `max_growth`: the largest factor one extrapolation may grow the step by.
    """

    c1: float = eqx.field(default=1e-4, converter=as_float)
    c2: float = eqx.field(default=0.9, converter=as_float)
    max_trials: int = eqx.field(default=20, static=True, converter=as_index)
    max_growth: float = eqx.field(default=4.0, converter=as_float)

    def __check_init__(self):
        check_real("c1", self.c1, low=0.0, high=1.0, open_low=True, open_high=True)
        check_real("c2", self.c2, low=0.0, high=1.0, open_low=True, open_high=True)
        traced = any(isinstance(c, jax.core.Tracer) for c in (self.c1, self.c2))
        if not traced and not self.c1 < self.c2:
            raise ValueError(f"Need 0 < c1 < c2 < 1, got c1={self.c1}, c2={self.c2}.")
        check_int("max_trials", self.max_trials, 1)
        check_real("max_growth", self.max_growth, low=1.0, open_low=True)

    def judge(self, state, x, current, trial, trial_finite, direction):
        alpha = state.alpha
        phi = jnp.where(trial_finite, trial.f, jnp.inf)
        dphi = jnp.where(trial_finite, jnp.dot(trial.grad, direction), jnp.nan)
        armijo = trial_finite & (phi <= state.phi0 + self.c1 * alpha * state.dphi0)
        curvature = jnp.abs(dphi) <= -self.c2 * state.dphi0

        # Bracketing phase (Algorithm 3.5).
        too_long = ~armijo | ((state.count > 0) & (phi >= state.prev_phi))
        b_accept = ~too_long & curvature
        b_turned = ~too_long & ~curvature & (dphi >= 0)
        b_zoom = too_long | b_turned
        # Bracket ends: too long → [prev, α]; turned → [α, prev].
        b_lo = jax.tree.map(
            lambda p, c: jnp.where(too_long, p, c),
            (state.prev_alpha, state.prev_phi, state.prev_dphi),
            (alpha, phi, dphi),
        )
        b_hi = jax.tree.map(
            lambda p, c: jnp.where(too_long, c, p),
            (state.prev_alpha, state.prev_phi, state.prev_dphi),
            (alpha, phi, dphi),
        )

        # Zoom phase (Algorithm 3.6).
        z_high = ~armijo | (phi >= state.lo_phi)
        z_accept = ~z_high & curvature
        z_flip = ~z_high & (dphi * (state.hi_alpha - state.lo_alpha) >= 0)
        lo_old = (state.lo_alpha, state.lo_phi, state.lo_dphi)
        hi_old = (state.hi_alpha, state.hi_phi, state.hi_dphi)
        cur = (alpha, phi, dphi)
        z_lo = jax.tree.map(lambda o, c: jnp.where(z_high, o, c), lo_old, cur)
        z_hi = jax.tree.map(
            lambda h, lo, c: jnp.where(z_high, c, jnp.where(z_flip, lo, h)),
            hi_old,
            lo_old,
            cur,
        )

        zooming = state.zooming | b_zoom
        lo = jax.tree.map(lambda z, b: jnp.where(state.zooming, z, b), z_lo, b_lo)
        hi = jax.tree.map(lambda z, b: jnp.where(state.zooming, z, b), z_hi, b_hi)
        accept = jnp.where(state.zooming, z_accept, b_accept)
        accept = accept | (state.force & trial_finite)

        # Next trial: interpolate inside the bracket, or extrapolate beyond α.
        width = hi[0] - lo[0]
        inside = cubic_minimiser(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
        inside = jnp.where(
            jnp.isfinite(inside),
            inside,
            quadratic_minimiser(lo[0], lo[1], lo[2], hi[0], hi[1]),
        )
        low_end = jnp.minimum(lo[0] + 0.1 * width, hi[0] - 0.1 * width)
        high_end = jnp.maximum(lo[0] + 0.1 * width, hi[0] - 0.1 * width)
        bisect = lo[0] + 0.5 * width
        zoom_alpha = _clamp(inside, bisect, low_end, high_end)
        zoom_alpha = jnp.where(jnp.isfinite(hi[1]), zoom_alpha, bisect)
        step = alpha - state.prev_alpha
        outside = cubic_minimiser(
            state.prev_alpha, state.prev_phi, state.prev_dphi, alpha, phi, dphi
        )
        grow_alpha = _clamp(
            outside,
            alpha + self.max_growth * step,
            alpha + 1.1 * step,
            alpha + self.max_growth * step,
        )
        next_alpha = jnp.where(zooming, zoom_alpha, grow_alpha)

        new_state = LineSearchState(
            alpha=next_alpha,
            alpha0=state.alpha0,
            count=state.count + 1,
            zooming=zooming,
            force=state.force,
            memoryless=state.memoryless,
            noise_before=state.noise_before,
            phi0=state.phi0,
            dphi0=state.dphi0,
            prev_alpha=alpha,
            prev_phi=phi,
            prev_dphi=dphi,
            lo_alpha=lo[0],
            lo_phi=lo[1],
            lo_dphi=lo[2],
            hi_alpha=hi[0],
            hi_phi=hi[1],
            hi_dphi=hi[2],
        )
        exhausted = ~accept & self._exhausted(
            new_state, jnp.where(zooming, width, next_alpha), direction, x
        )
        # Fall back to the best step with sufficient decrease, if one was seen.
        fallback = exhausted & (lo[0] > 0) & ~state.force
        new_state = eqx.tree_at(
            lambda s: (s.alpha, s.force),
            new_state,
            (jnp.where(fallback, lo[0], next_alpha), fallback),
        )
        failed = exhausted & ~fallback
        return accept, failed, new_state
