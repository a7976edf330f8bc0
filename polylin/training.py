"""The one training loop. It runs unchanged on every backend.

Nothing in this module names a framework: everything framework-specific
goes through the :class:`~polylin.backends.base.Backend` it is given.

Per epoch the loop (1) hands the epoch's example order, drawn on the host
and already copied to the device, to the backend's epoch runner, which runs
every minibatch step on the device with no host synchronisation,
(2) synchronises and stops the clock, (3) copies the parameters to the
host once, starts the evaluation of the full-data loss and draws the next
epoch's order (on an asynchronous engine, while the device computes the
loss), and (4) reads the loss.
"""

from __future__ import annotations

import math
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
    """One minibatch SGD step: gather the batch, take the gradient of its summed loss, update in place.

    ``gradient`` differentiates the batch's *summed* loss (the book's
    ``l.sum().backward()``), so the step moves by ``lr / m`` times it, ``m``
    being the examples actually in the batch (a short last batch divides by
    its own size). Folding ``1/m`` into the step size saves an array
    operation per step. Without an intercept, ``b`` stays at its initial 0
    and only ``w`` moves.
    """
    take, update = backend.take, backend.update

    def step(params: Params, X: Array, y: Array, idx: Array) -> Params:
        X_batch = take(X, idx)
        return update(params, gradient(params, X_batch, take(y, idx)), lr / X_batch.shape[0])

    def step_through_origin(params: Params, X: Array, y: Array, idx: Array) -> Params:
        X_batch = take(X, idx)
        grad_w, _ = gradient(params, X_batch, take(y, idx))
        updated = update((params[0],), (grad_w,), lr / X_batch.shape[0])  # type: ignore[arg-type]
        return updated[0], params[1]

    return step if fit_intercept else step_through_origin


def make_descent_step(backend: Backend, objective: Objective, lr: float) -> StepFn:
    """The hand-derived SGD step: gather the batch, ``gᵢ = l'(rᵢ)``, then :meth:`Backend.descend`.

    Same arithmetic as :func:`make_sgd_step` with the objective's
    ``total_gradient``, but the backend turns ``g`` into the update itself, so
    it can fuse the product ``Xᵀg`` with the in-place subtraction.
    """
    take, descend, derivative = backend.take, backend.descend, objective.residual_derivative

    def step(params: Params, X: Array, y: Array, idx: Array) -> Params:
        X_batch = take(X, idx)
        return descend(params, derivative(params, X_batch, take(y, idx)), X_batch, lr / X_batch.shape[0])

    return step


def training_step(
    backend: Backend, objective: Objective, grad: str, lr: float, fit_intercept: bool = True
) -> StepFn:
    """The step :func:`train` runs: hand-derived with an intercept is :func:`make_descent_step`,
    everything else :func:`make_sgd_step` over :func:`gradient_function`."""
    if grad == "analytic" and fit_intercept:
        return make_descent_step(backend, objective, lr)
    return make_sgd_step(backend, gradient_function(backend, objective, grad), lr, fit_intercept)


def gradient_function(backend: Backend, objective: Objective, grad: str) -> GradFn:
    """The gradient of the batch's summed loss: the framework's autodiff, or the hand-derived one
    run on its arrays."""
    if grad == "autodiff":
        return backend.grad(objective.total)
    return objective.total_gradient


def _host_copy(backend: Backend, params: Params) -> tuple[np.ndarray, np.ndarray]:
    w, b = (np.array(backend.to_numpy(p), copy=True) for p in params)
    return w, b


def _all_finite(*values: np.ndarray | float) -> bool:
    return all(bool(np.all(np.isfinite(v))) for v in values)


#: Locating a divergence evaluates the full-data loss after every step of the diverged epoch
#: while that costs at most this many (example × feature) products, else after every k-th
#: step, k chosen to keep within it, and then bisects the one stretch of k steps.
DIVERGENCE_SCAN_BUDGET = 1 << 27


def _locate_divergence(
    backend: Backend,
    step: StepFn,
    evaluate: Callable[[Params, Array, Array], float],
    X: Array,
    y: Array,
    start: tuple[np.ndarray, np.ndarray],
    order: Array,
    layout: BatchLayout,
    trainable: bool,
) -> int:
    """Replay a diverged epoch to find its first step after which a parameter or the
    full-data loss is non-finite (1-based).

    The replay starts from the epoch's first parameters and takes the same steps.
    The result is exact when every step can be checked (see
    :data:`DIVERGENCE_SCAN_BUDGET`); otherwise it is exact as long as the loss,
    once non-finite, stays so within a stretch of k steps.
    """
    single_step = backend.compile(step, donate_params=True)
    bounds = list(batch_bounds(layout.n_examples, layout.batch_size))
    evaluation_cost = max(1, layout.n_examples * int(X.shape[1]))
    stride = max(1, -(-len(bounds) * evaluation_cost // DIVERGENCE_SCAN_BUDGET))

    def advance(
        host: tuple[np.ndarray, np.ndarray], first: int, last: int, check_every: int
    ) -> tuple[int | None, int, tuple[np.ndarray, np.ndarray]]:
        """Steps ``first..last``; returns (first bad step or None, last good step, its host params)."""
        params = backend.parameters(*host, trainable=trainable)
        good_step, good = first - 1, host
        for count in range(first, last + 1):
            lo, hi = bounds[count - 1]
            params = single_step(params, X, y, order[lo:hi])
            current = _host_copy(backend, params)
            if not _all_finite(*current):
                return count, good_step, good
            if count % check_every == 0 or count == last:
                if not _all_finite(evaluate(params, X, y)):
                    return count, good_step, good
                good_step, good = count, current
        return None, good_step, good

    bad, good_step, good = advance(start, 1, len(bounds), stride)
    if bad is None:  # the replay stayed finite (a compiled epoch can round differently)
        return len(bounds)
    while bad - good_step > 1:  # bisect the stretch (good_step, bad]
        middle = (good_step + bad) // 2
        found, reached, params_there = advance(good, good_step + 1, middle, middle)
        if found is None:
            good_step, good = reached, params_there
        else:
            bad = found
    return bad


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
    objective = Objective.for_backend(backend, loss)
    trainable = grad == "autodiff"
    step = training_step(backend, objective, grad, lr, fit_intercept)
    layout = BatchLayout(int(X.shape[0]), batch_size)
    run_epoch = backend.epoch_runner(
        step, X, y, layout, cache_key=("sgd", loss.name, grad, lr, fit_intercept)
    )
    start_evaluation = backend.deferred_evaluator(objective)

    def order_of(epoch: int) -> Array:
        return backend.index_array(epoch_order(seed, epoch, layout.n_examples, shuffle))

    run = TrainingRun(w=np.array(w0, copy=True), b=np.array(b0, copy=True))
    params = backend.parameters(run.w, run.b, trainable=trainable)
    try:
        upcoming = order_of(start_epoch) if start_epoch < epochs else None
        for epoch in range(start_epoch, epochs):
            order = upcoming
            started = time.perf_counter()
            params = run_epoch(params, order)
            backend.synchronize(params)
            elapsed = time.perf_counter() - started

            # Host work first, the framework's own work last, right before the next epoch: on a
            # 20 µs JAX epoch, host work just before it costs up to 20 % (see deferred_evaluator).
            w, b = _host_copy(backend, params)
            loss_value = start_evaluation(params, X, y)
            if epoch + 1 < epochs:
                # The next epoch's order is drawn now, outside the clock: on an asynchronous engine
                # while the device computes the loss, and its copy to the device has finished by
                # the time that epoch starts.
                upcoming = order_of(epoch + 1)
            value = loss_value()
            # The loss alone tells: a non-finite parameter always makes it non-finite. An infinite
            # or NaN b reaches every residual, an infinite or NaN w_j every residual with x_ij ≠ 0
            # (and 0·∞ is NaN where x_ij = 0), and every loss keeps a non-finite residual
            # non-finite (tests/test_divergence.py checks each loss on each backend).
            if not math.isfinite(value):
                evaluate = backend.evaluator(objective)
                where = _locate_divergence(
                    backend, step, evaluate, X, y, (run.w, run.b), order, layout, trainable
                )
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
