"""Checkpoints, resume and Ctrl-C: nothing a user trained is lost.

* ``result.save(path)`` / ``polylin.load(path)`` round-trip every field, in a
  portable ``.npz`` read with ``allow_pickle=False``;
* a crash in the middle of a write leaves the previous file or none, never a
  corrupt one, and a damaged file is refused with a clear error;
* a result saved on one backend predicts the same on every other;
* ``fit(..., resume=...)`` after k epochs reproduces an uninterrupted run
  bitwise, and refuses a checkpoint that does not match the fit;
* a Ctrl-C keeps the last completed epoch, which can be saved and resumed.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import backend_params
from test_validation import native

import polylin
import polylin.api
import polylin.checkpoint
import polylin.randomness
from polylin.tolerances import tolerance_for

BACKENDS = backend_params()
N_EPOCHS = 5


def small_data(n: int = 200, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    return polylin.synthetic_data(n=n, seed=seed)


def assert_same_result(a: polylin.FitResult, b: polylin.FitResult) -> None:
    """Bitwise the same parameters and history, and the same description."""
    assert a.w.dtype == b.w.dtype and a.w.tobytes() == b.w.tobytes()
    assert a.b == b.b
    assert a.losses.tobytes() == b.losses.tobytes()
    assert a.initial_loss == b.initial_loss
    assert a.epoch_times.tobytes() == b.epoch_times.tobytes()
    assert (a.backend, a.backend_version, a.device, a.dtype) == (
        b.backend,
        b.backend_version,
        b.device,
        b.dtype,
    )
    assert a.config == b.config
    assert (a.true_b, a.diverged_at, a.interrupted) == (b.true_b, b.diverged_at, b.interrupted)
    assert (a.true_w is None) == (b.true_w is None)
    if a.true_w is not None and b.true_w is not None:
        assert a.true_w.tobytes() == b.true_w.tobytes()


# -- save and load ----------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_keeps_every_field(backend: str, dtype: str, tmp_path: Path) -> None:
    result = polylin.fit(backend=backend, dtype=dtype, epochs=2, batch_size=7)
    path = result.save(tmp_path / "fit.npz")
    assert path == tmp_path / "fit.npz" and path.exists()
    loaded = polylin.load(path)
    assert_same_result(loaded, result)
    assert loaded.w.dtype == np.dtype(dtype)
    assert loaded.summary() == result.summary()

    # A plain .npz, readable without polylin and without unpickling anything.
    with np.load(path, allow_pickle=False) as archive:
        metadata = json.loads(archive["metadata"].tobytes().decode("utf-8"))
        assert archive["w"].tobytes() == result.w.tobytes()
    assert metadata["format"] == "polylin-checkpoint" and metadata["format_version"] == 1
    assert metadata["polylin_version"] == polylin.__version__
    assert metadata["numpy_version"] == np.__version__
    assert metadata["backend"] == result.backend and metadata["backend_version"] == result.backend_version
    assert metadata["config"]["lr"] == 0.03 and metadata["config"]["batch_size"] == 7


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_of_diverged_and_interrupted_results(backend: str, tmp_path: Path) -> None:
    with pytest.warns(polylin.StabilityWarning):
        diverged = polylin.fit(backend=backend, lr=3.0, epochs=3, on_divergence="stop")
    assert diverged.diverged_at is not None
    assert_same_result(polylin.load(diverged.save(tmp_path / "diverged.npz")), diverged)

    with pytest.warns(polylin.TrainingInterruptedWarning):
        interrupted = polylin.fit(backend=backend, epochs=4, on_epoch=interrupt_after(1))
    assert interrupted.interrupted
    assert_same_result(polylin.load(interrupted.save(tmp_path / "interrupted.npz")), interrupted)


def test_user_data_without_truth_round_trips(tmp_path: Path) -> None:
    X, y = small_data()
    result = polylin.fit(X, y, epochs=1)
    assert result.true_w is None and result.true_b is None
    assert_same_result(polylin.load(result.save(tmp_path / "mine.npz")), result)


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "fit.npz"
    polylin.fit(epochs=1).save(path)
    second = polylin.fit(epochs=2)
    second.save(path)
    assert_same_result(polylin.load(path), second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.npz"]  # no temporary file left


def test_save_into_a_directory_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory; pass a file name"):
        polylin.fit(epochs=1).save(tmp_path)


# -- crashes and damaged files -----------------------------------------------------------------
def half_written_savez(real_savez: Any, then: Any) -> Any:
    """An ``np.savez`` that writes half of what the real one would, then calls ``then()``."""

    def savez(stream: Any, **arrays: Any) -> None:
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        data = buffer.getvalue()
        stream.write(data[: len(data) // 2])
        stream.flush()
        then()

    return savez


@pytest.mark.parametrize("existing", [True, False], ids=["over-old-file", "new-file"])
def test_an_error_mid_write_leaves_the_old_file_or_none(
    existing: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fit.npz"
    old = polylin.fit(epochs=1)
    if existing:
        old.save(path)
    new = polylin.fit(epochs=2)

    def fail() -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", half_written_savez(np.savez, fail))
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    monkeypatch.undo()
    if existing:
        assert_same_result(polylin.load(path), old)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.npz"]
    else:
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", [True, False], ids=["over-old-file", "new-file"])
def test_a_process_killed_mid_write_leaves_the_old_file_or_none(existing: bool, tmp_path: Path) -> None:
    path = tmp_path / "fit.npz"
    old = polylin.fit(epochs=1)
    if existing:
        old.save(path)
    # The child writes half a checkpoint and dies on the spot: no cleanup, no exception handling.
    code = (
        "import io, os, sys, numpy as np, polylin\n"
        "real_savez = np.savez\n"
        "def savez(stream, **arrays):\n"
        "    buffer = io.BytesIO()\n"
        "    real_savez(buffer, **arrays)\n"
        "    stream.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])\n"
        "    stream.flush()\n"
        "    os._exit(9)\n"
        "np.savez = savez\n"
        "polylin.fit(epochs=2).save(sys.argv[1])\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 9, child.stderr
    leftovers = [p for p in tmp_path.iterdir() if p.name != "fit.npz"]
    assert [p.name.startswith(".fit.npz.") and p.name.endswith(".tmp") for p in leftovers] == [True]
    if existing:
        assert_same_result(polylin.load(path), old)
    else:
        assert not path.exists()
    # The leftover is the half-written file: it is not a checkpoint, and says so.
    with pytest.raises(polylin.CheckpointError, match="cannot be read as a polylin checkpoint"):
        polylin.load(leftovers[0])


def test_damaged_files_are_refused_clearly(tmp_path: Path) -> None:
    good = polylin.fit(epochs=1).save(tmp_path / "good.npz")
    data = good.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) - 100])
    flipped = tmp_path / "flipped.npz"
    damaged = bytearray(data)
    position = data.index(b"\x93NUMPY") + 200  # inside the first array's bytes
    damaged[position] ^= 0xFF
    flipped.write_bytes(bytes(damaged))
    text = tmp_path / "notes.npz"
    text.write_text("not a checkpoint")
    for path in (truncated, flipped, text):
        with pytest.raises(polylin.CheckpointError, match="cannot be read as a polylin checkpoint") as info:
            polylin.load(path)
        assert str(path) in str(info.value)

    other = tmp_path / "other.npz"
    np.savez(other, w=np.ones(2))
    with pytest.raises(polylin.CheckpointError, match="is not a polylin checkpoint"):
        polylin.load(other)

    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        polylin.load(tmp_path / "absent.npz")


def test_pickled_content_is_never_loaded(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, metadata=np.array([{"format": "polylin-checkpoint"}], dtype=object))
    with pytest.raises(polylin.CheckpointError, match="cannot be read"):
        polylin.load(path)


def test_a_newer_format_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polylin.checkpoint, "FORMAT_VERSION", 2)
    path = polylin.fit(epochs=1).save(tmp_path / "future.npz")
    monkeypatch.undo()
    with pytest.raises(polylin.CheckpointError, match="format version 2, newer than this polylin"):
        polylin.load(path)


# -- cross-backend prediction -------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_fits(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Lazily, one saved fit per (backend, dtype)."""
    return {}


def saved_fit(cache: dict[tuple[str, str], Path], backend: str, dtype: str, directory: Path) -> Path:
    if (backend, dtype) not in cache:
        result = polylin.fit(backend=backend, dtype=dtype, epochs=2)
        cache[(backend, dtype)] = result.save(directory / f"{backend}-{dtype}.npz")
    return cache[(backend, dtype)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("predict_on", BACKENDS)
@pytest.mark.parametrize("saved_on", BACKENDS)
def test_saved_on_one_backend_predicts_on_any_other(
    saved_on: str,
    predict_on: str,
    dtype: str,
    saved_fits: dict[tuple[str, str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = saved_fit(saved_fits, saved_on, dtype, tmp_path_factory.getbasetemp())
    loaded = polylin.load(path)
    assert loaded.backend == saved_on and loaded.dtype == dtype
    X, _ = polylin.synthetic_data(n=300, seed=11, dtype=dtype)
    reference = X.astype(np.float64) @ loaded.w.astype(np.float64) + loaded.b  # exact enough: float64
    there = loaded.predict(X, backend=predict_on)
    assert there.shape == (300,) and there.dtype == np.dtype(dtype)
    assert tolerance_for(dtype).params_close(there, reference)
    assert tolerance_for(dtype).params_close(loaded.predict(X), reference)  # the NumPy path
    if dtype == "float32" and predict_on != "array-api":  # the backend's own arrays are accepted too
        assert np.array_equal(loaded.predict(native(predict_on, X), backend=predict_on), there)


def test_predict_checks_the_number_of_features() -> None:
    result = polylin.fit(epochs=1)
    for backend in (None, "numpy"):
        with pytest.raises(ValueError, match=r"X has shape \(4, 3\); this model expects \(n, 2\)"):
            result.predict(np.zeros((4, 3)), backend=backend)


# -- resume ---------------------------------------------------------------------------------
RESUME_SETUPS = {
    "book": {},
    "batch7-huber": {"batch_size": 7, "loss": "huber", "lr": 0.05},
    "float64-noshuffle": {"dtype": "float64", "shuffle": False},
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setup", list(RESUME_SETUPS))
def test_resume_reproduces_an_uninterrupted_run_bitwise(backend: str, setup: str, tmp_path: Path) -> None:
    options: dict[str, Any] = {"backend": backend, **RESUME_SETUPS[setup]}
    X, y = small_data()
    uninterrupted = polylin.fit(X, y, epochs=N_EPOCHS, **options)

    first = polylin.fit(X, y, epochs=2, **options)
    path = first.save(tmp_path / "two.npz")
    seen: list[int] = []
    resumed = polylin.fit(
        X, y, epochs=N_EPOCHS, resume=path, on_epoch=lambda e, loss, s: seen.append(e), **options
    )
    assert seen == [3, 4, 5]
    assert resumed.w.tobytes() == uninterrupted.w.tobytes()
    assert resumed.b == uninterrupted.b
    assert resumed.losses.tobytes() == uninterrupted.losses.tobytes()
    assert resumed.initial_loss == uninterrupted.initial_loss
    assert resumed.epochs_completed == N_EPOCHS and len(resumed.epoch_times) == N_EPOCHS
    assert resumed.config["resumed_at_epochs"] == [2]
    assert {k: v for k, v in resumed.config.items() if k != "resumed_at_epochs"} == uninterrupted.config

    # From the result object, in two hops (2 -> 3 -> 5), the same again.
    three = polylin.fit(X, y, epochs=3, resume=first, **options)
    five = polylin.fit(X, y, epochs=N_EPOCHS, resume=three, **options)
    assert five.w.tobytes() == uninterrupted.w.tobytes() and five.b == uninterrupted.b
    assert five.losses.tobytes() == uninterrupted.losses.tobytes()
    assert five.config["resumed_at_epochs"] == [2, 3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_on_the_books_data_and_with_nothing_left_to_do(backend: str, tmp_path: Path) -> None:
    uninterrupted = polylin.fit(backend=backend, epochs=4)
    path = polylin.fit(backend=backend, epochs=1).save(tmp_path / "one.npz")
    resumed = polylin.fit(backend=backend, epochs=4, resume=path)
    assert resumed.w.tobytes() == uninterrupted.w.tobytes() and resumed.b == uninterrupted.b
    assert resumed.w_error is not None and np.array_equal(resumed.w_error, uninterrupted.w_error)
    # Already trained for 4 epochs: returned as it is, nothing trained.
    again = polylin.fit(backend=backend, epochs=4, resume=resumed)
    assert again is resumed


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_on_another_backend_agrees_within_tolerance(backend: str, tmp_path: Path) -> None:
    X, y = small_data()
    path = polylin.fit(X, y, backend="numpy", epochs=2).save(tmp_path / "numpy.npz")
    resumed = polylin.fit(X, y, backend=backend, epochs=4, resume=path)
    on_numpy = polylin.fit(X, y, backend="numpy", epochs=4)
    assert resumed.backend == backend
    tolerance = tolerance_for("float32")
    assert tolerance.params_close(resumed.w, on_numpy.w)
    assert tolerance.params_close(np.array([resumed.b]), np.array([on_numpy.b]))
    assert tolerance.losses_close(resumed.losses, on_numpy.losses)


INCOMPATIBLE = {
    "lr": ({"lr": 0.05}, "lr (checkpoint: 0.03, now: 0.05)"),
    "batch_size": ({"batch_size": 20}, "batch_size (checkpoint: 10, now: 20)"),
    "seed": ({"seed": 1}, "seed (checkpoint: 0, now: 1)"),
    "loss": ({"loss": "huber"}, "loss (checkpoint: 'squared', now: 'huber')"),
    "shuffle": ({"shuffle": False}, "shuffle (checkpoint: True, now: False)"),
    "fit_intercept": ({"fit_intercept": False}, "fit_intercept (checkpoint: True, now: False)"),
    "dtype": ({"dtype": "float64"}, "dtype (checkpoint: 'float32', now: 'float64')"),
    "rows": ({"rows": 150}, "n_examples (checkpoint: 200, now: 150)"),
    "other-data": ({"data_seed": 5}, "data_fingerprint (checkpoint: '"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(INCOMPATIBLE))
def test_resume_refuses_an_incompatible_fit(
    backend: str, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = small_data()
    checkpoint = polylin.fit(X, y, epochs=2).save(tmp_path / "two.npz")
    options, fragment = INCOMPATIBLE[case]
    options = dict(options)
    if "rows" in options:
        X, y = small_data(n=options.pop("rows"))
    if "data_seed" in options:
        X, y = small_data(seed=options.pop("data_seed"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started before the incompatibility was reported")

    monkeypatch.setattr(polylin.api, "train", refuse)
    with pytest.raises(polylin.CheckpointError) as info:
        polylin.fit(X, y, backend=backend, epochs=4, resume=checkpoint, **options)
    message = str(info.value)
    assert message.startswith("resume: this fit differs from the checkpoint in ")
    assert fragment in message
    assert "Pass the values the checkpoint was trained with (and the same X and y)" in message
    assert "only epochs, backend, device, grad" in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_refuses_fewer_epochs_and_diverged_checkpoints(backend: str, tmp_path: Path) -> None:
    three = polylin.fit(backend=backend, epochs=3)
    with pytest.raises(
        polylin.CheckpointError, match=r"epochs=2 is fewer than the 3 epochs .* pass epochs >= 3"
    ):
        polylin.fit(backend=backend, epochs=2, resume=three)
    with pytest.warns(polylin.StabilityWarning):
        diverged = polylin.fit(backend=backend, lr=3.0, epochs=3, on_divergence="stop")
    with pytest.raises(
        polylin.CheckpointError, match="diverged at epoch 1, step 56; resuming it with the same learning rate"
    ):
        polylin.fit(backend=backend, lr=3.0, epochs=5, resume=diverged.save(tmp_path / "d.npz"))


def test_resume_takes_a_result_or_a_path() -> None:
    with pytest.raises(TypeError, match="resume=int must be a FitResult or the path of a saved one"):
        polylin.fit(epochs=2, resume=3)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"No checkpoint at 'nowhere\.npz'"):
        polylin.fit(epochs=2, resume="nowhere.npz")


# -- Ctrl-C --------------------------------------------------------------------------------
def interrupt_after(epoch: int) -> Any:
    def on_epoch(current: int, loss: float, seconds: float) -> None:
        if current == epoch:
            raise KeyboardInterrupt

    return on_epoch


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_keeps_the_last_completed_epoch_and_resumes(backend: str, tmp_path: Path) -> None:
    X, y = small_data()
    with pytest.warns(
        polylin.TrainingInterruptedWarning, match=r"interrupted \(Ctrl-C\) after 2 of 5 epochs"
    ):
        stopped = polylin.fit(X, y, backend=backend, epochs=N_EPOCHS, on_epoch=interrupt_after(2))
    assert stopped.interrupted and stopped.epochs_completed == 2
    two = polylin.fit(X, y, backend=backend, epochs=2)
    assert stopped.w.tobytes() == two.w.tobytes() and stopped.b == two.b
    assert stopped.losses.tobytes() == two.losses.tobytes()

    path = stopped.save(tmp_path / "interrupted.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = polylin.fit(X, y, backend=backend, epochs=N_EPOCHS, resume=path)
    uninterrupted = polylin.fit(X, y, backend=backend, epochs=N_EPOCHS)
    assert not resumed.interrupted
    assert resumed.w.tobytes() == uninterrupted.w.tobytes() and resumed.b == uninterrupted.b
    assert resumed.losses.tobytes() == uninterrupted.losses.tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_real_sigint_between_epochs(backend: str) -> None:
    """The signal itself, not a raised exception: Python's SIGINT handler turns it into KeyboardInterrupt."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by something else in this process")

    def on_epoch(epoch: int, loss: float, seconds: float) -> None:
        if epoch == 1:
            signal.raise_signal(signal.SIGINT)

    with pytest.warns(polylin.TrainingInterruptedWarning):
        result = polylin.fit(backend=backend, epochs=3, on_epoch=on_epoch)
    assert result.interrupted and result.epochs_completed == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_before_the_first_epoch_ends(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted while the first epoch's order is drawn: no epoch completed, the initial parameters kept."""
    import polylin.randomness

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(polylin.randomness, "epoch_order", interrupted)
    with pytest.warns(polylin.TrainingInterruptedWarning, match="after 0 of 3 epochs"):
        result = polylin.fit(backend=backend, epochs=3)
    assert result.interrupted and result.epochs_completed == 0
    w0, _ = polylin.randomness.initial_parameters(0, 2)
    assert result.w.tobytes() == w0.astype(np.float32).tobytes() and result.b == 0.0
    assert result.final_loss == result.initial_loss


def test_checkpoint_files_are_what_the_docs_say(tmp_path: Path) -> None:
    path = polylin.fit(epochs=1).save(tmp_path / "fit.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == [
            "b", "epoch_times", "initial_loss", "losses", "metadata", "true_b", "true_w", "w",
        ]  # fmt: skip
    assert os.stat(path).st_size < 10_000


@pytest.mark.parametrize("n", [1, 2, 3, 7, 255, 256, 257, 1000, 12_345, 10**6, 2**31 + 11])
def test_the_fingerprint_samples_the_rows_it_always_sampled(n: int) -> None:
    """Checkpoints saved before the rows were computed without ``linspace`` still resume: the rows
    are ``np.unique(np.linspace(0, n - 1, min(n, 256)).astype(int))``, exactly."""
    from polylin.resume import fingerprint_rows

    expected = np.unique(np.linspace(0, n - 1, num=min(n, 256)).astype(np.int64))
    np.testing.assert_array_equal(fingerprint_rows(n), expected)


@pytest.mark.parametrize("layout", ["C", "F", "reversed view", "float64 data"])
def test_the_fingerprint_hashes_what_it_always_hashed(layout: str) -> None:
    """Saved checkpoints resume only while the digest stays the same function of the data: blake2b
    (16 bytes) of the shape and dtype's repr, then the sampled rows of X and of y, in the training
    dtype, C order."""
    import hashlib

    from polylin.resume import data_fingerprint, fingerprint_rows

    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((1000, 3)), rng.standard_normal(1000)
    X = {
        "C": X.astype(np.float32),
        "F": np.asfortranarray(X.astype(np.float32)),
        "reversed view": X.astype(np.float32)[::-1, ::-1],
        "float64 data": X,
    }[layout]
    rows = fingerprint_rows(1000)
    expected = hashlib.blake2b(digest_size=16)
    expected.update(repr(((1000, 3), "float32")).encode())
    expected.update(np.ascontiguousarray(X[rows], dtype=np.float32).tobytes())
    expected.update(np.ascontiguousarray(y[rows], dtype=np.float32).tobytes())
    assert data_fingerprint(X, y, np.dtype(np.float32)) == expected.hexdigest()
    assert not rows.flags.writeable  # remembered across fits: nobody may change it
