"""The comparison report: workloads, measurement, quality and parity, merging, the three files, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polylin.cli import main
from polylin.report import compare, load_partials, merge, write_report
from polylin.report import runner as report_runner
from polylin.report.measure import current_rss_bytes, peak_rss_bytes, summarize, time_synchronized
from polylin.report.quality import half_mse, least_squares, parity, quality, r_squared
from polylin.report.render import to_json
from polylin.report.runner import check_backends, measure_variants
from polylin.report.workloads import WORKLOADS, fingerprint, get_workload, make_data, training_plan

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: A workload small enough that a worker process finishes in about a second.
SMALL = {"n": 400, "d": 3, "batch_size": 16, "lr": 0.1, "epochs": 3, "repeats": 2}


# -- workloads --------------------------------------------------------------------------------------
def test_named_workloads_match_the_issue() -> None:
    book, large, tiny = WORKLOADS["book"], WORKLOADS["large"], WORKLOADS["tiny-batch"]
    assert (book.n, book.d, book.batch_size, book.lr, book.epochs) == (1000, 2, 10, 0.03, 3)
    assert (large.n, large.d, large.batch_size, large.epochs, large.dtype) == (
        1_000_000,
        100,
        1024,
        3,
        "float32",
    )
    assert (tiny.n, tiny.d, tiny.batch_size) == (100_000, 10, 1)
    assert tiny.epochs * tiny.steps == 20_000


def test_book_workload_draws_the_books_data() -> None:
    X, y = make_data(WORKLOADS["book"])
    X_book, y_book = __import__("polylin").synthetic_data(seed=0)
    np.testing.assert_array_equal(X, X_book)
    np.testing.assert_array_equal(y, y_book)


def test_overrides_make_a_custom_workload_and_repeats_do_not() -> None:
    custom = get_workload("large", n=5000, d=4)
    assert custom.name == "custom"
    assert (custom.n, custom.d, custom.batch_size) == (5000, 4, 1024)
    assert "large with" in custom.description
    assert get_workload("book", repeats=9).name == "book"
    assert get_workload({"n": 300, "d": 5}).n == 300


@pytest.mark.parametrize(
    ("workload", "options", "message"),
    [
        ("huge", {}, "not a known workload"),
        ("book", {"rows": 5}, "unknown workload option"),
        ("book", {"n": 0}, "n=0"),
        ("book", {"batch_size": 5000}, "larger than n"),
        ("book", {"lr": -1.0}, "lr=-1.0"),
    ],
)
def test_bad_workloads_are_rejected_with_the_reason(workload: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_workload(workload, **options)


def test_plan_caps_steps_per_epoch_and_says_how() -> None:
    workload = get_workload("tiny-batch", quick=True)
    X, y = make_data(workload)
    plan = training_plan(workload, X, y)
    assert len(plan.orders) == workload.epochs
    assert all(len(order) == workload.steps * workload.batch_size for order in plan.orders)
    assert all(order.max() < len(plan.X) for order in plan.orders)
    assert "steps_per_epoch" in plan.method
    # What the bench's hand-written loops draw between epochs is the plan's order, epoch by epoch.
    assert all(np.array_equal(plan.draw_order(e), order) for e, order in enumerate(plan.orders))
    assert not np.array_equal(plan.orders[0], plan.orders[1])


def test_fingerprint_tells_data_apart() -> None:
    X, y = make_data(get_workload(SMALL))
    assert fingerprint(X, y) == fingerprint(X.copy(), y.copy())
    y2 = y.copy()
    y2[7] += 1
    assert fingerprint(X, y) != fingerprint(X, y2)


# -- measurement helpers ----------------------------------------------------------------------------
def test_summarize() -> None:
    assert summarize([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert summarize([])["median"] is None


def test_time_synchronized_reads_the_clock_after_synchronising() -> None:
    now = [0.0]
    events: list[str] = []

    def clock() -> float:
        events.append("clock")
        return now[0]

    def work() -> str:
        events.append("work")
        now[0] += 1.0
        return "result"

    def synchronize(result: str) -> None:
        assert result == "result"
        events.append("sync")
        now[0] += 5.0  # the device was still busy

    result, seconds = time_synchronized(work, synchronize, clock)
    assert result == "result"
    assert events == ["clock", "work", "sync", "clock"]
    assert seconds == 6.0


def test_memory_readings_are_plausible() -> None:
    rss = current_rss_bytes()
    assert 10 * 2**20 < rss <= peak_rss_bytes()
    block = np.ones(64 * 2**20 // 8)  # touch 64 MiB
    assert peak_rss_bytes() >= rss + 48 * 2**20
    del block


# -- quality and parity -----------------------------------------------------------------------------
def test_least_squares_matches_lstsq_and_scores() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 4)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.7 + rng.normal(0, 0.1, 500)).astype(np.float32)
    optimum = least_squares(X, y)
    A = np.column_stack([X.astype(np.float64), np.ones(500)])
    theta = np.linalg.lstsq(A, y.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(optimum.w, theta[:4], rtol=1e-9, atol=1e-10)
    assert optimum.b == pytest.approx(theta[4], abs=1e-10)
    assert optimum.loss == pytest.approx(half_mse(X, y, theta[:4], theta[4]))
    scores = quality(
        X, y, optimum.w, optimum.b, true_w=np.array([1.0, -2.0, 0.5, 3.0]), true_b=0.7, optimum=optimum
    )
    assert scores["ls_distance"] == pytest.approx(0.0, abs=1e-12)
    assert scores["excess_loss"] == pytest.approx(0.0, abs=1e-12)
    assert 0.99 < scores["r2"] < 1.0
    assert r_squared(X, y, np.zeros(4), float(np.mean(y))) == pytest.approx(0.0, abs=1e-6)


def test_parity_passes_rounding_and_fails_a_real_difference() -> None:
    reference = {"variant": "numpy/analytic", "w": [2.0, -3.4], "b": 4.2, "losses": [1e-2, 1e-4, 5e-5]}
    close = {"w": [2.0 + 2e-7, -3.4], "b": 4.2, "losses": [1e-2 * (1 + 1e-6), 1e-4, 5e-5]}
    far = {"w": [2.001, -3.4], "b": 4.2, "losses": [1e-2, 1e-4, 5e-5]}
    short = {"w": [2.0, -3.4], "b": 4.2, "losses": [1e-2, 1e-4]}
    assert parity(close, reference, "float32")["pass"] is True
    result = parity(far, reference, "float32")
    assert result["pass"] is False and result["params_pass"] is False
    assert result["max_param_diff"] == pytest.approx(1e-3)
    assert parity(short, reference, "float32")["losses_pass"] is False


# -- end to end -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def numpy_torch_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, Path]]:
    """One real comparison (numpy and torch in worker processes), written to disk."""
    names = ["numpy", "torch"] if report_runner.is_installed("torch") else ["numpy"]
    out = tmp_path_factory.mktemp("report")
    comparison = compare(names, SMALL, out=out)
    return comparison.report, comparison.files


def test_compare_writes_all_three_forms_and_the_plots(
    numpy_torch_report: tuple[dict, dict[str, Path]],
) -> None:
    report, files = numpy_torch_report
    for name in (
        "json",
        "markdown",
        "html",
        "figure:loss_vs_epoch",
        "figure:loss_vs_time",
        "figure:throughput",
    ):
        assert files[name].exists(), name
    for name in ("figure:loss_vs_epoch", "figure:loss_vs_time", "figure:throughput"):
        assert files[name].read_bytes()[:8] == PNG_SIGNATURE
    assert json.loads(files["json"].read_text()) == json.loads(to_json(report))
    markdown = files["markdown"].read_text()
    for heading in ("Time and throughput", "Quality", "Parity with numpy/analytic", "Memory", "Manifest"):
        assert f"## {heading}" in markdown
    assert "![" in markdown and "loss_vs_epoch.png" in markdown


def test_html_is_self_contained(numpy_torch_report: tuple[dict, dict[str, Path]]) -> None:
    _, files = numpy_torch_report
    page = files["html"].read_text()
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(sources) == 3
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert "<link" not in page and "<script" not in page


def test_report_contents(numpy_torch_report: tuple[dict, dict[str, Path]]) -> None:
    report, _ = numpy_torch_report
    variants = {r["variant"]: r for r in report["variants"]}
    assert "numpy/analytic" in variants
    assert [n["variant"] for n in report["not_applicable"]] == ["numpy/autodiff"]
    for record in variants.values():
        timing = record["timing"]
        steady = timing["steady_epoch_s"]
        assert steady["n"] == SMALL["repeats"] * (SMALL["epochs"] - 1)
        assert steady["min"] <= steady["median"] <= steady["max"]
        assert timing["first_epoch_s"] > 0
        assert timing["samples_per_s"] == pytest.approx(timing["samples_per_epoch"] / steady["median"])
        assert record["parity"]["pass"] is True
        assert record["quality"]["r2"] > 0.999
        assert record["memory"]["peak_rss_bytes"] >= record["memory"]["baseline_rss_bytes"] > 0
        assert record["deterministic"] is True
    assert variants["numpy/analytic"]["speedup_vs_numpy"] == pytest.approx(1.0)
    assert sum(r["fastest"] for r in variants.values()) == 1
    assert max(r["speedup_vs_fastest"] for r in variants.values()) == pytest.approx(1.0)
    if "torch/autodiff" in variants:
        assert {"torch/autodiff", "torch/analytic"} <= set(variants)
    manifest = report["manifest"]
    assert manifest["workload"]["n"] == SMALL["n"]
    assert manifest["environments"]
    assert manifest["host"]["cpu_model"]
    env = next(iter(manifest["environments"].values()))
    assert env["versions"]["polylin"] == manifest["polylin_version"]
    assert manifest["data"]["consistent"] is True


def test_skipped_backends_are_listed_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_runner, "is_installed", lambda name: name == "numpy")
    comparison = compare(["numpy", "mxnet"], SMALL | {"repeats": 1}, out=tmp_path, grad_modes="analytic")
    skipped = comparison.report["skipped"]
    assert [s["variant"] for s in skipped] == ["mxnet/analytic"]
    assert "not installed" in skipped[0]["reason"] and "environments/mxnet.txt" in skipped[0]["reason"]
    assert "mxnet/analytic" in (tmp_path / "report.md").read_text()
    assert "mxnet/analytic" in (tmp_path / "report.html").read_text()


def test_an_absent_device_is_a_visible_skip() -> None:
    comparison = compare(["numpy"], SMALL | {"repeats": 1}, out=None, grad_modes="analytic", device="gpu")
    assert comparison.report["variants"] == []
    (skip,) = comparison.report["skipped"]
    assert skip["variant"] == "numpy/analytic" and skip["reason"].startswith("device absent")


def test_merge_computes_parity_across_partials_and_refuses_mixed_workloads() -> None:
    workload = get_workload(SMALL | {"repeats": 1})
    data = make_data(workload)
    numpy_part = measure_variants(workload, ["numpy"], grad_modes="analytic", data=data, label="numpy-env")
    other_part = measure_variants(workload, ["numpy"], grad_modes="analytic", data=data, label="second")
    report = merge([numpy_part, other_part], expected_backends=["numpy", "jax"])
    assert [r["variant"] for r in report["variants"]] == ["numpy/analytic"]
    assert [s["variant"] for s in report["skipped"]] == ["jax/*"]
    different = measure_variants(workload.replace(seed=1), ["numpy"], grad_modes="analytic")
    with pytest.raises(ValueError, match="different workloads"):
        merge([numpy_part, different])


def test_parts_with_different_data_fail_parity() -> None:
    workload = get_workload(SMALL | {"repeats": 1})
    part = measure_variants(workload, ["numpy"], grad_modes="analytic")
    tampered = json.loads(json.dumps(part))
    tampered["data_fingerprint"] = "0" * 24
    for record in tampered["variants"]:
        record["variant"] = record["variant"].replace("numpy", "array-api")
        record["backend"] = "array-api"
    report = merge([part, tampered])
    by_variant = {r["variant"]: r for r in report["variants"]}
    assert by_variant["array-api/analytic"]["parity"]["pass"] is False
    assert report["manifest"]["data"]["consistent"] is False


def test_json_is_sorted_and_has_no_nan() -> None:
    text = to_json({"b": float("nan"), "a": [np.float32(1.5), float("inf")]})
    assert json.loads(text) == {"a": [1.5, None], "b": None}
    assert text.index('"a"') < text.index('"b"')


def test_write_report_with_nothing_measured(tmp_path: Path) -> None:
    workload = get_workload(SMALL | {"repeats": 1})
    part = measure_variants(workload, ["numpy"], grad_modes="autodiff")  # not applicable: nothing measured
    files = write_report(merge([part]), tmp_path)
    assert not any(name.startswith("figure:") for name in files)
    assert "not applicable" in files["markdown"].read_text()


# -- command line and import ------------------------------------------------------------------------
def test_cli_partial_then_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    part = tmp_path / "parts" / "numpy.json"
    common = ["--n", "300", "--features", "2", "--batch-size", "10", "--repeats", "1"]
    assert (
        main(["compare", "--backends", "numpy", "--grad", "analytic", "--partial", str(part), *common]) == 0
    )
    assert load_partials([part])[0]["variants"][0]["status"] == "ok"
    out = tmp_path / "report"
    assert main(["compare", "--merge", str(part), "--backends", "numpy", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "numpy/analytic" in printed and f"wrote {out / 'report.html'}" in printed
    assert (out / "throughput.png").exists()


def test_cli_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--backends", "numpy", "--backend-option", "nonsense"]) == 2
    assert "BACKEND:KEY=VALUE" in capsys.readouterr().err
    assert main(["compare", "--backends", "tensorflow", "--partial", "x.json"]) == 2
    assert "not known backends" in capsys.readouterr().err


def test_check_backends() -> None:
    assert check_backends(None) == ["numpy", "jax", "torch", "mxnet"]
    assert check_backends("torch, numpy,torch") == ["torch", "numpy"]
    with pytest.raises(ValueError, match="not known"):
        check_backends(["numpy", "cupy"])


def test_import_polylin_leaves_matplotlib_out_and_compare_is_lazy() -> None:
    probe = (
        "import sys, polylin; "
        "assert 'matplotlib' not in sys.modules and 'polylin.report' not in sys.modules; "
        "compare = polylin.compare; assert 'matplotlib' not in sys.modules; print(compare.__module__)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "polylin.report"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "n/a"),
        (45.6e-6, "45.6 µs"),
        (999.4e-6, "999 µs"),
        (999.7e-6, "1 ms"),  # not "1e+03 µs"
        (1.234e-3, "1.23 ms"),
        (0.9997, "1 s"),
        (2.014, "2.01 s"),
    ],
)
def test_durations_print_in_the_unit_that_fits(value: float | None, shown: str) -> None:
    from polylin.report.tables import seconds

    assert seconds(value) == shown
