"""Why shuffle? Adversarially ordered data sets that SGD learns badly in order.

SGD with a constant learning rate remembers roughly its last ``1/lr`` steps.
If the examples arrive sorted so that neighbouring batches disagree about
the best parameters, every epoch ends with the parameters fitted to the last
slice of the data, and the full-data loss stays above its optimum. A random
order makes every batch a fair sample of the whole.

Two orderings are tried, each read in order, reshuffled every epoch (the
book's ``data_iter``), and shuffled once and then kept:

* **the book's model with noise σ = 1, sorted by y.** The last batches hold
  the largest labels, whose noise is mostly positive: ``b`` ends too high.
  (With the book's own σ = 0.01 the same sorting does no harm, because every
  batch then agrees on almost exactly the same parameters; the summary shows
  it.)
* **Ohm's measurements sorted by resistor, one slope for all.** A single
  resistance cannot fit five resistors, so batches from different resistors
  pull in different directions, and in order SGD ends near the last resistor's.

"Hurt" is measured as the excess of the full-data loss over its minimum (the
exact least-squares fit of the same data), which no order can beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from polylin.data import synthetic_data
from polylin.experiments._common import ExperimentResult, Trace, table, trace_sgd
from polylin.experiments.ohm import measurements
from polylin.randomness import initial_parameters

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ARMS = ("in sorted order", "reshuffled every epoch", "shuffled once, then in order")
NOISY = 1.0


def _least_squares_loss(X: np.ndarray, y: np.ndarray, fit_intercept: bool) -> float:
    design = np.column_stack([X, np.ones(len(y))]) if fit_intercept else X
    design = design.astype(np.float64)
    solution = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]
    residual = design @ solution - y
    return float(0.5 * np.mean(residual**2))


@dataclass
class ShuffleResult(ExperimentResult):
    """Per data set and arm: the trace and the excess of its final loss over the minimum."""

    backend: str
    datasets: list[str]
    traces: dict[str, list[Trace]]
    optimum: dict[str, float]
    name: str = field(default="shuffle", init=False)

    def excess(self, dataset: str) -> np.ndarray:
        """Final full-data loss minus the least-squares minimum, per arm."""
        return np.array([t.final_loss - self.optimum[dataset] for t in self.traces[dataset]])

    def harm(self, dataset: str) -> float:
        """How many times larger the in-order excess is than the reshuffled one."""
        excess = self.excess(dataset)
        return float(excess[0] / max(excess[1], 1e-12))

    def summary(self) -> str:
        rows = [
            (
                dataset,
                f"{self.optimum[dataset]:.3g}",
                *(f"{e:.2e}" for e in self.excess(dataset)),
                f"{self.harm(dataset):.2g}x",
            )
            for dataset in self.datasets
        ]
        return f"Why shuffle, on {self.backend}: excess of the final loss over its minimum\n" + table(
            ("data", "minimum loss", *ARMS, "in order / reshuffled"), rows
        )

    def figure(self) -> Figure:
        from polylin.plot import _new_figure, trace_figure

        shown = [d for d in self.datasets if self.harm(d) > 10]
        fig = _new_figure(6.0 * len(shown), 4.4)
        axes = np.atleast_1d(fig.subplots(1, len(shown)))
        for ax, dataset in zip(axes, shown, strict=True):
            excess = [
                replace(t, losses=np.maximum(t.losses - self.optimum[dataset], 1e-9))
                for t in self.traces[dataset]
            ]
            trace_figure(excess, title=dataset, ax=ax)
            ax.set_ylabel("full-data loss − its minimum")
            ax.set_ylim(bottom=1e-5)
        fig.suptitle(f"Why shuffle ({self.backend}): sorted data read in order never settles")
        return fig


def shuffle(
    backend: str = "numpy", *, epochs: int = 5, seed: int = 0, dtype: str = "float32"
) -> ShuffleResult:
    """Train on adversarially sorted data in order, reshuffled, and shuffled once."""
    noisy_X, noisy_y = synthetic_data(noise=NOISY, seed=seed, dtype=dtype)
    book_X, book_y = synthetic_data(seed=seed, dtype=dtype)
    current, volts, _ = measurements(seed=seed)  # already sorted by resistor
    rms = float(np.sqrt(np.mean(current**2)))
    ohm_X = (current / rms)[:, None].astype(dtype)
    ohm_y = volts.astype(dtype)
    datasets = {
        f"book model, σ = {NOISY:g}, sorted by y": (
            noisy_X,
            noisy_y,
            True,
            np.argsort(noisy_y, kind="stable"),
            1,
        ),
        "book data (σ = 0.01), sorted by y": (book_X, book_y, True, np.argsort(book_y, kind="stable"), 1),
        "Ohm, sorted by resistor, one slope": (ohm_X, ohm_y, False, np.arange(len(ohm_y)), 4),
    }
    traces: dict[str, list[Trace]] = {}
    optimum: dict[str, float] = {}
    for name, (X, y, intercept, order, repeat) in datasets.items():
        X, y = X[order], y[order]
        once = np.random.default_rng([seed, 202]).permutation(len(y))
        w0, b0 = initial_parameters(seed, X.shape[1])
        arms = ((X, y, False), (X, y, True), (X[once], y[once], False))
        traces[name] = [
            trace_sgd(
                backend,
                Xa,
                ya,
                w0,
                b0,
                epochs=epochs * repeat,
                seed=seed,
                shuffle=reshuffle,
                fit_intercept=intercept,
                dtype=dtype,
                every=2,
                label=label,
            )
            for label, (Xa, ya, reshuffle) in zip(ARMS, arms, strict=True)
        ]
        optimum[name] = _least_squares_loss(X, y, intercept)
    return ShuffleResult(backend, list(datasets), traces, optimum)
