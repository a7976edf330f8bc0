"""Every code block in the README and in docs/ runs, so that no example can rot.

They run in the environment the README's first command builds (``nox -s
demo``; ``nox -s "tests(all)"`` installs the same one), and in each backend's
session as far as its backends allow.

How a block is marked (the fence's info string, which MkDocs and GitHub render normally):

* ```` ```python ```` runs in every test session. Such blocks use the NumPy
  backend, or loop over ``polylin.available_backends()``.
* ```` ```python {backend="torch"} ```` needs that framework. Where it is
  installed the block runs; where it is not, the block is reported as a skip
  that names the missing backend. In a nox session that requires the backend
  (``POLYLIN_REQUIRE_BACKENDS``) a missing backend already fails the run.
* ```` ```python {raises="RuntimeError"} ```` must raise that exception (the
  pages show some errors on purpose); it combines with ``backend=``.
* ```` ```console ```` (or ``bash``, ``sh``, ``shell``): every command in it
  runs and must exit with 0. In a ``console`` block a command starts with
  ``$``; in the others every line is one. ``polylin ...`` runs through the
  command line's ``main``; ``python ...`` and ``pytest ...`` run in a
  subprocess with this interpreter. A ``--backend``/``--backends`` option
  needs the backends it names, like ``backend=``. A command that cannot run
  inside the tests (``nox``, ``pip install``, ...) is listed in ``NOT_RUN``
  with the reason, and the page's test reports it as a skip that quotes
  it; any other command fails the test, so nothing is dropped silently.
* **Sample output** is compared with the command's real output: the lines
  under a ``$`` command in a ``console`` block, or a ```` ```text ```` block
  that directly follows a console block (only blank lines between), which
  is the output of that block's last command. ``...`` on a line of its own
  stands for any number of lines; inside a line it stands for any text (for
  what varies from run to run: times, unpinned versions). Samples are the
  output of the documented environment (``environments/all.txt``, every
  extra); elsewhere they are reported as not compared, with the difference.
* Other ```` ```text ```` blocks are printed output or pictures, not code;
  a text block that shows a command (``$ ``, ``nox ``, ``pip ``,
  ``polylin ``, ``python ``) fails the test: show it as ``console``.

Blocks of one page run in order in one namespace, like a notebook, in a
temporary working directory. Any other fence language fails the test, so
nothing is dropped silently.
"""

from __future__ import annotations

import builtins
import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import IMPORT_PROBLEMS, REQUIRED

from polylin.backends import KNOWN_BACKENDS

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
README = REPO / "README.md"
DOCUMENTED_ENVIRONMENT = REPO / "environments" / "all.txt"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<info>[^`]*)$")
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
SHELLS = {"console", "bash", "sh", "shell"}
LANGUAGES = {"python", "text"} | SHELLS
COMMAND_IN_TEXT = re.compile(r"^\s*(\$ |nox |pip |polylin |python3?(\.\d+)? )")

#: Commands that cannot run inside the test suite, each with the reason (matched by prefix).
NOT_RUN: dict[str, str] = {
    "python3.11 -m pip install nox && python3.11 -m nox -s demo": (
        "builds the environment these tests run in (minutes): it is `nox -s demo` itself"
    ),
    "python3.11 -m pip install nox && python3.11 -m nox": "is CI itself (.ci/run), which runs these tests",
    "source ": "enters the environment that these tests already run in",
    "pip install ": "installs packages: it would change the environment under test",
    "nox -s report": "builds four environments and measures in each (minutes): run with nox",
    "XLA_FLAGS=--xla_force_host_platform_device_count=2 python script.py": (
        "runs the reader's own script.py; tests/test_workers.py runs such fits in a subprocess"
    ),
    "python -m benchmarks.scale": (
        "takes a minute or more (fresh processes per backend and k); nox -s bench runs it as its scale "
        "section, and tests/test_workers.py checks what it measures"
    ),
    "torchrun ": (
        "runs the reader's own script under torchrun (run by hand for docs/scale.md, whose "
        "table shows the output); tests/test_workers.py joins a process group the same way"
    ),
    "POLYLIN_HYPOTHESIS_PROFILE=polylin-dev pytest tests/test_fuzz.py": (
        "takes minutes (300 random examples on NumPy, 75 on each other backend); "
        "the default profile of the same tests runs in every session"
    ),
}


@dataclass
class Block:
    page: str
    line: int
    language: str
    code: str
    attributes: dict[str, str] = field(default_factory=dict)
    end: int = 0  # the line of the closing fence

    @property
    def backends(self) -> list[str]:
        return [b.strip() for b in self.attributes.get("backend", "").split(",") if b.strip()]


def label(path: Path) -> str:
    return str(path.relative_to(REPO))


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
        blocks.append(Block(label(path), i - len(body), language, "\n".join(body), attributes, end=i + 1))
        i += 1
    return blocks


PAGES = [README, *sorted(DOCS.rglob("*.md"))]
ALL_BLOCKS = {page: parse(page) for page in PAGES}
PAGE_LINES = {label(page): page.read_text(encoding="utf-8").splitlines() for page in PAGES}


# -- shell commands and their sample output ----------------------------------------------------------------
@dataclass
class Command:
    text: str
    where: str
    output: list[str] | None = None  # the sample output shown beside it, if any


def commands(block: Block) -> list[Command]:
    """The commands of a shell block, each with the output lines shown under it (console blocks)."""
    found: list[Command] = []
    for offset, line in enumerate(block.code.splitlines(), start=1):
        where = f"{block.page}:{block.line + offset}"
        stripped = line.strip()
        if block.language != "console" or stripped.startswith("$") or stripped.startswith("polylin "):
            command = re.sub(r"\s+#[^'\"]*$", "", stripped.removeprefix("$").strip())
            if command and not command.startswith("#"):
                found.append(Command(command, where))
        elif found and (stripped or found[-1].output):
            found[-1].output = [*(found[-1].output or []), line.rstrip()]
    return found


def sample_after(page: Path, index: int) -> list[str] | None:
    """The ```text block that directly follows shell block ``index`` (only blank lines between), if any."""
    blocks = ALL_BLOCKS[page]
    if index + 1 >= len(blocks) or blocks[index + 1].language != "text":
        return None
    here, after = blocks[index], blocks[index + 1]
    between = PAGE_LINES[here.page][here.end : after.line - 1]
    if any(line.strip() for line in between):
        return None
    return [line.rstrip() for line in after.code.splitlines()]


def output_pattern(expected: list[str]) -> re.Pattern[str]:
    """A regex for the sample: ``...`` alone matches any lines, ``...`` in a line any text."""
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(piece) for piece in line.split("...")) + r"[ \t]*\n")
    return re.compile("".join(parts))


def output_matches(expected: list[str], actual: str) -> bool:
    text = "\n".join(line.rstrip() for line in actual.rstrip("\n").splitlines()) + "\n"
    return output_pattern(expected).fullmatch(text) is not None


def backends_named(command: str) -> list[str]:
    """The backends a ``--backend``/``--backends`` option names (``all`` and ``auto`` name none)."""
    words = shlex.split(command, comments=True)
    named: list[str] = []
    for i, word in enumerate(words):
        value = None
        if word in ("--backend", "--backends") and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith(("--backend=", "--backends=")):
            value = word.split("=", 1)[1]
        if value:
            named += [name for name in value.split(",") if name in KNOWN_BACKENDS]
    return named


def not_run_reason(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if command.startswith(prefix)), None)


def environment_difference() -> str | None:
    """None where the installed packages are the documented environment's pins; else what differs."""
    differences = []
    for line in DOCUMENTED_ENVIRONMENT.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" not in line:
            continue
        name, pinned = (part.strip() for part in line.split("==", 1))
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            differences.append(f"{name} is not installed")
            continue
        if installed.split("+", 1)[0] != pinned:
            differences.append(f"{name} {installed} (pinned: {pinned})")
    return "; ".join(differences) or None


ENVIRONMENT_DIFFERENCE = environment_difference()


def run_command(command: str, cwd: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run one documented command here; returns its exit status, stdout and stderr."""
    from polylin.cli import main

    words = shlex.split(command, comments=True)
    if words[0] == "polylin":
        capsys.readouterr()
        try:
            status = main(words[1:])
        except SystemExit as exit_:  # --help
            status = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return status, captured.out, captured.err
    env = dict(os.environ)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    if words[0] in ("python", "python3"):
        argv = [sys.executable, *words[1:]]
    elif words[0] == "pytest":
        argv = [sys.executable, "-m", "pytest", *words[1:]]
    else:
        raise AssertionError(
            f"`{command}` is neither a polylin, python nor pytest command: make it runnable here, "
            "or add it to NOT_RUN in tests/test_docs.py with the reason it cannot run in the tests"
        )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    return done.returncode, done.stdout, done.stderr


# -- the tests -------------------------------------------------------------------------------------------
def test_docs_exist_and_hold_code() -> None:
    assert PAGES, "docs/ has no pages"
    assert sum(b.language == "python" for blocks in ALL_BLOCKS.values() for b in blocks) >= 40


@pytest.mark.parametrize("page", PAGES, ids=label)
def test_fences_are_known(page: Path) -> None:
    for block in ALL_BLOCKS[page]:
        assert block.language in LANGUAGES, (
            f"{block.page}:{block.line}: fence language {block.language!r} is not one test_docs knows "
            f"({sorted(LANGUAGES)}); mark it so that it is run or declared output"
        )
        for name in block.backends:
            assert name in KNOWN_BACKENDS, f"{block.page}:{block.line}: unknown backend {name!r}"


@pytest.mark.parametrize("page", PAGES, ids=label)
def test_commands_are_not_hidden_in_text_blocks(page: Path) -> None:
    for block in ALL_BLOCKS[page]:
        if block.language != "text":
            continue
        for offset, line in enumerate(block.code.splitlines(), start=1):
            assert not COMMAND_IN_TEXT.match(line), (
                f"{block.page}:{block.line + offset}: a text block shows the command `{line.strip()}`; "
                "show it in a console block, so that the tests run it (or NOT_RUN names why not)"
            )


@pytest.mark.parametrize("page", PAGES, ids=label)
def test_images_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text):
        assert (page.parent / target).is_file(), f"{label(page)}: image {target} is missing"


def _missing(names: list[str]) -> list[str]:
    return [name for name in names if name in IMPORT_PROBLEMS or (REQUIRED and name not in REQUIRED)]


def _run_shell(page: Path, index: int, cwd: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Run the block's commands and compare their sample output; return what was not run or compared."""
    block = ALL_BLOCKS[page][index]
    found = commands(block)
    if found and found[-1].output is None:
        found[-1].output = sample_after(page, index)
    not_run = []
    for command in found:
        if not_run_reason(command.text) is not None:
            continue  # reported by test_documented_command_not_run_here
        missing = _missing([*block.backends, *backends_named(command.text)])
        if missing:
            not_run.append(f"{command.where} `{command.text}` needs {', '.join(missing)}")
            continue
        status, out, err = run_command(command.text, cwd, capsys)
        assert status == 0, f"{command.where}: `{command.text}` exited with {status}\n{out}\n{err}"
        if command.output is None:
            continue
        if ENVIRONMENT_DIFFERENCE is not None:
            not_run.append(
                f"{command.where} sample output of `{command.text}` not compared: it is the output in "
                f"{label(DOCUMENTED_ENVIRONMENT)} (nox -s demo), and here {ENVIRONMENT_DIFFERENCE}"
            )
            continue
        expected = "\n".join(command.output)
        assert output_matches(command.output, out), (
            f"{command.where}: the sample output shown for `{command.text}` is not what it prints.\n"
            f"shown:\n{expected}\nprinted:\n{out}"
        )
    return not_run


@pytest.mark.parametrize("page", [p for p in PAGES if any(b.language != "text" for b in ALL_BLOCKS[p])],
                         ids=label)  # fmt: skip
def test_page_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__", "__builtins__": builtins}
    skipped: list[str] = []
    for index, block in enumerate(ALL_BLOCKS[page]):
        if block.language == "text":
            continue
        missing = _missing(block.backends)
        if missing:
            skipped.append(f"{block.page}:{block.line} needs {', '.join(missing)}")
            continue
        if block.language in SHELLS:
            skipped += _run_shell(page, index, tmp_path, capsys)
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
        runnable = [b for b in blocks if not _missing(b.backends)]
        assert runnable, "no docs block runs in this session"


def test_every_shell_command_runs_or_names_why_not() -> None:
    for blocks in ALL_BLOCKS.values():
        for block in blocks:
            if block.language not in SHELLS:
                continue
            for command in commands(block):
                first = shlex.split(command.text, comments=True)[0]
                runnable = first in ("polylin", "python", "python3", "pytest") or "=" in first
                assert runnable or not_run_reason(command.text), (
                    f"{command.where}: `{command.text}` cannot run in the tests and NOT_RUN gives no reason"
                )
    assert all(why.strip() for why in NOT_RUN.values())


NOT_RUN_HERE = [
    pytest.param(command, id=command.where)
    for blocks in ALL_BLOCKS.values()
    for block in blocks
    if block.language in SHELLS
    for command in commands(block)
    if not_run_reason(command.text)
]


@pytest.mark.parametrize("command", NOT_RUN_HERE)
def test_documented_command_not_run_here(command: Command) -> None:
    """Each documented command that the tests cannot run is one skip, with the reason."""
    pytest.skip(
        f"{command.where} `{command.text}` is not run by the tests: it {not_run_reason(command.text)}"
    )


def readme_inline_commands() -> list[str]:
    """The ``polylin ...`` commands written inline in the README (outside fences), without placeholders."""
    text = README.read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    spans = re.findall(r"`(polylin [^`]+)`", prose)
    return sorted({span for span in spans if not re.search(r"\b[A-Z]{2,}\b|\.\.\.", span)})


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_inline_commands())
def test_readme_inline_command_runs(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = _missing(backends_named(command))
    if missing:
        pytest.skip(f"README.md `{command}` needs {', '.join(missing)}")
    monkeypatch.chdir(tmp_path)
    status, out, err = run_command(command, tmp_path, capsys)
    assert status == 0, f"README.md: `{command}` exited with {status}\n{out}\n{err}"


def test_the_readme_keeps_its_sample_and_inline_commands() -> None:
    assert "polylin experiment learning-rate --backend jax --out lr.png" in readme_inline_commands()
    shown = [c for b in ALL_BLOCKS[README] if b.language in SHELLS for c in commands(b) if c.output]
    assert any(c.text.startswith("polylin fit --backend torch") for c in shown), "the README's sample is gone"


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        (["a", "b"], "a\nb\n", True),
        (["a", "b"], "a\nc\n", False),
        (["a"], "a\nb\n", False),
        (["...", "b"], "x\ny\nb\n", True),
        (["...", "b"], "b\n", True),
        (["t  ..."], "t  1.750\n", True),
        (["t  ...", "u"], "t  1.750\nv\n", False),
        # the README's torch sample once showed NumPy's numbers: a last-digit difference is caught
        (["error in estimating w: [7.02857971e-04 5.44548035e-05]"],
         "error in estimating w: [7.02738762e-04 5.44548035e-05]\n", False),
    ],
)  # fmt: skip
def test_sample_output_comparison(expected: list[str], actual: str, matches: bool) -> None:
    assert output_matches(expected, actual) is matches


def test_sample_after_takes_only_the_adjacent_text_block() -> None:
    cli = DOCS / "cli.md"
    pairs = [
        (block, sample_after(cli, i))
        for i, block in enumerate(ALL_BLOCKS[cli])
        if block.language in SHELLS and sample_after(cli, i)
    ]
    assert pairs, "docs/cli.md shows no sample output beside a command"
    for block, _ in pairs:
        assert "--resume" not in block.code, "the Ctrl-C message (after prose) is not the resume's output"
