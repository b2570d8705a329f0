"""The user documents, README.md and docs/*.md: their snippets run, their links hold.

Every ```python block runs as written, in a fresh namespace, unless the line
before it is a ``<!-- not run: reason -->`` comment. A block indented in a
list item runs dedented. Snippets that import timm or torchvision take the
conftest fixtures of those names, so they skip where those are missing. The
snippets run on the PyTorch backend: under TRITON_INTERPRET=1 the
interpreter would take minutes over their full-size activations, and the
kernels have their own tests.

The README's two commands (the demo's and the tests', which ``.ci/run``
runs) stay under their markers and name extras and a command that exist.
"""

import re
import textwrap
from pathlib import Path

import pytest

from elu_triton.backends import use_backend

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = "<!-- not run"
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


def _fenced_blocks(path: Path) -> list[tuple[int, str, str, str]]:
    """Each fenced block of a Markdown file: (line number, language, code, line before)."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, language = opening.groups()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        code = textwrap.dedent("\n".join(lines[i + 1 : end]))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        blocks.append((i + 1, language, code, before.strip()))
        i = end + 1
    return blocks


def _snippets() -> list:
    return [
        pytest.param(code, id=f"{path.relative_to(ROOT)}:{line}")
        for path in DOCUMENTS
        for line, language, code, before in _fenced_blocks(path)
        if language == "python" and not before.startswith(NOT_RUN)
    ]


def test_the_documents_have_snippets():
    assert len(_snippets()) >= 6  # a parser that finds none would pass every test below


@pytest.mark.parametrize("code", _snippets())
def test_snippet_runs(code, request):
    for package in ("timm", "torchvision"):
        if re.search(rf"^\s*(import|from) .*\b{package}\b", code, re.MULTILINE):
            request.getfixturevalue(package)  # skips where it is missing
    with use_backend("torch"):
        exec(compile(code, "<snippet>", "exec"), {"__name__": "__snippet__"})


def _command_after(marker: str) -> str:
    """The first line of the first ```bash block after the marker, as .ci/run reads it."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```bash"))
    return lines[fence + 1]


def _check_extras_exist(command: str) -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    (requested,) = re.findall(r'-e "\.\[([\w,]+)\]"', command)
    assert set(requested.split(",")) <= set(extras), command


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_test_command_is_where_ci_finds_it():
    command = _command_after("<!-- test-command")
    assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install")
    assert "TRITON_INTERPRET=1 pytest" in command and "pytest bench --benchmark-disable" in command
    _check_extras_exist(command)


def test_the_demo_command_installs_and_runs_the_demo():
    command = _command_after("<!-- demo-command")
    assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install")
    demo = command.rsplit("&& ", 1)[1]
    assert demo in _pyproject()["project"]["scripts"], command
    _check_extras_exist(command)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^\s*```.*?^\s*```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"\w+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name} links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(linked), f"{path.name} links to {target}: no such heading"


def test_the_readme_links_every_docs_page():
    links = set(re.findall(r"\]\((docs/[\w\-]+\.md)\)", README.read_text()))
    assert links == {str(p.relative_to(ROOT)) for p in DOCUMENTS[1:]}


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_commit_hashes(path):
    # What was measured is named by its date and version, which a reader can
    # match without the repository's history.
    hexes = re.findall(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", path.read_text())
    assert not hexes, f"{path.name} names commits {hexes}"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_bench_commands_name_bench_modules(path):
    text = path.read_text()
    assert not re.search(r"python3? bench/", text), "write `python -m bench.<name>`"
    for name in re.findall(r"python3? -m bench\.(\w+)", text):
        assert (ROOT / "bench" / f"{name}.py").exists(), f"{path.name}: no bench/{name}.py"
