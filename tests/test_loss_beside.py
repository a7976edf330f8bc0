"""The host loss of epoch e evaluated on the host worker while epoch e+1 runs (polylin.training)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import backend_params

import polylin
from polylin import training
from polylin.backends import backend_class, get_backend
from polylin.backends.numpy_backend import NumpyBackend
from polylin.losses import get_loss
from polylin.objective import Objective
from polylin.training import TrainingRun, train


def data(n: int = 301, d: int = 4, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X @ np.linspace(1.0, -1.0, d) + 0.5 + 0.01 * rng.normal(size=n)).astype(np.float32)


class LoggingBackend(NumpyBackend):
    """The NumPy backend with a host loss for data of any size, logging each epoch it runs."""

    host_loss_min_bytes = 0

    def __init__(self, *, beside: bool = True, fail_in_epoch: int | None = None) -> None:
        super().__init__()
        self.beside, self.fail_in_epoch = beside, fail_in_epoch
        self.events: list[str] = []

    @property
    def overlaps_host_loss(self) -> bool:
        return self.beside

    def epoch_runner(self, step: Any, loss: Any, X: Any, y: Any, layout: Any) -> Any:
        run = super().epoch_runner(step, loss, X, y, layout)

        def run_epoch(params: Any, order: Any) -> Any:
            self.events.append(f"epoch {sum(e.startswith('epoch') for e in self.events) + 1}")
            if len([e for e in self.events if e.startswith("epoch")]) == self.fail_in_epoch:
                raise KeyboardInterrupt  # Ctrl-C while this epoch's steps run
            return run(params, order)

        return run_epoch


def spied_host_loss(
    monkeypatch: pytest.MonkeyPatch, threads: list[str], value: Callable[[int, float], float] | None = None
) -> None:
    """Record the thread each host loss runs on; ``value(call, loss)`` may replace the loss."""
    original = training.host_loss

    def spy(*args: Any) -> Any:
        evaluate = original(*args)
        if evaluate is None:
            return None

        def logged(w: np.ndarray, b: np.ndarray) -> float:
            threads.append(threading.current_thread().name)
            loss = evaluate(w, b)
            return loss if value is None else value(len(threads), loss)

        return logged

    monkeypatch.setattr(training, "host_loss", spy)


def train_on(be: LoggingBackend, epochs: int = 3, **kwargs: Any) -> TrainingRun:
    X, y = data()
    objective = Objective(be.xp, get_loss("squared"))
    with be.context():
        return train(
            be, objective, X, y, np.zeros(4), np.zeros(1), lr=0.05, batch_size=32, epochs=epochs, seed=1,
            grad="analytic", **kwargs,
        )  # fmt: skip


def test_beside_each_epoch_is_reported_after_the_next_ones_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    spied_host_loss(monkeypatch, threads)
    be = LoggingBackend()
    run = train_on(be, on_epoch=lambda epoch, loss, seconds: be.events.append(f"on_epoch {epoch}"))
    assert be.events == ["epoch 1", "epoch 2", "on_epoch 1", "epoch 3", "on_epoch 2", "on_epoch 3"]
    assert len(threads) == 3 and all(name.startswith("polylin-host") for name in threads)
    in_line = LoggingBackend(beside=False)
    threads.clear()
    same = train_on(in_line, on_epoch=lambda epoch, loss, seconds: in_line.events.append(f"on_epoch {epoch}"))
    assert in_line.events == ["epoch 1", "on_epoch 1", "epoch 2", "on_epoch 2", "epoch 3", "on_epoch 3"]
    assert threads == [threading.current_thread().name] * 3
    assert run.w.tobytes() == same.w.tobytes() and run.losses == same.losses  # the same NumPy loss
    assert all(seconds > 0 for seconds in run.epoch_times) and len(run.epoch_times) == 3


@pytest.mark.parametrize("beside", [True, False])
def test_a_loss_that_overflows_stops_at_its_epoch_with_the_parameters_before_it(
    beside: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second epoch's loss is infinite while its parameters are finite: the run ends at epoch 2,
    with epoch 1's parameters, whether or not epoch 3 already ran beside that loss."""
    spied_host_loss(monkeypatch, [], value=lambda call, loss: np.inf if call == 2 else loss)
    be = LoggingBackend(beside=beside)
    reported: list[int] = []
    run = train_on(be, on_epoch=lambda epoch, loss, seconds: reported.append(epoch))
    assert run.divergence is not None and run.divergence.epoch == 2
    assert reported == [1] and len(run.losses) == len(run.epoch_times) == 1
    one_epoch = train_on(LoggingBackend(beside=beside), epochs=1)
    assert run.w.tobytes() == one_epoch.w.tobytes() and run.b.tobytes() == one_epoch.b.tobytes()
    assert be.events == (["epoch 1", "epoch 2", "epoch 3"] if beside else ["epoch 1", "epoch 2"])


@pytest.mark.parametrize("beside", [True, False])
def test_ctrl_c_during_an_epoch_keeps_the_one_before_it_whose_loss_was_pending(beside: bool) -> None:
    be = LoggingBackend(beside=beside, fail_in_epoch=2)
    run = train_on(be)
    assert run.interrupted and len(run.losses) == 1 and np.isfinite(run.losses[0])
    one_epoch = train_on(LoggingBackend(beside=beside), epochs=1)
    assert run.w.tobytes() == one_epoch.w.tobytes() and run.losses == one_epoch.losses


@pytest.mark.parametrize("backend", backend_params(("numpy", "jax", "torch", "mxnet")))
def test_each_backend_evaluates_the_loss_beside_the_next_epoch_only_where_a_core_is_free(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch's CPU kernels use every core, and MXNet's engine threads were slowed by it more than it
    saved (``overlaps_host_loss`` is false): their host loss runs in line; NumPy's and JAX's on the
    host worker. Either way the fit is the one whose framework evaluates the loss."""
    threads: list[str] = []
    spied_host_loss(monkeypatch, threads)
    monkeypatch.setattr(backend_class(backend), "host_loss_min_bytes", 0)
    X, y = data()
    common = dict(backend=backend, epochs=3, batch_size=32, lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        beside = polylin.fit(X, y, **common)  # type: ignore[arg-type]
        framework = polylin.fit(X, y, backend_options={"host_loss": False}, **common)  # type: ignore[arg-type]
    on_worker = get_backend(backend).overlaps_host_loss
    assert on_worker is (backend in ("numpy", "jax"))  # every backend here is on the CPU
    assert len(threads) == 3
    assert all(name.startswith("polylin-host") == on_worker for name in threads)
    assert beside.w.tobytes() == framework.w.tobytes() and beside.b == framework.b
    np.testing.assert_allclose(beside.losses, framework.losses, rtol=1e-5)
