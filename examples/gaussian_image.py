"""Fitting an image with 2-D Gaussians: L-BFGS against Adam, from the same start.

An RGB image is approximated by a sum of K anisotropic 2-D Gaussians, each with a
position (2), two scales (2, as logarithms), a rotation angle (1) and a colour (3):
8K unknowns, the kind of model behind Gaussian splatting and image-compression
primitives. The loss is the mean squared error over pixels and channels, and the
quality is reported as PSNR = −10·log₁₀(MSE) for an image in [0, 1].

The same start (means on a jittered grid, round Gaussians one grid spacing wide,
colours from the image) is optimised two ways:

- `qn.minimise` with `qn.LBFGS()` (memory 10, strong-Wolfe line search), with
  `history=True` to record the loss after every iteration; the termination tests
  are switched off (`rtol = atol = 0`) so that it runs the full budget;
- `optax.adam`, at each of several learning rates, keeping the best one at the
  final iteration (Adam's best case: in practice the rate must be tuned).

Each iteration of either method evaluates the loss and its gradient once (an L-BFGS
iteration here is one trial point of its line search), so iterations compare equal
work. Both run as one compiled program (`jax.lax.while_loop` and `jax.lax.scan`);
wall times are of a second run, after compilation, and the time axis spreads each
run's measured time evenly over its iterations, each of which costs one evaluation.

The image is the photograph of Grace Hopper shipped with Matplotlib, cropped to a
square and averaged down. Float32, the usual precision of such fits.

Run:

    python examples/gaussian_image.py            # 42×42 pixels, 196 Gaussians, 500 iterations
    python examples/gaussian_image.py --smoke    # 24×24 pixels, 36 Gaussians, 60 iterations
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from _common import finish, parse_args, result_name, timed
from matplotlib import cbook

import quasinewton as qn


def load_image(size: int) -> np.ndarray:
    """The sample photograph, a centred square crop averaged down to size × size."""
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        image = plt.imread(f).astype(np.float64) / 255.0
    h, w, _ = image.shape
    side = min(h, w) // size * size
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top : top + side, left : left + side]
    block = side // size
    return (
        crop.reshape(size, block, size, block, 3).mean(axis=(1, 3)).astype(np.float32)
    )


def render(params, size: int):
    """The image: Σₖ colourₖ·exp(−½ dᵀΣₖ⁻¹d), Σₖ = R(θₖ) diag(sₖ²) R(θₖ)ᵀ, d = p − μₖ."""
    u = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size
    px = jnp.repeat(u, size)[:, None]  # (pixels, 1), row-major
    py = jnp.tile(u, size)[:, None]
    dx = px - params["mean"][:, 0]  # (pixels, K)
    dy = py - params["mean"][:, 1]
    cos, sin = jnp.cos(params["angle"]), jnp.sin(params["angle"])
    inv = jnp.exp(-params["log_scale"])  # 1/s, per Gaussian and axis
    along = (dx * cos + dy * sin) * inv[:, 0]
    across = (dy * cos - dx * sin) * inv[:, 1]
    weights = jnp.exp(-0.5 * (along**2 + across**2))
    return (weights @ params["colour"]).reshape(size, size, 3)


def mse(params, target):
    return jnp.mean((render(params, target.shape[0]) - target) ** 2)


def psnr(loss):
    return -10.0 * np.log10(np.asarray(loss, np.float64))


def initial_params(target, num_side: int, key):
    """num_side² round Gaussians on a jittered grid, one spacing wide, coloured from
    the target so that their sum starts near its local brightness."""
    size = target.shape[0]
    spacing = 1.0 / num_side
    centres = (jnp.arange(num_side) + 0.5) * spacing
    mean = jnp.stack(jnp.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    mean = mean + 0.25 * spacing * jax.random.uniform(
        key, mean.shape, minval=-1, maxval=1
    )
    pixel = jnp.clip((mean * size).astype(jnp.int32), 0, size - 1)
    k = mean.shape[0]
    return {
        "mean": mean.astype(jnp.float32),
        "log_scale": jnp.full((k, 2), np.log(spacing), jnp.float32),
        "angle": jnp.zeros(k, jnp.float32),
        # A round Gaussian of width s on a grid of spacing s adds up to 2π times its
        # colour; divide so that the start is about as bright as the image.
        "colour": target[pixel[:, 0], pixel[:, 1]] / (2 * np.pi),
    }


def run_lbfgs(params0, target, num_iterations: int):
    """Loss after each iteration (entry 0 at the start), the solution, and the time
    of a compiled run."""

    @jax.jit
    def solve(params0):
        return qn.minimise(
            mse,
            qn.LBFGS(rtol=0.0, atol=0.0),
            params0,
            target,
            max_steps=num_iterations,
            history=True,
            throw=False,
        )

    sol, seconds, _ = timed(solve, params0)
    history = np.asarray(sol.stats["loss_history"])
    steps = int(sol.stats["num_steps"])
    return history[: steps + 1], sol, seconds


def run_adam(params0, target, num_iterations: int, learning_rate: float):
    """Loss after each iteration (entry 0 at the start), the final parameters, and
    the time of a compiled run."""
    optimiser = optax.adam(learning_rate)

    @jax.jit
    def train(params0):
        def step(carry, _):
            params, state = carry
            loss, grad = jax.value_and_grad(mse)(params, target)
            updates, state = optimiser.update(grad, state, params)
            return (optax.apply_updates(params, updates), state), loss

        (params, _), losses = jax.lax.scan(
            step, (params0, optimiser.init(params0)), None, length=num_iterations
        )
        return params, jnp.append(losses, mse(params, target))

    (params, losses), seconds, _ = timed(train, params0)
    return np.asarray(losses), params, seconds


def first_reaching(curve, level):
    """The first iteration at which `curve` reaches `level`, or None."""
    hit = np.nonzero(curve >= level)[0]
    return int(hit[0]) if hit.size else None


def main(argv=None) -> dict:
    opts = parse_args("gaussian_image", __doc__, argv)
    size, num_side, num_iterations = (24, 6, 60) if opts.smoke else (42, 14, 500)
    rates = (1e-2, 3e-2) if opts.smoke else (3e-3, 1e-2, 3e-2)
    target = jnp.asarray(load_image(size))
    params0 = initial_params(target, num_side, jax.random.PRNGKey(0))
    k = params0["angle"].size
    print(
        f"{size}×{size} RGB image, {k} Gaussians ({8 * k} unknowns), "
        f"{num_iterations} iterations, float32"
    )
    print(f"  start: PSNR {psnr(mse(params0, target)):.2f} dB")

    t0 = time.perf_counter()
    lbfgs_loss, sol, lbfgs_s = run_lbfgs(params0, target, num_iterations)
    print(
        f"  L-BFGS: {result_name(sol.result)}, {int(sol.stats['num_steps'])} iterations "
        f"({int(sol.stats['num_accepted_steps'])} accepted steps, "
        f"{int(sol.stats['num_fn_evals'])} evaluations), PSNR "
        f"{psnr(lbfgs_loss[-1]):.2f} dB, {lbfgs_s:.2f} s after compilation"
    )
    adam = {}
    for rate in rates:
        losses, params, seconds = run_adam(params0, target, num_iterations, rate)
        adam[rate] = (losses, params, seconds)
        print(
            f"  Adam, learning rate {rate:g}: PSNR {psnr(losses[-1]):.2f} dB, "
            f"{seconds:.2f} s after compilation"
        )
    print(f"  (both methods, compilations included: {time.perf_counter() - t0:.1f} s)")
    best_rate = min(rates, key=lambda r: adam[r][0][-1])
    adam_loss, adam_params, adam_s = adam[best_rate]

    lbfgs_psnr, adam_psnr = psnr(lbfgs_loss), psnr(adam_loss)
    checkpoints = [c for c in (10, 25, 50, 100, 200, 500) if c <= num_iterations]
    table = []
    print(f"  PSNR (dB) by iteration; Adam at its best rate {best_rate:g}")
    print("  iteration    L-BFGS    Adam")
    for c in checkpoints:
        row = (c, float(lbfgs_psnr[min(c, len(lbfgs_psnr) - 1)]), float(adam_psnr[c]))
        table.append(row)
        print(f"  {row[0]:9d}  {row[1]:8.2f}  {row[2]:6.2f}")
    lbfgs_to_adam = first_reaching(lbfgs_psnr, adam_psnr[-1])
    adam_to_lbfgs = {
        c: first_reaching(adam_psnr, lbfgs_psnr[min(c, len(lbfgs_psnr) - 1)])
        for c in checkpoints
    }

    def when(iteration):
        return f"iteration {iteration}" if iteration is not None else "no iteration"

    print(
        f"  L-BFGS reaches Adam's {num_iterations}-iteration PSNR "
        f"({adam_psnr[-1]:.2f} dB) at {when(lbfgs_to_adam)}"
    )
    for c, a in adam_to_lbfgs.items():
        print(f"  Adam reaches L-BFGS's {c}-iteration PSNR at {when(a)}")
    per_it = {
        "L-BFGS": lbfgs_s / max(len(lbfgs_loss) - 1, 1),
        "Adam": adam_s / num_iterations,
    }
    print(
        f"  time per iteration: L-BFGS {per_it['L-BFGS'] * 1e3:.2f} ms, "
        f"Adam {per_it['Adam'] * 1e3:.2f} ms"
    )

    fig = plt.figure(figsize=(13, 7.5))
    panels = [
        ("target", target),
        ("start", render(params0, size)),
        (
            f"Adam, {num_iterations} iterations\n{adam_psnr[-1]:.2f} dB",
            render(adam_params, size),
        ),
        (
            f"L-BFGS, {len(lbfgs_loss) - 1} iterations\n{lbfgs_psnr[-1]:.2f} dB",
            render(sol.value, size),
        ),
    ]
    for i, (title, image) in enumerate(panels):
        ax = fig.add_subplot(2, 4, i + 1)
        ax.imshow(np.clip(np.asarray(image), 0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    ax_it = fig.add_subplot(2, 2, 3)
    ax_time = fig.add_subplot(2, 2, 4)
    ax_it.plot(lbfgs_psnr, color="C0", lw=2, label="L-BFGS (qn)")
    ax_time.plot(
        np.arange(len(lbfgs_psnr)) * per_it["L-BFGS"],
        lbfgs_psnr,
        color="C0",
        lw=2,
        label="L-BFGS (qn)",
    )
    for j, rate in enumerate(rates):
        curve = psnr(adam[rate][0])
        style = {
            "lw": 2 if rate == best_rate else 1,
            "alpha": 1 if rate == best_rate else 0.5,
        }
        label = f"Adam, lr {rate:g}"
        ax_it.plot(curve, color=f"C{j + 1}", label=label, **style)
        ax_time.plot(
            np.arange(len(curve)) * adam[rate][2] / num_iterations,
            curve,
            color=f"C{j + 1}",
            label=label,
            **style,
        )
    ax_it.set_xlabel("iteration (one loss-and-gradient evaluation each)")
    ax_time.set_xlabel("wall time after compilation (s)")
    for ax in (ax_it, ax_time):
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.set_ylim(
            psnr(mse(params0, target)) - 1, max(lbfgs_psnr.max(), adam_psnr.max()) + 1
        )
    ax_it.legend(fontsize=8)
    fig.tight_layout()

    results = {
        "size": size,
        "num_gaussians": k,
        "num_iterations": num_iterations,
        "lbfgs_result": result_name(sol.result),
        "lbfgs_accepted_steps": int(sol.stats["num_accepted_steps"]),
        "lbfgs_seconds": lbfgs_s,
        "adam_best_rate": best_rate,
        "adam_seconds": adam_s,
        "start_psnr": float(psnr(mse(params0, target))),
        "table": table,
        "lbfgs_iterations_to_adam_final": lbfgs_to_adam,
        "adam_iterations_to_lbfgs": adam_to_lbfgs,
        "adam_final_psnr_by_rate": {str(r): float(psnr(adam[r][0][-1])) for r in rates},
    }
    return finish(fig, results, opts)


if __name__ == "__main__":
    main()
