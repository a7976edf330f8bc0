"""Data beyond memory (polylin.streaming): dask arrays and memory maps on every backend.

Blocks are made tiny here (``BLOCK_BYTES`` of a few KiB) so that small data sets
stream through many segments; one test fits a 400 MB memory map in a subprocess
and measures its peak resident memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
from conftest import backend_params

import polylin
from polylin import streaming
from polylin.batching import BatchLayout
from polylin.errors import CheckpointError, DataConversionWarning
from polylin.tolerances import tolerance_for

ROOT = Path(__file__).resolve().parents[1]
N, D = 3001, 3
X_DATA, Y_DATA = polylin.synthetic_data([1.5, -2.0, 0.7], 4.2, N, seed=3, dtype="float64")
FIT = {"batch_size": 7, "epochs": 2, "seed": 5, "lr": 0.03}


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 4096)  # 170 rows of float64 X: 18 segments
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 1024)


@pytest.fixture(scope="module")
def npy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ooc") / "data.npy"
    np.save(path, np.column_stack([X_DATA, Y_DATA]))
    return path


def sources(kind: str, path: Path) -> tuple[Any, Any]:
    matrix = np.load(path, mmap_mode="r")
    X, y = matrix[:, :-1], matrix[:, -1]
    if kind == "dask":
        return da.from_array(X, chunks=(250, D)), da.from_array(y, chunks=250)
    return X, y


def in_memory(dtype: str, shuffle: bool) -> polylin.FitResult:
    return polylin.fit(X_DATA, Y_DATA, backend="numpy", dtype=dtype, shuffle=shuffle, **FIT)


@pytest.mark.parametrize("kind", ["memmap", "dask"])
@pytest.mark.parametrize(("shuffle", "mode"), [(False, "chunks"), (False, "exact"), (True, "exact")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", backend_params(("numpy", "jax", "torch", "mxnet")))
def test_exact_and_in_order_fits_equal_the_in_memory_numpy_fit(
    backend: str, dtype: str, shuffle: bool, mode: str, kind: str, npy_file: Path
) -> None:
    X, y = sources(kind, npy_file)
    result = polylin.fit(X, y, backend=backend, dtype=dtype, shuffle=shuffle, out_of_core_shuffle=mode, **FIT)
    reference = in_memory(dtype, shuffle)
    tol = tolerance_for(dtype)
    assert result.config["shuffle"] is shuffle
    assert tol.losses_close([result.initial_loss], [reference.initial_loss])
    assert tol.losses_close(result.losses, reference.losses), (result.losses, reference.losses)
    assert tol.params_close(result.w, reference.w), (result.w, reference.w)
    assert tol.params_close(np.array([result.b]), np.array([reference.b]))


def test_the_fit_reads_blocks_and_never_the_whole_data(
    npy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    largest = [0]
    original = streaming.read_ranges

    def spy(arrays: list[streaming.ChunkedArray], ranges: list[tuple[int, int]]) -> list[np.ndarray]:
        out = original(arrays, ranges)
        largest[0] = max(largest[0], *(len(o) for o in out))
        return out

    monkeypatch.setattr(streaming, "read_ranges", spy)
    X, y = sources("memmap", npy_file)
    # (The stability check reads its sample, here all 3001 rows: at most SAMPLE_ELEMENTS values.)
    polylin.fit(X, y, backend="numpy", shuffle=False, check_stability=False, **FIT)
    assert 0 < largest[0] <= 4096 // (D * 4)  # a block of float32 rows, never the 3001 rows


def segment_rows(X: Any, y: Any, seed: int, epoch: int, mode: str, batch: int = 7) -> list[np.ndarray]:
    """The rows (as their ids) of each segment of an epoch, in step order."""
    be = polylin.backends.get_backend("numpy", dtype="float64")
    X_c, y_c = streaming.training_data(X, y, be, mode)
    from polylin.losses import get_loss
    from polylin.objective import Objective
    from polylin.training import sgd_step

    objective = Objective(be.xp, get_loss("squared"))
    epochs = streaming.StreamedEpochs(
        sgd_step(be, objective, "analytic", 0.01), objective, X_c, y_c, BatchLayout(len(X_c), batch),
        seed=seed, shuffle=True,
    )  # fmt: skip
    return [seg.y[seg.order] for seg in epochs._segments(epochs.order(epoch))]


def test_chunk_shuffle_visits_every_row_once_in_whole_batches_and_mixes_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 5 * 250 * D * 8)  # five chunks a segment
    ids = np.arange(N, dtype=np.float64)
    X = da.from_array(np.column_stack([ids, ids, ids]), chunks=(250, D))
    y = da.from_array(ids, chunks=250)
    segments = segment_rows(X, y, seed=5, epoch=0, mode="chunks")
    order = np.concatenate(segments).astype(np.int64)
    assert sorted(order.tolist()) == list(range(N))  # each example exactly once
    assert all(len(s) % 7 == 0 for s in segments[:-1])  # batches never cut short before the last
    assert not np.array_equal(order, np.arange(N))
    chunk_of = order // 250
    assert len(set(chunk_of[:250].tolist())) > 1  # a segment mixes several chunks (one block holds 5)
    again = np.concatenate(segment_rows(X, y, seed=5, epoch=0, mode="chunks"))
    other_epoch = np.concatenate(segment_rows(X, y, seed=5, epoch=1, mode="chunks"))
    assert np.array_equal(order, again)
    assert not np.array_equal(order, other_epoch)


def test_exact_shuffle_is_the_in_memory_permutation() -> None:
    from polylin.randomness import epoch_order

    ids = np.arange(N, dtype=np.float64)
    segments = segment_rows(da.from_array(np.column_stack([ids] * 3), chunks=(500, 3)),
                            da.from_array(ids, chunks=500), seed=5, epoch=2, mode="exact")  # fmt: skip
    assert np.array_equal(np.concatenate(segments).astype(np.int64), epoch_order(5, 2, N))


@pytest.mark.parametrize("backend", backend_params(("jax", "torch", "mxnet")))
def test_chunk_shuffle_is_the_same_on_every_backend(backend: str, npy_file: Path) -> None:
    X, y = sources("memmap", npy_file)
    reference = polylin.fit(X, y, backend="numpy", out_of_core_shuffle="chunks", **FIT)
    result = polylin.fit(X, y, backend=backend, out_of_core_shuffle="chunks", **FIT)
    tol = tolerance_for("float32")
    assert reference.config["shuffle"] == result.config["shuffle"] == "chunks"
    assert tol.losses_close(result.losses, reference.losses)
    assert tol.params_close(result.w, reference.w)
    exact = polylin.fit(X, y, backend="numpy", out_of_core_shuffle="exact", **FIT)
    assert not tol.params_close(exact.w, reference.w)  # other batches, another trajectory
    assert abs(exact.losses[-1] - reference.losses[-1]) < 0.5 * reference.losses[-1]  # both converge


def test_data_in_one_block_is_fitted_in_memory(npy_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 2**20)
    X, y = sources("dask", npy_file)
    for mode in ("chunks", "exact"):
        result = polylin.fit(X, y, backend="numpy", dtype="float64", out_of_core_shuffle=mode, **FIT)
        assert np.array_equal(result.w, in_memory("float64", True).w)


def test_resume_of_an_out_of_core_fit(npy_file: Path, tmp_path: Path) -> None:
    X, y = sources("memmap", npy_file)
    for mode in ("exact", "chunks"):
        whole = polylin.fit(X, y, backend="numpy", out_of_core_shuffle=mode, **{**FIT, "epochs": 3})
        first = polylin.fit(X, y, backend="numpy", out_of_core_shuffle=mode, **{**FIT, "epochs": 1})
        path = tmp_path / f"{mode}.npz"
        first.save(path)
        resumed = polylin.fit(
            X, y, backend="numpy", out_of_core_shuffle=mode, resume=path, **{**FIT, "epochs": 3}
        )
        assert np.array_equal(resumed.w, whole.w) and np.array_equal(resumed.losses, whole.losses)
    # The exact mode is the in-memory run: its checkpoint continues in memory; the chunk one does not.
    exact = polylin.fit(X, y, backend="numpy", out_of_core_shuffle="exact", **{**FIT, "epochs": 1})
    in_ram = polylin.fit(X_DATA, Y_DATA, backend="numpy", resume=exact, **{**FIT, "epochs": 2})
    assert tolerance_for("float32").params_close(in_ram.w, in_memory("float32", True).w)
    chunked = polylin.fit(X, y, backend="numpy", **{**FIT, "epochs": 1})
    with pytest.raises(CheckpointError, match="shuffle"):
        polylin.fit(X_DATA, Y_DATA, backend="numpy", resume=chunked, **{**FIT, "epochs": 2})


def test_a_chunk_shuffled_checkpoint_resumes_only_with_its_block_layout(
    npy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk shuffle's batches depend on the chunks and the block size: a checkpoint records
    them, and resuming under other ones (they would give other batches) is refused by name."""
    X, y = sources("memmap", npy_file)
    first = polylin.fit(X, y, backend="numpy", **{**FIT, "epochs": 1})
    assert first.config["chunk_layout"].endswith("rows a block")
    exact = polylin.fit(X, y, backend="numpy", out_of_core_shuffle="exact", **{**FIT, "epochs": 1})
    assert exact.config["chunk_layout"] is None  # the exact mode's batches are the in-memory ones
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 8192)
    with pytest.raises(CheckpointError, match=r"chunk_layout \(checkpoint: '.* rows a block'"):
        polylin.fit(X, y, backend="numpy", resume=first, **{**FIT, "epochs": 2})
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 2048)
    with pytest.raises(CheckpointError, match="chunk_layout"):
        polylin.fit(X, y, backend="numpy", resume=first, **{**FIT, "epochs": 2})
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 1024)
    resumed = polylin.fit(X, y, backend="numpy", resume=first, **{**FIT, "epochs": 2})
    whole = polylin.fit(X, y, backend="numpy", **FIT)
    assert np.array_equal(resumed.w, whole.w)


@pytest.mark.parametrize("kind", ["memmap", "dask"])
def test_validation_reads_chunks_and_names_the_bad_value(kind: str, tmp_path: Path) -> None:
    matrix = np.column_stack([X_DATA, Y_DATA])
    matrix[2345, 1] = np.nan
    path = tmp_path / "bad.npy"
    np.save(path, matrix)
    X, y = sources(kind, path)
    with pytest.raises(ValueError, match=r"X contains a non-finite value \(nan at index \(2345, 1\)\)"):
        polylin.fit(X, y, backend="numpy")
    with pytest.raises(ValueError, match="y has 3000 values but X has 3001 rows"):
        polylin.fit(X, y[:3000], backend="numpy")


def test_integer_data_is_converted_block_by_block_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "ints.npy"
    np.save(path, np.round(np.column_stack([X_DATA, Y_DATA]) * 10).astype(np.int32))
    X, y = sources("memmap", path)
    with pytest.warns(DataConversionWarning, match="X has dtype int32"):
        result = polylin.fit(X, y, backend="numpy", dtype="float64", shuffle=False, **{**FIT, "lr": 1e-4})
    reference = polylin.fit(np.asarray(X), np.asarray(y), backend="numpy", dtype="float64", shuffle=False,
                            **{**FIT, "lr": 1e-4})  # fmt: skip
    assert tolerance_for("float64").params_close(result.w, reference.w)


@pytest.mark.parametrize("backend", backend_params(("numpy", "torch")))
def test_divergence_is_located_at_the_in_memory_step(backend: str, npy_file: Path) -> None:
    X, y = sources("memmap", npy_file)
    kwargs = {**FIT, "lr": 4.0, "check_stability": False, "out_of_core_shuffle": "exact"}
    with pytest.raises(polylin.DivergenceError) as streamed:
        polylin.fit(X, y, backend=backend, **kwargs)
    with pytest.raises(polylin.DivergenceError) as reference:
        polylin.fit(X_DATA, Y_DATA, backend="numpy", **{**kwargs, "out_of_core_shuffle": None})
    assert (streamed.value.epoch, streamed.value.step) == (reference.value.epoch, reference.value.step)


def test_the_shuffle_option_is_checked(npy_file: Path) -> None:
    X, y = sources("memmap", npy_file)
    with pytest.raises(ValueError, match=r"out_of_core_shuffle='fast' is not one of \['chunks', 'exact'\]"):
        polylin.fit(X, y, out_of_core_shuffle="fast")
    with pytest.raises(ValueError, match="in-memory data is always shuffled exactly"):
        polylin.fit(X_DATA, Y_DATA, out_of_core_shuffle="chunks")


def assert_same_parallel_fit(parallel: polylin.FitResult, single: polylin.FitResult, dtype: str) -> None:
    """A k-worker fit equals the one-process fit: polylin.tolerances, and the issue's flat bound."""
    tol = tolerance_for(dtype)
    params = np.append(parallel.w, parallel.b), np.append(single.w, single.b)
    assert tol.params_close(*params), params
    relative = np.abs(params[0] - params[1]) / np.maximum(np.abs(params[1]), 1e-300)
    assert relative.max() <= {"float32": 1e-5, "float64": 1e-10}[dtype], params
    assert tol.losses_close(parallel.losses, single.losses), (parallel.losses, single.losses)
    for key in ("shuffle", "chunk_layout", "data_fingerprint"):
        assert parallel.config[key] == single.config[key], key


@pytest.mark.parametrize("kind", ["memmap", "dask"])
@pytest.mark.parametrize("mode", ["chunks", "exact"])
@pytest.mark.parametrize("backend", backend_params(("torch",)))
def test_torch_workers_stream_data_beyond_memory_as_one_process_does(
    backend: str, mode: str, kind: str, npy_file: Path
) -> None:
    """``workers=2`` on streamed data: both ranks read the blocks the one-process fit reads (the
    launcher hands them the data out of core, with its block sizes), in the same batches."""
    X, y = sources(kind, npy_file)
    single = polylin.fit(X, y, backend=backend, out_of_core_shuffle=mode, **FIT)
    parallel = polylin.fit(X, y, backend=backend, workers=2, out_of_core_shuffle=mode, **FIT)
    assert parallel.config["workers"] == 2 and "2 ranks" in parallel.device
    assert single.config["shuffle"] == ("chunks" if mode == "chunks" else True)
    assert single.config["chunk_layout"] is not None or mode == "exact"
    assert_same_parallel_fit(parallel, single, "float32")


JAX_WORKERS_SCRIPT = """
import json, sys
import dask.array as da
import numpy as np
import polylin
from polylin import streaming
streaming.BLOCK_BYTES, streaming.CHUNK_BYTES = 4096, 1024
matrix = np.load(sys.argv[1], mmap_mode="r")
X, y = matrix[:, :-1], matrix[:, -1]
data = {"memmap": (X, y), "dask": (da.from_array(X, chunks=(250, X.shape[1])), da.from_array(y, chunks=250))}
options, out = json.loads(sys.argv[2]), {}
for kind, (X, y) in data.items():
    for mode in ("chunks", "exact"):
        for k in (2, 1):
            r = polylin.fit(X, y, backend="jax", workers=k, out_of_core_shuffle=mode, **options)
            out[f"{kind}-{mode}-{k}"] = {"w": r.w.tolist(), "b": r.b, "losses": r.losses.tolist(),
                                         "device": r.device, "config": r.config}
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", backend_params(("jax",)))
def test_jax_workers_stream_data_beyond_memory_as_one_device_does(backend: str, npy_file: Path) -> None:
    """``workers=2`` on streamed data, in a fresh process (polylin sets the host-device count):
    each block goes to both devices and its batches are split over them."""
    env = {"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", JAX_WORKERS_SCRIPT, str(npy_file), json.dumps(FIT)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    fits = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(fits) == 8
    for kind in ("memmap", "dask"):
        for mode in ("chunks", "exact"):
            parallel, single = (_Recorded(fits[f"{kind}-{mode}-{k}"]) for k in (2, 1))
            assert "2 devices" in parallel.device and parallel.config["workers"] == 2
            assert_same_parallel_fit(parallel, single, "float32")  # type: ignore[arg-type]


class _Recorded:
    """A fit recorded by a subprocess, with the fields :func:`assert_same_parallel_fit` reads."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.w, self.b = np.asarray(record["w"]), record["b"]
        self.losses, self.device, self.config = (
            np.asarray(record["losses"]),
            record["device"],
            record["config"],
        )


def test_the_stability_bound_and_the_fingerprint_equal_the_in_memory_ones(npy_file: Path) -> None:
    from polylin.resume import data_fingerprint
    from polylin.stability import clear_cache, largest_curvature

    X, y = sources("dask", npy_file)
    be = polylin.backends.get_backend("numpy", dtype="float64")
    X_c, y_c = streaming.training_data(X, y, be, None)
    assert isinstance(X_c, streaming.ChunkedArray)
    clear_cache()
    assert largest_curvature(X_c) == pytest.approx(largest_curvature(X_DATA), rel=1e-12)
    assert data_fingerprint(X_c, y_c, be.np_dtype) == data_fingerprint(X_DATA, Y_DATA, be.np_dtype)
    with pytest.warns(polylin.StabilityWarning):
        polylin.fit(X, y, backend="numpy", lr=5.0, epochs=1, on_divergence="stop")


def test_a_npy_file_is_read_memory_mapped(npy_file: Path) -> None:
    from polylin.cli.data_files import read_data

    data = read_data(npy_file)
    assert streaming.is_out_of_core(data.X) and streaming.is_out_of_core(data.y)
    assert data.X.shape == (N, D) and np.array_equal(np.asarray(data.y), Y_DATA)


PEAK_SCRIPT = """
import json, resource, sys, numpy as np, polylin
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
path, mode = sys.argv[1], sys.argv[2]
workers = {"workers": 2, "backend": "torch"} if mode.startswith("workers") else {}
if mode.endswith("baseline"):
    small = np.load(path, mmap_mode="r")[:2000]
    polylin.fit(np.array(small[:, :-1]), np.array(small[:, -1]), batch_size=1000, epochs=1, **workers)
else:
    M = np.load(path, mmap_mode="r")
    shuffle = "chunks" if workers else mode
    result = polylin.fit(M[:, :-1], M[:, -1], batch_size=1000, epochs=1, lr=0.01, out_of_core_shuffle=shuffle,
                         **workers)
    assert np.isfinite(result.losses).all(), result.losses
# the largest worker process's peak (Linux reports ru_maxrss in KiB)
ranks = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"peak_mib": peak_mib(), "rank_peak_mib": ranks}))
"""


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 396 MB ``.npy`` file: 4.5e6 rows of 21 float32 features and the target column."""
    n, d = 4_500_000, 21
    path = tmp_path_factory.mktemp("big") / "big.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d + 1))
    rng = np.random.default_rng(0)
    w = rng.normal(size=d).astype(np.float32)
    for lo in range(0, n, 500_000):
        block = rng.standard_normal((min(500_000, n - lo), d), dtype=np.float32)
        out[lo : lo + len(block), :d] = block
        out[lo : lo + len(block), d] = block @ w + 1.0
    out.flush()
    del out
    return path


def peak(path: Path, mode: str) -> dict[str, float]:
    """Peak resident memory (MiB) of a fit of ``path`` in a fresh process, and of its largest child."""
    script = path.parent / "peak.py"
    script.write_text(textwrap.dedent(PEAK_SCRIPT))
    env = {"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, str(script), str(path), mode], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_peak_memory_stays_at_a_few_blocks_for_a_file_several_times_larger(big_file: Path) -> None:
    """A 400 MB memory map is fitted in a subprocess whose peak resident memory stays within
    150 MiB of an empty fit's, less than 40 % of the file: the data is never held whole."""
    file_mib = big_file.stat().st_size / 2**20
    baseline = peak(big_file, "baseline")["peak_mib"]
    streamed = peak(big_file, "chunks")["peak_mib"]
    print(f"file {file_mib:.0f} MiB; peak RSS: empty fit {baseline:.0f} MiB, streamed fit {streamed:.0f} MiB")
    assert file_mib > 370
    assert streamed - baseline < 150, (baseline, streamed, file_mib)


@pytest.mark.slow
@pytest.mark.parametrize("backend", backend_params(("torch",)))
def test_peak_memory_of_streaming_workers_stays_at_a_few_blocks(backend: str, big_file: Path) -> None:
    """``workers=2`` on the same 400 MB file: each rank maps the file again (no copy) and streams it,
    so the largest rank's peak stays within 200 MiB of a rank's on a tiny fit (two blocks for the
    segment on the host and its tensor, more for the loss pass), and the launcher holds no block."""
    file_mib = big_file.stat().st_size / 2**20
    baseline = peak(big_file, "workers-baseline")
    streamed = peak(big_file, "workers")
    print(
        f"file {file_mib:.0f} MiB; peak RSS of a rank: tiny fit {baseline['rank_peak_mib']:.0f} MiB, "
        f"streamed fit {streamed['rank_peak_mib']:.0f} MiB; launcher {streamed['peak_mib']:.0f} MiB"
    )
    assert streamed["rank_peak_mib"] - baseline["rank_peak_mib"] < 200, (baseline, streamed, file_mib)
    assert streamed["peak_mib"] - baseline["peak_mib"] < 100, (baseline, streamed, file_mib)
