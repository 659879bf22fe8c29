"""The documentation site: every public name has an API entry, and the site builds.

(a) runs everywhere; (b) builds the site with `mkdocs build --strict` and is skipped
unless the `docs` extra is installed (`pip install -e ".[docs]"`).
"""

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import quasinewton as qn

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)


def _documented() -> dict[str, Path]:
    """Every identifier named in a `::: identifier` directive under docs/."""
    found = {}
    for page in sorted(DOCS.rglob("*.md")):
        for name in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            found.setdefault(name, Path("docs") / page.relative_to(DOCS))
    return found


def _public_names() -> list[str]:
    """Fully qualified public names: the `__all__` of the package and of its
    subpackages, and the public functions of `qn.diagnostics`."""
    names = [f"quasinewton.{n}" for n in qn.__all__]
    for sub in (
        qn.curvature,
        qn.descent,
        qn.evaluation,
        qn.linear,
        qn.loss,
        qn.problem,
        qn.termination,
    ):
        names += [f"{sub.__name__}.{n}" for n in sub.__all__]
    diagnostics = qn.diagnostics
    public = getattr(diagnostics, "__all__", None)
    if public is None:
        public = [
            n
            for n, obj in vars(diagnostics).items()
            if not n.startswith("_")
            and inspect.isfunction(obj)
            and obj.__module__ == diagnostics.__name__
        ]
    names += [f"{diagnostics.__name__}.{n}" for n in public]
    return names


def _resolve(path: str):
    module_name, _, rest = path.partition(".")
    obj = importlib.import_module(module_name)
    for part in rest.split(".") if rest else []:
        obj = getattr(obj, part)
    return obj


def test_every_public_name_has_an_api_entry():
    documented = _documented()
    public = _public_names()
    assert "quasinewton.diagnostics.max_eigenvalue" in public
    assert "quasinewton.diagnostics.jtj_diagonal" in public
    missing = [name for name in public if name not in documented]
    assert not missing, (
        "public names without a `::: name` directive under docs/ (add each to the "
        f"matching page in docs/api/): {missing}"
    )


def test_every_api_entry_names_a_real_object():
    stale = []
    for name, page in _documented().items():
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            stale.append(f"{name} ({page})")
    assert not stale, f"`::: ` directives naming nothing importable: {stale}"


_DOCS_MODULES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def _missing_docs_tools() -> list[str]:
    missing = []
    for module in _DOCS_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                missing.append(module)
        except ModuleNotFoundError:
            missing.append(module)
    return missing


@pytest.mark.skipif(
    bool(_missing_docs_tools()),
    reason=f"docs tools not installed ({', '.join(_missing_docs_tools())}); "
    "install them with pip install -e '.[docs]'",
)
def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{output[-5000:]}"
    # The API pages rendered entries with anchors for autorefs.
    solve = (site / "api" / "solve" / "index.html").read_text(encoding="utf-8")
    assert 'id="quasinewton.minimise"' in solve
    assert 'id="quasinewton.least_squares"' in solve
    curvature = (site / "api" / "curvature" / "index.html").read_text(encoding="utf-8")
    # Equinox modules get their constructor arguments (docs/_ext/griffe_equinox.py).
    assert "memory_size" in curvature
