"""Small helpers shared by the parts."""

import math
import numbers
import operator

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jax.custom_batching import custom_vmap

from ._solution import RESULTS


def _messages() -> tuple[str, ...]:
    # The error's first line names the result, so that it reads on its own where a
    # traceback surrounds it (under `jax.jit`, XLA's; see `throw_if_failed`).
    names = {
        item._value.item(): name
        for name, item in RESULTS._name_to_item.items()  # pyright: ignore
    }
    return tuple(
        f"quasinewton: the solve failed with RESULTS.{names[code]}.\n{message}"
        if message
        else ""
        for code, message in enumerate(RESULTS._index_to_message)  # pyright: ignore
    )


@custom_vmap
def _raise_unless_successful(code, x):
    return eqx.branched_error_if((code, x), code != 0, code, _messages())


@_raise_unless_successful.def_vmap
def _batched(axis_size, in_batched, code, x):
    # Under `jax.vmap` every problem reports its own `result`; raising would abort
    # the whole batch for one bad problem, so no error is raised.
    del axis_size
    return (code, x), tuple(in_batched)


@eqx.filter_custom_jvp
def _checked(x, code):
    return _raise_unless_successful(code, x)


@_checked.def_jvp
def _checked_jvp(primals, tangents):
    x, code = primals
    t_x, _ = tangents
    out = _checked(x, code)
    t_x = jnp.zeros_like(x) if t_x is None else t_x
    return out, (
        jax.custom_derivatives.zero_from_primal(out[0], symbolic_zeros=True),
        t_x,
    )


def throw_if_failed(result: RESULTS, x):
    """Raise a runtime error if an unbatched solve's `result` is not successful.

    Both `result` and the flat solution `x` are returned through the check, so the
    error is raised whichever of them the caller goes on to use. Under `jax.vmap`
    nothing is raised and both come back unchanged: one failing problem never
    aborts or corrupts the rest of a batch. Derivatives pass through `x` untouched.

    A solve that ran from Python (nothing traced) is checked at once, in Python, so
    that the error is raised by the call itself rather than by whichever later
    operation first waits for the result, with the message alone. A traced solve is
    checked by `eqx.branched_error_if` inside the compiled program: there XLA wraps
    the message in its own first line and the callback's frames, which no code
    inside the program can change; the message's first line names the result so
    that it reads on its own in that traceback (`equinox.filter_jit` shows it with
    less around it).

    **Returns:** `(result, x)`.
    """
    if not any(isinstance(v, jax.core.Tracer) for v in (result._value, x)):
        code = int(result._value)
        if code != 0:
            raise RuntimeError(_messages()[code])
        return result, x
    code, x = _checked(x, result._value)
    return RESULTS.where(code == 0, RESULTS.successful, result), x


def default_tolerances(dtype) -> tuple[float, float]:
    """The (rtol, atol) used when a solver leaves them as `None`: relative tests
    only (atol = 0), so that no outcome depends on the units of the objective."""
    if jnp.finfo(dtype).bits >= 64:
        return 1e-8, 0.0
    return 1e-5, 0.0


def as_index(value):
    """`value` as a Python int if it is an integer (a NumPy integer included), else
    unchanged, for `check_int` to reject with a clear message: the converter of the
    parts' integer fields, which are static and must not carry a NumPy dtype into
    the traced arithmetic."""
    if isinstance(value, (bool, np.bool_)):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return value


def as_float(value):
    """A NumPy real scalar as a Python float, else `value` unchanged: the converter of
    the parts' real fields. A NumPy float64 is strongly typed and would promote a
    float32 solve (an error under strict dtype promotion); a Python float is weak."""
    if isinstance(value, (np.generic, np.ndarray)) and _real_scalar(value):
        return float(value)
    return value


def check_int(name: str, value, minimum: int) -> int:
    """`value` as a Python int (a NumPy integer is accepted); raises a `TypeError`
    for anything else (a float such as 2.5, a bool) and a `ValueError` below
    `minimum`."""
    if not isinstance(value, (bool, np.bool_)):
        try:
            value = operator.index(value)
        except TypeError:
            pass
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")
    return value


def _real_scalar(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        dtype = value.dtype
        return np.ndim(value) == 0 and (
            jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
        )
    return False


def check_real(
    name: str,
    value,
    *,
    low: float | None = 0.0,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
    allow_none: bool = False,
) -> None:
    """Raise a clear error unless `value` is a finite real scalar in the interval
    from `low` to `high` (closed unless `open_low`/`open_high`; `None` for no bound):
    a `TypeError` for a string, bool, complex or array, a `ValueError` for nan, inf
    or a value out of range. `None` passes if `allow_none`; a traced value (a
    tolerance under `jax.vmap`, say) is not checked, as its value is not known."""
    if value is None and allow_none:
        return
    if isinstance(value, jax.core.Tracer):
        return
    if not _real_scalar(value):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"`{name}` must be finite, got {v}.")
    below = low is not None and (v <= low if open_low else v < low)
    above = high is not None and (v >= high if open_high else v > high)
    if below or above:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        interval = (
            ("(" if open_low or low is None else "[")
            + f"{left}, {right}"
            + (")" if open_high or high is None else "]")
        )
        raise ValueError(f"`{name}` must lie in {interval}, got {v}.")


def tree_where(pred, on_true, on_false):
    """`jnp.where(pred, a, b)` leaf by leaf over two pytrees of one structure."""
    return jtu.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)
