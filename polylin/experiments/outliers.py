"""Exercise: squared against absolute against Huber loss, with one wild label, ``y[4] = 10000``.

The book's data with a single label replaced by 10,000 (the others lie
within about ±20). The squared loss's gradient grows with the residual, so
every time example 4 comes round its batch drags the parameters by
``lr · 10⁴ / 10 ≈ 30`` in its direction, and even the exact least-squares
fit is pulled far away. The absolute loss's gradient is ``sign(r)``, and
Huber's is the residual clipped to ±δ (δ = 1): the outlier pulls no harder
than any other example, so both recover ``w`` and ``b`` as if it were not there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from polylin.data import BOOK_TRUE_B, BOOK_TRUE_W, synthetic_data
from polylin.experiments._common import ExperimentResult, Trace, table, trace_sgd
from polylin.randomness import initial_parameters

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOSS_NAMES = ("squared", "absolute", "huber")
OUTLIER_INDEX = 4
OUTLIER_VALUE = 10_000.0


@dataclass
class OutliersResult(ExperimentResult):
    """Per loss: the trace and the final errors; and the exact least-squares fit for reference."""

    backend: str
    losses: tuple[str, ...]
    traces: list[Trace]
    lstsq: np.ndarray
    lstsq_clean: np.ndarray
    name: str = field(default="outliers", init=False)

    @staticmethod
    def _errors(params: np.ndarray) -> np.ndarray:
        errors: np.ndarray = np.abs(np.array([*BOOK_TRUE_W, BOOK_TRUE_B]) - params)
        return errors

    def errors(self) -> dict[str, np.ndarray]:
        """|true − fitted| in ``(w₁, w₂, b)``: per loss, and by exact least squares with and without y[4]."""
        out = {t.label: self._errors(np.array([*t.w, t.b])) for t in self.traces}
        out["exact least squares"] = self._errors(self.lstsq)
        out["exact least squares, outlier removed"] = self._errors(self.lstsq_clean)
        return out

    def summary(self) -> str:
        rows = [(name, *(f"{e:.2e}" for e in errs)) for name, errs in self.errors().items()]
        return (
            f"Outliers on {self.backend}: the book's data with y[{OUTLIER_INDEX}] = {OUTLIER_VALUE:g}, "
            "lr 0.03, batch 10\n" + table(("fit", "|w1 err|", "|w2 err|", "|b err|"), rows)
        )

    def figure(self) -> Figure:
        from polylin.plot import COLOURS, _new_figure

        fig = _new_figure(11.0, 4.2)
        left, right = fig.subplots(1, 2)
        true = np.array([*BOOK_TRUE_W, BOOK_TRUE_B])
        for k, trace in enumerate(self.traces):
            params = np.column_stack([trace.history_w, trace.history_b])
            error = np.max(np.abs(params - true), axis=1)
            left.plot(trace.steps / trace.steps_per_epoch, error, color=COLOURS[k], label=trace.label)
        left.set_yscale("log")
        left.set_xlabel("epoch")
        left.set_ylabel("max |true − fitted| over (w, b)")
        left.set_title("error during training (each jump: example 4's batch)")
        left.legend(frameon=False, fontsize=8)
        left.grid(True, alpha=0.3)
        errors = self.errors()
        names = list(errors)
        positions = np.arange(3)
        width = 0.8 / len(names)
        for k, name in enumerate(names):
            colour = COLOURS[k] if k < len(self.traces) else ("#555555", "#bbbbbb")[k - len(self.traces)]
            right.bar(
                positions + (k - (len(names) - 1) / 2) * width, errors[name], width, color=colour, label=name
            )
        right.set_xticks(positions, ["w1", "w2", "b"])
        right.set_yscale("log")
        right.set_ylabel("|true − fitted| at the end")
        right.set_title("final errors")
        right.legend(frameon=False, fontsize=7, loc="upper right", ncols=2)
        right.set_ylim(top=float(max(e.max() for e in errors.values())) * 300)
        fig.suptitle(f"One outlier, y[4] = 10000 ({self.backend}): the squared loss is dragged away")
        return fig


def outliers(
    backend: str = "numpy", *, epochs: int = 10, lr: float = 0.03, seed: int = 0, dtype: str = "float32"
) -> OutliersResult:
    """Fit the book's data with ``y[4] = 10000`` under each loss."""
    X, y = synthetic_data(seed=seed, dtype=dtype)
    clean = y.astype(np.float64)
    y = y.copy()
    y[OUTLIER_INDEX] = OUTLIER_VALUE
    w0, b0 = initial_parameters(seed, X.shape[1])
    traces = [
        trace_sgd(
            backend,
            X,
            y,
            w0,
            b0,
            loss=loss,
            lr=lr,
            epochs=epochs,
            seed=seed,
            dtype=dtype,
            every=5,
            label=f"{loss} loss",
        )
        for loss in LOSS_NAMES
    ]
    design = np.column_stack([X.astype(np.float64), np.ones(len(y))])
    exact = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]
    keep = np.arange(len(y)) != OUTLIER_INDEX
    exact_clean = np.linalg.lstsq(design[keep], clean[keep], rcond=None)[0]
    return OutliersResult(backend, LOSS_NAMES, traces, exact, exact_clean)
