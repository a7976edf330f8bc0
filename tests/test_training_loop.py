"""The shared loop's order of work between epochs, seen through a backend that records its calls."""

from __future__ import annotations

from typing import Any

import numpy as np

from polylin.backends.numpy_backend import NumpyBackend
from polylin.losses import get_loss
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

    def evaluator(self, objective: Any) -> Any:
        evaluate = super().evaluator(objective)

        def logged(params: Any, X: Any, y: Any) -> float:
            self.events.append("loss")
            return evaluate(params, X, y)

        return logged


def test_the_next_order_is_drawn_after_the_clock_and_before_the_loss() -> None:
    """Each epoch runs on an order drawn and converted after the previous epoch's clock stopped, so
    the clock holds the epoch alone and the order's copy to the device overlaps the loss evaluation."""
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
        f"epoch {first[0]}", "sync", f"order {first[1]}", "loss",
        f"epoch {first[1]}", "sync", f"order {first[2]}", "loss",
        f"epoch {first[2]}", "sync", "loss",
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
    assert be.events == [f"order {last}", f"epoch {last}", "sync", "loss"]
