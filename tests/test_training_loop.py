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

    def asarray(self, host: np.ndarray) -> Any:
        if np.asarray(host).dtype.kind in "iu":
            self.events.append(f"move {int(host[0])}")
        return super().asarray(host)

    def to_numpy(self, x: Any) -> np.ndarray:
        if np.ndim(x) == 0:
            self.events.append("loss read")
        return super().to_numpy(x)

    def epoch_runner(self, step: Any, loss: Any, X: Any, y: Any, layout: Any) -> Any:
        run = super().epoch_runner(step, loss, X, y, layout)

        def run_epoch(params: Any, order: Any) -> Any:
            self.events.append(f"epoch {int(order[0])}")
            return run(params, order)

        return run_epoch


def recording_clock(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
    import polylin.training

    clock = polylin.training.time.perf_counter

    def logged() -> float:
        events.append("clock")
        return clock()

    monkeypatch.setattr(polylin.training.time, "perf_counter", logged)
    recording_draws(monkeypatch, events)


def recording_draws(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
    """Log each epoch order the loop draws on the host, by its first index."""
    import polylin.randomness

    draw = polylin.randomness.epoch_order

    def logged(*args: Any) -> np.ndarray:
        order = draw(*args)
        events.append(f"order {int(order[0])}")
        return order

    monkeypatch.setattr(polylin.randomness, "epoch_order", logged)


def squared(be: Any) -> Objective:
    return Objective(be.xp, get_loss("squared"))


def test_each_order_is_drawn_outside_the_clock_and_each_loss_read_inside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each epoch runs on an order drawn on the host before its clock starts, so the clock holds
    the epoch alone (moving the order to the device is the epoch runner's, inside the clock); the
    epoch's full-data loss is read before the clock stops, so the clock waits for an asynchronous
    engine to finish the epoch."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)).astype(np.float32), rng.normal(size=40).astype(np.float32)
    be = RecordingBackend()
    recording_clock(monkeypatch, be.events)
    run = train(
        be, squared(be), X, y, np.zeros(2), np.zeros(1),
        lr=0.01, batch_size=8, epochs=3, seed=5, grad="analytic",
    )  # fmt: skip
    first = [int(epoch_order(5, e, 40)[0]) for e in range(3)]
    assert be.events == [
        f"order {first[0]}", "clock", f"epoch {first[0]}", f"move {first[0]}", "loss read", "clock",
        f"order {first[1]}", "clock", f"epoch {first[1]}", f"move {first[1]}", "loss read", "clock",
        f"order {first[2]}", "clock", f"epoch {first[2]}", f"move {first[2]}", "loss read", "clock",
    ]  # fmt: skip
    assert len(run.losses) == len(run.epoch_times) == 3


def test_a_resumed_run_draws_only_the_orders_it_trains_on(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 2)).astype(np.float32), rng.normal(size=30).astype(np.float32)
    be = RecordingBackend()
    recording_draws(monkeypatch, be.events)
    train(
        be, squared(be), X, y, np.zeros(2), np.zeros(1),
        lr=0.01, batch_size=8, epochs=3, seed=2, grad="analytic", start_epoch=2,
    )  # fmt: skip
    last = int(epoch_order(2, 2, 30)[0])
    assert be.events == [f"order {last}", f"epoch {last}", f"move {last}", "loss read"]


@pytest.mark.parametrize("backend", backend_params())
def test_an_epoch_runners_loss_is_the_objective_at_its_parameters(backend: str) -> None:
    """Every backend's epoch runner returns the full-data loss at the parameters it returns."""
    from polylin.batching import BatchLayout
    from polylin.training import sgd_step

    be = get_backend(backend)
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    grad = "autodiff" if be.has_autodiff else "analytic"
    with be.context():
        objective = Objective(be.xp, get_loss("huber"))
        X_dev, y_dev = be.asarray(X), be.asarray(y)
        run_epoch = be.epoch_runner(
            sgd_step(be, objective, grad, 0.05), objective.mean, X_dev, y_dev, BatchLayout(50, 7)
        )
        params = be.parameters(rng.normal(size=3), np.array([0.5]), trainable=grad == "autodiff")
        params, loss = run_epoch(params, epoch_order(0, 0, 50))  # a host order: the runner moves it
        w, b = (np.asarray(be.to_numpy(p), dtype=np.float64) for p in params)
        reported = float(np.asarray(be.to_numpy(loss)).reshape(-1)[0])
    residual = X @ w + b - y
    expected = np.mean(np.where(np.abs(residual) <= 1, 0.5 * residual**2, np.abs(residual) - 0.5))
    assert reported == pytest.approx(expected, rel=1e-5)


def test_the_default_epoch_runner_evaluates_the_loss_once_after_the_steps() -> None:
    """The plain loop computes the full-data loss once an epoch, after its last step."""
    from polylin.batching import BatchLayout

    be = NumpyBackend()
    events: list[str] = []
    objective = squared(be)

    def counted_loss(params: Any, X: Any, y: Any) -> Any:
        events.append("loss")
        return objective.mean(params, X, y)

    def counted_step(params: Any, X: Any, y: Any, idx: Any) -> Any:
        events.append("step")
        return params

    X, y = np.ones((4, 2)), np.zeros(4)
    run_epoch = be.epoch_runner(counted_step, counted_loss, X, y, BatchLayout(4, 3))
    _, loss = run_epoch(be.parameters(np.ones(2), np.zeros(1), trainable=False), np.arange(4))
    assert events == ["step", "step", "loss"]
    assert float(loss) == 2.0  # ½ (1 + 1)² averaged over identical rows


_TRACES: list[str] = []


def _counted_squared(xp: Any, r: Any) -> Any:
    _TRACES.append("loss")  # runs once per trace: jit calls it only while tracing
    return 0.5 * (r * r)


def _counted_derivative(xp: Any, r: Any) -> Any:
    _TRACES.append("derivative")
    return r


_COUNTED = Loss("counted-squared", _counted_squared, _counted_derivative, "½(ŷ−y)²")


@pytest.mark.parametrize("backend", backend_params(["jax"]))
def test_jax_compiles_an_objective_once_across_fits(backend: str) -> None:
    """Each fit evaluates its loss after each epoch inside the compiled epoch; fits with equal
    settings, each with a fresh backend, share one compiled program, so later ones trace nothing."""
    X, y = np.ones((6, 2), np.float32), np.zeros(6, np.float32)
    del _TRACES[:]
    values = []
    for _ in range(3):
        be = get_backend(backend)  # a fresh backend, as each fit makes
        run = train(
            be, Objective(be.xp, _COUNTED), be.asarray(X), be.asarray(y), np.ones(2), np.zeros(1),
            lr=1e-9, batch_size=6, epochs=1, seed=0, grad="analytic",
        )  # fmt: skip
        values.append(run.losses[0])
    assert values == pytest.approx([2.0] * 3)
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
            be, Objective(be.xp, _COUNTED), be.asarray(X), be.asarray(y), np.zeros(2), np.zeros(1),
            lr=lr, batch_size=8, epochs=2, seed=1, grad="analytic",
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


@pytest.mark.parametrize("shuffle", [True, False])
def test_prefetched_orders_are_the_orders_drawn_in_turn(
    monkeypatch: pytest.MonkeyPatch, shuffle: bool
) -> None:
    """With many examples the next epoch's order is drawn on a background thread while the current
    epoch trains; the orders, and hence the fit, are the same as when each is drawn in turn."""
    import threading

    import polylin.randomness
    from polylin.randomness import EpochOrders

    threads: list[str] = []
    draw = polylin.randomness.epoch_order

    def recorded(*args: Any) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return draw(*args)

    monkeypatch.setattr(polylin.randomness, "epoch_order", recorded)
    monkeypatch.setattr(polylin.randomness, "PREFETCH_MIN_EXAMPLES", 50)
    orders = EpochOrders(seed=3, n=60, shuffle=shuffle, stop=4)
    taken = [orders.take(epoch) for epoch in (1, 2, 3)]
    orders.close()
    for epoch, order in zip((1, 2, 3), taken, strict=True):
        np.testing.assert_array_equal(order, draw(3, epoch, 60, shuffle))
    if shuffle:  # the first on the caller's thread, the next two prefetched; none past the last epoch
        assert threads[0] == threading.current_thread().name
        assert len(threads) == 3 and all(name.startswith("polylin-host") for name in threads[1:])
    else:  # an unshuffled order is an arange: nothing to prefetch
        assert threads == [threading.current_thread().name] * 3

    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(60, 2)), rng.normal(size=60)
    be = NumpyBackend(dtype="float64")
    fit = dict(lr=0.05, batch_size=7, epochs=3, seed=3, shuffle=shuffle, grad="analytic")
    prefetched = train(be, squared(be), X, y, np.zeros(2), np.zeros(1), **fit)  # type: ignore[arg-type]
    monkeypatch.setattr(polylin.randomness, "PREFETCH_MIN_EXAMPLES", 10**9)
    in_turn = train(be, squared(be), X, y, np.zeros(2), np.zeros(1), **fit)  # type: ignore[arg-type]
    assert prefetched.w.tobytes() == in_turn.w.tobytes() and prefetched.losses == in_turn.losses


@pytest.mark.parametrize("backend", backend_params())
def test_orders_are_prefetched_only_where_a_core_is_free(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch's CPU kernels use every core, so a drawing thread would slow its epochs (measured 1.03×
    the whole fit on ``large``); elsewhere the next order is drawn beside the epoch."""
    import threading

    import polylin.randomness

    be = get_backend(backend)
    assert be.overlaps_host_work is (backend != "torch")  # every backend here is on the CPU
    drawn_on: list[str] = []
    draw = polylin.randomness.epoch_order

    def recorded(*args: Any) -> np.ndarray:
        drawn_on.append(threading.current_thread().name)
        return draw(*args)

    monkeypatch.setattr(polylin.randomness, "epoch_order", recorded)
    monkeypatch.setattr(polylin.randomness, "PREFETCH_MIN_EXAMPLES", 50)
    rng = np.random.default_rng(6)
    polylin.fit(rng.normal(size=(60, 2)), rng.normal(size=60), backend=backend, epochs=3, batch_size=9)
    prefetched = [name for name in drawn_on if name.startswith("polylin-host")]
    assert len(drawn_on) == 3 and len(prefetched) == (2 if be.overlaps_host_work else 0)
