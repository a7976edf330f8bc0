"""The one training loop. It runs unchanged on every backend.

Nothing in this module names a framework: everything framework-specific
goes through the :class:`~polylin.backends.base.Backend` it is given.

Per epoch the loop (1) draws the example order on the host, (2) hands it to
the backend's epoch runner, which runs every minibatch step on the device
with no host synchronisation, (3) synchronises and stops the clock, and
(4) evaluates the full-data loss and copies the parameters to the host once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from polylin.backends.base import Array, Backend, GradFn, Params, StepFn
from polylin.batching import BatchLayout, batch_bounds
from polylin.losses import Loss
from polylin.objective import Objective
from polylin.randomness import epoch_order

EpochCallback = Callable[[int, float, float], None]
GRAD_MODES = ("autodiff", "analytic")


@dataclass(frozen=True)
class Divergence:
    """Where training first produced a non-finite value (1-based epoch and step)."""

    epoch: int
    step: int


@dataclass
class TrainingRun:
    """What the loop hands back: per-epoch history and the last finite parameters."""

    w: np.ndarray
    b: np.ndarray
    losses: list[float] = field(default_factory=list)
    epoch_times: list[float] = field(default_factory=list)
    divergence: Divergence | None = None
    interrupted: bool = False


def make_sgd_step(backend: Backend, gradient: GradFn, lr: float, fit_intercept: bool = True) -> StepFn:
    """One minibatch SGD step: gather the batch, take the gradient, update in place.

    Without an intercept, ``b`` stays at its initial 0 and only ``w`` moves.
    """
    take, update = backend.take, backend.update

    def step(params: Params, X: Array, y: Array, idx: Array) -> Params:
        return update(params, gradient(params, take(X, idx), take(y, idx)), lr)

    def step_through_origin(params: Params, X: Array, y: Array, idx: Array) -> Params:
        grad_w, _ = gradient(params, take(X, idx), take(y, idx))
        updated = update((params[0],), (grad_w,), lr)  # type: ignore[arg-type]
        return updated[0], params[1]

    return step if fit_intercept else step_through_origin


def gradient_function(backend: Backend, objective: Objective, grad: str) -> GradFn:
    """The framework's autodiff gradient, or the hand-derived one run on its arrays."""
    if grad == "autodiff":
        return backend.grad(objective)
    return objective.gradient


def _host_copy(backend: Backend, params: Params) -> tuple[np.ndarray, np.ndarray]:
    w, b = (np.array(backend.to_numpy(p), copy=True) for p in params)
    return w, b


def _all_finite(*values: np.ndarray | float) -> bool:
    return all(bool(np.all(np.isfinite(v))) for v in values)


def _locate_divergence(
    backend: Backend,
    step: StepFn,
    X: Array,
    y: Array,
    start: tuple[np.ndarray, np.ndarray],
    order: Array,
    layout: BatchLayout,
    trainable: bool,
) -> int:
    """Replay a diverged epoch one step at a time to find its first non-finite step."""
    single_step = backend.compile(step, donate_params=True)
    params = backend.parameters(*start, trainable=trainable)
    for count, (lo, hi) in enumerate(batch_bounds(layout.n_examples, layout.batch_size), start=1):
        params = single_step(params, X, y, order[lo:hi])
        if not _all_finite(*_host_copy(backend, params)):
            return count
    return layout.steps_per_epoch


def train(
    backend: Backend,
    X: Array,
    y: Array,
    w0: np.ndarray,
    b0: np.ndarray,
    *,
    loss: Loss,
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int,
    shuffle: bool = True,
    grad: str = "autodiff",
    fit_intercept: bool = True,
    start_epoch: int = 0,
    on_epoch: EpochCallback | None = None,
) -> TrainingRun:
    """Minibatch SGD on ``(X, y)`` (backend arrays) from host parameters ``(w0, b0)``.

    Runs epochs ``start_epoch .. epochs-1`` (0-based). Stops early, keeping
    the last finite parameters, when a loss or a parameter becomes
    non-finite or when the user interrupts with Ctrl-C.
    """
    objective = Objective(backend.xp, loss)
    trainable = grad == "autodiff"
    gradient = gradient_function(backend, objective, grad)
    step = make_sgd_step(backend, gradient, lr, fit_intercept)
    layout = BatchLayout(int(X.shape[0]), batch_size)
    run_epoch = backend.epoch_runner(step, X, y, layout)
    evaluate = backend.evaluator(objective)

    run = TrainingRun(w=np.array(w0, copy=True), b=np.array(b0, copy=True))
    params = backend.parameters(run.w, run.b, trainable=trainable)
    try:
        for epoch in range(start_epoch, epochs):
            order = backend.index_array(epoch_order(seed, epoch, layout.n_examples, shuffle))
            started = time.perf_counter()
            params = run_epoch(params, order)
            backend.synchronize(params)
            elapsed = time.perf_counter() - started

            value = evaluate(params, X, y)
            w, b = _host_copy(backend, params)
            if not _all_finite(value, w, b):
                where = _locate_divergence(backend, step, X, y, (run.w, run.b), order, layout, trainable)
                run.divergence = Divergence(epoch=epoch + 1, step=where)
                break
            run.w, run.b = w, b
            run.losses.append(value)
            run.epoch_times.append(elapsed)
            if on_epoch is not None:
                on_epoch(epoch + 1, value, elapsed)
    except KeyboardInterrupt:
        run.interrupted = True
    return run
