"""Pictures: the data, the fitted plane, and loss curves, as matplotlib figures.

Every function returns a :class:`matplotlib.figure.Figure` built without
``pyplot`` (so nothing opens a window and no global state is touched);
:func:`save` writes one to a ``.png`` or ``.svg`` file. matplotlib is imported
only when a figure is made: ``pip install 'polylin[plot]'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from polylin.result import FitResult

FORMATS = (".png", ".svg")
#: One colour per feature column / backend, in order (matplotlib's default cycle).
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
BACKEND_COLOURS = {
    "numpy": "#1f77b4",
    "jax": "#2ca02c",
    "torch": "#d62728",
    "mxnet": "#9467bd",
    "array-api": "#ff7f0e",
}


class LossTrace(Protocol):
    """What :func:`trace_figure` draws: the full-data loss at some step counts of one run.

    ``steps`` and ``losses`` are equal-length arrays (the losses all finite);
    ``diverged_at`` is the step after which the run was non-finite, or ``None``.
    """

    label: str
    steps: np.ndarray
    losses: np.ndarray
    steps_per_epoch: int
    diverged_at: int | None


def _new_figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "polylin's pictures need matplotlib, which cannot be imported here "
            f"({exc}). Install it with: pip install 'polylin[plot]'"
        ) from exc
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path``; the suffix (``.png`` or ``.svg``) picks the format."""
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise ValueError(
            f"out={str(path)!r} has suffix {target.suffix or '(none)'!r}; polylin writes "
            f"{' or '.join(FORMATS)} figures: name the file e.g. 'figure.png' or 'figure.svg'."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=dpi, metadata={"Date": None} if target.suffix.lower() == ".svg" else None)
    return target


def marginal_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line of ``y`` on the single column ``x``: ``(slope, intercept, spread)``.

    ``spread`` is the standard deviation of ``y`` around that line: what the
    other columns (and the noise) contribute, seen from this column alone.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc = x - x.mean()
    slope = float(xc @ (y - y.mean()) / (xc @ xc))
    intercept = float(y.mean() - slope * x.mean())
    spread = float(np.std(y - (intercept + slope * x)))
    return slope, intercept, spread


def _check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X has shape {X.shape} and y has shape {y.shape}; pass X as (n, d) and y as (n,).")
    return X, y


def data(X: Any, y: Any, *, w: Sequence[float] | np.ndarray | None = None, max_points: int = 2000) -> Figure:
    """Each feature column against ``y``, each in its own colour, with its marginal slope.

    The first panel overlays all the columns (what a reader of the chapter
    plotted, and asked about); then one panel per column with its least-squares
    line. A column looks *tight* when the other columns contribute little to
    ``y``: the scatter around column j's line has standard deviation
    ``sqrt(Σ_{k≠j} w_k² Var x_k + σ²)``. With the book's ``w = [2, −3.4]``,
    column 2 is seen through a spread of about 2 and column 1 through one of
    about 3.4. ``w``, if given (fitted or true), is printed beside each slope.
    """
    X, y = _check_xy(X, y)
    d = X.shape[1]
    if d > len(COLOURS):
        raise ValueError(f"X has {d} columns; data() draws at most {len(COLOURS)} (select some columns).")
    shown = np.arange(X.shape[0]) if X.shape[0] <= max_points else np.linspace(0, X.shape[0] - 1, max_points)
    shown = shown.astype(int)
    fig = _new_figure(3.6 * (d + 1), 3.6)
    axes = fig.subplots(1, d + 1, sharey=True)
    overlay = axes[0]
    for j in range(d):
        overlay.scatter(X[shown, j], y[shown], s=3, alpha=0.5, color=COLOURS[j], label=f"x{j + 1}")
    overlay.set_title("all columns against y")
    overlay.set_xlabel("feature value")
    overlay.set_ylabel("y")
    overlay.legend(loc="upper left", markerscale=3, frameon=False)
    for j in range(d):
        ax = axes[j + 1]
        slope, intercept, spread = marginal_slope(X[:, j], y)
        ax.scatter(X[shown, j], y[shown], s=3, alpha=0.5, color=COLOURS[j])
        grid = np.linspace(X[:, j].min(), X[:, j].max(), 2)
        ax.plot(grid, intercept + slope * grid, color="black", linewidth=1.5)
        text = f"marginal slope {slope:.2f}"
        if w is not None:
            text += f"\nw{j + 1} = {float(w[j]):.2f}"
        text += f"\nspread around line: sd {spread:.2f}"
        ax.text(
            0.03,
            0.97,
            text,
            transform=ax.transAxes,
            va="top",
            fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        )
        ax.set_title(f"column x{j + 1}", color=COLOURS[j])
        ax.set_xlabel(f"x{j + 1}")
    fig.suptitle("Each feature against y: the spread comes from the other columns")
    return fig


def plane(X: Any, y: Any, w: Sequence[float] | np.ndarray, b: float, *, max_points: int = 1000) -> Figure:
    """The data in 3-D, ``(x₁, x₂, y)``, with the fitted plane ``y = w₁x₁ + w₂x₂ + b``."""
    X, y = _check_xy(X, y)
    if X.shape[1] != 2:
        raise ValueError(f"plane() needs exactly 2 feature columns to draw in 3-D; X has {X.shape[1]}.")
    w = [float(v) for v in w]
    shown = np.linspace(0, X.shape[0] - 1, min(max_points, X.shape[0])).astype(int)
    fig = _new_figure(6.4, 5.6)
    ax = fig.add_subplot(projection="3d")
    residual = y - (X @ np.asarray(w) + float(b))
    g1, g2 = np.meshgrid(
        np.linspace(X[:, 0].min(), X[:, 0].max(), 12), np.linspace(X[:, 1].min(), X[:, 1].max(), 12)
    )
    ax.plot_surface(g1, g2, w[0] * g1 + w[1] * g2 + float(b), alpha=0.25, color=COLOURS[2], linewidth=0)
    ax.plot_wireframe(g1, g2, w[0] * g1 + w[1] * g2 + float(b), color=COLOURS[2], linewidth=0.4, alpha=0.6)
    above = residual[shown] >= 0
    ax.scatter(X[shown][above, 0], X[shown][above, 1], y[shown][above], s=4, color=COLOURS[0], label="above")
    ax.scatter(
        X[shown][~above, 0], X[shown][~above, 1], y[shown][~above], s=4, color=COLOURS[1], label="below"
    )
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_zlabel("y")
    # Look from a quarter turn off the direction of steepest ascent: both the tilt and the surface show.
    ax.view_init(elev=25, azim=float(np.degrees(np.arctan2(w[1], w[0]))) - 90)
    ax.legend(loc="upper left", title="points above / below the plane", fontsize=8, title_fontsize=8)
    ax.set_title(
        f"fitted plane y = {w[0]:.3f}·x1 {w[1]:+.3f}·x2 {float(b):+.3f}\n"
        f"residual sd {float(np.std(residual)):.4f}",
        fontsize=10,
    )
    return fig


def _as_results(results: Any) -> list[tuple[str, FitResult]]:
    from polylin.result import FitResult

    if isinstance(results, FitResult):
        return [(results.backend, results)]
    if isinstance(results, Mapping):
        return [(str(k), v) for k, v in results.items()]
    items = list(results)
    labels = [r.backend for r in items]
    if len(set(labels)) < len(labels):
        labels = [f"{r.backend} (lr={r.config.get('lr')})" for r in items]
    return list(zip(labels, items, strict=True))


def loss_curves(results: Any, *, title: str | None = None, log: bool = True) -> Figure:
    """The full-data loss after each epoch, for one :class:`~polylin.FitResult` or several overlaid.

    ``results`` is a result, a sequence of results, or a mapping label → result.
    Epoch 0 is the initial loss; epochs whose loss was not evaluated
    (``fit(loss_every=k)``) are left out, and the line joins the others. A run
    that diverged ends where its loss was last finite, with a cross at the
    epoch where it diverged.
    """
    from matplotlib.ticker import MaxNLocator

    labelled = _as_results(results)
    if not labelled:
        raise ValueError("results is empty; pass at least one FitResult.")
    fig = _new_figure(6.4, 4.0)
    ax = fig.subplots()
    for k, (label, result) in enumerate(labelled):
        colour = BACKEND_COLOURS.get(label, COLOURS[(k + 5) % len(COLOURS)])
        values = np.concatenate([[result.initial_loss], result.losses])
        epochs = np.arange(len(values))
        evaluated = np.isfinite(values)  # epochs whose loss was not evaluated (fit(loss_every=k)) are NaN
        epochs, values = epochs[evaluated], values[evaluated]
        # Earlier curves thicker, so that identical curves (parity!) stay visible underneath.
        layer = len(labelled) - 1 - k
        style: dict[str, Any] = {
            "linestyle": ("-", "--", ":", "-.")[k % 4],
            "linewidth": 1.2 + 1.1 * layer,
            "marker": "o",
            "markersize": 3 + 1.5 * layer,
        }
        ax.plot(epochs, values, color=colour, label=f"{label}: final {result.final_loss:.3g}", **style)
        if result.diverged_at is not None:
            ax.plot([result.diverged_at[0]], [values[-1]], marker="x", markersize=10, color=colour)
            ax.annotate(
                f"diverged in epoch {result.diverged_at[0]}",
                (result.diverged_at[0], values[-1]),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=8,
                color=colour,
            )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("full-data loss")
    if len(labelled) > 1:
        spread = max(abs(r.final_loss - labelled[0][1].final_loss) for _, r in labelled)
        title = (title or "Loss after each epoch") + f"\n(largest difference in final loss: {spread:.2g})"
    ax.set_title(title or "Loss after each epoch", fontsize=11)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return fig


def trace_figure(
    traces: Sequence[LossTrace],
    *,
    title: str,
    floor: float | None = None,
    floor_label: str = "",
    ax: Axes | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Step-by-step loss traces against epochs, on a log scale (any objects with :class:`LossTrace`'s fields).

    A diverged trace is drawn up to its last finite loss; the axis is not
    stretched to fit it, and a cross at the top marks where it diverged.
    """
    fig: Figure
    if ax is None:
        fig = _new_figure(7.0, 4.2)
        ax = fig.subplots()
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    finite_low = min(float(t.losses.min()) for t in traces)
    starts = max(float(t.losses[0]) for t in traces)
    low = min(finite_low, floor if floor is not None else finite_low) / 3
    high = starts * 30
    for k, trace in enumerate(traces):
        colour = COLOURS[k % len(COLOURS)]
        x = trace.steps / trace.steps_per_epoch
        label = trace.label
        if trace.diverged_at is not None:
            label += f" (diverged at step {trace.diverged_at})"
        ax.plot(x, trace.losses, color=colour, linewidth=1.3, linestyle=("-", "--")[k % 2], label=label)
        if trace.diverged_at is not None:
            ax.plot(
                [trace.diverged_at / trace.steps_per_epoch],
                [high / 1.6],
                marker="X",
                markersize=11,
                color=colour,
                clip_on=False,
                zorder=5,
            )
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            floor_label,
            (0.01, floor),
            xycoords=("axes fraction", "data"),
            textcoords="offset points",
            xytext=(0, -10),
            fontsize=8,
            color="grey",
        )
    ax.set_yscale("log")
    ax.set_ylim(*(ylim or (low, high)))
    ax.set_xlabel("epoch")
    ax.set_ylabel("full-data loss")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    ax.grid(True, which="major", alpha=0.3)
    return fig
