"""Out-of-core epochs against the time to read the same bytes from the page cache.

    python -m benchmarks.out_of_core                    # a ~400 MB memory map in the temp directory
    python -m benchmarks.out_of_core --rows 1000000     # smaller
    python -m benchmarks.out_of_core --backends numpy,torch --epochs 2

Writes a float32 ``.npy`` file of ``rows × (features + 1)`` (the last column the
target), reads it once to put it in the page cache, then times:

* **read**: a sequential read of the file's bytes from the page cache
  (``readinto`` of 8 MiB pieces), the floor for any pass over the data;
* **in memory**: one epoch of the same fit on the data loaded into memory
  (the compute alone, no I/O);
* **chunks** and **exact**: one epoch of ``polylin.fit`` on the memory map,
  with ``out_of_core_shuffle="chunks"`` and ``"exact"`` (the epoch's clock
  covers its reads, its steps and its chunked full-data loss);

and prints each as seconds and as a ratio to the read. Each figure is the
median over ``--epochs`` epochs of one fit (the first epoch after a warm-up
fit). dask-ml's ``Incremental(SGDRegressor)`` is timed on the same data when
dask-ml imports (``nox -s bench-out-of-core`` installs it: it needs NumPy 2,
which MXNet's environment cannot have); when it does not, the bench says so.
Each line also gives the final loss (½ mean squared error over the data), so
that the times are compared at the loss each reached.

``--dask-cluster K`` also fits a dask array whose blocks are read from the file
by the ``K`` worker processes of a ``dask.distributed`` ``LocalCluster`` (the
path of a real cluster, on one machine), with ``out_of_core_shuffle="exact"``,
and checks that it equals the memory map's fit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PIECE = 8 * 2**20


def write_data(path: Path, rows: int, features: int, seed: int = 0) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, features + 1))
    rng = np.random.default_rng(seed)
    w = rng.normal(size=features).astype(np.float32)
    for lo in range(0, rows, 250_000):
        block = rng.standard_normal((min(250_000, rows - lo), features), dtype=np.float32)
        out[lo : lo + len(block), :features] = block
        out[lo : lo + len(block), features] = block @ w + 1.0 + 0.01 * rng.standard_normal(len(block))
    out.flush()
    del out


def read_seconds(path: Path, repeats: int = 3) -> float:
    """A sequential read of the whole file from the page cache (the median of ``repeats``)."""
    buffer = bytearray(PIECE)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def epoch_seconds(X: object, y: object, backend: str, epochs: int, **options: object) -> tuple[float, Any]:
    """The median epoch of ``polylin.fit`` after a warm-up fit, and the fit's result."""
    import polylin

    kwargs = {"backend": backend, "batch_size": 1000, "lr": 0.01, "check_stability": False, **options}
    polylin.fit(X, y, epochs=1, **kwargs)  # warm-up: compiles (JAX), fills caches
    result = polylin.fit(X, y, epochs=epochs, **kwargs)
    return float(np.median(result.epoch_times)), result


def half_mse(M: np.ndarray, w: np.ndarray, b: float) -> float:
    """½ mean squared error of ``(w, b)`` over the file's rows, read in blocks (float64 sums)."""
    total = 0.0
    for lo in range(0, M.shape[0], 500_000):
        block = np.asarray(M[lo : lo + 500_000], dtype=np.float64)
        total += float(np.sum((block[:, :-1] @ w + b - block[:, -1]) ** 2))
    return 0.5 * total / M.shape[0]


def _read_rows(path: str, lo: int, hi: int, columns: slice) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[lo:hi, columns])


def cluster_fit(path: Path, workers: int, epochs: int, reference: Any) -> str:
    """An exact-mode fit of a dask array read by a ``LocalCluster``'s worker processes, against
    ``reference`` (the memory map's exact fit)."""
    try:
        import dask
        import dask.array as da
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        return f"dask.distributed: not available ({exc})"
    import polylin

    M = np.load(path, mmap_mode="r")
    n, d = M.shape[0], M.shape[1] - 1
    rows = max(1, 64 * 2**20 // (M.shape[1] * 4))
    pieces = [(lo, min(lo + rows, n)) for lo in range(0, n, rows)]
    read = dask.delayed(_read_rows, pure=True)

    def column(columns: slice, shape: tuple[int, ...]) -> Any:
        return da.concatenate(
            [
                da.from_delayed(read(str(path), lo, hi, columns), shape=(hi - lo, *shape), dtype=np.float32)
                for lo, hi in pieces
            ]
        )

    lines = []
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster, Client(cluster):
        X, y = column(slice(0, d), (d,)), column(slice(d, d + 1), (1,)).reshape(-1)
        for mode in ("chunks", "exact"):
            started = time.perf_counter()
            result = polylin.fit(
                X, y, backend="numpy", batch_size=1000, lr=0.01, epochs=epochs, check_stability=False,
                out_of_core_shuffle=mode,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            line = f"dask LocalCluster ({workers} processes), {mode}: {seconds / epochs:.3f} s/epoch "
            line += f"(whole fit / epochs), final loss {result.losses[-1]:.4g}"
            if mode == "exact":
                same = np.allclose(result.w, reference.w, rtol=1e-5, atol=1e-7) and np.allclose(
                    result.losses, reference.losses, rtol=1e-5
                )
                line += f"; {'equal to' if same else 'DIFFERENT from'} the memory map's exact fit"
            lines.append(line)
    return "\n".join(lines)


def dask_ml_seconds(path: Path, epochs: int) -> tuple[str, float | None, float | None]:
    try:
        import dask.array as da
        import dask_ml
        from dask_ml.wrappers import Incremental
        from sklearn.linear_model import SGDRegressor
    except Exception as exc:  # ImportError, or a binary incompatibility with this NumPy
        return f"not available ({type(exc).__name__}: {exc})", None, None
    M = np.load(path, mmap_mode="r")
    chunk_rows = max(1, 64 * 2**20 // (M.shape[1] * 4))
    X = da.from_array(M[:, :-1], chunks=(chunk_rows, M.shape[1] - 1))
    y = da.from_array(M[:, -1], chunks=chunk_rows)
    model = Incremental(SGDRegressor(learning_rate="constant", eta0=0.001, max_iter=1, tol=None))
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.partial_fit(X, y)
        times.append(time.perf_counter() - started)
    loss = half_mse(M, np.asarray(model.coef_, dtype=np.float64), float(model.intercept_[0]))
    return f"dask-ml {dask_ml.__version__}", statistics.median(times), loss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_500_000)
    parser.add_argument("--features", type=int, default=21)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--backends", default="numpy")
    parser.add_argument("--modes", default="chunks,exact")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--dask-cluster", type=int, default=0, metavar="K")
    args = parser.parse_args(argv)

    path = Path(args.dir) / f"polylin-ooc-{args.rows}x{args.features}.npy"
    if not path.exists():
        write_data(path, args.rows, args.features)
    size_mib = path.stat().st_size / 2**20
    read_seconds(path, repeats=1)  # into the page cache
    floor = read_seconds(path)
    print(f"data: {path} ({args.rows} x {args.features + 1} float32, {size_mib:.0f} MiB), batch 1000")
    print(f"{'':34} {'s/epoch':>9} {'× read':>8} {'final loss':>11}")
    print(f"{'read from the page cache':34} {floor:9.3f} {1.0:8.1f}")
    M = np.load(path, mmap_mode="r")
    exact = None
    for backend in args.backends.split(","):
        X_ram, y_ram = np.ascontiguousarray(M[:, :-1]), np.ascontiguousarray(M[:, -1])
        seconds, result = epoch_seconds(X_ram, y_ram, backend, args.epochs)
        del X_ram, y_ram
        print(f"{backend + ', in memory':34} {seconds:9.3f} {seconds / floor:8.1f} {result.losses[-1]:11.4g}")
        for mode in args.modes.split(","):
            seconds, result = epoch_seconds(
                M[:, :-1], M[:, -1], backend, args.epochs, out_of_core_shuffle=mode
            )
            if backend == "numpy" and mode == "exact":
                exact = result
            line = f"{backend + ', memory map, ' + mode:34} {seconds:9.3f} {seconds / floor:8.1f}"
            print(f"{line} {result.losses[-1]:11.4g}")
            sys.stdout.flush()
    label, seconds_ml, loss_ml = dask_ml_seconds(path, args.epochs)
    if seconds_ml is None:
        print(f"dask-ml Incremental(SGDRegressor): {label}")
    else:
        line = f"{label + ' Incremental(SGDRegressor)':44} {seconds_ml:9.3f} {seconds_ml / floor:8.1f}"
        print(f"{line} {loss_ml:11.4g}  (batch 1, eta0 0.001: scikit-learn's per-example SGD)")
    if args.dask_cluster:
        if exact is None:
            _, exact = epoch_seconds(M[:, :-1], M[:, -1], "numpy", args.epochs, out_of_core_shuffle="exact")
        print(cluster_fit(path, args.dask_cluster, args.epochs, exact))
    if os.environ.get("POLYLIN_OOC_KEEP") is None:
        path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
