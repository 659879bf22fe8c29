"""Reading traced programs in tests: what a jaxpr holds."""

import numpy as np


def largest_array(jaxpr) -> int:
    """The largest array size produced anywhere in a jaxpr, sub-jaxprs included."""
    largest = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            shape = getattr(var.aval, "shape", ())
            largest = max(largest, int(np.prod(shape)) if shape else 1)
        for param in eqn.params.values():
            subs = param if isinstance(param, (tuple, list)) else (param,)
            for sub in subs:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    largest = max(largest, largest_array(inner))
    return largest
