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
    the host copy of the parameters, inside the epoch's clock.
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

    run = TrainingRun(w=np.array(w0, copy=True), b=np.array(b0, copy=True))
    params = backend.parameters(run.w, run.b, trainable=grad == "autodiff")
    orders = EpochOrders(seed, layout.n_examples, shuffle, stop=epochs, prefetch=backend.overlaps_host_work)
    try:
        for epoch in range(start_epoch, epochs):
            order: Any = orders.take(epoch) if streamed is None else streamed.order(epoch)
            evaluated = (epoch + 1) % loss_every == 0 or epoch + 1 == epochs
            started = time.perf_counter()
            params, loss = (run_epoch if evaluated else unevaluated)(params, order)
            value = float(backend.to_numpy(loss))
            host_params = None
            if evaluated and on_host is not None and math.isfinite(value):
                host_params = host_copy(backend, params)
                value = on_host(*host_params)
            elapsed = time.perf_counter() - started
            if not math.isfinite(value):
                if streamed is not None:
                    where = streamed.diverged_step
                else:
                    where = locate_divergence(
                        backend, step, grad, objective, X, y, (run.w, run.b), order, layout
                    )
                run.divergence = Divergence(epoch=epoch + 1, step=where)
                break
            run.w, run.b = host_params or host_copy(backend, params)
            if not evaluated:
                value = math.nan
            run.losses.append(value)
            run.epoch_times.append(elapsed)
            if on_epoch is not None:
                on_epoch(epoch + 1, value, elapsed)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        orders.close()
    if run.losses and math.isnan(run.losses[-1]):  # stopped after an epoch whose loss was not evaluated
        if on_host is not None:
            run.losses[-1] = on_host(run.w, run.b)
        else:
            last = backend.parameters(run.w, run.b, trainable=False)
            run.losses[-1] = float(backend.to_numpy(mean_loss(backend, objective, last, X, y)))
    return run


def _observed_epoch(
    step: SGDStep, loss: LossFn, X: Array, y: Array, layout: BatchLayout, on_step: StepCallback
) -> EpochFn:
    bounds = batch_bounds(layout.n_examples, layout.batch_size)

    def run_epoch(params: Params, order: np.ndarray) -> tuple[Params, Array]:
        params = run_steps(step, params, X, y, step.backend.asarray(order), bounds, on_step)
        return params, loss(params, X, y)

    return run_epoch
