"""Powell's dogleg: a step along the path from the Cauchy point to the model's step,
cut at a trust radius."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Scalar

from .._misc import as_float, check_real
from ._base import AbstractDescent
from .ratio import radius_update, ratio_test


class DoglegState(eqx.Module):
    """**Attributes:**

    - `radius`: Δ, the trust radius (negative before the first proposal, when Δ₀
      is still to be scaled to the problem).
    - `newton`: p_N, the model's step B p_N = −∇f at the iterate (zero when it is
      unusable).
    - `newton_norm`: ‖p_N‖ (+inf when p_N is unusable: not finite, not a descent
      direction, or not predicting a decrease).
    - `cauchy_length`: ‖p_C‖, the distance from the iterate to the model's
      minimiser along −∇f (+inf when the curvature along ∇f is not positive).
    - `slope`: ∇fᵀp_N.
    - `steepest_curvature`, `cross_curvature`, `newton_curvature`: uᵀBu, uᵀBp_N
      and p_NᵀBp_N with u = −∇f/‖∇f‖: the model on the plane of the dogleg path,
      so that a step on that path is predicted without a product with B.
    - `predicted`: the reduction the model predicted for the pending trial.
    - `step_norm`: ‖p‖ of the pending trial.
    - `newton_step`: whether the pending trial is p_N itself.
    - `floor`: the last rejection was at the floating-point floor.
    """

    radius: Scalar
    newton: Float[Array, " n"]
    newton_norm: Scalar
    cauchy_length: Scalar
    slope: Scalar
    steepest_curvature: Scalar
    cross_curvature: Scalar
    newton_curvature: Scalar
    predicted: Scalar
    step_norm: Scalar
    newton_step: Bool[Array, ""]
    floor: Bool[Array, ""]


#: The fields of `DoglegState` that hold the model at the iterate, computed once
#: per search.
_CACHE = (
    "newton",
    "newton_norm",
    "cauchy_length",
    "slope",
    "steepest_curvature",
    "cross_curvature",
    "newton_curvature",
)


def _unit(v: Float[Array, " n"], norm: Scalar) -> Float[Array, " n"]:
    """v/‖v‖, or 0 where ‖v‖ is zero or not finite."""
    ok = (norm > 0) & jnp.isfinite(norm)
    return jnp.where(ok, v / jnp.where(ok, norm, 1.0), 0.0)


class Dogleg(AbstractDescent):
    """Powell's dogleg: the step within a trust radius Δ along the path from the
    Cauchy point to the model's step (Powell, 1970; Nocedal & Wright, 2006, §4.1).

    At each new iterate the rule computes, for the model m(p) = ∇fᵀp + ½pᵀBp,
    the step p_N solving B p_N = −∇f and the Cauchy point
    p_C = −(∇fᵀ∇f / ∇fᵀB∇f)·∇f, the minimiser of m along −∇f. The trial step is

    - p_N if ‖p_N‖ ≤ Δ;
    - Δ·p_C/‖p_C‖ if ‖p_C‖ ≥ Δ (or, when ∇fᵀB∇f ≤ 0, the steepest-descent step
      to the boundary);
    - else p_C + τ(p_N − p_C), with τ ∈ [0, 1] such that the step has length Δ.

    When p_N is unusable (not finite, as from a failed factorisation of an
    indefinite B, not a descent direction, or not predicting a decrease) the
    step is the Cauchy point within the region. Both steps are computed once per
    iterate: a rejected trial only shrinks Δ and re-forms the step, without a new
    solve or any product with B (the model on the plane of the path is kept).

    Trials are judged by [`quasinewton.descent.ratio_test`][] on the predicted
    reduction −m(p), computed from B itself (so that inexact iterative solves are
    judged correctly), and a non-finite trial is rejected like a poor one; Δ then
    follows [`quasinewton.descent.radius_update`][]. The rule stops at the floor
    of floating point when both the predicted and the actual change of a rejected
    trial are within rounding of f, or when Δ is below the rounding of every
    coordinate of x (Δ ≤ eps·minᵢ|xᵢ|), where no step can move x (a success only
    where x is stationary, see [`quasinewton.Solver`][]); it fails when trials are
    still not finite at Δ ≤ eps·‖x‖. Only p_N itself counts as a full step for
    the step test: a step cut by the radius says the model was poor.

    The radius starts as `initial_radius` times ‖p_N‖ at the start point (‖p_C‖
    when p_N is unusable), so that it carries the units of x and the rule does not
    depend on the units of f. Needs a Hessian model B
    ([`quasinewton.curvature.GaussNewton`][],
    [`quasinewton.curvature.Newton`][]); a dense Newton model with no linear
    solver given steps with |∇²f|, its eigenvalues replaced by their absolute
    values, while the predicted reduction uses ∇²f.

    **Arguments:**

    - `initial_radius`: Δ₀ relative to the length of the first step: with 1, the
      first trial is p_N.
    - `accept`: the least ratio ρ of actual to predicted reduction for which a
      trial is accepted.
    """

    initial_radius: float = eqx.field(default=1.0, converter=as_float)
    accept: float = eqx.field(default=1e-4, converter=as_float)

    solves_every_iteration: ClassVar[bool] = False
    needs_hessian: ClassVar[bool] = True

    def __check_init__(self):
        check_real("initial_radius", self.initial_radius, low=0.0, open_low=True)
        check_real("accept", self.accept, low=0.0, high=1.0, open_high=True)

    def init_state(self, x, evaluation):
        zero = jnp.zeros((), x.dtype)
        return DoglegState(
            radius=-jnp.ones((), x.dtype),
            newton=jnp.zeros_like(x),
            newton_norm=zero,
            cauchy_length=zero,
            slope=zero,
            steepest_curvature=zero,
            cross_curvature=zero,
            newton_curvature=zero,
            predicted=zero,
            step_norm=zero,
            newton_step=jnp.array(False),
            floor=jnp.array(False),
        )

    def judge(self, state: DoglegState, x, current, trial, trial_finite, direction):
        verdict = ratio_test(
            current.f, trial.f, state.predicted, trial_finite, self.accept
        )
        radius = radius_update(state.radius, state.step_norm, verdict).astype(x.dtype)
        eps, tiny = jnp.finfo(x.dtype).eps, jnp.finfo(x.dtype).tiny
        # No step of length Δ moves any coordinate of x (Δ ≤ eps·minᵢ|xᵢ|): the
        # failure is one of floating point, like the floor. The test is per
        # coordinate, not Δ ≤ eps·‖x‖: on a badly scaled problem (unknowns of 10
        # and 1e-5, say) steps far below eps·‖x‖ still move the small unknowns.
        stuck = radius <= eps * jnp.min(jnp.abs(x))
        # Trials still not finite at a radius below the rounding of ‖x‖: f is not
        # finite next to x. (A coordinate at 0, which any step moves, would keep
        # `stuck` false until Δ underflows.)
        lost = ~trial_finite & (radius <= eps * jnp.linalg.norm(x))
        floor = ~verdict.accept & (verdict.floor | stuck)
        failed = floor | (~verdict.accept & (lost | (radius <= tiny)))
        new_state = eqx.tree_at(
            lambda st: (st.radius, st.floor), state, (radius, floor)
        )
        return verdict.accept, failed, new_state

    def full_step(self, state: DoglegState):
        return state.newton_step

    def at_precision_floor(self, state: DoglegState):
        return state.floor

    def propose(self, state: DoglegState, x, evaluation, model, new_search, direction):
        g = evaluation.grad
        g_norm = jnp.linalg.norm(g)
        u = _unit(-g, g_norm)

        def search(state):
            p, num_linear = model.step()
            p_norm = jnp.linalg.norm(p)
            v = _unit(p, p_norm)
            # The model on the plane of u and p_N, from products with B (unit
            # vectors, so that nothing overflows whatever the units); the cross term
            # by polarisation.
            uu = model.quadratic(u)
            vv = model.quadratic(v)
            uv = 0.5 * (model.quadratic(u + v) - uu - vv)
            slope = jnp.dot(g, p)
            newton_curvature = p_norm * p_norm * vv
            cross = p_norm * uv
            predicted = -(slope + 0.5 * newton_curvature)
            usable = (
                jnp.isfinite(p_norm)
                & (p_norm > 0)
                & (slope < 0)
                & (predicted > 0)
                & jnp.isfinite(predicted)
                & jnp.isfinite(cross)
            )
            positive = uu > 0
            cache = (
                jnp.where(usable, p, 0.0),
                jnp.where(usable, p_norm, jnp.inf),
                jnp.where(positive, g_norm / jnp.where(positive, uu, 1.0), jnp.inf),
                jnp.where(usable, slope, 0.0),
                uu,
                jnp.where(usable, cross, 0.0),
                jnp.where(usable, newton_curvature, 0.0),
            )
            cache = tuple(c.astype(x.dtype) for c in cache)
            return eqx.tree_at(_fields, state, cache), num_linear

        def reuse(state):
            return state, jnp.zeros((), jnp.int32)

        state, num_linear = jax.lax.cond(new_search, search, reuse, state)

        newton, newton_norm = state.newton, state.newton_norm
        cauchy = state.cauchy_length
        uu = state.steepest_curvature
        radius = jnp.where(
            state.radius < 0,
            self.initial_radius * _length_scale(newton_norm, cauchy, uu, g_norm, x),
            state.radius,
        ).astype(x.dtype)

        # Which part of the path Δ cuts: p = s·u + β·p_N.
        takes_newton = newton_norm <= radius  # never for an unusable p_N
        on_cauchy_leg = ~takes_newton & (
            ~jnp.isfinite(newton_norm) | (cauchy >= radius)
        )
        # The second leg p_C + τ(p_N − p_C), ‖p_C‖ < Δ < ‖p_N‖: τ is the positive
        # root of aτ² + bτ + c = 0 (c < 0), by the formula that avoids cancellation.
        safe_cauchy = jnp.where(jnp.isfinite(cauchy), cauchy, 0.0)
        p_c = safe_cauchy * u
        d = newton - p_c
        a = jnp.dot(d, d)
        b = 2.0 * jnp.dot(p_c, d)
        c = safe_cauchy * safe_cauchy - radius * radius
        root = jnp.sqrt(jnp.maximum(b * b - 4.0 * a * c, 0.0))
        tau = jnp.where(
            b >= 0,
            -2.0 * c / jnp.where(b + root > 0, b + root, 1.0),
            (root - b) / (2.0 * jnp.where(a > 0, a, 1.0)),
        )
        tau = jnp.clip(tau, 0.0, 1.0)
        s = jnp.where(
            takes_newton,
            0.0,
            jnp.where(
                on_cauchy_leg, jnp.minimum(radius, cauchy), (1.0 - tau) * safe_cauchy
            ),
        )
        beta = jnp.where(takes_newton, 1.0, jnp.where(on_cauchy_leg, 0.0, tau))
        p = s * u + beta * newton

        # −m(p) from the model on the plane of the path: ∇fᵀu = −‖∇f‖.
        slope = -s * g_norm + beta * state.slope
        curvature = (
            s * s * uu
            + 2.0 * s * beta * state.cross_curvature
            + beta * beta * state.newton_curvature
        )
        predicted = -(slope + 0.5 * curvature)
        # No step (a zero gradient, a model that is not finite): the trial stays at
        # x with a nan prediction, so it is rejected and can never pass for
        # convergence at the precision floor, and the radius shrinks.
        solved = jnp.isfinite(predicted) & (predicted != 0)
        step_norm = jnp.where(solved, jnp.linalg.norm(p), radius)
        predicted = jnp.where(solved, predicted, jnp.nan)
        p = jnp.where(solved, p, 0.0)
        new_state = eqx.tree_at(
            lambda st: (st.radius, st.predicted, st.step_norm, st.newton_step),
            state,
            (radius, predicted, step_norm, solved & takes_newton),
        )
        return x + p, p, new_state, num_linear


def _fields(state: DoglegState):
    return tuple(getattr(state, name) for name in _CACHE)


def _length_scale(newton_norm, cauchy, uu, g_norm, x) -> Scalar:
    """The length Δ₀ is relative to: ‖p_N‖; ‖p_C‖ when p_N is unusable; ‖∇f‖/|uᵀBu|
    (where the model's curvature along −∇f matches its slope) when the curvature is
    negative too; ‖x‖ (or 1 at x = 0) when the model gives no length."""
    fallback = jnp.where(
        jnp.isfinite(uu) & (uu != 0), g_norm / jnp.abs(jnp.where(uu != 0, uu, 1.0)), 0.0
    )
    x_norm = jnp.linalg.norm(x)
    fallback = jnp.where(
        jnp.isfinite(fallback) & (fallback > 0),
        fallback,
        jnp.where(x_norm > 0, x_norm, 1.0),
    )
    return jnp.where(
        jnp.isfinite(newton_norm),
        newton_norm,
        jnp.where(jnp.isfinite(cauchy), cauchy, fallback),
    )
