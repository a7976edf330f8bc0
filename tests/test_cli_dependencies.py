"""Every command checks its optional packages first: a missing one stops it at once, naming the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import polylin.experiments
from polylin.cli import main
from polylin.cli.output import installed, render, require, table_of


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled (an import of them fails; find_spec says None)."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def error_of(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == "", captured.out  # nothing ran, so nothing was printed
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_require_names_the_packages_and_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    require("numpy", needed_for="anything")  # installed: no error
    hide(monkeypatch, "matplotlib", "rich")
    assert not installed("matplotlib") and installed("numpy")
    with pytest.raises(ImportError, match=r"the report needs matplotlib and rich, which are not installed"):
        require("matplotlib", "rich", needed_for="the report")
    with pytest.raises(ImportError, match=r"pip install 'polylin\[cli,plot\]'"):
        require("matplotlib", "rich", needed_for="the report")


def test_experiment_out_fails_before_the_experiment_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import dataclasses

    ran: list[object] = []
    spy = dataclasses.replace(polylin.experiments.get("learning-rate"), function=lambda *a: ran.append(a))
    monkeypatch.setattr(polylin.experiments, "get", lambda name: spy)
    hide(monkeypatch, "matplotlib")
    assert main(["experiment", "learning-rate", "--out", str(tmp_path / "lr.png")]) == 2
    line = error_of(capsys)
    assert "matplotlib" in line and "pip install 'polylin[plot]'" in line and "--out" in line
    assert ran == [] and not (tmp_path / "lr.png").exists()


def test_experiment_out_fails_fast_in_a_fresh_process(tmp_path: Path) -> None:
    # The whole command in a process where matplotlib cannot be imported: one error line, no summary.
    code = (
        "import sys; sys.modules['matplotlib'] = None; from polylin.cli import main; "
        f"sys.exit(main(['experiment', 'learning-rate', '--out', {str(tmp_path / 'lr.png')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "pip install 'polylin[plot]'" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "lr.png").exists()


def test_plot_needs_matplotlib(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hide(monkeypatch, "matplotlib")
    assert main(["plot", "data", "--out", str(tmp_path / "data.png")]) == 2
    assert "pip install 'polylin[plot]'" in error_of(capsys)
    assert not (tmp_path / "data.png").exists()


@pytest.mark.parametrize("missing", ["matplotlib", "rich"])
def test_compare_checks_before_measuring(
    missing: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import polylin.report.runner

    def measured(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured although a package of the report is missing")

    monkeypatch.setattr(polylin.report.runner, "measure_variants", measured)
    hide(monkeypatch, missing)
    assert main(["compare", "--backends", "numpy", "--out", str(tmp_path)]) == 2
    line = error_of(capsys)
    assert missing in line and "pip install 'polylin[" in line
    assert list(tmp_path.iterdir()) == []


def test_backends_table_needs_rich_and_json_does_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hide(monkeypatch, "rich")
    assert main(["backends"]) == 2
    line = error_of(capsys)
    assert "rich" in line and "pip install 'polylin[cli]'" in line and "--json" in line
    assert main(["backends", "--json"]) == 0
    assert '"name": "numpy"' in capsys.readouterr().out


def test_fit_needs_rich_only_for_the_side_by_side_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hide(monkeypatch, "rich")
    assert main(["fit", "--backend", "numpy,numpy", "--epochs", "1"]) == 2
    assert "pip install 'polylin[cli]'" in error_of(capsys)  # and no epoch was trained
    assert main(["fit", "--epochs", "1", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("epoch 1, loss ")
    assert main(["fit", "--backend", "numpy,numpy", "--epochs", "1", "--json"]) == 0


def test_plain_tables_are_one_row_a_line_without_markup_or_trailing_blanks() -> None:
    text = render(table_of(["name", "note"], [["a", "[bold]not markup[/bold]"], ["longer name", "x"]]))
    lines = text.splitlines()
    assert lines[0].split() == ["name", "note"]
    assert lines[1].split(maxsplit=1) == ["a", "[bold]not markup[/bold]"]
    assert lines[2].split() == ["longer", "name", "x"]
    assert all(line == line.rstrip() for line in lines)
    assert lines[1].index("[") == lines[2].index("x")  # the columns line up
    wide = render(table_of(["c"] * 30, [["value" * 3] * 30]))
    assert len(wide.splitlines()) == 2  # no wrapping at 80 columns in a pipe
