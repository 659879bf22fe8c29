"""Batched peak fitting: thousands of noisy Gaussian peaks fitted at once under vmap.

Each dataset is a 1-D line profile of 32 pixels holding one Gaussian peak on a flat
background, as in single-molecule localisation, spectroscopy or diffraction:

    model(x) = a·exp(−(x − μ)²/(2s²)) + b,

with amplitude a, centre μ, width s and background b drawn at random for every
peak, and white noise of standard deviation 1 added. Every peak is fitted by
Levenberg–Marquardt from a start read off its own data (the range for a and b, the
brightest pixel for μ, a fixed width), all at once with `jax.vmap` under one
`jax.jit`: one compiled program runs every fit, each with its own iterations and
its own `Solution.result`.

How good are the fits? For white noise of standard deviation σ the covariance of an
unbiased estimate is at least σ²(JᵀJ)⁻¹ at the truth (the Cramér–Rao bound), so the
errors divided by √diag of that matrix should look like a standard normal
distribution. The figure shows the fitted parameters against their true
distributions, and these normalised errors against N(0, 1).

The computation is float32, what such batches run in on accelerators; the default
tolerances for float32 (rtol = atol = 1e-5) apply.

Run:

    python examples/batched_peaks.py            # 5,000 peaks
    python examples/batched_peaks.py --smoke    # 300 peaks
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import finish, parse_args, timed

import quasinewton as qn

NUM_PIXELS = 32
NOISE = 1.0
NAMES = ("amplitude a", "centre μ", "width s", "background b")
# Uniform ranges the true parameters are drawn from.
LOW = np.array([8.0, 12.0, 1.5, 0.0], np.float32)
HIGH = np.array([40.0, 20.0, 3.5, 5.0], np.float32)


def peak(params, x):
    a, mu, s, b = params
    return a * jnp.exp(-0.5 * ((x - mu) / s) ** 2) + b


def residuals(params, data):
    x = jnp.arange(NUM_PIXELS, dtype=data.dtype)
    return peak(params, x) - data


def initial_guess(data):
    """A start from the data alone: range, brightest pixel, a typical width."""
    low, high = jnp.min(data), jnp.max(data)
    centre = jnp.argmax(data).astype(data.dtype)
    return jnp.stack([high - low, centre, jnp.asarray(2.5, data.dtype), low])


def cramer_rao_std(params):
    """√diag(σ²(JᵀJ)⁻¹) at `params`: the smallest standard deviations an unbiased
    estimate can have under white noise of standard deviation `NOISE`."""
    x = jnp.arange(NUM_PIXELS, dtype=params.dtype)
    jac = jax.jacfwd(peak)(params, x)
    return NOISE * jnp.sqrt(jnp.diag(jnp.linalg.inv(jac.T @ jac)))


def make_data(num_peaks: int, key):
    k_params, k_noise = jax.random.split(key)
    truth = jax.random.uniform(k_params, (num_peaks, 4), jnp.float32, LOW, HIGH)
    x = jnp.arange(NUM_PIXELS, dtype=jnp.float32)
    clean = jax.vmap(peak, in_axes=(0, None))(truth, x)
    return truth, clean + NOISE * jax.random.normal(k_noise, clean.shape, jnp.float32)


def main(argv=None) -> dict:
    opts = parse_args("batched_peaks", __doc__, argv)
    num_peaks = 300 if opts.smoke else 5000
    truth, data = make_data(num_peaks, jax.random.PRNGKey(0))

    @jax.jit
    def fit_all(data):
        def fit(d):
            return qn.least_squares(
                residuals, qn.LevenbergMarquardt(), initial_guess(d), d
            )

        return jax.vmap(fit)(data)

    sols, solve_s, compile_s = timed(fit_all, data, repeat=3)

    ok = np.asarray(sols.result == qn.RESULTS.successful)
    fitted, truth_np = np.asarray(sols.value), np.asarray(truth)
    bound = np.asarray(jax.vmap(cramer_rao_std)(truth))
    z = (fitted - truth_np) / bound
    steps = np.asarray(sols.stats["num_steps"])
    print(
        f"{num_peaks} Gaussian peaks × {NUM_PIXELS} pixels, float32, one vmapped LM solve"
    )
    print(
        f"  successful {int(ok.sum())} of {num_peaks}; LM steps per fit: median "
        f"{np.median(steps):.0f}, max {steps.max()}"
    )
    print(
        f"  compile {compile_s:.2f} s; then {solve_s:.3f} s for all "
        f"({num_peaks / solve_s:,.0f} fits/s)"
    )
    print("  parameter       std of (fitted − true)/Cramér–Rao bound   (1 is optimal)")
    z_std = np.std(z[ok], axis=0)
    z_mean = np.mean(z[ok], axis=0)
    for i, name in enumerate(NAMES):
        print(f"  {name:14s}  {z_std[i]:.3f}   (mean {z_mean[i]:+.3f})")

    fig, axes = plt.subplots(2, 4, figsize=(14, 6))
    grid = np.linspace(-4.5, 4.5, 200)
    for i, name in enumerate(NAMES):
        ax = axes[0, i]
        bins = np.linspace(
            LOW[i] - 0.15 * (HIGH[i] - LOW[i]), HIGH[i] + 0.15 * (HIGH[i] - LOW[i]), 40
        )
        ax.hist(truth_np[:, i], bins, histtype="step", color="0.5", lw=2, label="true")
        ax.hist(fitted[ok, i], bins, histtype="step", color="C0", label="fitted")
        ax.set_title(name)
        ax = axes[1, i]
        ax.hist(
            np.clip(z[ok, i], -4.5, 4.5),
            np.linspace(-4.5, 4.5, 46),
            density=True,
            color="C0",
            alpha=0.6,
        )
        ax.plot(
            grid,
            np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi),
            "k",
            lw=1,
            label="N(0, 1)",
        )
        ax.set_xlabel(f"error / Cramér–Rao σ   (std {z_std[i]:.2f})")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=8)
    axes[0, 0].set_ylabel("peaks")
    axes[1, 0].set_ylabel("density")
    fig.suptitle(
        f"{num_peaks:,} peaks fitted at once under jax.vmap: {int(ok.sum()):,} successful, "
        f"{solve_s:.2f} s after compilation"
    )
    fig.tight_layout()

    results = {
        "num_peaks": num_peaks,
        "num_successful": int(ok.sum()),
        "median_steps": float(np.median(steps)),
        "max_steps": int(steps.max()),
        "compile_s": compile_s,
        "solve_s": solve_s,
        "z_std": z_std.tolist(),
        "z_mean": z_mean.tolist(),
    }
    return finish(fig, results, opts)


if __name__ == "__main__":
    main()
