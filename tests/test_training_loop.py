"""The shared loop's order of work between epochs, seen through a backend that records its calls."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import backend_params

from polylin.backends import get_backend
from polylin.backends.numpy_backend import NumpyBackend
from polylin.losses import Loss, get_loss
from polylin.objective import Objective
from polylin.randomness import epoch_order
from polylin.training import train


class RecordingBackend(NumpyBackend):
    """The NumPy backend, logging the calls the loop makes between and around epochs."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def index_array(self, host: np.ndarray) -> Any:
        self.events.append(f"order {int(host[0])}")
        return super().index_array(host)

    def epoch_runner(self, step: Any, X: Any, y: Any, layout: Any, *, cache_key: Any = None) -> Any:
        run = super().epoch_runner(step, X, y, layout, cache_key=cache_key)

        def run_epoch(params: Any, order: Any) -> Any:
            self.events.append(f"epoch {int(order[0])}")
            return run(params, order)

        return run_epoch

    def synchronize(self, tree: Any) -> None:
        self.events.append("sync")

    def deferred_evaluator(self, objective: Any) -> Any:
        start = super().deferred_evaluator(objective)

        def logged(params: Any, X: Any, y: Any) -> Any:
            self.events.append("loss start")
            pending = start(params, X, y)

            def read() -> float:
                self.events.append("loss read")
                return pending()

            return read

        return logged


def test_the_next_order_is_drawn_after_the_clock_and_before_the_loss() -> None:
    """Each epoch runs on an order drawn and converted after the previous epoch's clock stopped, so
    the clock holds the epoch alone; it is drawn between starting the loss evaluation and reading
    it, so that on an asynchronous engine the host draws it while the device computes the loss."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)).astype(np.float32), rng.normal(size=40).astype(np.float32)
    be = RecordingBackend()
    run = train(
        be, X, y, np.zeros(2), np.zeros(1),
        loss=get_loss("squared"), lr=0.01, batch_size=8, epochs=3, seed=5, grad="analytic",
    )  # fmt: skip
    first = [int(epoch_order(5, e, 40)[0]) for e in range(3)]
    assert be.events == [
        f"order {first[0]}",
        f"epoch {first[0]}", "sync", "loss start", f"order {first[1]}", "loss read",
        f"epoch {first[1]}", "sync", "loss start", f"order {first[2]}", "loss read",
        f"epoch {first[2]}", "sync", "loss start", "loss read",
    ]  # fmt: skip
    assert len(run.losses) == len(run.epoch_times) == 3


def test_a_resumed_run_draws_only_the_orders_it_trains_on() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 2)).astype(np.float32), rng.normal(size=30).astype(np.float32)
    be = RecordingBackend()
    train(
        be, X, y, np.zeros(2), np.zeros(1),
        loss=get_loss("squared"), lr=0.01, batch_size=8, epochs=3, seed=2, grad="analytic", start_epoch=2,
    )  # fmt: skip
    last = int(epoch_order(2, 2, 30)[0])
    assert be.events == [f"order {last}", f"epoch {last}", "sync", "loss start", "loss read"]


@pytest.mark.parametrize("backend", backend_params())
def test_a_deferred_evaluation_reads_the_same_loss(backend: str) -> None:
    be = get_backend(backend)
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    with be.context():
        objective = Objective(be.xp, get_loss("huber"), affine=be.affine)
        params = be.parameters(rng.normal(size=3), np.array([0.5]), trainable=False)
        X_dev, y_dev = be.asarray(X), be.asarray(y)
        read = be.deferred_evaluator(objective)(params, X_dev, y_dev)
        assert callable(read)
        assert read() == be.evaluator(objective)(params, X_dev, y_dev)


def test_a_synchronous_backend_computes_a_deferred_loss_when_it_is_read() -> None:
    """The default deferred evaluation waits for the read, so the host work the loop does in between
    (drawing the next order) comes before the framework's work, not between it and the next epoch."""
    be = NumpyBackend()
    calls: list[int] = []
    objective = Objective(be.xp, get_loss("squared"))

    def counted(params: Any, X: Any, y: Any) -> Any:
        calls.append(1)
        return objective(params, X, y)

    X, y = np.ones((4, 2)), np.zeros(4)
    read = be.deferred_evaluator(counted)(be.parameters(np.ones(2), np.zeros(1), trainable=False), X, y)
    assert calls == []
    assert read() == 2.0  # ½ (1 + 1)² averaged over identical rows
    assert calls == [1]


@pytest.mark.parametrize("backend", backend_params(["jax"]))
def test_jax_defers_only_where_it_dispatches_asynchronously(backend: str) -> None:
    """JAX runs a computation on the CPU within its dispatch before 0.4.32, and from then on returns
    first unless ``jax_cpu_enable_async_dispatch`` is off."""
    import jax

    be = get_backend(backend)
    option = "jax_cpu_enable_async_dispatch"
    if tuple(jax.__version_info__) < (0, 4, 32):
        assert be.dispatches_asynchronously is False  # type: ignore[attr-defined]
        return
    before = jax.config.read(option)
    try:
        jax.config.update(option, True)
        assert be.dispatches_asynchronously is True  # type: ignore[attr-defined]
        jax.config.update(option, False)
        assert be.dispatches_asynchronously is False  # type: ignore[attr-defined]
    finally:
        jax.config.update(option, before)


_TRACES: list[str] = []


def _counted_squared(xp: Any, r: Any) -> Any:
    _TRACES.append("loss")  # runs once per trace: jit calls it only while tracing
    return 0.5 * (r * r)


def _counted_derivative(xp: Any, r: Any) -> Any:
    _TRACES.append("derivative")
    return r


_COUNTED = Loss("counted-squared", _counted_squared, _counted_derivative, "½(ŷ−y)²")


@pytest.mark.parametrize("backend", backend_params(["jax"]))
def test_jax_compiles_an_objective_once_across_evaluators_and_fits(backend: str) -> None:
    """Each fit evaluates its loss before training and after each epoch, through evaluators built
    per fit; equal objectives share one compiled function, so later fits do not trace it again."""
    X, y = np.ones((6, 2), np.float32), np.zeros(6, np.float32)
    del _TRACES[:]
    values = []
    for _ in range(3):
        be = get_backend(backend)  # a fresh backend, as each fit makes
        objective = Objective(be.xp, _COUNTED, affine=be.affine)
        params = be.parameters(np.ones(2), np.zeros(1), trainable=False)
        values.append(be.evaluator(objective)(params, be.asarray(X), be.asarray(y)))
        values.append(be.deferred_evaluator(objective)(params, be.asarray(X), be.asarray(y))())
    assert values == [2.0] * 6
    assert _TRACES.count("loss") <= 1  # one trace (none if an earlier test compiled it already)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-step"])
@pytest.mark.parametrize("backend", backend_params(["jax"]))
def test_jax_reuses_compiled_epochs_across_fits(backend: str, fused: bool) -> None:
    """Both epoch paths are compiled once per (loss, gradient, learning rate, layout): a second fit
    with the same settings traces nothing, and one with another learning rate traces again."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(20, 2)).astype(np.float32), rng.normal(size=20).astype(np.float32)

    def fit_once(lr: float) -> list[float]:
        be = get_backend(backend, fused_epoch=fused)
        run = train(
            be, be.asarray(X), be.asarray(y), np.zeros(2), np.zeros(1),
            loss=_COUNTED, lr=lr, batch_size=8, epochs=2, seed=1, grad="analytic",
        )  # fmt: skip
        return run.losses

    del _TRACES[:]
    first = fit_once(0.05)
    traced = _TRACES.count("derivative")
    assert traced >= 1
    assert fit_once(0.05) == first
    assert _TRACES.count("derivative") == traced  # nothing traced again
    fit_once(0.07)
    assert _TRACES.count("derivative") > traced
