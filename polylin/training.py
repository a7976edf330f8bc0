"""The one training loop. It runs unchanged on every backend, and names none.

It is the book's loop::

    for epoch in range(epochs):
        for X_batch, y_batch in minibatches(shuffled order):
            grads = gradient of loss(X_batch, y_batch).sum()
            params -= lr / batch_size * grads          # the last batch divides by its own size
        print(epoch, loss over all the data)

:func:`sgd_step` is the inner two lines; :func:`train` is the rest. How a
backend runs the inner loop is its own business
(:meth:`~polylin.backends.base.Backend.epoch_runner`): eager frameworks
take the steps one by one, JAX compiles the whole epoch.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polylin.backends.base import Backend, run_steps
from polylin.batching import BatchLayout, batch_bounds
from polylin.divergence import locate_divergence
from polylin.host_loss import host_loss
from polylin.host_worker import HostWorker
from polylin.objective import Objective
from polylin.randomness import EpochOrders
from polylin.streaming import mean_loss, streamed_epochs
from polylin.types import Array, EpochFn, LossFn, Params, TreeFn

#: ``on_epoch(epoch, loss, seconds)``, called after each epoch (1-based).
EpochCallback = Callable[[int, float, float], None]
#: ``on_step(step, params)``, called after each minibatch step (1-based within its epoch).
StepCallback = Callable[[int, Params], None]
GRAD_MODES = ("autodiff", "analytic")


@dataclass(frozen=True)
class SGDStep:
    """One minibatch SGD step: gather the batch, take the gradient of its summed loss, update.

    The gradient is of the batch's *summed* loss (the book's ``l.sum().backward()``):
    the framework's autodiff of :meth:`Objective.total` (``grad="autodiff"``), or
    :meth:`Objective.gradient`, derived by hand (``grad="analytic"``). The step
    moves by ``lr / m`` times it, ``m`` being the examples actually in the batch.
    Steps with equal fields compute the same function, so a compiling backend can
    reuse what it compiled for an earlier fit.
    """

    backend: Backend
    objective: Objective
    grad: str
    lr: float
    gradient: TreeFn = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.grad == "autodiff":
            gradient = self.backend.gradient(self.objective.total)
        else:
            gradient = self.objective.gradient
        object.__setattr__(self, "gradient", gradient)

    def __call__(self, params: Params, X: Array, y: Array, idx: Array) -> Params:
        take = self.backend.xp.take
        X_batch, y_batch = take(X, idx, axis=0), take(y, idx, axis=0)
        grads = self.gradient(params, X_batch, y_batch)
        return self.backend.update(params, grads, self.lr / X_batch.shape[0])


def sgd_step(backend: Backend, objective: Objective, grad: str, lr: float) -> SGDStep:
    """The SGD step on ``backend`` for ``grad="autodiff"`` or ``"analytic"``."""
    return SGDStep(backend, objective, grad, lr)


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


def host_copy(backend: Backend, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """The parameters as fresh NumPy arrays (the update writes into the backend's)."""
    return np.array(backend.to_numpy(params[0]), copy=True), np.array(backend.to_numpy(params[1]), copy=True)


def train(
    backend: Backend,
    objective: Objective,
    X: Array,
    y: Array,
    w0: np.ndarray,
    b0: np.ndarray,
    *,
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int,
    shuffle: bool = True,
    grad: str = "autodiff",
    start_epoch: int = 0,
    on_epoch: EpochCallback | None = None,
    on_step: StepCallback | None = None,
    loss_every: int = 1,
) -> TrainingRun:
    """Minibatch SGD on ``(X, y)`` (backend arrays) from host parameters ``(w0, b0)``.

    Runs epochs ``start_epoch .. epochs-1`` (0-based); each epoch's clock covers
    its steps and its full-data loss. Stops early, keeping the last finite
    parameters, when the loss becomes non-finite (a non-finite parameter always
    makes it so) or when the user interrupts with Ctrl-C. With ``on_step`` the
    steps run one by one on every backend, so that it sees each of them.

    With ``loss_every=k`` the full-data loss is evaluated after epochs ``k, 2k, ...``
    (1-based) and after the last; the other epochs record NaN and end with
    :meth:`Objective.finiteness` in its place, which reads no data: a divergence
    is then caught from the parameters, or at the next evaluated loss.

    Where the backend has NumPy views of large in-memory data (:mod:`polylin.host_loss`),
    every epoch ends with the finiteness, and the loss is evaluated here, with NumPy, from
    the host copy of the parameters. Where the backend's epochs leave a core free, it runs
    on a worker thread beside the next epoch's steps, and the epoch is recorded (and
    ``on_epoch`` called) after them; its clock then counts only the wait for its loss, if
    any. Elsewhere it runs in line, inside the epoch's clock.
    """
    step = sgd_step(backend, objective, grad, lr)
    layout = BatchLayout(int(X.shape[0]), batch_size)
    # Out-of-core data (polylin.streaming): each epoch reads and runs its blocks in turn.
    streamed = streamed_epochs(step, objective, X, y, layout, seed=seed, shuffle=shuffle, on_step=on_step)

    def runner(evaluate: bool) -> Callable[[Params, Any], tuple[Params, Array]]:
        """Epochs that end with the full-data loss, or (``evaluate=False``) with the finiteness."""
        if streamed is not None:
            return streamed if evaluate else functools.partial(streamed, evaluate=False)
        loss = objective.mean if evaluate else objective.finiteness
        if on_step is None:
            return backend.epoch_runner(step, loss, X, y, layout)
        return _observed_epoch(step, loss, X, y, layout, on_step)

    on_host = None if streamed is not None else host_loss(backend, objective, X, y)
    run_epoch = runner(evaluate=on_host is None)  # with a host loss, every epoch ends with the finiteness
    skips_losses = on_host is None and loss_every > 1 and epochs - start_epoch > 1
    unevaluated = runner(evaluate=False) if skips_losses else run_epoch
    # Where the backend's epochs leave a core free, the next order is drawn and each host loss is
    # evaluated beside the next epoch, in turn on one thread (polylin.host_worker).
    worker = HostWorker()
    beside = on_host is not None and backend.overlaps_host_loss

    run = TrainingRun(w=np.array(w0, copy=True), b=np.array(b0, copy=True))
    params = backend.parameters(run.w, run.b, trainable=grad == "autodiff")
    orders = EpochOrders(
        seed, layout.n_examples, shuffle, stop=epochs, prefetch=backend.overlaps_host_work, worker=worker
    )

    def record(done: _Epoch) -> bool:
        """Add a finished epoch to ``run`` (its loss read now), or stop at its divergence: ``False``."""
        value, seconds = done.value, done.seconds
        if done.loss is not None:  # the host loss: its wait (or, in line, its evaluation) is the epoch's
            started = time.perf_counter()
            value = done.loss()
            seconds += time.perf_counter() - started
        if not math.isfinite(value):
            if streamed is not None:
                where = streamed.diverged_step
            else:
                where = locate_divergence(
                    backend, step, grad, objective, X, y, (run.w, run.b), done.order, layout
                )
            run.divergence = Divergence(epoch=done.epoch + 1, step=where)
            return False
        assert done.params is not None  # a finite epoch's parameters were copied
        run.w, run.b = done.params
        value = value if done.evaluated else math.nan
        run.losses.append(value)
        run.epoch_times.append(seconds)
        if on_epoch is not None:
            on_epoch(done.epoch + 1, value, seconds)
        return True

    pending: _Epoch | None = None  # an epoch whose loss is being evaluated beside the next one
    try:
        try:
            for epoch in range(start_epoch, epochs):
                order: Any = orders.take(epoch) if streamed is None else streamed.order(epoch)
                evaluated = (epoch + 1) % loss_every == 0 or epoch + 1 == epochs
                started = time.perf_counter()
                params, loss = (run_epoch if evaluated else unevaluated)(params, order)
                value = float(backend.to_numpy(loss))
                done = _Epoch(epoch, order, evaluated, value, time.perf_counter() - started)
                if math.isfinite(value):
                    done.params = host_copy(backend, params)
                    if evaluated and on_host is not None:  # from the copy, which is then the epoch's
                        w, b = done.params
                        if beside:
                            done.loss = worker.submit(on_host, w, b).result
                        else:
                            done.loss = functools.partial(on_host, w, b)
                        done.seconds = time.perf_counter() - started
                previous, pending = pending, None
                if previous is not None and not record(previous):
                    break  # the epoch before this one diverged: this one never was
                if beside and done.loss is not None:
                    pending = done  # recorded after the next epoch's steps, or after the loop
                elif not record(done):
                    break
        except KeyboardInterrupt:
            run.interrupted = True
        if pending is not None:  # the last epoch, or the one before the epoch a Ctrl-C stopped
            last, pending = pending, None
            record(last)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        orders.close()
        worker.close()
    if run.losses and math.isnan(run.losses[-1]):  # stopped after an epoch whose loss was not evaluated
        if on_host is not None:
            run.losses[-1] = on_host(run.w, run.b)
        else:
            last_params = backend.parameters(run.w, run.b, trainable=False)
            run.losses[-1] = float(backend.to_numpy(mean_loss(backend, objective, last_params, X, y)))
    return run


@dataclass(slots=True)
class _Epoch:
    """An epoch whose steps are done, waiting to be recorded: its 0-based number and order, whether
    its loss is evaluated, the value it ended with (its loss, or its parameters' finiteness), its
    seconds so far, and, where that value is finite, a host copy of its parameters and its host
    loss, still to be read."""

    epoch: int
    order: Any
    evaluated: bool
    value: float
    seconds: float
    params: tuple[np.ndarray, np.ndarray] | None = None
    loss: Callable[[], float] | None = None


def _observed_epoch(
    step: SGDStep, loss: LossFn, X: Array, y: Array, layout: BatchLayout, on_step: StepCallback
) -> EpochFn:
    bounds = batch_bounds(layout.n_examples, layout.batch_size)

    def run_epoch(params: Params, order: np.ndarray) -> tuple[Params, Array]:
        params = run_steps(step, params, X, y, step.backend.asarray(order), bounds, on_step)
        return params, loss(params, X, y)

    return run_epoch
