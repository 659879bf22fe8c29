"""The examples in examples/ run at their smallest size (`--smoke`), write their
figure, and get the answers they claim: each script is run in a subprocess (so its
own precision settings apply) and its results are read back from `--results`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Long (each example end to end at its smoke size):
# run by CI and by `python3 run.py test -m slow`.
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def check_ode_lotka_volterra(r):
    assert r["result"] == "successful"
    # 15 noisy times: every quantity within 10 % (the fit's 1σ is 2–4 %).
    assert max(abs(e) for e in r["rel_error"]) < 0.1
    assert r["starts_same_fit"] >= 1


def check_batched_peaks(r):
    assert r["num_successful"] == r["num_peaks"]
    # Errors in units of the Cramér–Rao bound: a standard deviation near 1.
    assert all(0.75 < s < 1.3 for s in r["z_std"])


def check_robust_fit(r):
    assert r["plain_successful"] == r["Cauchy_successful"] == r["num_sets"]
    # Robust error bars cover the truth about 95 % of the time (each of a, k, c),
    # the plain fit's far less often; the robust fit is the more accurate.
    assert all(0.9 < w < 0.99 for w in r["Cauchy_within_2"])
    assert all(w < 0.5 for w in r["plain_within_2"])
    assert all(
        c < p / 2
        for c, p in zip(r["Cauchy_rms_error"], r["plain_rms_error"], strict=True)
    )


def check_gaussian_image(r):
    last = r["table"][-1]
    assert last[1] > r["start_psnr"] + 2  # L-BFGS
    assert last[2] > r["start_psnr"] + 2  # Adam


def check_pose_alignment(r):
    for run in r["runs"]:
        assert run["result"] == "successful", run
        assert run["angle_rms"] < 3e-3 and run["shift_rms"] < 0.5, run
    assert abs(r["runs"][0]["cost"] - r["noise_floor"]) < 0.5 * r["noise_floor"]


def check_matrix_free_deblur(r):
    for run in r["runs"]:
        assert run["result"] == "successful", run
        assert run["rel_error"] < r["observed_rel_error"], run
        assert run["cg"] > 0
    # Every diagonal entry of JᵀJ is a Rayleigh quotient, so at most λmax (up to
    # the randomised estimate's error).
    assert r["lambda_max"] >= 0.8 * r["diag_max"]


CHECKS = {
    name.removeprefix("check_"): fn
    for name, fn in globals().items()
    if name.startswith("check_")
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_smoke(name, tmp_path):
    png, results = tmp_path / f"{name}.png", tmp_path / f"{name}.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / f"{name}.py"),
            "--smoke",
            "--out",
            str(png),
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert png.stat().st_size > 10_000
    CHECKS[name](json.loads(results.read_text()))


def test_every_example_is_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts - {"demo"} == set(CHECKS)  # demo: test_demo_prints_what_it_claims


def test_demo_prints_what_it_claims():
    """`python3 run.py demo` (examples/demo.py): Rosenbrock solved, the decay fit
    near its truth (2.5, 1.3, 0.5; noise 0.05 on 50 points gives errors of a few
    hundredths), and of 10⁴ fits all but the NaN dataset successful."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "solution   [1. 1.]" in out
    assert out.count("result     successful") == 1
    fitted = out.split("fitted     ")[1].split("(truth")[0]
    values = [float(part.split("=")[1].strip(" ,")) for part in fitted.split(",")]
    assert all(abs(v - t) < 0.1 for v, t in zip(values, (2.5, 1.3, 0.5)))
    assert "successful 9999 of 10000; dataset 7 reports RESULTS.nonfinite: True" in out
