"""Test configuration: float64 available everywhere; each test picks its dtype.

Set `QN_STRICT_DTYPE_PROMOTION=1` to run the tests under
`jax_numpy_dtype_promotion="strict"` (Optimistix's own test setting), which turns
every implicit promotion between dtypes (int32 with int64, float32 with float64)
into an error.

The cases listed in slow_cases.txt are marked `slow` as if decorated.
"""

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
if os.environ.get("QN_STRICT_DTYPE_PROMOTION") == "1":
    jax.config.update("jax_numpy_dtype_promotion", "strict")


SLOW_CASES = Path(__file__).with_name("slow_cases.txt")


def slow_cases() -> set[str]:
    """The node ids (relative to tests/) listed in slow_cases.txt."""
    lines = SLOW_CASES.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # Before `-m` deselects: the listed cases are `slow` like the marked ones.
    listed = slow_cases()
    root = Path(__file__).parent
    for item in items:
        relative = Path(item.path).relative_to(root).as_posix()
        if f"{relative}::{item.name}" in listed:
            item.add_marker(pytest.mark.slow)
