"""Test configuration: float64 available everywhere; each test picks its dtype.

Set `QN_STRICT_DTYPE_PROMOTION=1` to run the tests under
`jax_numpy_dtype_promotion="strict"` (Optimistix's own test setting), which turns
every implicit promotion between dtypes (int32 with int64, float32 with float64)
into an error.
"""

import os

import jax

jax.config.update("jax_enable_x64", True)
if os.environ.get("QN_STRICT_DTYPE_PROMOTION") == "1":
    jax.config.update("jax_numpy_dtype_promotion", "strict")
