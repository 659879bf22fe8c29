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
def _raise_unless_successful(code):
    return eqx.branched_error_if(code, code != 0, code, _messages())


@_raise_unless_successful.def_vmap
def _batched(axis_size, in_batched, code):
    # Under `jax.vmap` every problem reports its own `result`; raising would abort
    # the whole batch for one bad problem, so no error is raised.
    del axis_size
    return code, in_batched[0]


def throw_if_failed(result: RESULTS) -> RESULTS:
    """Raise a runtime error if an unbatched `result` is not successful.

    Under `jax.vmap` it raises nothing and returns `result` unchanged, so that one
    failing problem never aborts or corrupts the rest of a batch.
    """
    code = _raise_unless_successful(jax.lax.stop_gradient(result._value))
    return RESULTS.where(code == 0, RESULTS.successful, result)


def default_tolerances(dtype) -> tuple[float, float]:
    """The (rtol, atol) used when a solver leaves them as `None`."""
    # About as strict as SciPy's defaults (gtol = 1e-5 on the gradient); atol is
    # absolute, so objectives far smaller than 1 in size need a smaller one.
    if jnp.finfo(dtype).bits >= 64:
        return 1e-6, 1e-6
    return 1e-5, 1e-5
