"""Exercise: what happens if the weights are initialised to zero? Does it still work?

Three starts for the book's setup (lr 0.03, batch 10): ``w = 0``, the book's
``w ~ N(0, 0.01²)``, a wild ``w ~ N(0, 1000)`` (variance 1000, standard
deviation ≈ 31.6) and a wilder one with standard deviation 1000 (how a reader
on the book's forum read "1000"). Linear regression has one optimum and no hidden units
whose symmetry zeros could fail to break, so all three converge; a start
further away costs steps in proportion to the log of its initial loss,
because SGD shrinks the distance to the optimum by a roughly constant
factor per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from polylin.data import BOOK_TRUE_B, BOOK_TRUE_W, synthetic_data
from polylin.experiments._common import ExperimentResult, Trace, table, trace_sgd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: name -> standard deviation of the initial weights (0 means all zeros).
INITIALISATIONS = {
    "zeros": 0.0,
    "N(0, 0.01²)": 0.01,
    "N(0, 1000) (variance 1000)": float(np.sqrt(1000.0)),
    "N(0, 1000²) (sd 1000)": 1000.0,
}
TARGET_LOSS = 1e-4


@dataclass
class InitialisationResult(ExperimentResult):
    """Per initialisation: its initial weights and the step-by-step trace."""

    backend: str
    labels: list[str]
    initial_w: list[np.ndarray]
    traces: list[Trace]
    target_loss: float = TARGET_LOSS
    name: str = field(default="initialisation", init=False)

    def steps_to_target(self) -> list[int | None]:
        return [t.steps_to_reach(self.target_loss) for t in self.traces]

    def w_errors(self) -> list[float]:
        """max |true w − w| at the end of each run."""
        return [float(np.max(np.abs(np.asarray(BOOK_TRUE_W) - t.w))) for t in self.traces]

    def b_errors(self) -> list[float]:
        return [abs(BOOK_TRUE_B - t.b) for t in self.traces]

    def summary(self) -> str:
        rows = [
            (
                label,
                np.array2string(w0, precision=3),
                f"{t.losses[0]:.3g}",
                "-" if s is None else s,
                f"{t.final_loss:.3g}",
                f"{we:.1e}",
                f"{be:.1e}",
            )
            for label, w0, t, s, we, be in zip(
                self.labels,
                self.initial_w,
                self.traces,
                self.steps_to_target(),
                self.w_errors(),
                self.b_errors(),
                strict=True,
            )
        ]
        return f"Initialisation on {self.backend} (lr 0.03, batch 10, b = 0 at the start)\n" + table(
            (
                "init",
                "w at start",
                "initial loss",
                f"steps to loss<{self.target_loss:g}",
                "final loss",
                "max|w err|",
                "|b err|",
            ),
            rows,
        )

    def figure(self) -> Figure:
        from polylin.plot import trace_figure

        return trace_figure(
            self.traces,
            title=f"Initialisation ({self.backend}): every start converges; a far one takes longer",
            floor=5e-5,
            floor_label="noise floor σ²/2",
        )


def initialisation(
    backend: str = "numpy", *, epochs: int = 5, seed: int = 0, dtype: str = "float32"
) -> InitialisationResult:
    """Train the book's setup from three initial weight vectors and compare."""
    X, y = synthetic_data(seed=seed, dtype=dtype)
    rng = np.random.default_rng([seed, 101])
    labels, starts, traces = [], [], []
    for label, scale in INITIALISATIONS.items():
        w0 = rng.normal(0.0, scale, X.shape[1]) if scale > 0 else np.zeros(X.shape[1])
        labels.append(label)
        starts.append(w0)
        traces.append(trace_sgd(backend, X, y, w0, 0.0, epochs=epochs, seed=seed, dtype=dtype, label=label))
    return InitialisationResult(backend, labels, starts, traces)
