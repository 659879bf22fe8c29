"""Multi-view pose alignment, as in tomography: why the scale of the unknowns matters.

A tilt series images the same specimen from many directions. Gold beads (fiducial
markers) at known 3-D positions inside a slab are tracked in every view, and each
view's pose must be recovered: an in-plane rotation ψ and a tilt error δ (radians,
typically 0.01–0.1) and a shift (tx, ty) (pixels, typically 10–100), plus one
magnification shared by all views. The projection of marker X in view v, nominally
tilted by θᵥ about the y axis, is

    p = m · R(ψᵥ) · P · Rʸ(θᵥ + δᵥ) · X + tᵥ,

P dropping the depth coordinate; the residuals are p minus the tracked positions
(noise 0.5 px), for every marker in every view.

The unknowns live on very different scales: a change of 0.01 rad in an angle moves a
marker 400 px from the tilt axis by 4 px, a change of 0.01 px in a shift moves it
by 0.01 px, and the magnification acts on every marker in every view. The columns of
the Jacobian therefore differ by a factor of about 400 (their squared norms, the
diagonal of JᵀJ, by 10⁵ and more), and methods that treat all unknowns alike pay for
it. Compared, from the same start (all angles and shifts zero, magnification 1):

- `qn.LevenbergMarquardt` with the damping D = I (`scaling="identity"`) and with
  Marquardt's D = diag(JᵀJ) (`scaling="marquardt"`);
- `qn.LevenbergMarquardtCG` (matrix-free, conjugate gradients on JᵀJ + λD) with no
  preconditioner and with `qn.linear.Jacobi` (exact diagonal, and the default
  randomised estimate);
- `qn.LBFGS` on the raw unknowns, and on the unknowns multiplied by √diag(JᵀJ) at the
  start (estimated with `qn.diagnostics.jtj_diagonal`), a change of variables that
  makes every column of the Jacobian about as long.

`--smoke` runs two of the seven: matrix-free LM with exact Jacobi, scaled L-BFGS.

Run (float64, well under a minute):

    python examples/pose_alignment.py            # 41 views × 40 markers
    python examples/pose_alignment.py --smoke    # 11 views × 12 markers
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import finish, parse_args, result_name, termination_name, timed

import quasinewton as qn

jax.config.update("jax_enable_x64", True)

FIELD = 400.0  # half-width of the field of view, pixels
NOISE = 0.5  # tracking error, pixels
MAX_STEPS = 400


def make_problem(num_views: int, num_markers: int, key):
    """Nominal tilts, marker positions, true poses and the tracked 2-D positions."""
    k = jax.random.split(key, 6)
    tilts = jnp.deg2rad(jnp.linspace(-60.0, 60.0, num_views))
    markers = jnp.concatenate(
        [
            jax.random.uniform(k[0], (num_markers, 2), minval=-FIELD, maxval=FIELD),
            jax.random.uniform(k[1], (num_markers, 1), minval=-80.0, maxval=80.0),
        ],
        axis=1,
    )
    truth = {
        "angles": jnp.stack(
            [
                0.05 * jax.random.normal(k[2], (num_views,)),  # in-plane rotation ψ
                0.01 * jax.random.normal(k[3], (num_views,)),  # tilt error δ
            ],
            axis=1,
        ),
        "shifts": jax.random.uniform(k[4], (num_views, 2), minval=-80.0, maxval=80.0),
        "magnification": jnp.array(1.02),
    }
    geometry = (tilts, markers)
    clean = project(truth, geometry)
    return geometry, truth, clean + NOISE * jax.random.normal(k[5], clean.shape)


def project(pose, geometry):
    """Marker positions (views, markers, 2) in pixels for `pose`."""
    tilts, markers = geometry
    psi, delta = pose["angles"][:, 0], pose["angles"][:, 1]
    tilt = tilts + delta
    x, y, z = markers[:, 0], markers[:, 1], markers[:, 2]
    # Tilt about the y axis and drop depth: (x cos t + z sin t, y).
    u = x[None, :] * jnp.cos(tilt)[:, None] + z[None, :] * jnp.sin(tilt)[:, None]
    v = jnp.broadcast_to(y[None, :], u.shape)
    c, s = jnp.cos(psi)[:, None], jnp.sin(psi)[:, None]
    m = pose["magnification"]
    px = m * (c * u - s * v) + pose["shifts"][:, 0:1]
    py = m * (s * u + c * v) + pose["shifts"][:, 1:2]
    return jnp.stack([px, py], axis=-1)


def residuals(pose, args):
    geometry, observed = args
    return project(pose, geometry) - observed


def scaled(fn, scale):
    """`fn` in the unknowns z = scale ⊙ y (leaf by leaf)."""

    def fn_z(z, args):
        return fn(jax.tree.map(jnp.divide, z, scale), args)

    return fn_z


def tex(label: str) -> str:
    """A label for Matplotlib, whose default font lacks the superscript T."""
    return label.replace("JᵀJ", "$J^TJ$")


def main(argv=None) -> dict:
    opts = parse_args("pose_alignment", __doc__, argv)
    num_views, num_markers = (11, 12) if opts.smoke else (41, 40)
    geometry, truth, observed = make_problem(
        num_views, num_markers, jax.random.PRNGKey(0)
    )
    args = (geometry, observed)
    start = {
        "angles": jnp.zeros((num_views, 2)),
        "shifts": jnp.zeros((num_views, 2)),
        "magnification": jnp.array(1.0),
    }
    n, m = 4 * num_views + 1, observed.size
    diag = qn.diagnostics.jtj_diagonal(residuals, start, args, num_probes=64)
    scale = jax.tree.map(jnp.sqrt, diag)
    spread = {name: float(jnp.median(leaf)) for name, leaf in diag.items()}
    print(
        f"{num_views} views × {num_markers} markers: {n} unknowns, {m} residuals (float64)"
    )
    print(
        "  median diag(JᵀJ): angles {angles:.3g}, shifts {shifts:.3g}, "
        "magnification {magnification:.3g}".format(**spread)
    )

    # (label, residual function, start, solver)
    runs = [
        ("LM, D = I", residuals, start, qn.LevenbergMarquardt()),
        (
            "LM, D = diag(JᵀJ)",
            residuals,
            start,
            qn.LevenbergMarquardt(scaling="marquardt"),
        ),
        (
            "LM-CG, no preconditioner",
            residuals,
            start,
            qn.LevenbergMarquardtCG(preconditioner=None),
        ),
        (
            "LM-CG, Jacobi (exact)",
            residuals,
            start,
            qn.LevenbergMarquardtCG(preconditioner=qn.linear.Jacobi("exact")),
        ),
        ("LM-CG, Jacobi (estimated)", residuals, start, qn.LevenbergMarquardtCG()),
        ("L-BFGS, raw unknowns", residuals, start, qn.LBFGS()),
        (
            "L-BFGS, scaled unknowns",
            scaled(residuals, scale),
            jax.tree.map(jnp.multiply, start, scale),
            qn.LBFGS(),
        ),
    ]
    if opts.smoke:
        runs = runs[3::3]
    rows = []
    print(
        f"  {'solver':28s} {'result':18s} {'steps':>5s} {'evals':>5s} {'CG its':>6s} "
        f"{'½‖r‖²':>9s} {'angle err':>9s} {'shift err':>9s} {'time':>7s}"
    )
    for label, fn, y0, solver in runs:

        @jax.jit
        def solve(y0, fn=fn, solver=solver):
            return qn.least_squares(
                fn, solver, y0, args, max_steps=MAX_STEPS, history=True, throw=False
            )

        sol, seconds, _ = timed(solve, y0, repeat=3)
        pose = dict(sol.value)
        if label.endswith("scaled unknowns"):
            pose = jax.tree.map(jnp.divide, pose, scale)
        angle_err = float(jnp.sqrt(jnp.mean((pose["angles"] - truth["angles"]) ** 2)))
        shift_err = float(jnp.sqrt(jnp.mean((pose["shifts"] - truth["shifts"]) ** 2)))
        row = {
            "label": label,
            "result": result_name(sol.result),
            "termination": termination_name(sol.stats["termination"]),
            "steps": int(sol.stats["num_steps"]),
            "evals": int(sol.stats["num_fn_evals"]),
            "cg": int(sol.stats["num_linear_steps"]),
            "cost": float(sol.stats["value"]),
            "angle_rms": angle_err,
            "shift_rms": shift_err,
            "magnification": float(pose["magnification"]),
            "seconds": seconds,
            "history": np.asarray(sol.stats["loss_history"])[
                : int(sol.stats["num_steps"]) + 1
            ],
        }
        rows.append(row)
        print(
            f"  {label:28s} {row['result'] + ' (' + row['termination'] + ')':18s} "
            f"{row['steps']:5d} {row['evals']:5d} {row['cg']:6d} {row['cost']:9.4g} "
            f"{angle_err * 1e3:6.3f} mrad {shift_err:6.3f} px {seconds * 1e3:5.0f} ms"
        )
    noise_floor = 0.5 * NOISE**2 * (m - n)
    print(f"  expected ½‖r‖² at the solution ≈ ½σ²(m − n) = {noise_floor:.4g}")

    fig, axes = plt.subplots(
        1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1.6, 1]}
    )
    ax = axes[0]
    styles = {
        "LM, D = I": ("-", "C0"),
        "LM, D = diag(JᵀJ)": ("--", "C0"),
        "LM-CG, no preconditioner": ("-", "C3"),
        "LM-CG, Jacobi (exact)": ("-", "C2"),
        "LM-CG, Jacobi (estimated)": ("--", "C2"),
        "L-BFGS, raw unknowns": ("-", "C1"),
        "L-BFGS, scaled unknowns": ("--", "C1"),
    }
    for row in rows:
        ls, colour = styles[row["label"]]
        ax.semilogy(
            row["history"], ls=ls, color=colour, lw=1.6, label=tex(row["label"])
        )
    ax.axhline(noise_floor, color="0.5", lw=0.8, ls=":", label="½σ²(m − n)")
    ax.set_xlabel("iteration (one evaluation each)")
    ax.set_ylabel("½‖r‖²")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(left=0)
    ax.legend(fontsize=7.5, loc="center", bbox_to_anchor=(0.68, 0.42))
    ax.set_title("cost against iteration, from the same start")
    ax = axes[1]
    cg_rows = [r for r in rows if r["label"].startswith("LM-CG")]
    labels = [r["label"].replace("LM-CG, ", "") for r in cg_rows]
    bars = ax.barh(
        labels,
        [r["cg"] for r in cg_rows],
        color=[styles[r["label"]][1] for r in cg_rows],
    )
    for bar, r in zip(bars, cg_rows):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f"  {r['cg']} CG its, {r['steps']} LM steps, {r['result']}",
            va="center",
            fontsize=8,
        )
    ax.set_xlabel("total CG iterations (matrix-free LM)")
    ax.set_xlim(0, 1.9 * max(r["cg"] for r in cg_rows))
    ax.invert_yaxis()
    fig.suptitle(
        f"Pose alignment: {num_views} views × {num_markers} markers, {n} unknowns"
    )
    fig.tight_layout()

    results = {
        "num_views": num_views,
        "num_markers": num_markers,
        "diag_median": spread,
        "noise_floor": noise_floor,
        "runs": [{k: v for k, v in r.items() if k != "history"} for r in rows],
    }
    return finish(fig, results, opts)


if __name__ == "__main__":
    main()
