"""``fit(loss_every=k)``: the full-data loss after every k-th epoch and the last, the parameters unchanged."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import backend_params

import polylin
from polylin import streaming
from polylin.errors import DivergenceError

EPOCHS = 5
GRADS = {"numpy": ("analytic",), "jax": ("autodiff", "analytic"), "torch": ("autodiff", "analytic")}
GRADS["mxnet"] = GRADS["torch"]


def _evaluated(loss_every: int, epochs: int = EPOCHS) -> list[int]:
    """0-based indices of the epochs whose loss is evaluated."""
    return [e for e in range(epochs) if (e + 1) % loss_every == 0 or e + 1 == epochs]


@pytest.mark.parametrize("loss_every", [2, 3, 7])
@pytest.mark.parametrize("backend", backend_params(("numpy", "jax", "torch", "mxnet")))
def test_the_parameters_and_the_evaluated_losses_are_the_default_fits(backend: str, loss_every: int) -> None:
    for grad in GRADS[backend]:
        every = polylin.fit(backend=backend, grad=grad, epochs=EPOCHS)
        sparse = polylin.fit(backend=backend, grad=grad, epochs=EPOCHS, loss_every=loss_every)
        assert sparse.w.tobytes() == every.w.tobytes() and sparse.b == every.b, (backend, grad)
        evaluated = _evaluated(loss_every)
        assert np.flatnonzero(np.isfinite(sparse.losses)).tolist() == evaluated
        assert sparse.losses[evaluated].tobytes() == every.losses[evaluated].tobytes()
        assert sparse.final_loss == every.final_loss
        assert sparse.initial_loss == every.initial_loss
        assert len(sparse.epoch_times) == EPOCHS and np.all(sparse.epoch_times > 0)


def test_on_epoch_is_told_which_losses_were_not_evaluated() -> None:
    seen: list[tuple[int, float]] = []
    polylin.fit(epochs=4, loss_every=2, on_epoch=lambda epoch, loss, seconds: seen.append((epoch, loss)))
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4]
    assert [math.isnan(loss) for _, loss in seen] == [True, False, True, False]


def test_an_epoch_without_its_loss_skips_the_pass_over_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loss is evaluated once per evaluated epoch (and once before training), not after every epoch."""
    from polylin.objective import Objective

    calls: list[int] = []
    mean = Objective.mean

    def counted(self: Objective, params: Any, X: Any, y: Any) -> Any:
        calls.append(int(X.shape[0]))
        return mean(self, params, X, y)

    monkeypatch.setattr(Objective, "mean", counted)
    polylin.fit(backend="numpy", epochs=6)
    assert calls == [1000] * 7  # the loss before training, then after each epoch
    calls.clear()
    polylin.fit(backend="numpy", epochs=6, loss_every=3)
    assert calls == [1000] * 3  # before training, then after epochs 3 and 6


def _diverging_data() -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(0).standard_normal((200, 3)).astype(np.float32) * 100
    return X, X.sum(axis=1)


@pytest.mark.parametrize("backend", backend_params(("numpy", "jax", "torch", "mxnet")))
def test_a_divergence_is_caught_from_the_parameters(backend: str) -> None:
    X, y = _diverging_data()
    options: dict[str, Any] = {"backend": backend, "lr": 5.0, "epochs": 6, "check_stability": False}
    with pytest.raises(DivergenceError) as every:
        polylin.fit(X, y, **options)
    with pytest.raises(DivergenceError) as sparse:
        polylin.fit(X, y, loss_every=3, **options)
    assert (sparse.value.epoch, sparse.value.step) == (every.value.epoch, every.value.step)


def test_stopping_after_an_unevaluated_epoch_evaluates_its_loss() -> None:
    """The last epoch kept has a loss, whatever stopped the fit after it (here Ctrl-C)."""

    def interrupt_after_two(epoch: int, loss: float, seconds: float) -> None:
        if epoch == 2:
            raise KeyboardInterrupt

    every = polylin.fit(epochs=2)
    with pytest.warns(polylin.TrainingInterruptedWarning):
        stopped = polylin.fit(epochs=6, loss_every=4, on_epoch=interrupt_after_two)
    assert stopped.interrupted and stopped.epochs_completed == 2
    assert math.isnan(stopped.losses[0])
    assert stopped.w.tobytes() == every.w.tobytes()
    assert stopped.final_loss == pytest.approx(every.final_loss, rel=1e-6)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_loss_every_must_be_a_whole_number_of_epochs(bad: object) -> None:
    with pytest.raises(ValueError, match=r"loss_every=.* must be a whole number >= 1; loss_every=1"):
        polylin.fit(loss_every=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", backend_params(("numpy", "torch")))
def test_out_of_core_fits_skip_the_loss_pass_too(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 1024)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1000, 4))
    np.save(tmp_path / "X.npy", X)
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1
    options: dict[str, Any] = {"backend": backend, "epochs": 4, "out_of_core_shuffle": "exact"}
    every = polylin.fit(X_map, y, **options)
    sparse = polylin.fit(X_map, y, loss_every=2, **options)
    assert sparse.w.tobytes() == every.w.tobytes() and sparse.b == every.b
    assert np.isnan(sparse.losses[[0, 2]]).all()
    assert sparse.losses[[1, 3]].tobytes() == every.losses[[1, 3]].tobytes()


def test_the_loss_curve_joins_the_evaluated_epochs() -> None:
    pytest.importorskip("matplotlib")
    from polylin.plot import loss_curves

    result = polylin.fit(epochs=5, loss_every=2)
    line = loss_curves(result).axes[0].get_lines()[0]
    assert line.get_xdata().tolist() == [0, 2, 4, 5]
    assert np.isfinite(line.get_ydata()).all()


def test_a_checkpoint_with_unevaluated_epochs_resumes_bitwise(tmp_path: Path) -> None:
    whole = polylin.fit(epochs=6, loss_every=2)
    first = polylin.load(polylin.fit(epochs=3, loss_every=2).save(tmp_path / "three.npz"))
    assert np.isnan(first.losses[0]) and np.isfinite(first.losses[1:]).all()  # epoch 3 ends that fit
    resumed = polylin.fit(epochs=6, loss_every=2, resume=first)
    assert resumed.w.tobytes() == whole.w.tobytes() and resumed.b == whole.b
    # Epochs 2k, and the last of each fit: the first fit's third epoch was its last.
    assert np.flatnonzero(np.isnan(whole.losses)).tolist() == [0, 2, 4]
    assert np.flatnonzero(np.isnan(resumed.losses)).tolist() == [0, 4]
    both = [1, 3, 5]
    assert resumed.losses[both].tobytes() == whole.losses[both].tobytes()


def test_the_array_api_backend_skips_the_loss_pass_the_same_way() -> None:
    xp = pytest.importorskip("array_api_strict")
    X = np.random.default_rng(0).standard_normal((300, 3))
    y = X @ np.array([1.0, 2.0, 3.0])
    options: dict[str, Any] = {"backend": "array-api", "epochs": 4, "dtype": "float64"}
    every = polylin.fit(xp.asarray(X), xp.asarray(y), **options)
    sparse = polylin.fit(xp.asarray(X), xp.asarray(y), loss_every=2, **options)
    assert sparse.w.tobytes() == every.w.tobytes() and sparse.b == every.b
    assert np.isnan(sparse.losses[[0, 2]]).all()
    assert sparse.losses[[1, 3]].tobytes() == every.losses[[1, 3]].tobytes()


@pytest.mark.parametrize("backend", backend_params(("torch",)))
def test_torch_workers_skip_the_loss_the_same_way(backend: str) -> None:
    """torch's worker processes take the option, and skip the loss's all-reduce with its pass. (JAX's
    workers are devices of this process, which tests/test_workers.py starts apart: XLA_FLAGS.)"""
    single = polylin.fit(backend=backend, epochs=4, loss_every=2, dtype="float64")
    parallel = polylin.fit(backend=backend, epochs=4, loss_every=2, dtype="float64", workers=2)
    assert parallel.config["workers"] == 2
    assert np.isnan(parallel.losses[[0, 2]]).all() and np.isfinite(parallel.losses[[1, 3]]).all()
    np.testing.assert_allclose(parallel.losses[[1, 3]], single.losses[[1, 3]], rtol=1e-10)
    np.testing.assert_allclose(parallel.w, single.w, rtol=1e-10)
