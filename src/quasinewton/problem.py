"""The problem as the parts see it: the objective as a function of one flat vector.

`minimise` and `least_squares` accept any pytree `y0`; the loop works on the flat
vector `x = ravel(y0)`, so that curvature memories, dense matrices and every
termination test are single arrays whatever the user's pytree looks like. Flattening
happens once at the boundary; `fn` always receives the user's structure.

A curvature model receives a [`Problem`][quasinewton.problem.Problem] in its
`evaluate` and `specialise` and evaluates the objective only through it. For least
squares the objective f = ½‖r‖² is defined once, by
[`SumOfSquares`][quasinewton.problem.SumOfSquares]: the cost, the gradient and the
Gauss–Newton matrix of every path (dense QR, normal equations, matrix-free
products, the compiled and the host loop) come from its methods.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree, Scalar

from .evaluation import Evaluation, ResidualEvaluation
from .loss import AbstractLoss

__all__ = ["Problem", "SumOfSquares"]

Kind = Literal["scalar", "residual"]


def _describe(path) -> str:
    return "y0" + jtu.keystr(path) if path else "y0"


def check_y0(y0: PyTree) -> PyTree[Array]:
    """Validate `y0` and turn its leaves into arrays. Raises a clear error if not."""
    leaves_with_path = jtu.tree_leaves_with_path(y0)
    if not leaves_with_path:
        raise ValueError("`y0` has no array leaves: there is nothing to solve for.")
    out = []
    for path, leaf in leaves_with_path:
        if not eqx.is_array_like(leaf):
            raise TypeError(
                f"{_describe(path)} is a {type(leaf).__name__}; every leaf of `y0` must "
                "be a floating-point array or scalar."
            )
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            kind = "complex" if jnp.issubdtype(dtype, jnp.complexfloating) else dtype
            raise TypeError(
                f"{_describe(path)} has dtype {kind}; `y0` must hold real floating-point "
                "arrays (e.g. `jnp.asarray(y0, dtype=float)`), since the solution is "
                "continuous."
            )
        if jnp.finfo(dtype).bits < 32:
            # Half precision has 3 significant digits: too few for any termination
            # test, and the dense factorisations (LAPACK) have no such kernels.
            raise TypeError(
                f"{_describe(path)} has dtype {dtype}; qn works in float32 or float64. "
                "Cast y0 with `.astype(jnp.float32)` (and cast the solution back if "
                "need be)."
            )
        out.append(jnp.asarray(leaf))
    if sum(np.size(leaf) for leaf in out) == 0:
        raise ValueError(
            "`y0` has no elements (its arrays have total size 0): nothing to solve for."
        )
    return jtu.tree_unflatten(jtu.tree_structure(y0), out)


def concrete_nonfinite(y0: PyTree[Array]) -> bool:
    """True when `y0` is concrete (not traced) and holds a nan or inf."""
    for leaf in jtu.tree_leaves(y0):
        if isinstance(leaf, jax.core.Tracer):
            return False
    return any(
        not bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jtu.tree_leaves(y0)
    )


def _split_aux(out, has_aux: bool, name: str):
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(
                f"`{name}` was called with `has_aux=True`, so `fn` must return a pair "
                f"`(output, aux)`; it returned {jtu.tree_structure(out)}."
            )
        return out
    return out, None


def _struct(leaf) -> jax.ShapeDtypeStruct | None:
    """The shape and dtype of an array-like output leaf, else `None`."""
    if not eqx.is_array_like(leaf):
        return None
    return jax.ShapeDtypeStruct(jnp.shape(leaf), jnp.result_type(leaf))


def check_output(out, kind: Kind, has_aux: bool):
    """Check the shapes and dtypes of what `fn` returned (only those are read, so
    the check runs on traced values, at trace time); returns it as `(output, aux)`."""
    name = "minimise" if kind == "scalar" else "least_squares"
    out, aux = _split_aux(out, has_aux, name)
    if isinstance(out, tuple) and not has_aux and len(out) == 2:
        if kind == "scalar":
            raise ValueError(
                "`fn` returned a pair, but `minimise` needs a scalar. If the second "
                "element is auxiliary output, pass `has_aux=True`."
            )
        # A pair is what `fn` returns with aux: taken as two groups of residuals,
        # the aux would be fitted too, and the solve would report success.
        raise ValueError(
            "`fn` returned a tuple of two elements without `has_aux=True`. If the "
            "second element is auxiliary output, pass `has_aux=True`; to return groups "
            "of residuals use a list, dict or concatenated array."
        )
    if kind == "scalar":
        struct = _struct(out)
        if struct is None:
            raise ValueError(
                f"`minimise` needs `fn` to return a scalar; it returned the pytree "
                f"{jtu.tree_structure(out)}. For a vector of residuals use "
                "`least_squares`."
            )
        if struct.shape != ():
            raise ValueError(
                f"`minimise` needs `fn` to return a scalar; it returned shape "
                f"{struct.shape}. Reduce it (e.g. `jnp.sum`) or, for residuals, use "
                "`least_squares`."
            )
        if not jnp.issubdtype(struct.dtype, jnp.floating):
            raise TypeError(
                f"`fn` returned dtype {struct.dtype}; the objective must be a real "
                "floating-point scalar."
            )
    else:
        leaves = jtu.tree_leaves(out)
        if not leaves:
            raise ValueError(
                "`least_squares` needs `fn` to return at least one residual."
            )
        for leaf in leaves:
            struct = _struct(leaf)
            if struct is None or not jnp.issubdtype(struct.dtype, jnp.floating):
                raise TypeError(
                    "`least_squares` needs `fn` to return a pytree of real "
                    f"floating-point residual arrays; got {struct or type(leaf).__name__}."
                )
    return out, aux


AutodiffMode = Literal["auto", "forward", "reverse"]
_MODES = ("auto", "forward", "reverse")

#: Messages of JAX's errors for a derivative the function does not support, and
#: which `autodiff_mode` to suggest for each.
_UNSUPPORTED = (
    ("can't apply forward-mode autodiff (jvp) to a custom_vjp", "reverse"),
    ("Reverse-mode differentiation does not work for", "forward"),
    ("Transpose rule (for reverse-mode differentiation)", "forward"),
    ("Pure callbacks do not support transpose", "forward"),
)


def _explain(error: Exception, mode: str) -> None:
    """Add to `error` a note naming the `autodiff_mode` to try, if it is JAX's error
    for a derivative mode that `fn` does not support."""
    if any("autodiff_mode" in note for note in getattr(error, "__notes__", ())):
        return
    for text, suggestion in _UNSUPPORTED:
        if text in str(error) and suggestion != mode:
            error.add_note(
                f"quasinewton: with autodiff_mode={mode!r} this solve differentiates "
                f"`fn` in a mode it does not support; pass autodiff_mode="
                f"{suggestion!r} to `minimise` / `least_squares`."
            )
            break


def _transposed(linear, example, mode: str, product: str):
    """The transpose of the linear function `linear` (at inputs like `example`) as a
    function of one argument, raising a clear error where it cannot be formed."""
    try:
        transpose = jax.linear_transpose(linear, example)
    except Exception as error:
        raise _cannot_transpose(mode, product) from error

    def apply(u):
        try:
            return transpose(u)[0]
        except Exception as error:
            raise _cannot_transpose(mode, product) from error

    return apply


def _cannot_transpose(mode: str, product: str) -> TypeError:
    if mode == "reverse":
        how = "by transposing `jax.vjp` of the residuals"
        other = "autodiff_mode='forward' (or 'auto') if `fn` supports jvp, or "
    else:
        how = "by transposing the jvp of the residuals (`jax.linear_transpose`)"
        other = "autodiff_mode='reverse' if `fn` supports vjp, or "
    return TypeError(
        f"quasinewton: with autodiff_mode={mode!r} a matrix-free Gauss-Newton model "
        f"needs {product}, obtained {how}, and that derivative of `fn` cannot be "
        f"transposed (the error above). Pass {other}a dense Jacobian "
        "(`materialise=True`), which needs no transposition."
    )


class SumOfSquares(eqx.Module):
    """The least-squares objective, defined once for every solve path.

    With the residuals r, their whitened form z = W r (W = diag(1/σ) for
    per-residual standard deviations σ, W = L⁻¹ for a residual covariance Σ = LLᵀ,
    W = I without `sigma`), and a robust loss ρ of scale s (none: ρ(t) = t), the
    objective is

    f = ½ Σᵢ s² ρ(zᵢ²/s²),  which is ½‖W r‖² without a loss.

    A Gauss–Newton model never writes f, ∇f or JᵀJ itself. It asks this object for
    the cost f and for the *linear model* of the residuals at the point: a residual
    r̃ and Jacobian J̃ such that f(x + p) ≈ ½‖r̃ + J̃p‖² up to a constant, from which
    ∇f = J̃ᵀr̃ and the Gauss–Newton matrix B = J̃ᵀJ̃ follow for every path (QR of
    [J̃; √D], the normal equations, matrix-free products, the compiled and the host
    loop). Without a loss r̃ = W r and J̃ = W J; a loss rescales them row by row (see
    [`AbstractLoss.correct`][quasinewton.loss.AbstractLoss.correct]).

    `minimise`/`least_squares` put it into the [`Problem`][quasinewton.problem.Problem],
    whose array leaves reach the compiled loop as inputs: per-solve data of the
    objective belong here, and a new value of them compiles nothing anew.

    **Arguments:**

    - `inverse_sigma`: 1/σ, a flat vector of one entry per residual (or a scalar),
      or `None`.
    - `covariance_factor`: the lower Cholesky factor L of the residuals'
      covariance (m×m), or `None`. At most one of the two is given.
    - `loss`: a [`quasinewton.loss.AbstractLoss`][], or `None` for ½‖z‖².
    """

    inverse_sigma: Float[Array, "*m"] | None = None
    covariance_factor: Float[Array, "m m"] | None = None
    loss: AbstractLoss | None = None

    def __check_init__(self):
        if self.inverse_sigma is not None and self.covariance_factor is not None:
            raise ValueError("Give `inverse_sigma` or `covariance_factor`, not both.")

    def whiten(self, residual: Float[Array, " m"]) -> Float[Array, " m"]:
        """z = W r."""
        if self.inverse_sigma is not None:
            return self.inverse_sigma * residual
        if self.covariance_factor is not None:
            return _lower_solve(self.covariance_factor, residual)
        return residual

    def _whiten_transpose(self, u: Float[Array, " m"]) -> Float[Array, " m"]:
        """Wᵀu."""
        if self.inverse_sigma is not None:
            return self.inverse_sigma * u
        if self.covariance_factor is not None:
            return _lower_solve(self.covariance_factor, u, transpose=True)
        return u

    def cost(self, residual: Float[Array, " m"]) -> Scalar:
        """f = ½ Σᵢ s² ρ(zᵢ²/s²), or ½‖z‖² without a loss."""
        z = self.whiten(residual)
        if self.loss is None:
            return 0.5 * jnp.sum(z * z)
        return self.loss.cost(z)

    def model(
        self, residual: Float[Array, " m"], jacobian: Float[Array, "m n"]
    ) -> tuple[Float[Array, " m"], Float[Array, "m n"]]:
        """The linear model's (r̃, J̃) from r and a dense J."""
        z = self.whiten(residual)
        if self.inverse_sigma is not None:
            inverse_sigma = jnp.broadcast_to(self.inverse_sigma, residual.shape)
            jacobian = inverse_sigma[:, None] * jacobian
        elif self.covariance_factor is not None:
            jacobian = _lower_solve(self.covariance_factor, jacobian)
        if self.loss is None:
            return z, jacobian
        residual_factor, jacobian_factor = self.loss.correct(z)
        return residual_factor * z, jacobian_factor[:, None] * jacobian

    def model_products(
        self,
        residual: Float[Array, " m"],
        product: Callable[[Float[Array, " n"]], Float[Array, " m"]] | None,
        transpose: Callable[[Float[Array, " m"]], Float[Array, " n"]],
    ) -> tuple[Float[Array, " m"], Callable | None, Callable]:
        """The linear model's r̃ with the products v ↦ J̃v and u ↦ J̃ᵀu, from r and the
        products v ↦ Jv (`product`) and u ↦ Jᵀu (`transpose`). `product` is `None`
        where only the gradient is wanted (`gradient`); J̃v is then `None` too."""
        if (
            self.inverse_sigma is None
            and self.covariance_factor is None
            and self.loss is None
        ):
            return residual, product, transpose
        z = self.whiten(residual)
        if self.loss is None:
            residual_factor = jacobian_factor = None
            model_residual = z
        else:
            residual_factor, jacobian_factor = self.loss.correct(z)
            model_residual = residual_factor * z

        def model_product(v):
            out = self.whiten(product(v))
            return out if jacobian_factor is None else jacobian_factor * out

        def model_transpose(u):
            if jacobian_factor is not None:
                u = jacobian_factor * u
            return transpose(self._whiten_transpose(u))

        return (
            model_residual,
            None if product is None else model_product,
            model_transpose,
        )

    def gradient(
        self,
        residual: Float[Array, " m"],
        transpose: Callable[[Float[Array, " m"]], Float[Array, " n"]],
    ) -> Float[Array, " n"]:
        """∇f = J̃ᵀr̃, from r and the product u ↦ Jᵀu."""
        model_residual, _, model_transpose = self.model_products(
            residual, None, transpose
        )
        return model_transpose(model_residual)


def _lower_solve(factor, b, transpose: bool = False):
    """L⁻¹b (or L⁻ᵀb) for the lower-triangular `factor` L."""
    return jax.scipy.linalg.solve_triangular(
        factor, b, lower=True, trans="T" if transpose else "N"
    )


class Problem(eqx.Module):
    """The problem a solver's parts see: `fn` as a function of the flat vector `x`.

    Curvature models evaluate the objective only through these methods: `scalar`
    (f and aux), `value_and_grad` (an [`Evaluation`][quasinewton.evaluation.Evaluation]
    of f and ∇f), and for least squares `residual`, `linearise` (r with the
    products Jv, Jᵀu) and `jacobian` (r with a dense J), each differentiating `fn`
    in the solve's `autodiff_mode`. The objective of least squares is `objective`.

    A `Problem` is a pytree: its arrays (`args`, the arrays `fn` closes over, and
    those of `objective`) are inputs of the compiled loop, so that solving again
    with other values compiles nothing anew; the rest (`unravel`, `kind`, ...) is
    static.

    **Attributes:**

    - `fn`: the user's function `(y, args) -> out` (closure-converted, so that any
      arrays it closes over are leaves of this module).
    - `args`: the user's `args`.
    - `unravel`: rebuilds the user's pytree from `x`.
    - `kind`: `"scalar"` (minimise `fn`) or `"residual"` (minimise ½‖fn‖²).
    - `has_aux`: whether `fn` returns `(out, aux)`.
    - `autodiff_mode`: how `fn` is differentiated (see `minimise`): `"auto"`
      (reverse mode for gradients; for Jacobians forward when tall, else reverse),
      `"forward"` (jvp only) or `"reverse"` (vjp only).
    - `objective`: the least-squares objective of the residuals (unused for
      `kind="scalar"`).
    - `num_residuals`: m, where known when the problem is made (else `None`:
      `residual_size` finds it from the shapes).
    """

    fn: Callable
    args: Any
    unravel: Callable = eqx.field(static=True)
    kind: Kind = eqx.field(static=True)
    has_aux: bool = eqx.field(static=True)
    autodiff_mode: AutodiffMode = eqx.field(default="auto", static=True)
    objective: SumOfSquares = eqx.field(default_factory=SumOfSquares)
    num_residuals: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if self.autodiff_mode not in _MODES:
            raise ValueError(
                "`autodiff_mode` must be one of 'auto', 'forward' or 'reverse'; got "
                f"{self.autodiff_mode!r}."
            )

    def _call(self, x):
        out = self.fn(self.unravel(x), self.args)
        # Checked wherever `fn` is traced: the first trace (`jax.eval_shape` of the
        # evaluation, before any iteration) raises, and no trace of its own is
        # spent on the check.
        return check_output(out, self.kind, self.has_aux)

    def scalar(self, x: Float[Array, " n"]) -> tuple[Scalar, Any]:
        """The objective and aux at `x`."""
        out, aux = self._call(x)
        if self.kind == "scalar":
            return jnp.asarray(out, x.dtype), aux
        return self.objective.cost(self.flat_residual_of(out, x.dtype)), aux

    def residual(self, x: Float[Array, " n"]) -> tuple[Float[Array, " m"], Any]:
        """The flat residual and aux at `x` (least squares only)."""
        out, aux = self._call(x)
        return self.flat_residual_of(out, x.dtype), aux

    def residual_size(self, x: Float[Array, " n"]) -> int:
        """m, the number of residuals (from their shapes; nothing is evaluated)."""
        if self.num_residuals is not None:
            return self.num_residuals
        return jax.eval_shape(lambda z: self.residual(z)[0], x).shape[0]

    @staticmethod
    def flat_residual_of(out, dtype) -> Float[Array, " m"]:
        """The leaves of a residual pytree, raveled and concatenated, in `dtype`."""
        leaves = [jnp.ravel(jnp.asarray(leaf, dtype)) for leaf in jtu.tree_leaves(out)]
        return leaves[0] if len(leaves) == 1 else jnp.concatenate(leaves)

    def value_and_grad(self, x: Float[Array, " n"]) -> Evaluation:
        """f, ∇f and aux at `x`: one forward and one reverse pass, or with
        `autodiff_mode="forward"` n forward-mode passes (`jax.jacfwd`)."""
        try:
            if self.autodiff_mode == "forward":
                if self.kind == "scalar":

                    def with_value(z):
                        f, aux = self.scalar(z)
                        return f, (f, aux)

                    g, (f, aux) = jax.jacfwd(with_value, has_aux=True)(x)
                    return Evaluation(f=f, grad=g, aux=aux)
                f, model_residual, model_jac, aux = self.dense_linear_model(x)
                return Evaluation(f=f, grad=model_jac.T @ model_residual, aux=aux)
            if self.kind == "scalar":
                (f, aux), g = jax.value_and_grad(self.scalar, has_aux=True)(x)
                return Evaluation(f=f, grad=g, aux=aux)
            r, vjp, aux = jax.vjp(self.residual, x, has_aux=True)
            g = self.objective.gradient(r, lambda u: vjp(u)[0])
        except Exception as error:
            _explain(error, self.autodiff_mode)
            raise
        return Evaluation(f=self.objective.cost(r), grad=g, aux=aux)

    def linear_model(
        self, x: Float[Array, " n"]
    ) -> tuple[ResidualEvaluation, Callable, Callable]:
        """The objective's linear model at `x` without forming J (least squares
        only): an evaluation of f, ∇f and the model residual r̃, with the products
        v ↦ J̃v and u ↦ J̃ᵀu of one linearisation (see `linearise` and
        [`SumOfSquares`][quasinewton.problem.SumOfSquares])."""
        r, jvp, vjp, aux = self.linearise(x)
        model_residual, product, transpose = self.objective.model_products(r, jvp, vjp)
        ev = ResidualEvaluation(
            f=self.objective.cost(r),
            grad=transpose(model_residual),
            aux=aux,
            residual=model_residual,
        )
        return ev, product, transpose

    def dense_linear_model(
        self, x: Float[Array, " n"]
    ) -> tuple[Scalar, Float[Array, " m"], Float[Array, "m n"], Any]:
        """f, the model residual r̃, its dense Jacobian J̃ and aux at `x` (least
        squares only; see `jacobian` and
        [`SumOfSquares`][quasinewton.problem.SumOfSquares])."""
        r, jac, aux = self.jacobian(x)
        model_residual, model_jac = self.objective.model(r, jac)
        return self.objective.cost(r), model_residual, model_jac, aux

    def linearise(self, x: Float[Array, " n"]):
        """r, J as a (jvp, vjp) pair of functions, and aux: one forward pass.

        The linearisation is reused for every product with J or Jᵀ made at `x`. With
        `autodiff_mode="reverse"` it is `jax.vjp`, and Jv its transpose; otherwise
        `jax.linearize`, and Jᵀu its transpose.
        """
        try:
            if self.autodiff_mode == "reverse":
                r, vjp_fn, aux = jax.vjp(self.residual, x, has_aux=True)
                vjp = lambda u: vjp_fn(u)[0]
                jvp = _transposed(vjp, r, "reverse", "products Jv")
                return r, jvp, vjp, aux
            r, jvp, aux = jax.linearize(self.residual, x, has_aux=True)
        except Exception as error:
            _explain(error, self.autodiff_mode)
            raise
        return r, jvp, _transposed(jvp, x, self.autodiff_mode, "products Jᵀu"), aux

    def jacobian(self, x: Float[Array, " n"]) -> tuple[Array, Array, Any]:
        """r, the dense Jacobian and aux; with `autodiff_mode="auto"` by forward
        mode when J is tall, else reverse."""
        n = x.size
        m = self.residual_size(x)

        def with_value(z):
            r, aux = self.residual(z)
            return r, (r, aux)

        if self.autodiff_mode == "auto":
            jac_fn = jax.jacfwd if m >= n else jax.jacrev
        else:
            jac_fn = jax.jacfwd if self.autodiff_mode == "forward" else jax.jacrev
        try:
            jac, (r, aux) = jac_fn(with_value, has_aux=True)(x)
        except Exception as error:
            _explain(error, self.autodiff_mode)
            raise
        return r, jac, aux


def _ravel(y0: PyTree[Array]) -> tuple[Float[Array, " n"], Callable]:
    """`ravel_pytree`, except for the common `y0` of one array, which is reshaped:
    ravel_pytree's unravel splits the vector, an operation compiled anew for every n
    in a solve called from Python (as `jnp.ravel` is; a reshape to the same shape is
    not)."""
    leaves, treedef = jtu.tree_flatten(y0)
    if len(leaves) != 1:
        return ravel_pytree(y0)
    shape = leaves[0].shape

    def unravel(x):
        return jtu.tree_unflatten(treedef, [jnp.reshape(x, shape)])

    return leaves[0].reshape(-1), unravel


def make_problem(
    fn,
    y0,
    args,
    kind: Kind,
    has_aux: bool,
    autodiff_mode: AutodiffMode = "auto",
    sigma=None,
    loss: AbstractLoss | None = None,
):
    """Validate the inputs and build the flat `Problem` and the flat start `x0`."""
    y0 = check_y0(y0)
    x0, unravel = _ravel(y0)

    # Weakly typed arrays in `args` (a Python float given to `jax.grad`) lose their
    # array type on the way through the adjoint's custom JVP; strongly typed, they
    # keep it. They take the dtype they would have in arithmetic with `y` (float32
    # for a float32 `y0`, though a weak float is float64 under x64): strongly typed
    # float64, they would promote a float32 `fn` to float64, an error under strict
    # dtype promotion.
    def strong(v):
        if not eqx.is_inexact_array(v):
            return v
        weak = isinstance(v, jax.Array) and v.weak_type
        dtype = jnp.result_type(v, x0) if weak else jnp.result_type(v)
        return jnp.asarray(v, dtype=dtype)

    args = jtu.tree_map(strong, args)
    # The arrays of `args` are passed to `fn`; the rest (Python scalars, strings,
    # functions: values `fn` may branch on) is closed over, so that it is part of the
    # traced program (a float becomes a literal of the jaxpr, which keys the compiled
    # evaluations of `_host`) rather than a static input that every call compares
    # with the one traced: that comparison fails for a nan (nan != nan).
    dynamic, static = eqx.partition(args, eqx.is_array)
    if jtu.tree_leaves(static):

        def with_static(y, dynamic):
            return fn(y, eqx.combine(dynamic, static))

        closed = eqx.filter_closure_convert(with_static, y0, dynamic)
    else:
        # Nothing to close over: a function without a closure stays as it is
        # (Equinox then skips tracing it, and `_host` keys it by the function).
        closed = eqx.filter_closure_convert(fn, y0, dynamic)
    problem = Problem(
        fn=closed,
        args=dynamic,
        unravel=unravel,
        kind=kind,
        has_aux=has_aux,
        autodiff_mode=autodiff_mode,
    )
    if kind == "residual":
        problem = dataclasses.replace(
            problem, num_residuals=_traced_size(closed, has_aux)
        )
    if sigma is not None or loss is not None:
        objective = make_objective(problem, x0, sigma, loss)
        problem = dataclasses.replace(problem, objective=objective)
    return problem, x0, y0


def _traced_size(closed, has_aux: bool) -> int | None:
    """m from the output shapes of `fn` where its closure conversion traced it (a
    function with a closure), else `None`."""
    try:
        out = closed.out_struct
        if has_aux:
            out, _ = out
        leaves = jtu.tree_leaves(out)
        if not leaves or not all(isinstance(v, jax.ShapeDtypeStruct) for v in leaves):
            return None
        return sum(int(np.prod(v.shape)) for v in leaves)
    except (AttributeError, TypeError, ValueError):
        return None


def _concrete(value) -> np.ndarray | None:
    """`value` as a NumPy array if it is concrete (not traced), else `None`."""
    if isinstance(value, jax.core.Tracer):
        return None
    return np.asarray(value)


def _check_sigma_values(sigma: Array, what: str) -> None:
    concrete = _concrete(sigma)
    if concrete is not None and not np.all(np.isfinite(concrete)):
        raise ValueError(f"`sigma` holds nan or inf; {what} must be finite.")
    if concrete is not None and what == "standard deviations" and np.any(concrete <= 0):
        raise ValueError(
            "`sigma` must be positive: the standard deviation of a residual is > 0 "
            f"(the smallest given is {concrete.min()!r})."
        )


def make_objective(
    problem: Problem, x0: Float[Array, " n"], sigma, loss: AbstractLoss | None
) -> SumOfSquares:
    """The [`SumOfSquares`][quasinewton.problem.SumOfSquares] of `least_squares`'s
    `sigma` and `loss`, its arrays in the dtype of the solve; clear errors at trace
    time for a `sigma` that does not fit the residuals.

    `sigma` is a scalar (one standard deviation for all residuals), a pytree like
    the residuals whose leaves broadcast to theirs (per-residual standard
    deviations), or, for residuals of one 1-D array of m entries, an m×m
    covariance matrix (positive definite; whitened by its Cholesky factor).
    """
    dtype = x0.dtype
    if loss is not None:
        if not isinstance(loss, AbstractLoss):
            raise TypeError(
                "`loss` must be a qn.loss part such as qn.loss.Huber(scale=1.0); "
                f"got {type(loss).__name__}."
            )
        scale = jnp.asarray(loss.scale)
        if not jnp.issubdtype(scale.dtype, jnp.number) or scale.shape != ():
            raise TypeError(
                f"The loss's `scale` must be a real scalar; got {loss.scale!r}."
            )
        concrete = _concrete(loss.scale)
        if concrete is not None and not (np.isfinite(concrete) and concrete > 0):
            raise ValueError(
                f"The loss's `scale` must be positive and finite; got {loss.scale!r}."
            )
        loss = eqx.tree_at(
            lambda part: part.scale, loss, jnp.asarray(loss.scale, dtype)
        )
    if sigma is None:
        return SumOfSquares(loss=loss)
    out = jax.eval_shape(lambda x: problem._call(x)[0], x0)
    out_leaves, out_def = jtu.tree_flatten(out)
    m = sum(int(np.prod(leaf.shape)) for leaf in out_leaves)
    if eqx.is_array_like(sigma) and jnp.ndim(sigma) == 0:
        _check_sigma_values(jnp.asarray(sigma), "standard deviations")
        return SumOfSquares(inverse_sigma=1 / jnp.asarray(sigma, dtype), loss=loss)
    one_vector = len(out_leaves) == 1 and len(out_leaves[0].shape) == 1
    if (
        one_vector
        and eqx.is_array_like(sigma)
        and jnp.shape(sigma) == (m, m)
        and out_leaves[0].shape != (m, m)
    ):
        covariance = jnp.asarray(sigma, dtype)
        _check_sigma_values(covariance, "covariances")
        factor = jnp.linalg.cholesky(covariance)
        concrete = _concrete(factor)
        if concrete is not None and not np.all(np.isfinite(concrete)):
            raise ValueError(
                "`sigma` was taken for the residuals' covariance matrix (m×m for m "
                "residuals) and is not positive definite (its Cholesky factorisation "
                "failed)."
            )
        return SumOfSquares(covariance_factor=factor, loss=loss)
    try:
        sigma_leaves = out_def.flatten_up_to(sigma)
    except (ValueError, TypeError):
        raise ValueError(
            "`sigma` must be a scalar, a pytree like the residuals "
            f"({out_def}), or for one vector of m residuals an m×m covariance; got "
            f"{jtu.tree_structure(sigma)}."
        ) from None
    flat = []
    for leaf, struct in zip(sigma_leaves, out_leaves, strict=True):
        if not eqx.is_array_like(leaf):
            raise TypeError(f"`sigma` holds a {type(leaf).__name__}; it needs arrays.")
        try:
            leaf = jnp.broadcast_to(jnp.asarray(leaf, dtype), struct.shape)
        except ValueError:
            raise ValueError(
                f"`sigma` of shape {jnp.shape(leaf)} does not broadcast to residuals "
                f"of shape {struct.shape}."
            ) from None
        flat.append(jnp.ravel(leaf))
    sigma_vector = flat[0] if len(flat) == 1 else jnp.concatenate(flat)
    _check_sigma_values(sigma_vector, "standard deviations")
    return SumOfSquares(inverse_sigma=1 / sigma_vector, loss=loss)
