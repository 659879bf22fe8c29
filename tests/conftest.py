"""Test configuration: float64 available everywhere; each test picks its dtype."""

import jax

jax.config.update("jax_enable_x64", True)
