"""Small helpers shared by the parts."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from ._solution import RESULTS


def _messages() -> tuple[str, ...]:
    return tuple(
        f"quasinewton: the solve failed. {message}" if message else ""
        for message in RESULTS._index_to_message  # pyright: ignore
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
    return out, (jax.custom_derivatives.zero_from_primal(out[0], symbolic_zeros=True), t_x)


def throw_if_failed(result: RESULTS, x):
    """Raise a runtime error if an unbatched solve's `result` is not successful.

    Both `result` and the flat solution `x` are returned through the check, so the
    error is raised whichever of them the caller goes on to use. Under `jax.vmap`
    nothing is raised and both come back unchanged: one failing problem never
    aborts or corrupts the rest of a batch. Derivatives pass through `x` untouched.

    A solve that ran from Python (nothing traced) is checked at once, in Python, so
    that the error is raised by the call itself rather than by whichever later
    operation first waits for the result.

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
