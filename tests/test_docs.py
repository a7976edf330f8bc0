"""Every code block in docs/ runs, so that no example can rot.

How a block is marked (the fence's info string, which MkDocs renders normally):

* ```` ```python ```` runs in every test session. Such blocks use the NumPy
  backend, or loop over ``polylin.available_backends()``.
* ```` ```python {backend="torch"} ```` needs that framework. Where it is
  installed the block runs; where it is not, the block is reported as a skip
  that names the missing backend. In a nox session that requires the backend
  (``POLYLIN_REQUIRE_BACKENDS``) a missing backend already fails the run.
* ```` ```python {raises="RuntimeError"} ```` must raise that exception (the
  pages show some errors on purpose); it combines with ``backend=``.
* ```` ```console ```` (or ``bash``, ``sh``, ``shell``): every ``polylin``
  command in it (with or without a leading ``$``) is run through the command
  line's ``main`` and must exit with 0. Any other shell command (``pip``,
  ``pytest``, ...) cannot run inside the tests: the page's test reports it as
  a skip that quotes it, never drops it silently.
* ```` ```text ```` blocks are printed output, not code.

Blocks of one page run in order in one namespace, like a notebook, in a
temporary working directory. Any other fence language fails the test, so
nothing is dropped silently.
"""

from __future__ import annotations

import builtins
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import IMPORT_PROBLEMS, REQUIRED

from polylin.backends import KNOWN_BACKENDS

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<info>[^`]*)$")
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
SHELLS = {"console", "bash", "sh", "shell"}
LANGUAGES = {"python", "text"} | SHELLS


@dataclass
class Block:
    page: str
    line: int
    language: str
    code: str
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def backends(self) -> list[str]:
        return [b.strip() for b in self.attributes.get("backend", "").split(",") if b.strip()]


def parse(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, including those indented inside tabs and admonitions."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, ticks, info = match["indent"], match["ticks"], match["info"].strip()
        language = info.split("{", 1)[0].strip().split(" ", 1)[0] if info else ""
        attributes = dict(ATTRIBUTE.findall(info.split("{", 1)[1])) if "{" in info else {}
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != ticks:
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        blocks.append(
            Block(str(path.relative_to(DOCS)), i - len(body), language, "\n".join(body), attributes)
        )
        i += 1
    return blocks


PAGES = sorted(DOCS.rglob("*.md"))
ALL_BLOCKS = {page: parse(page) for page in PAGES}


def test_docs_exist_and_hold_code() -> None:
    assert PAGES, "docs/ has no pages"
    assert sum(b.language == "python" for blocks in ALL_BLOCKS.values() for b in blocks) >= 40


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_fences_are_known(page: Path) -> None:
    for block in ALL_BLOCKS[page]:
        assert block.language in LANGUAGES, (
            f"{block.page}:{block.line}: fence language {block.language!r} is not one test_docs knows "
            f"({sorted(LANGUAGES)}); mark it so that it is run or declared output"
        )
        for name in block.backends:
            assert name in KNOWN_BACKENDS, f"{block.page}:{block.line}: unknown backend {name!r}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_images_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text):
        assert (page.parent / target).is_file(), f"{page.relative_to(DOCS)}: image {target} is missing"


def _missing(block: Block) -> list[str]:
    return [name for name in block.backends if name in IMPORT_PROBLEMS or (REQUIRED and name not in REQUIRED)]


def _run_shell(block: Block) -> list[str]:
    """Run the block's ``polylin`` commands; return the other commands, which cannot run here."""
    from polylin.cli import main

    not_run = []
    for line in block.code.splitlines():
        command = line.strip().removeprefix("$").strip()
        if not command or command.startswith("#"):
            continue
        if command.startswith("polylin "):
            argv = shlex.split(command)[1:]
            assert main(argv) == 0, f"{block.page}:{block.line}: `{command}` failed"
        elif line.lstrip().startswith("$") or block.language != "console":
            not_run.append(f"{block.page}:{block.line} `{command}`")
    return not_run


@pytest.mark.parametrize("page", [p for p in PAGES if any(b.language != "text" for b in ALL_BLOCKS[p])],
                         ids=lambda p: str(p.relative_to(DOCS)))  # fmt: skip
def test_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__", "__builtins__": builtins}
    skipped: list[str] = []
    for block in ALL_BLOCKS[page]:
        if block.language == "text":
            continue
        missing = _missing(block)
        if missing:
            skipped.append(f"{block.page}:{block.line} needs {', '.join(missing)}")
            continue
        if block.language in SHELLS:
            skipped += [f"{where} (not a polylin command)" for where in _run_shell(block)]
            continue
        code = compile(block.code, f"{block.page}:{block.line}", "exec")
        expected = block.attributes.get("raises")
        if expected:
            with pytest.raises(Exception) as caught:  # noqa: PT011 - the page names the type
                exec(code, namespace)
            assert type(caught.value).__name__ == expected or expected in [
                c.__name__ for c in type(caught.value).__mro__
            ], f"{block.page}:{block.line}: raised {type(caught.value).__name__}, expected {expected}"
        else:
            exec(code, namespace)
    if skipped:
        pytest.skip("not run here: " + "; ".join(skipped))


def test_a_session_never_drops_a_required_backends_blocks() -> None:
    # In a nox session every required backend imports (conftest fails the run otherwise),
    # so none of its blocks can be skipped.
    for name in REQUIRED:
        assert name not in IMPORT_PROBLEMS
    if os.environ.get("POLYLIN_REQUIRE_BACKENDS"):
        blocks = [b for bs in ALL_BLOCKS.values() for b in bs if b.language == "python"]
        runnable = [b for b in blocks if not _missing(b)]
        assert runnable, "no docs block runs in this session"
