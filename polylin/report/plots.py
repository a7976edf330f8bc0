"""The report's figures (matplotlib, Agg): loss against epoch, loss against time, throughput."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from polylin.report.tables import rate as format_rate

#: One colour and marker per backend, so a backend looks the same in every figure.
BACKEND_STYLE = {
    "numpy": ("#1f77b4", "o"),
    "jax": ("#d62728", "s"),
    "torch": ("#ff7f0e", "^"),
    "mxnet": ("#2ca02c", "D"),
    "array-api": ("#9467bd", "v"),
}
GRAD_LINESTYLE = {"autodiff": "-", "analytic": "--"}
FIGURES = {
    "loss_vs_epoch": "loss_vs_epoch.png",
    "loss_vs_time": "loss_vs_time.png",
    "throughput": "throughput.png",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(record: dict[str, Any]) -> dict[str, Any]:
    colour, marker = BACKEND_STYLE.get(record["backend"], ("#7f7f7f", "x"))
    return {
        "color": colour,
        "marker": marker,
        "linestyle": GRAD_LINESTYLE.get(record["grad"], ":"),
        "markerfacecolor": colour if record["grad"] == "autodiff" else "white",
        "markersize": 6,
        "linewidth": 1.6,
    }


def _title(report: dict[str, Any]) -> str:
    workload = report["manifest"]["workload"]
    return (
        f"{workload['name']}: {workload['n']:,} x {workload['d']}, batch {workload['batch_size']}, "
        f"lr {workload['lr']:g}, {workload['epochs']} epochs, {workload['dtype']}"
    )


def loss_vs_epoch(report: dict[str, Any], path: Path) -> Path:
    """Full-data loss after each epoch, every variant overlaid; beside it, the gap to the NumPy reference."""
    plt = _pyplot()
    variants = report["variants"]
    reference = next((r for r in variants if r["variant"] == report["summary"]["reference"]), None)
    fig, axes = plt.subplots(1, 2 if reference else 1, figsize=(12 if reference else 7, 4.6), squeeze=False)
    ax = axes[0][0]
    for record in variants:
        curve = [record["initial_loss"], *record["losses"]]
        ax.plot(range(len(curve)), curve, label=record["variant"], alpha=0.85, **_style(record))
    ax.axhline(
        report["least_squares"]["loss"],
        color="black",
        linewidth=0.8,
        linestyle=":",
        label="least-squares optimum",
    )
    ax.set_yscale("log")
    ax.set_xlabel("epoch (0 = initial parameters)")
    ax.set_ylabel("full-data loss, ½ mean squared residual")
    ax.set_title("Loss after each epoch (curves overlap where backends agree)", fontsize=10)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    if reference is not None:
        right = axes[0][1]
        ref = np.asarray(reference["losses"], dtype=np.float64)
        floor = 1e-12
        for record in variants:
            if record is reference or len(record["losses"]) != len(ref):
                continue
            rel = np.abs(np.asarray(record["losses"]) - ref) / np.abs(ref)
            epochs = np.arange(1, len(ref) + 1)
            right.plot(epochs, np.maximum(rel, floor), label=record["variant"], alpha=0.85, **_style(record))
        tolerance = reference.get("parity", {}).get("loss_rtol")
        if tolerance:
            right.axhline(tolerance, color="black", linestyle=":", linewidth=1.0, label="parity tolerance")
        right.set_yscale("log")
        right.set_ylim(bottom=floor / 2)
        right.set_xlabel("epoch")
        right.set_ylabel("|loss − NumPy loss| / NumPy loss")
        right.set_title(f"Relative difference from {reference['variant']} (0 drawn at {floor:g})")
        right.xaxis.get_major_locator().set_params(integer=True)
        right.grid(True, which="major", alpha=0.3)
        right.legend(fontsize=8)
    fig.suptitle(_title(report), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loss_vs_time(report: dict[str, Any], path: Path) -> Path:
    """Loss against the cumulative training time of the first, cold fit, from the initial loss at 0 s."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    shortest = float("inf")
    for record in report["variants"]:
        elapsed = np.cumsum(record["timing"]["epoch_times_s"][0])
        shortest = min(shortest, float(elapsed[0]))
        times = np.concatenate([[0.0], elapsed])
        curve = [record["initial_loss"], *record["losses"]]
        ax.plot(times, curve, label=record["variant"], alpha=0.85, **_style(record))
    # Symmetric log: linear from 0 to the quickest first epoch (the initial loss sits at 0 s), log beyond.
    threshold = shortest if np.isfinite(shortest) and shortest > 0 else 1e-3
    ax.set_xscale("symlog", linthresh=threshold, linscale=0.5)
    ax.set_xlim(left=0)
    ax.set_yscale("log")
    ax.set_xlabel(f"cumulative training time, s (linear up to {threshold:.2g} s, logarithmic beyond)")
    ax.set_ylabel("full-data loss")
    ax.set_title(
        "Loss against training time: the first fit in a fresh process "
        "(its first epoch includes compilation and warm-up)\n" + _title(report),
        fontsize=9,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def throughput(report: dict[str, Any], path: Path) -> Path:
    """Steady-state samples per second per variant; whiskers span the fastest and slowest epoch."""
    plt = _pyplot()
    records = [r for r in report["variants"] if r["timing"].get("samples_per_s")]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.45 * max(len(records), 1)))
    names = [r["variant"] for r in records]
    rates = np.array([r["timing"]["samples_per_s"] for r in records])
    samples = np.array([r["timing"]["samples_per_epoch"] for r in records], dtype=np.float64)
    slow = samples / np.array([r["timing"]["steady_epoch_s"]["max"] for r in records])
    fast = samples / np.array([r["timing"]["steady_epoch_s"]["min"] for r in records])
    positions = np.arange(len(records))[::-1]
    colours = [_style(r)["color"] for r in records]
    bars = ax.barh(
        positions,
        rates,
        color=colours,
        alpha=0.85,
        height=0.6,
        xerr=[rates - slow, fast - rates],
        error_kw={"ecolor": "black", "capsize": 3, "lw": 0.8},
    )
    for bar, record in zip(bars, records, strict=True):
        if record["grad"] == "analytic":
            bar.set_hatch("//")
            bar.set_edgecolor("white")
    ax.set_yticks(positions, names)
    if len(rates) and rates.max() / rates.min() > 20:
        ax.set_xscale("log")
    ax.set_xlim(right=(fast.max() if len(fast) else 1) * (4 if ax.get_xscale() == "log" else 1.25))
    for position, rate, top, record in zip(positions, rates, fast, records, strict=True):
        label = f"{format_rate(rate)}/s"
        if record.get("speedup_vs_numpy"):
            label += f"  ({record['speedup_vs_numpy']:.2f}x NumPy)"
        ax.text(top * (1.12 if ax.get_xscale() == "log" else 1.02), position, label, va="center", fontsize=8)
    ax.set_xlabel("samples per second, steady-state epochs (median; whiskers: fastest and slowest epoch)")
    ax.set_title("Throughput (hatched: analytic gradients)\n" + _title(report), fontsize=10)
    ax.grid(True, axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_figures(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write every figure into ``out``; returns name → path. No figures when no variant was measured."""
    if not report["variants"]:
        return {}
    out.mkdir(parents=True, exist_ok=True)
    return {
        "loss_vs_epoch": loss_vs_epoch(report, out / FIGURES["loss_vs_epoch"]),
        "loss_vs_time": loss_vs_time(report, out / FIGURES["loss_vs_time"]),
        "throughput": throughput(report, out / FIGURES["throughput"]),
    }
