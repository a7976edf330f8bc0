"""Backend comparison reports: time, throughput, memory, quality and parity, side by side.

>>> import polylin
>>> comparison = polylin.compare(["numpy", "torch"], workload="book", out="report")  # doctest: +SKIP
>>> comparison.files["html"]  # doctest: +SKIP
PosixPath('report/report.html')

Each backend and gradient mode runs in a process of its own (so peak memory
means something); the results are merged into ``report.json``, ``report.md``,
``report.html`` (self-contained) and the PNG figures. Backends that are not
installed, or whose device is absent, are listed with the reason.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polylin.report.merge import load_partials, merge
from polylin.report.runner import DEFAULT_BACKENDS, measure_variants
from polylin.report.workloads import QUICK_WORKLOADS, WORKLOADS, Workload, get_workload, make_data

REPORT_FILES = {"json": "report.json", "markdown": "report.md", "html": "report.html"}


@dataclass
class Comparison:
    """A finished comparison: the report (as in ``report.json``) and the files written."""

    report: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def markdown(self) -> str:
        """The report as Markdown (what ``report.md`` holds)."""
        from polylin.report.render import to_markdown

        figures = {
            k.removeprefix("figure:"): v.name for k, v in self.files.items() if k.startswith("figure:")
        }
        return to_markdown(self.report, figures)


def require_matplotlib() -> None:
    """Fail early, with the fix, when the plots cannot be drawn."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError(
            "the comparison report draws its plots with matplotlib, which is not installed; "
            "install it with: pip install 'polylin[report]'"
        )


def write_report(report: dict[str, Any], out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``report.json``, the figures, ``report.md`` and ``report.html`` into the folder ``out``."""
    from polylin.report.plots import make_figures
    from polylin.report.render import to_html, to_json, to_markdown

    require_matplotlib()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = {kind: folder / name for kind, name in REPORT_FILES.items()}
    files["json"].write_text(to_json(report), encoding="utf-8")
    figures = make_figures(report, folder)
    files["markdown"].write_text(
        to_markdown(report, {k: p.name for k, p in figures.items()}), encoding="utf-8"
    )
    files["html"].write_text(to_html(report, figures), encoding="utf-8")
    files.update({f"figure:{name}": path for name, path in figures.items()})
    return files


def compare(
    backends: Sequence[str] | str | None = None,
    workload: str | Workload | Mapping[str, Any] = "book",
    *,
    out: str | os.PathLike[str] | None = "report",
    grad_modes: Sequence[str] | str | None = None,
    repeats: int | None = None,
    device: str | None = None,
    backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    quick: bool = False,
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
    **workload_options: Any,
) -> Comparison:
    """Measure ``backends`` on ``workload`` and write the comparison report into ``out``.

    Parameters
    ----------
    backends:
        Backend names (a list or ``"numpy,torch"``); ``None`` or ``"all"``: numpy, jax, torch, mxnet.
    workload:
        ``"book"``, ``"large"``, ``"tiny-batch"``, a :class:`Workload`, or a mapping of
        options (``{"n": 50_000, "d": 20, "batch_size": 64}``, starting from ``book``).
    out:
        The folder for ``report.json``, ``report.md``, ``report.html`` and the PNGs;
        ``None`` writes nothing and only returns the report.
    grad_modes:
        ``"autodiff"`` and/or ``"analytic"`` (default both; NumPy has only ``"analytic"``).
    repeats:
        Fits per variant (default: the workload's own, 7 for book, 3 for large, 2 for tiny-batch).
    device:
        Passed to every fit (``"cpu"`` by default); a backend without the device is listed as skipped.
    backend_options:
        Per backend, e.g. ``{"jax": {"fused_epoch": False}}``.
    quick:
        Use the small versions of the workloads (seconds, for tests).
    timeout:
        Seconds after which one variant's process is stopped and reported as failed.
    progress:
        Called with one line per finished variant (the CLI prints them).
    workload_options:
        Overrides of the workload's fields: ``n``, ``d``, ``batch_size``, ``lr``, ``epochs``,
        ``steps_per_epoch``, ``dtype``, ``seed``, ``noise``.
    """
    if out is not None:
        require_matplotlib()
    if repeats is not None:
        workload_options["repeats"] = repeats
    chosen = get_workload(workload, quick=quick, **workload_options)
    data = make_data(chosen)
    partial = measure_variants(
        chosen,
        backends,
        grad_modes=grad_modes,
        device=device,
        backend_options=backend_options,
        timeout=timeout,
        label="compare",
        progress=progress,
        data=data,
    )
    report = merge([partial], data=data)
    files = write_report(report, out) if out is not None else {}
    return Comparison(report, files)


__all__ = [
    "DEFAULT_BACKENDS",
    "QUICK_WORKLOADS",
    "WORKLOADS",
    "Comparison",
    "Workload",
    "compare",
    "get_workload",
    "load_partials",
    "measure_variants",
    "merge",
    "write_report",
]
