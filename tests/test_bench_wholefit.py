"""The whole-fit measurements of the benchmark: the paired ratios, the parts of a fit, the cold first call,
the book-setup row, the tables and the A/B runner. Nothing here asserts speed."""

from __future__ import annotations

import io
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not part of the installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import ab, harness, tables, wholefit  # noqa: E402
from polylin.report.workloads import get_workload, make_data, training_plan  # noqa: E402


@pytest.fixture(scope="module")
def book_plan() -> Any:
    workload = get_workload("book", quick=True)
    X, y = make_data(workload)
    return training_plan(workload, X, y)


def test_whole_fit_ratios_pair_each_warm_repeat() -> None:
    walls = [9.0, 2.0, 3.3, 2.2]  # the first call (compiling) is left out
    ours = [[5.0, 0.5, 0.5], [0.6, 0.6, 0.6], [1.0, 1.0, 1.0], [0.5, 0.5, 0.6]]
    loop = [[4.0, 0.5, 0.5], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]]
    out = harness.whole_fit_ratios(walls, ours, loop)
    assert out["whole_ratio"] == pytest.approx(statistics.median([2.0 / 1.5, 3.3 / 3.0, 2.2 / 1.5]))
    assert out["epochs_ratio"] == pytest.approx(statistics.median([1.8 / 1.5, 1.0, 1.6 / 1.5]))
    single = harness.whole_fit_ratios([3.0], [[1.0]], [[2.0]])  # one repeat: it is all there is
    assert single == {"whole_ratio": 1.5, "epochs_ratio": 0.5}


def test_measure_row_reports_the_whole_fit(book_plan: Any) -> None:
    record = harness.measure_row(book_plan, harness.Row("numpy", "analytic"), repeats=3)
    best = next(loop for loop in record["loops"] if loop["name"] == record["best_loop"])
    per_repeat = [
        sum(ours) / sum(theirs)
        for ours, theirs in zip(
            record["polylin"]["epoch_times_s"][1:], best["epoch_times_s"][1:], strict=True
        )
    ]
    assert record["epochs_ratio"] == pytest.approx(statistics.median(per_repeat))
    assert record["whole_ratio"] > record["epochs_ratio"] > 0  # the whole fit holds its epochs and more
    assert record["polylin"]["whole_fit_s"]["n"] == 2  # warm: the first of three left out
    assert record["whole_pass"] is (record["whole_ratio"] <= harness.WHOLE_FIT_TARGET)
    assert record["reference_epochs_s"]["median"] == pytest.approx(
        statistics.median(sum(t) for t in best["epoch_times_s"][1:])
    )


def test_the_parts_of_a_fit_add_up_to_it(book_plan: Any) -> None:
    parts = wholefit.fit_parts(book_plan, harness.Row("numpy", "analytic"), fits=2)
    seconds = parts["seconds"]
    for name in wholefit.PARTS[:-1]:  # every part but "rest" is timed
        assert seconds[name] > 0, name
    assert sum(seconds[name] for name in wholefit.PARTS) == pytest.approx(seconds["whole"], rel=0.3)
    import polylin.api
    import polylin.validation

    assert polylin.api.train.__name__ == "train"  # every helper is put back
    assert polylin.validation.host_training_data.__name__ == "host_training_data"
    import polylin.streaming

    assert polylin.streaming.device_data.__name__ == "device_data"


def test_a_cold_fit_runs_in_a_fresh_process(book_plan: Any) -> None:
    out = wholefit.cold_fits(book_plan, [harness.Row("numpy", "analytic")])
    cold = out["numpy/analytic"]
    assert cold["fit_s"] > cold["epochs_s"] > 0


def test_the_book_setup_row_has_both_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jax")
    pytest.importorskip("sklearn")
    workload = get_workload("book")
    X, y = make_data(workload)
    record = wholefit.book_setup(X, y, repeats=3)
    assert record["polylin_s"]["n"] == 3 and record["sklearn_s"]["n"] == 3
    assert record["pass"] is (record["polylin_s"]["median"] <= 1e-3)
    assert record["sklearn_pass"] is (record["over_sklearn"] <= 1.0)


def test_tables_print_rows_first_cell_first() -> None:
    out = io.StringIO()
    tables.print_table([["a", "bb"], ["large", "numpy/analytic 1.02"]], title="T", out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("T")
    assert any(line.startswith("large") and "numpy/analytic 1.02" in line for line in lines)


def test_ab_compares_two_trees_row_by_row(tmp_path: Path) -> None:
    runs = [
        ("new", {"rows": [{"workload": "book", "row": "numpy/analytic", "whole_ratio": 1.0, "ratio": 0.9}]}),
        ("old", {"rows": [{"workload": "book", "row": "numpy/analytic", "whole_ratio": 2.0, "ratio": 1.0}]}),
        ("new", {"rows": [{"workload": "book", "row": "numpy/analytic", "whole_ratio": 1.2, "ratio": 1.1}]}),
        ("old", {"rows": [{"workload": "book", "row": "numpy/analytic", "whole_ratio": 2.2, "ratio": 1.0}]}),
    ]
    (record,) = ab.compare(runs)
    assert record["whole_ratio"]["new"] == pytest.approx(1.1) and record["whole_ratio"][
        "old"
    ] == pytest.approx(2.1)
    assert record["whole_ratio"]["new_over_old"] == pytest.approx(1.1 / 2.1)
    assert record["epochs_ratio"]["new"] is None  # not measured: no figure, no change
    assert record["ratio"]["new_over_old"] == pytest.approx(1.0)


@pytest.mark.slow
def test_ab_runs_both_trees_alternately(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ab.json"
    argv = ["--base", str(ROOT), "--workloads", "book", "--backends", "numpy", "--repeats", "2", "--quick"]
    assert ab.main([*argv, "--rounds", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err.count("round ") == 4  # new, old, then old, new: neither tree always goes first
    assert printed.err.index("1/2: new") < printed.err.index("1/2: old") < printed.err.index("2/2: old")
    assert printed.err.index("2/2: old") < printed.err.index("2/2: new")
    (row,) = json.loads(out.read_text())["rows"]
    assert row["row"] == "numpy/analytic" and row["whole_ratio"]["new_over_old"] > 0
    assert any(line.startswith("book") and "numpy/analytic" in line for line in printed.out.splitlines())


def test_ab_runs_the_rows_and_no_other_section() -> None:
    """Each A/B run leaves out every section the benchmark can skip (scale and out-of-core took
    minutes a run before they were in the list): only the rows' ratios are compared."""
    from benchmarks import run

    assert sorted(ab.AB_SKIP.split(",")) == sorted(run.SKIPPABLE)


def test_ab_refuses_a_base_without_polylin(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        ab.main(["--base", str(tmp_path)])


def test_fixed_costs_measure_each_helper() -> None:
    from benchmarks import fixed_costs

    result = fixed_costs.measure(((500, 3),), repeats=2)
    parts = {row["part"] for row in result["rows"]}
    assert parts == {
        "validation (float32)",
        "validation (float64 data)",
        "epoch_order",
        "bound, first call",
        "bound, same data again",
    }
    assert all(row["ms"] > 0 for row in result["rows"])
