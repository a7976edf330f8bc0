"""What the experiments share: a step-by-step SGD trace, the result base class and a text table.

:func:`trace_sgd` takes the very steps :func:`polylin.fit` takes (the
:class:`~polylin.training.SGDStep` of :func:`polylin.training.sgd_step`, run by
the loop's own :func:`~polylin.backends.base.run_steps`) over the same
per-epoch example order. It watches them through the loop's ``on_step``
callback and evaluates the full-data loss every few steps instead of once per
epoch, so that loss curves show what happens inside an epoch. An experiment
may swap the objective the step differentiates (the "divide by the nominal
batch size" policy) and drop each epoch's last partial batch.
"""

from __future__ import annotations

import abc
import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from polylin.backends import available_backends, get_backend
from polylin.backends.base import Backend, run_steps
from polylin.batching import batch_bounds
from polylin.errors import DivergenceWarning
from polylin.losses import get_loss
from polylin.objective import Objective
from polylin.randomness import epoch_order
from polylin.training import host_copy, sgd_step
from polylin.types import Array, Namespace, Params

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


@contextlib.contextmanager
def divergence_expected() -> Iterator[None]:
    """For runs that diverge on purpose: the divergence is measured and reported, so neither
    NumPy's overflow warnings nor ``fit(on_divergence="stop")``'s DivergenceWarning are shown."""
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        yield


def scalar(backend: Backend, x: Array) -> float:
    """A backend's scalar as a float (MXNet's legacy reductions have shape ``(1,)``, not ``()``)."""
    return float(np.asarray(backend.to_numpy(x)).reshape(-1)[0])


class _NonFiniteError(Exception):
    """Raised from the step callback: the run ends at its first non-finite value."""


@dataclass
class _Recorder:
    """The ``on_step`` callback of :func:`trace_sgd`: checks every step, records every ``every``-th.

    ``done`` counts the steps of the epochs already finished, so that the steps
    are numbered over the whole run; ``evaluate`` is the full-data loss.
    """

    backend: Backend
    evaluate: Callable[[Params], Array]
    every: int
    steps_per_epoch: int
    w: np.ndarray
    b: float
    done: int = 0
    diverged_at: int | None = None
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    history_w: list[np.ndarray] = field(default_factory=list)
    history_b: list[float] = field(default_factory=list)

    def record(self, count: int, value: float) -> None:
        self.steps.append(count)
        self.losses.append(value)
        self.history_w.append(self.w)
        self.history_b.append(self.b)

    def __call__(self, step: int, params: Params) -> None:
        count = self.done + step
        w, b = host_copy(self.backend, params)
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            self.diverged_at = count
            raise _NonFiniteError
        self.w, self.b = w.astype(np.float64), float(b[0])
        if count % self.every == 0 or step == self.steps_per_epoch:
            value = scalar(self.backend, self.evaluate(params))
            if not np.isfinite(value):
                self.diverged_at = count
                raise _NonFiniteError
            self.record(count, value)


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
    objective: Callable[[Namespace], Objective] | None = None,
    label: str = "",
) -> Trace:
    """Minibatch SGD from ``(w0, b0)``, recording the full-data loss every ``every`` steps
    (and at the end of every epoch).

    ``objective``, a function ``xp -> Objective``, replaces the objective the
    step differentiates (its ``total`` by autodiff, its hand-derived
    ``gradient`` on NumPy); the recorded loss is always the mean ``loss`` over
    all the data. ``drop_last`` skips each epoch's last partial batch, as
    ``torch.utils.data.DataLoader(drop_last=True)`` does.
    """
    if every < 1:
        raise ValueError(f"every={every!r} must be a whole number >= 1 (evaluate every that many steps).")
    be = get_backend(backend, dtype=dtype)
    n = int(X.shape[0])
    bounds = batch_bounds(n, batch_size)
    if drop_last and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < batch_size:
        bounds = bounds[:-1]
    w_start, b_start = np.asarray(w0, dtype=np.float64), float(np.ravel(b0)[0])
    with be.context(), divergence_expected():
        X_dev, y_dev = be.asarray(np.asarray(X)), be.asarray(np.asarray(y))
        reported = Objective(be.xp, get_loss(loss), fit_intercept=fit_intercept)
        differentiated = reported if objective is None else objective(be.xp)
        grad = "autodiff" if be.has_autodiff else "analytic"
        # Run eagerly, one step at a time, on JAX too: its eager operations are fast enough here
        # (jitting the step and the loss measured no faster on the experiments' sizes).
        step = sgd_step(be, differentiated, grad, lr)

        def full_data_loss(params: Params) -> Array:
            return reported.mean(params, X_dev, y_dev)

        recorder = _Recorder(be, full_data_loss, every, len(bounds), w_start.copy(), b_start)
        params = be.parameters(w_start, np.array([b_start]), trainable=grad == "autodiff")
        recorder.record(0, scalar(be, recorder.evaluate(params)))
        try:
            for epoch in range(epochs):
                order = be.asarray(epoch_order(seed, epoch, n, shuffle))
                params = run_steps(step, params, X_dev, y_dev, order, bounds, recorder)
                recorder.done += len(bounds)
        except _NonFiniteError:
            pass
    return Trace(
        label=label,
        steps=np.asarray(recorder.steps),
        losses=np.asarray(recorder.losses, dtype=np.float64),
        steps_per_epoch=len(bounds),
        diverged_at=recorder.diverged_at,
        w=recorder.w,
        b=recorder.b,
        history_w=np.asarray(recorder.history_w),
        history_b=np.asarray(recorder.history_b),
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
    """An aligned plain-text table (columns two spaces apart, no rules), rendered by ``rich``.

    Every cell is taken as literal text, never as rich markup, so ``[300, 100]``
    prints as it is; no colour or style codes reach the string.
    """
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, header_style="none")
    for name in header:
        grid.add_column(Text(str(name)), no_wrap=True, overflow="ignore")
    for row in rows:
        grid.add_row(*(Text(str(cell)) for cell in row))
    out = io.StringIO()
    Console(file=out, width=100_000, color_system=None, force_terminal=False, soft_wrap=False).print(grid)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())
