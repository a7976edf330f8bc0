"""What the experiments share: a step-by-step SGD trace and the result base class.

:func:`trace_sgd` runs the same minibatch step as :func:`polylin.fit` (built by
:func:`polylin.training.make_sgd_step` from the backend's gradient) over the
same per-epoch example order, but evaluates the full-data loss every few steps
instead of once per epoch, so that loss curves show what happens inside an
epoch. It also lets an experiment swap the objective the gradient is taken of
(the "divide by the nominal batch size" bug) and drop the last partial batch.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from polylin.backends import available_backends, get_backend
from polylin.batching import batch_bounds
from polylin.losses import get_loss
from polylin.objective import Objective
from polylin.randomness import epoch_order
from polylin.training import gradient_function, make_sgd_step

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Trace:
    """The full-data loss along one SGD run.

    Attributes
    ----------
    label:
        What this run is (shown in legends).
    steps:
        The step counts at which the loss was evaluated (0 is the start).
    losses:
        The full-data loss at those steps, all finite.
    steps_per_epoch:
        Minibatch steps in one epoch.
    diverged_at:
        The first step after which the full-data loss or a parameter was
        non-finite (counted over the whole run), or ``None``. The losses stop
        before it: nothing non-finite is recorded.
    w, b:
        The last finite parameters.
    history_w, history_b:
        The parameters at each of :attr:`steps`.
    """

    label: str
    steps: np.ndarray
    losses: np.ndarray
    steps_per_epoch: int
    diverged_at: int | None
    w: np.ndarray
    b: float
    history_w: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    history_b: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def final_loss(self) -> float:
        """The last finite loss evaluated."""
        return float(self.losses[-1])

    def steps_to_reach(self, level: float) -> int | None:
        """The first evaluated step whose loss is at most ``level``, or ``None``."""
        hits = np.nonzero(self.losses <= level)[0]
        return int(self.steps[hits[0]]) if hits.size else None

    def loss_at_epoch_ends(self) -> np.ndarray:
        """The loss at the end of each completed epoch (the values ``fit().losses`` holds)."""
        ends = np.arange(1, int(self.steps[-1]) // self.steps_per_epoch + 1) * self.steps_per_epoch
        index = {int(s): i for i, s in enumerate(self.steps)}
        return np.array([self.losses[index[int(e)]] for e in ends if int(e) in index])


def trace_sgd(
    backend: str,
    X: np.ndarray,
    y: np.ndarray,
    w0: np.ndarray,
    b0: float | np.ndarray = 0.0,
    *,
    loss: str = "squared",
    lr: float = 0.03,
    batch_size: int = 10,
    epochs: int = 3,
    seed: int = 0,
    shuffle: bool = True,
    fit_intercept: bool = True,
    dtype: str = "float32",
    every: int = 1,
    drop_last: bool = False,
    objective: Any = None,
    label: str = "",
) -> Trace:
    """Minibatch SGD from ``(w0, b0)``, recording the full-data loss every ``every`` steps.

    ``objective``, a function ``xp -> objective``, replaces the objective the
    gradient is taken of (its ``__call__`` for autodiff, its ``gradient`` on
    NumPy); the recorded loss is always the mean ``loss`` over all the data.
    ``drop_last`` skips each epoch's last partial batch, as
    ``torch.utils.data.DataLoader(drop_last=True)`` does.
    """
    if every < 1:
        raise ValueError(f"every={every!r} must be a whole number >= 1 (evaluate every that many steps).")
    be = get_backend(backend, dtype=dtype)
    n = int(X.shape[0])
    bounds = batch_bounds(n, batch_size)
    if drop_last and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < batch_size:
        bounds = bounds[:-1]
    w_history: list[np.ndarray] = []
    b_history: list[float] = []
    with be.context(), np.errstate(over="ignore", invalid="ignore"):  # divergence is measured, not warned
        X_dev, y_dev = be.asarray(np.asarray(X)), be.asarray(np.asarray(y))
        reported = Objective(be.xp, get_loss(loss))
        differentiated = reported if objective is None else objective(be.xp)
        grad = "autodiff" if be.has_autodiff else "analytic"
        step = be.compile(
            make_sgd_step(be, gradient_function(be, differentiated, grad), lr, fit_intercept),
            donate_params=True,
        )
        evaluate = be.evaluator(reported)
        params = be.parameters(
            np.asarray(w0, dtype=np.float64), np.full(1, float(np.ravel(b0)[0])), trainable=grad == "autodiff"
        )
        last_w, last_b = np.asarray(w0, dtype=np.float64).copy(), float(np.ravel(b0)[0])
        steps, losses = [0], [evaluate(params, X_dev, y_dev)]
        w_history.append(last_w.copy())
        b_history.append(last_b)
        count, diverged_at = 0, None
        for epoch in range(epochs):
            order = be.index_array(epoch_order(seed, epoch, n, shuffle))
            for lo, hi in bounds:
                params = step(params, X_dev, y_dev, order[lo:hi])
                count += 1
                w_now = np.asarray(be.to_numpy(params[0]), dtype=np.float64)
                b_now = float(np.asarray(be.to_numpy(params[1]))[0])
                if not (np.all(np.isfinite(w_now)) and np.isfinite(b_now)):
                    diverged_at = count
                    break
                last_w, last_b = w_now, b_now
                if count % every == 0 or hi == bounds[-1][1]:
                    value = evaluate(params, X_dev, y_dev)
                    if not np.isfinite(value):
                        diverged_at = count
                        break
                    steps.append(count)
                    losses.append(value)
                    w_history.append(w_now)
                    b_history.append(b_now)
            if diverged_at is not None:
                break
    return Trace(
        label=label,
        steps=np.asarray(steps),
        losses=np.asarray(losses, dtype=np.float64),
        steps_per_epoch=len(bounds),
        diverged_at=diverged_at,
        w=last_w,
        b=last_b,
        history_w=np.asarray(w_history),
        history_b=np.asarray(b_history),
    )


def backend_list(backends: str | Sequence[str] | None) -> list[str]:
    """``None`` or ``"all"``: every installed backend; otherwise the names given."""
    if backends is None or backends == "all":
        return available_backends()
    if isinstance(backends, str):
        return [name.strip() for name in backends.split(",") if name.strip()]
    return list(backends)


class ExperimentResult(abc.ABC):
    """What every experiment returns: numbers, a text summary and a figure."""

    #: The experiment's registry name.
    name: str = ""

    @abc.abstractmethod
    def summary(self) -> str:
        """The result as a few lines of text, with the numbers."""

    @abc.abstractmethod
    def figure(self) -> Figure:
        """The experiment's picture, as a matplotlib figure."""

    def __str__(self) -> str:
        return self.summary()


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )
