"""Exercise: experiment with different learning rates to see how fast the loss drops.

The book's setup (1000 examples, batch 10) trained with lr = 0.003, 0.03, 0.3
and 3. The full-data loss is recorded after every step; a run whose loss or
parameters stop being finite is cut at that step and marked, never plotted.
Each run is also repeated with :func:`polylin.fit` and ``on_divergence="stop"``,
whose per-epoch losses and ``diverged_at`` must tell the same story.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from polylin.api import fit
from polylin.data import synthetic_data
from polylin.experiments._common import ExperimentResult, Trace, divergence_expected, table, trace_sgd
from polylin.randomness import initial_parameters
from polylin.result import FitResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LEARNING_RATES = (0.003, 0.03, 0.3, 3.0)
#: The loss a run must reach to count as converged: twice the noise floor σ²/2 of the book's data.
TARGET_LOSS = 1e-4


@dataclass
class LearningRateResult(ExperimentResult):
    """Per learning rate: the step-by-step trace and the matching :func:`polylin.fit` result."""

    backend: str
    learning_rates: tuple[float, ...]
    traces: list[Trace]
    fits: list[FitResult]
    target_loss: float = TARGET_LOSS
    name: str = field(default="learning-rate", init=False)

    def steps_to_target(self) -> list[int | None]:
        """Steps each learning rate needed to bring the loss below :attr:`target_loss`."""
        return [t.steps_to_reach(self.target_loss) for t in self.traces]

    def summary(self) -> str:
        rows = []
        for lr, trace, result, steps in zip(
            self.learning_rates, self.traces, self.fits, self.steps_to_target(), strict=True
        ):
            rows.append(
                (
                    lr,
                    "-" if steps is None else steps,
                    f"{trace.losses[0]:.3g}",
                    "diverged" if trace.diverged_at else f"{trace.final_loss:.3g}",
                    "-" if trace.diverged_at is None else trace.diverged_at,
                    "-" if result.diverged_at is None else f"epoch {result.diverged_at[0]}",
                )
            )
        return (
            f"Learning rate on {self.backend}: the book's data, batch 10, "
            f"{self.traces[0].steps_per_epoch} steps per epoch\n"
            + table(
                (
                    "lr",
                    f"steps to loss<{self.target_loss:g}",
                    "initial loss",
                    "final loss",
                    "diverged at step",
                    "fit(on_divergence='stop')",
                ),
                rows,
            )
        )

    def figure(self) -> Figure:
        from polylin.plot import trace_figure

        return trace_figure(
            self.traces,
            title=f"Learning rate ({self.backend}): full-data loss after every step",
            floor=5e-5,
            floor_label="noise floor σ²/2",
        )


def learning_rate(
    backend: str = "numpy",
    *,
    learning_rates: Sequence[float] = LEARNING_RATES,
    epochs: int = 10,
    seed: int = 0,
    dtype: str = "float32",
) -> LearningRateResult:
    """Train the book's setup once per learning rate and record how fast the loss drops."""
    X, y = synthetic_data(seed=seed, dtype=dtype)
    w0, b0 = initial_parameters(seed, X.shape[1])
    traces, fits = [], []
    for lr in learning_rates:
        traces.append(
            trace_sgd(
                backend, X, y, w0, b0, lr=lr, epochs=epochs, seed=seed, dtype=dtype, label=f"lr = {lr:g}"
            )
        )
        with divergence_expected():
            fits.append(
                fit(
                    X,
                    y,
                    backend=backend,
                    lr=lr,
                    epochs=epochs,
                    seed=seed,
                    dtype=dtype,
                    on_divergence="stop",
                    check_stability=False,
                )
            )
    return LearningRateResult(backend, tuple(float(lr) for lr in learning_rates), traces, fits)
