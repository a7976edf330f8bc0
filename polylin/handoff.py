"""A fit's validated data, handed to the worker processes of ``fit(backend="torch", workers=k)``.

The launcher (:func:`polylin.distributed.launch_torch_workers`) writes a small
description of ``X`` and ``y`` into the job; each worker reopens them from it
with :func:`reopen` and calls :func:`polylin.fit` on what it gets, so every
rank trains on exactly the data, and in exactly the batches, of the
one-process fit:

* **In-memory data** is saved as ``.npy`` files and read back whole: the
  workers fit it in memory, shuffled exactly, as the one-process fit does.
* **Out-of-core data** (:class:`~polylin.streaming.ChunkedArray`) stays out of
  core. A memory map (``np.load(path, mmap_mode="r")``, or a view of one such
  as its columns) is mapped again from its own file, with no copy. A dask
  array is written once, block by block, to a ``.npy`` file in the fit's dtype
  in the temporary directory (``TMPDIR``), and reopened over it with its own
  row chunks, so that the chunk shuffle draws the same chunks. The workers stream it with
  the same out-of-core shuffle and block sizes as the launcher.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any

import numpy as np

from polylin import streaming


def describe(name: str, data: Any, folder: Path) -> dict[str, Any]:
    """How a worker reopens ``data`` (validated host data, or a :class:`~polylin.streaming.ChunkedArray`);
    writes what it must into ``folder``."""
    if not isinstance(data, streaming.ChunkedArray):
        path = folder / f"{name}.npy"
        np.save(path, data)
        return {"kind": "in-memory", "path": str(path)}
    spec: dict[str, Any] = {
        "kind": "out-of-core",
        "shuffle": data.shuffle,
        "block_bytes": streaming.BLOCK_BYTES,
        "chunk_bytes": streaming.CHUNK_BYTES,
        "row_chunks": [hi - lo for lo, hi in data.chunks] if data.lazy else None,
    }
    mapped = _file_view(data.source)
    if mapped is not None:
        return {**spec, "file": mapped}
    path = folder / f"{name}.npy"
    _write_blocks(data, path)
    return {**spec, "path": str(path)}


def reopen(spec: dict[str, Any]) -> Any:
    """The array :func:`describe` described, as :func:`polylin.fit` should receive it in a worker."""
    if spec["kind"] == "in-memory":
        return np.load(spec["path"])
    if "file" in spec:
        file = spec["file"]
        whole = np.memmap(file["path"], dtype=np.uint8, mode="r")
        array: Any = np.ndarray(
            tuple(file["shape"]), np.dtype(file["dtype"]), buffer=whole, offset=file["offset"],
            strides=tuple(file["strides"]),
        )  # fmt: skip
    else:
        array = np.load(spec["path"], mmap_mode="r")
    if spec["row_chunks"] is not None:
        import dask.array as da

        chunks = (tuple(spec["row_chunks"]), *array.shape[1:])
        array = da.from_array(array, chunks=chunks)  # type: ignore[no-untyped-call]
    return array


def streaming_settings(spec: dict[str, Any]) -> tuple[str | None, dict[str, int]]:
    """The out-of-core shuffle, and the block sizes of :mod:`polylin.streaming`, a worker must use."""
    if spec["kind"] != "out-of-core":
        return None, {}
    return spec["shuffle"], {"BLOCK_BYTES": spec["block_bytes"], "CHUNK_BYTES": spec["chunk_bytes"]}


def _file_view(source: Any) -> dict[str, Any] | None:
    """Where ``source``, a shared or read-only memory-mapped file or a view of one with non-negative
    strides, lies in its file (path, byte offset, strides), so that another process maps the same
    bytes; else ``None``."""
    top = source
    while isinstance(top, np.ndarray) and not isinstance(top.base, mmap.mmap):
        top = top.base
    if not (isinstance(source, np.ndarray) and isinstance(top, np.memmap)):
        return None
    path = getattr(top, "filename", None)
    if path is None or not Path(path).is_file() or any(s < 0 for s in source.strides):
        return None
    if getattr(top, "mode", "c") == "c":  # copy-on-write: what this process wrote is not in the file
        return None
    start = int(top.offset) + _address(source) - _address(top)
    extent = sum((n - 1) * s for n, s in zip(source.shape, source.strides, strict=True)) + source.itemsize
    if start < 0 or (source.size and start + extent > Path(path).stat().st_size):
        return None
    shape, strides = [int(n) for n in source.shape], [int(s) for s in source.strides]
    return {"path": str(path), "offset": start, "dtype": source.dtype.str, "shape": shape, "strides": strides}


def _address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def _write_blocks(data: streaming.ChunkedArray, path: Path) -> None:
    """``data`` in the fit's dtype as a ``.npy`` file, written a block at a time."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=data.dtype, shape=data.shape)  # type: ignore[no-untyped-call]
    rows = max(1, streaming.BLOCK_BYTES // max(1, data.row_bytes))
    for lo in range(0, len(data), rows):
        hi = min(lo + rows, len(data))
        out[lo:hi] = data[lo:hi]
        out.flush()
        streaming.release([out._mmap])  # type: ignore[attr-defined]
    del out
