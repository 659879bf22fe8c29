"""Matrix-free Gauss–Newton: deblurring a photon-counting image with preconditioned CG.

The truth is a grey-scale photograph (Matplotlib's sample of Grace Hopper) of N×N
pixels with values in [0, 1]. A detector records photon counts: the image blurred
by a Gaussian point-spread function (σ = 1.5 px, periodic boundary, applied by FFT),
scaled to 1,000 photons at full brightness, plus a background of 5, with Poisson
noise. The unknowns are the N² pixel values x, and the residuals are

    r(x) = [ (I₀·blur(x) + b − counts) / √max(counts, 1) ,  w·ψ(Dᵥx) ,  w·ψ(Dₕx) ]:

each pixel's misfit divided by its own noise level (Poisson: the standard deviation
is the square root of the count), and an edge-preserving smoothness term with ψ the
pseudo-Huber function of the vertical and horizontal pixel differences. ψ makes the
problem nonlinear, and the weights make it badly scaled: a dark pixel (few counts,
small noise) weighs far more than a bright one, so the diagonal of JᵀJ spans orders
of magnitude. That is what Jacobi preconditioning corrects.

J is never formed: `qn.LevenbergMarquardtCG` solves each step (JᵀJ + λI)p = −Jᵀr
by conjugate gradients on Jacobian-vector products. It runs with its default
preconditioner (Jacobi from a randomised estimate of diag(JᵀJ)) and without one.
At the solution `qn.diagnostics.max_eigenvalue` gives λmax(JᵀJ) by power iteration
and `qn.diagnostics.jtj_diagonal` the spread of diag(JᵀJ); since every diagonal
entry is a Rayleigh quotient, λmax / min diag(JᵀJ) is a lower bound on the condition
number of JᵀJ.

Float32, the usual precision for imaging.

Run:

    python examples/matrix_free_deblur.py            # N = 256: 65,536 unknowns
    python examples/matrix_free_deblur.py --smoke    # N = 32
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import finish, parse_args, result_name, termination_name, timed
from matplotlib import cbook

import quasinewton as qn

PSF_SIGMA = 1.5  # pixels
PHOTONS = 1000.0  # counts at full brightness
BACKGROUND = 5.0  # counts
WEIGHT = 10.0  # w, the weight of the smoothness term
DELTA = 0.05  # pseudo-Huber threshold on pixel differences


def load_truth(size: int) -> np.ndarray:
    """The sample photograph in grey, a centred square crop averaged down."""
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        image = plt.imread(f).astype(np.float64).mean(axis=2) / 255.0
    h, w = image.shape
    side = min(h, w) // size * size
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top : top + side, left : left + side]
    block = side // size
    return crop.reshape(size, block, size, block).mean(axis=(1, 3))


def psf_transfer(size: int) -> np.ndarray:
    """The FFT of the periodic Gaussian point-spread function (real, as it is even)."""
    k = np.fft.fftfreq(size)
    one_d = np.exp(-2 * (np.pi * PSF_SIGMA * k) ** 2)
    return np.outer(one_d, one_d[: size // 2 + 1])


def blur(x, transfer):
    return jnp.fft.irfft2(jnp.fft.rfft2(x) * transfer, s=x.shape)


def pseudo_huber(t):
    """ψ(t), with ψ(t)² = 2δ²(√(1 + (t/δ)²) − 1): ≈ t² for |t| ≪ δ, ≈ 2δ|t| beyond."""
    return t * jnp.sqrt(2.0 / (1.0 + jnp.sqrt(1.0 + (t / DELTA) ** 2)))


def residuals(x, args):
    counts, transfer = args
    expected = PHOTONS * blur(x, transfer) + BACKGROUND
    return (
        (expected - counts) / jnp.sqrt(jnp.maximum(counts, 1.0)),
        WEIGHT * pseudo_huber(jnp.diff(x, axis=0)),
        WEIGHT * pseudo_huber(jnp.diff(x, axis=1)),
    )


def main(argv=None) -> dict:
    opts = parse_args("matrix_free_deblur", __doc__, argv)
    size = 32 if opts.smoke else 256
    truth = load_truth(size)
    transfer = psf_transfer(size)
    rng = np.random.default_rng(0)
    clean = (
        PHOTONS * np.fft.irfft2(np.fft.rfft2(truth) * transfer, s=truth.shape)
        + BACKGROUND
    )
    counts = rng.poisson(np.maximum(clean, 0)).astype(np.float32)
    args = (jnp.asarray(counts), jnp.asarray(transfer, jnp.float32))
    # Start from the observation, brought back to the image's units.
    x0 = jnp.asarray(np.clip((counts - BACKGROUND) / PHOTONS, 0.0, None), jnp.float32)
    n = size * size
    m = n + 2 * size * (size - 1)
    print(
        f"Deblurring {size}×{size}: {n:,} unknowns, {m:,} residuals, float32, J never formed"
    )

    def rel_error(x):
        return float(
            np.linalg.norm(np.asarray(x, np.float64) - truth) / np.linalg.norm(truth)
        )

    print(f"  observation (rescaled): relative error {rel_error(x0):.4f}")
    runs = [
        ("Jacobi (estimated diag JᵀJ)", qn.LevenbergMarquardtCG()),
        ("no preconditioner", qn.LevenbergMarquardtCG(preconditioner=None)),
    ]
    rows = []
    for label, solver in runs:

        @jax.jit
        def solve(x0, solver=solver):
            return qn.least_squares(
                residuals, solver, x0, args, history=True, throw=False
            )

        sol, seconds, compile_s = timed(solve, x0)
        steps = int(sol.stats["num_steps"])
        row = {
            "label": label,
            "result": result_name(sol.result),
            "termination": termination_name(sol.stats["termination"]),
            "steps": steps,
            "accepted": int(sol.stats["num_accepted_steps"]),
            "cg": int(sol.stats["num_linear_steps"]),
            "jac_evals": int(sol.stats["num_jac_evals"]),
            "cost": float(sol.stats["value"]),
            "rel_error": rel_error(sol.value),
            "seconds": seconds,
            "compile_s": compile_s,
            "history": np.asarray(sol.stats["loss_history"])[: steps + 1],
            "x": np.asarray(sol.value),
        }
        rows.append(row)
        print(
            f"  {label}: {row['result']} ({row['termination']}), {steps} LM iterations "
            f"({row['accepted']} accepted), {row['cg']} CG iterations, ½‖r‖² = "
            f"{row['cost']:.6g}, relative error {row['rel_error']:.4f}, "
            f"{seconds:.2f} s (compile {compile_s:.1f} s)"
        )

    best = rows[0]
    lam_max, power_its = jax.jit(
        lambda x: qn.diagnostics.max_eigenvalue(residuals, x, args, max_iterations=500)
    )(jnp.asarray(best["x"]))
    diag = jax.jit(
        lambda x: qn.diagnostics.jtj_diagonal(residuals, x, args, num_probes=64)
    )(jnp.asarray(best["x"]))
    diag = np.asarray(diag)
    lam_max = float(lam_max)
    print(
        f"  at the solution: λmax(JᵀJ) = {lam_max:.4g} ({int(power_its)} power iterations); "
        f"diag(JᵀJ) from {diag.min():.4g} to {diag.max():.4g}; so cond(JᵀJ) ≥ "
        f"{lam_max / diag.min():.3g}"
    )

    fig, axes = plt.subplots(
        1, 4, figsize=(16, 4.2), gridspec_kw={"width_ratios": [1, 1, 1, 1.4]}
    )
    images = [
        ("truth", truth),
        (f"observed counts (error {rel_error(x0):.3f})", counts),
        (f"reconstruction (error {best['rel_error']:.3f})", best["x"]),
    ]
    for ax, (title, image) in zip(axes, images):
        ax.imshow(image, cmap="gray")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    ax = axes[3]
    for row, colour in zip(rows, ("C2", "C3")):
        ax.semilogy(
            row["history"] - min(r["cost"] for r in rows) * (1 - 1e-6),
            color=colour,
            label=f"{row['label']}: {row['steps']} LM its, {row['cg']} CG its".replace(
                "JᵀJ", "$J^TJ$"
            ),
        )
    ax.set_xlabel("LM iteration")
    ax.set_ylabel("½‖r‖² − min")
    ax.legend(fontsize=8)
    ax.set_title(
        f"λmax($J^TJ$) = {lam_max:.3g}, cond($J^TJ$) ≥ {lam_max / diag.min():.2g}",
        fontsize=10,
    )
    fig.tight_layout()

    results = {
        "size": size,
        "observed_rel_error": rel_error(x0),
        "runs": [
            {k: v for k, v in r.items() if k not in ("history", "x")} for r in rows
        ],
        "lambda_max": lam_max,
        "power_iterations": int(power_its),
        "diag_min": float(diag.min()),
        "diag_max": float(diag.max()),
    }
    return finish(fig, results, opts)


if __name__ == "__main__":
    main()
