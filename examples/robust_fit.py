"""Robust fitting with error bars: a decay curve with outliers, plain and robust.

Each dataset is 40 samples of a decay on a background,

    model(t) = a·exp(−k t) + c,

with Gaussian noise of known standard deviation σ = 0.1 per point, as a counting
or spectroscopy experiment gives it, and 10 % of the points hit by glitches: a
positive offset drawn from 1–3 (10–30 σ). Each dataset is fitted twice with
`qn.least_squares(..., sigma=σ)`: with the plain sum of squares, and with the
robust `qn.loss.Cauchy(scale=3.0)` (in units of σ: residuals beyond about 3σ count
less and less). The error bars are the standard errors from `qn.covariance(sol,
absolute_sigma=True)`.

Are the error bars honest? Over a batch of datasets (fitted at once under
`jax.vmap`), the errors of the estimates divided by their standard errors should
have a standard deviation near 1 and about 95 % of them should lie within ±2. The
figure shows one dataset with both fits, and these normalised errors for the batch.

Run:

    python examples/robust_fit.py            # 2,000 datasets
    python examples/robust_fit.py --smoke    # 200 datasets
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import finish, parse_args, timed

import quasinewton as qn

jax.config.update("jax_enable_x64", True)

NUM_POINTS = 40
NOISE = 0.1
TRUTH = np.array([5.0, 0.8, 1.0])
NAMES = ("amplitude a", "rate k", "background c")
T = jnp.linspace(0.0, 6.0, NUM_POINTS)
START = jnp.array([3.0, 0.5, 0.0])


def decay(params, t):
    a, k, c = params
    return a * jnp.exp(-k * t) + c


def residuals(params, data):
    return decay(params, T) - data


def make_data(num_sets: int, key):
    """Clean curves plus noise of σ = 0.1, and glitches on 10 % of the points."""
    k_noise, k_hit, k_size = jax.random.split(key, 3)
    clean = decay(jnp.asarray(TRUTH), T)
    noise = NOISE * jax.random.normal(k_noise, (num_sets, NUM_POINTS))
    hit = jax.random.uniform(k_hit, (num_sets, NUM_POINTS)) < 0.1
    glitch = jax.random.uniform(k_size, (num_sets, NUM_POINTS), minval=1.0, maxval=3.0)
    return clean + noise + jnp.where(hit, glitch, 0.0), hit


def fit(data, loss):
    sol = qn.least_squares(
        residuals, qn.LevenbergMarquardt(), START, data, sigma=NOISE, loss=loss
    )
    cov = qn.covariance(sol, absolute_sigma=True)
    return sol, cov.standard_errors


def main(argv=None) -> dict:
    opts = parse_args("robust_fit", __doc__, argv)
    num_sets = 200 if opts.smoke else 2000
    data, hit = make_data(num_sets, jax.random.PRNGKey(0))

    @jax.jit
    def fit_plain(data):
        return jax.vmap(lambda d: fit(d, None))(data)

    @jax.jit
    def fit_robust(data):
        return jax.vmap(lambda d: fit(d, qn.loss.Cauchy(scale=3.0)))(data)

    (plain, plain_se), plain_s, compile_plain = timed(fit_plain, data)
    (robust, robust_se), robust_s, compile_robust = timed(fit_robust, data)
    compile_s, solve_s = compile_plain + compile_robust, plain_s + robust_s

    rows = {}
    for label, sol, se in (("plain", plain, plain_se), ("Cauchy", robust, robust_se)):
        ok = np.asarray(sol.result == qn.RESULTS.successful)
        z = (np.asarray(sol.value) - TRUTH) / np.asarray(se)
        rows[label] = {
            "successful": int(ok.sum()),
            "z": z[ok],
            "z_std": np.std(z[ok], axis=0).tolist(),
            "within_2": np.mean(np.abs(z[ok]) < 2, axis=0).tolist(),
            "rms_error": np.sqrt(
                np.mean((np.asarray(sol.value)[ok] - TRUTH) ** 2, axis=0)
            ).tolist(),
        }

    print(
        f"{num_sets} decays × {NUM_POINTS} points, σ = {NOISE}, 10 % glitches of "
        "10–30 σ; float64"
    )
    print(f"  compile {compile_s:.2f} s; both batches of fits {solve_s:.3f} s")
    for label, row in rows.items():
        print(f"  {label:6s}: {row['successful']} of {num_sets} successful")
        for i, name in enumerate(NAMES):
            print(
                f"    {name:13s} rms error {row['rms_error'][i]:.4f}; error/s.e.: "
                f"std {row['z_std'][i]:5.2f}, within ±2: {100 * row['within_2'][i]:5.1f} %"
            )

    example = 0
    one_plain, one_robust = plain[example], robust[example]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    ax = axes[0]
    d = np.asarray(data[example])
    h = np.asarray(hit[example])
    fine = jnp.linspace(0.0, 6.0, 200)
    ax.errorbar(np.asarray(T)[~h], d[~h], NOISE, fmt=".", color="0.3", label="data")
    ax.plot(np.asarray(T)[h], d[h], "x", color="C3", label="glitches")
    ax.plot(fine, decay(jnp.asarray(TRUTH), fine), "k--", lw=1, label="truth")
    ax.plot(fine, decay(one_plain.value, fine), "C1", label="plain fit")
    ax.plot(fine, decay(one_robust.value, fine), "C0", label="Cauchy fit")
    ax.set_xlabel("t")
    ax.legend(fontsize=8)
    ax.set_title("one dataset")
    grid = np.linspace(-6, 6, 200)
    for i, name in enumerate(NAMES):
        ax = axes[i + 1]
        bins = np.linspace(-6, 6, 49)
        for label, color in (("plain", "C1"), ("Cauchy", "C0")):
            z = np.clip(rows[label]["z"][:, i], -6, 6)
            ax.hist(z, bins, density=True, histtype="step", color=color, label=label)
        ax.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), "k", lw=1)
        ax.set_xlabel(f"(fitted − true) / standard error: {name}")
    axes[1].legend(fontsize=8)
    fig.suptitle(
        f"{num_sets:,} decays with glitches, each fitted plain and with a Cauchy "
        "loss; error bars from qn.covariance"
    )
    fig.tight_layout()

    results = {
        "num_sets": num_sets,
        "compile_s": compile_s,
        "solve_s": solve_s,
        **{
            f"{label}_{key}": row[key]
            for label, row in rows.items()
            for key in ("successful", "z_std", "within_2", "rms_error")
        },
    }
    return finish(fig, results, opts)


if __name__ == "__main__":
    main()
