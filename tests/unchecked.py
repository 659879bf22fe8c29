"""`unchecked()`: a block run without jaxtyping's runtime type checks.

The suite runs with jaxtyping's import hook on quasinewton (pyproject's
`addopts`), which refuses an argument that does not match its annotation before
the function runs. Tests of quasinewton's own validation of such arguments (a
string for a solver, a float for `max_steps`) make the call inside this block, so
that they see the error users see, who do not run the hook.
"""

import contextlib

import jaxtyping


@contextlib.contextmanager
def unchecked():
    """Turn jaxtyping's checks off within the block (and back as they were after)."""
    before = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", before)
