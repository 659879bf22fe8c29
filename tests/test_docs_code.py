"""The code blocks of README.md and docs/: every one runs, and prints what the page
shows.

The conventions the pages follow, which this test enforces:

- **Every ```python block runs.** The blocks of a page run in order in one
  namespace, so a later block uses the names an earlier one defined. Each page runs
  in a fresh Python process: JAX's settings are global, so a page that enables
  float64 (`jax.config.update("jax_enable_x64", True)`) must not turn other pages or
  other tests to float64, and a page without that line must compute in float32,
  JAX's default, as a reader's session does (this pytest process has float64 on,
  see tests/conftest.py). With `QN_STRICT_DTYPE_PROMOTION=1` the page's process sets
  `jax_numpy_dtype_promotion="strict"`, as tests/conftest.py does in this one.
- **Output is shown by printing it.** A block that prints is followed directly
  (nothing but blank lines between) by a ```text block holding exactly what it
  printed, and a block without one must print nothing. A number that may differ in
  its last digits from one machine to another is printed rounded.
- **An HTML comment `<!-- docs-test: ... -->` just before a block** changes how it
  is tested:
  - `excerpt examples/NAME.py`: the block quotes an example script (the key code
    of an example page). Up to comments and layout, each of its pieces (the runs of
    lines between blank lines) must occur in the script, in the order of the
    excerpt. The script itself runs in tests/test_examples.py.
  - `separate (REASON)`: the block runs alone in a process of its own, outside the
    page's namespace (Getting started's float64 switch, which would otherwise turn
    the rest of that page, shown in float32, to float64).
  - `skip: REASON`: not run. No block needs it at present; keep it rare.
- **Other fences are not run**: `bash` blocks are shell commands (installing,
  `python3 run.py ...`, running an example script), a fence with no language holds
  a file layout, and ```text blocks are outputs or plain text. A fence in any other
  language fails the test, so that a Python block cannot escape it by being spelled
  `py` or `pycon`.

The extractor is a regular expression over fences rather than a plugin such as
pytest-markdown-docs or mktestdocs: those run the blocks inside the pytest process
(where float64 is on, and where a page's `jax_enable_x64` would leak into other
tests) and do not compare what a block prints with what the page shows.

The structure of the pages and the excerpts are checked by default; running the
pages compiles and runs every solve they show, and is marked `slow`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import tokenize
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# A fenced block, possibly indented (in a list item); `info` is what follows ```.
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$",
    re.MULTILINE | re.DOTALL,
)
# A `docs-test` comment, the last thing before a fence.
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<marker>.*?)\s*-->\s*\Z", re.DOTALL)
LANGUAGES_NOT_RUN = {"bash", "text", ""}
KINDS = {"run", "excerpt", "separate", "skip"}


@dataclasses.dataclass
class Block:
    """A ```python block: where it is, its code, what the page shows it printing
    (`None` when no ```text block follows it), and its `docs-test` marker (`""`
    if none)."""

    page: str
    line: int
    code: str
    shown: str | None
    marker: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        """`run` (no marker), or the marker's first word."""
        return self.marker.split(maxsplit=1)[0].rstrip(":") if self.marker else "run"


def _fences(page: Path) -> tuple[str, list[re.Match]]:
    text = page.read_text(encoding="utf-8")
    return text, list(FENCE.finditer(text))


def _line(text: str, fence: re.Match) -> int:
    return text.count("\n", 0, fence.start()) + 1


def _language(fence: re.Match) -> str:
    return fence["info"].split()[0] if fence["info"].strip() else ""


def _body(fence: re.Match) -> str:
    lines = fence["body"].splitlines(keepends=True)
    return "".join(line.removeprefix(fence["indent"]) for line in lines)


def python_blocks(page: Path) -> list[Block]:
    """The ```python blocks of `page` in order, each with the ```text block that
    follows it directly as its shown output."""
    text, fences = _fences(page)
    blocks = []
    for i, fence in enumerate(fences):
        if _language(fence) != "python":
            continue
        marker = MARKER.search(text[fences[i - 1].end() if i else 0 : fence.start()])
        shown = None
        if i + 1 < len(fences):
            following = fences[i + 1]
            between = text[fence.end() : following.start()]
            if _language(following) == "text" and not between.strip():
                shown = _body(following)
        blocks.append(
            Block(
                page=str(page.relative_to(ROOT)),
                line=_line(text, fence),
                code=_body(fence),
                shown=shown,
                marker=marker["marker"] if marker else "",
            )
        )
    return blocks


BLOCKS = [block for page in PAGES for block in python_blocks(page)]


def test_every_fence_is_python_or_a_language_that_is_not_run():
    unknown = []
    for page in PAGES:
        text, fences = _fences(page)
        unknown += [
            f"{page.relative_to(ROOT)}:{_line(text, fence)}: ```{_language(fence)}"
            for fence in fences
            if _language(fence) not in LANGUAGES_NOT_RUN | {"python"}
        ]
    assert not unknown, (
        "fences in a language this test neither runs nor knows to leave alone "
        f"(Python is spelled ```python): {unknown}"
    )


def test_every_block_is_run_quoted_or_skipped_for_a_reason():
    assert len(BLOCKS) >= 25, "the extractor lost some of the docs' Python blocks"
    for block in BLOCKS:
        assert block.kind in KINDS, f"{block.where}: unknown marker {block.marker!r}"
        if block.kind == "skip":
            assert block.marker.removeprefix("skip").strip(": "), (
                f"{block.where}: `skip` needs a reason"
            )
        if block.kind == "excerpt":
            assert block.shown is None, f"{block.where}: an excerpt shows no output"


# ----------------------------------------------------------------------- excerpts


def _code_tokens(source: str) -> list[str]:
    """The tokens of `source` that carry code: no comments, line breaks or
    indentation, and no comma just before a closing bracket (a formatter adds or
    drops it with the layout)."""
    layout = {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    }
    readline = io.StringIO(source).readline
    tokens = [
        t.string for t in tokenize.generate_tokens(readline) if t.type not in layout
    ]
    return [
        token
        for token, after in zip(tokens, [*tokens[1:], ""])
        if not (token == "," and after in {")", "]", "}"})
    ]


def _pieces(code: str) -> list[str]:
    """`code` split at blank lines into dedented pieces, leaving out pieces that
    are comments only."""
    pieces = [textwrap.dedent(piece) for piece in re.split(r"\n[ \t]*\n", code)]
    return [piece for piece in pieces if _code_tokens(piece)]


EXCERPTS = [block for block in BLOCKS if block.kind == "excerpt"]


@pytest.mark.parametrize("block", EXCERPTS, ids=[b.where for b in EXCERPTS])
def test_excerpt_quotes_its_script(block):
    script = ROOT / block.marker.split(maxsplit=1)[1]
    assert script.is_file(), f"{block.where}: no script {script}"
    # Tokens between separators that no token holds, so that matches are of whole
    # tokens.
    sep = "\x00"
    source = sep + sep.join(_code_tokens(script.read_text("utf-8"))) + sep
    position = 0
    for piece in _pieces(block.code):
        wanted = sep + sep.join(_code_tokens(piece)) + sep
        found = source.find(wanted, position)
        assert found >= 0, (
            f"{block.where}: this piece of the excerpt is not in {script.name} "
            f"(after the excerpt's previous piece):\n{piece}"
        )
        position = found + len(wanted) - 1


# ----------------------------------------------------------------- running pages


def _runs(page: Path) -> list[list[Block]]:
    """The groups of blocks of `page` that share a process: the page's blocks, and
    each `separate` block on its own."""
    blocks = python_blocks(page)
    together = [b for b in blocks if b.kind == "run"]
    alone = [[b] for b in blocks if b.kind == "separate"]
    return ([together] if together else []) + alone


RUNS = [run for page in PAGES for run in _runs(page)]


def run_blocks(blocks: list[tuple[str, str]]) -> list[dict]:
    """Run the `(where, code)` blocks in order in one namespace: for each, what it
    printed and, if it raised, the traceback (the blocks after one that raised are
    not run)."""
    import jax

    if os.environ.get("QN_STRICT_DTYPE_PROMOTION") == "1":
        jax.config.update("jax_numpy_dtype_promotion", "strict")
    namespace = {"__name__": "__main__"}
    results = []
    for where, code in blocks:
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, where, "exec"), namespace)
        except Exception:
            results.append(
                {"printed": printed.getvalue(), "error": traceback.format_exc()}
            )
            break
        results.append({"printed": printed.getvalue(), "error": None})
    return results


def _tidy(text: str) -> str:
    """`text` without trailing spaces on its lines or blank lines at its ends."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


# Long (every solve the pages show, compiled; a process per page):
# run by CI and by `python3 run.py test -m slow`.
@pytest.mark.slow
@pytest.mark.parametrize("blocks", RUNS, ids=[run[0].where for run in RUNS])
def test_page_runs_and_prints_what_it_shows(blocks, tmp_path):
    import quasinewton

    # The page's process imports the quasinewton this process tests.
    package_root = str(Path(quasinewton.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, __file__],
        input=json.dumps([(block.where, block.code) for block in blocks]),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=path),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout.splitlines()[-1])
    for block, result in zip(blocks, results):
        assert result["error"] is None, f"{block.where} raised:\n{result['error']}"
        printed, shown = _tidy(result["printed"]), _tidy(block.shown or "")
        assert printed == shown, (
            f"{block.where} printed\n{printed}\n\nbut the page shows\n{shown}"
        )


if __name__ == "__main__":
    # The process of one page: the blocks as JSON on stdin, what they printed as
    # JSON on the last line of stdout.
    print(json.dumps(run_blocks(json.loads(sys.stdin.read()))))
