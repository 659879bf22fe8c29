"""Run by tests/test_sharding.py in a fresh process with 4 simulated CPU devices.

A batch of 64 exponential-decay fits is solved twice with the same jitted
`jax.vmap(qn.least_squares)`: once on one device, once with the batch sharded over
4 devices (`NamedSharding(mesh, P("fits"))`). Prints a JSON summary the test checks.
The XLA flag must be set before JAX initialises, hence a separate process.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
)

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import quasinewton as qn

T = jnp.linspace(0.0, 4.0, 50)


def residuals(params, y):
    a, b, c = params
    return a * jnp.exp(-b * T) + c - y


def main() -> int:
    num_fits = 64
    truth = jax.random.uniform(
        jax.random.PRNGKey(0), (num_fits, 3), minval=0.5, maxval=2.0
    )
    noise = 0.05 * jax.random.normal(jax.random.PRNGKey(1), (num_fits, T.size))
    ys = jax.vmap(lambda p: p[0] * jnp.exp(-p[1] * T) + p[2])(truth) + noise
    ys = ys.at[5].set(jnp.nan)  # one bad fit, on the first device
    y0 = jnp.tile(jnp.array([1.0, 1.0, 0.0]), (num_fits, 1))

    @jax.jit
    def fit(y0, ys):
        return jax.vmap(
            lambda p, y: qn.least_squares(residuals, qn.LevenbergMarquardt(), p, y)
        )(y0, ys)

    single = fit(y0, ys)

    mesh = Mesh(np.array(jax.devices()), ("fits",))
    sharding = NamedSharding(mesh, P("fits"))
    y0_s = jax.device_put(y0, sharding)
    ys_s = jax.device_put(ys, sharding)
    sharded = fit(y0_s, ys_s)

    ok = np.asarray(sharded.result == qn.RESULTS.successful)
    summary = {
        "num_devices": len(jax.devices()),
        "input_devices": len(ys_s.sharding.device_set),
        "output_devices": len(sharded.value.sharding.device_set),
        "output_shard_rows": [
            int(s.data.shape[0]) for s in sharded.value.addressable_shards
        ],
        "max_value_difference": float(jnp.max(jnp.abs(sharded.value - single.value))),
        "same_num_steps": bool(
            jnp.all(sharded.stats["num_steps"] == single.stats["num_steps"])
        ),
        "same_results": bool(jnp.all(sharded.result == single.result)),
        "num_successful": int(ok.sum()),
        "bad_fit_result": (
            "nonfinite"
            if bool((sharded.result == qn.RESULTS.nonfinite)[5])
            else "other"
        ),
        "max_cost": float(jnp.max(jnp.where(ok, sharded.stats["value"], 0.0))),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
