"""Data beyond memory: dask arrays and memory-mapped files, read block by block on any backend.

:func:`polylin.fit` hands ``X`` and ``y`` here when ``X`` is a dask array or a
NumPy memory map (``np.load(path, mmap_mode="r")``, ``np.memmap``) larger than
one block (:data:`BLOCK_BYTES`); smaller ones are read into memory and fitted
as in-memory data. The data are wrapped, not read: :class:`ChunkedArray`.

An epoch is cut into *segments*, each at most a block of rows. A segment's rows
are read from the source (a dask ``compute``, or a read of the mapped file),
sent to the backend's device with ``backend.asarray``, and its minibatch steps
run there with the backend's own epoch runner, on the device-resident block;
the parameters stay on the device from one segment to the next. The
full-data loss (after each epoch, and before the first) is a sum of per-block
partial sums, accumulated in float64 on the host. Nothing holds ``X`` whole.

Two shuffles (``fit(..., out_of_core_shuffle=...)``):

``"chunks"`` (the default: it reads at streaming speed)
    The rows are cut into chunks (dask's row chunks; for a memory map, pieces of
    :data:`CHUNK_BYTES`). Each epoch draws, from the epoch's own seed stream,
    an order of the chunks; consecutive chunks in that order are grouped into
    segments of at most a block, and each segment's rows are shuffled. Batches
    are then cut from that order exactly as from an in-memory permutation (all
    of ``batch_size`` rows, the last one short), so a batch may span two
    segments. Every chunk is read once per epoch, whole.
``"exact"``
    The in-memory fit's own permutation: each segment is the next block of
    consecutive batches of it, gathered row by row from the whole source (in
    sorted order, in one request). The batches, hence the parameters, equal the
    in-memory fit's up to rounding; but every segment reads from nearly every
    page of the data, so an epoch reads it about ``size / BLOCK_BYTES`` times.
    The epoch's permutation is held on the host (8 bytes a row).

With ``shuffle=False`` both read the data once, in order, and give the
in-memory fit's batches.

Memory. A memory-mapped read puts the file's pages in the process's resident
set, where they stay until the kernel needs them. After every piece of
:data:`RELEASE_BYTES` read, polylin drops them from the mapping
(``madvise(MADV_DONTNEED)``; the pages stay in the OS page cache), so the
resident set holds a few blocks whatever the file's size. This is done for
read-only and shared maps (modes ``"r"``, ``"r+"``, ``"w+"``), never for
copy-on-write ones (``"c"``), whose private pages it would discard; memory
maps found in a dask array's graph (``da.from_array(memmap)``) are released
the same way.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from polylin.backends.base import Backend, run_steps
from polylin.batching import BatchLayout, batch_bounds
from polylin.frameworks import framework_of
from polylin.objective import Objective
from polylin.resident import device_arrays
from polylin.types import Array, Params

#: Rows held in memory at once: a segment of the epoch, and a block of the loss pass.
BLOCK_BYTES = 64 * 2**20
#: The shuffle unit of ``"chunks"`` for memory maps (dask arrays use their own row chunks).
CHUNK_BYTES = 2**20
#: A memory-mapped read drops its pages from the mapping every this many bytes.
RELEASE_BYTES = 8 * 2**20
SHUFFLE_MODES = ("chunks", "exact")
DEFAULT_SHUFFLE = "chunks"


# -- what is out of core ---------------------------------------------------------------
def is_out_of_core(x: object) -> bool:
    """Whether ``x`` is a dask array or a NumPy array backed by a memory map."""
    return framework_of(x) == "dask" or _memmap_of(x) is not None


def _memmap_of(x: object) -> np.memmap | None:
    """The :class:`numpy.memmap` whose mapping ``x`` views, if any."""
    seen = 0
    while isinstance(x, np.ndarray) and seen < 32:
        if isinstance(x, np.memmap) and getattr(x, "_mmap", None) is not None:
            return x
        x, seen = x.base, seen + 1
    return None


def _mappings(source: Any) -> list[mmap.mmap]:
    """The mappings a read of ``source`` touches that may be released (not copy-on-write)."""
    found: list[np.memmap] = []
    own = _memmap_of(source)
    if own is not None:
        found.append(own)
    elif framework_of(source) == "dask":
        for value in dict(source.__dask_graph__()).values():
            value = getattr(value, "value", value)  # dask's task spec wraps data in a DataNode
            mapped = _memmap_of(value)
            if mapped is not None:
                found.append(mapped)
    maps: dict[int, mmap.mmap] = {}
    for array in found:
        if getattr(array, "mode", "c") != "c":
            mapping = array._mmap  # type: ignore[attr-defined]
            maps[id(mapping)] = mapping
    return list(maps.values())


def release(maps: list[mmap.mmap]) -> None:
    """Drop the pages of ``maps`` from this process's resident set (they stay in the page cache)."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None:
        return
    for mapping in maps:
        with contextlib.suppress(OSError, ValueError):  # closed, or a platform without madvise
            mapping.madvise(advice)


# -- the wrapped data -------------------------------------------------------------------
class ChunkedArray:
    """``X`` (2-D) or ``y`` (1-D) left where it is, read block by block in the fit's dtype.

    Indexing with a slice or with row indices reads only those rows, as a NumPy
    array of the fit's dtype (the data fingerprint and the stability bound
    sample rows this way). ``chunks`` are its row chunks, ``shuffle`` the
    fit's out-of-core shuffle.
    """

    def __init__(self, source: Any, dtype: np.dtype, shuffle: str = DEFAULT_SHUFFLE) -> None:
        self.source = source
        self.dtype = np.dtype(dtype)
        self.shuffle = shuffle
        self.lazy = framework_of(source) == "dask"
        self.maps = _mappings(source)
        self.shape = tuple(int(s) for s in source.shape)
        if self.lazy:
            bounds = np.cumsum((0, *source.chunks[0]))
            self.chunks = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        else:
            rows = max(1, CHUNK_BYTES // max(1, self.row_bytes))
            self.chunks = batch_bounds(self.shape[0], rows)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    @property
    def span_bytes(self) -> int:
        """Bytes of the source one row spans (its stride: a column of a matrix spans the row)."""
        strides = getattr(self.source, "strides", None)
        return max(self.row_bytes, abs(int(strides[0]))) if strides else self.row_bytes

    @property
    def piece_rows(self) -> int:
        """Rows a memory-mapped read touches before it releases the pages: :data:`RELEASE_BYTES`."""
        return max(1, RELEASE_BYTES // max(1, self.span_bytes))

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        kind = "dask" if self.lazy else "memory-mapped"
        return f"ChunkedArray({kind}, shape={self.shape}, dtype={self.dtype.name})"

    def __getitem__(self, rows: Any) -> np.ndarray:
        if isinstance(rows, slice):
            lo, hi, step = rows.indices(self.shape[0])
            if step != 1:
                return self.take(np.arange(lo, hi, step))
            return read_rows([self], lo, hi)[0]
        return self.take(np.asarray(rows, dtype=np.int64))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` (any order), read in sorted order."""
        sorter = np.argsort(rows, kind="stable")
        gathered = gather_rows([self], rows[sorter])[0]
        out = np.empty_like(gathered)
        out[sorter] = gathered
        return out

    def raw_blocks(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, block)`` of the source in its own dtype, ``rows`` rows at a time (validation)."""
        if self.maps:
            rows = min(rows, self.piece_rows)
        for lo in range(0, self.shape[0], rows):
            hi = min(lo + rows, self.shape[0])
            part = self.source[lo:hi]
            block = np.asarray(part.compute() if self.lazy else part)
            yield lo, block
            del block
            release(self.maps)


def _release_all(arrays: list[ChunkedArray]) -> None:
    release([m for a in arrays for m in a.maps])


def _compute(parts: list[Any]) -> list[np.ndarray]:
    import dask

    return [np.asarray(p) for p in dask.compute(*parts)]  # type: ignore[attr-defined,no-untyped-call]


def read_ranges(
    arrays: list[ChunkedArray], ranges: list[tuple[int, int]], outs: list[np.ndarray] | None = None
) -> list[np.ndarray]:
    """The rows of ``ranges`` (in that order) of each array, concatenated, in the fit's dtype
    (written into the first rows of ``outs`` when given).

    Dask arrays are computed together (one graph: a source shared by ``X`` and ``y``
    is read once); memory maps are read range by range, releasing their pages as they go.
    """
    total = sum(hi - lo for lo, hi in ranges)
    if outs is None:
        outs = [np.empty((total, *a.shape[1:]), dtype=a.dtype) for a in arrays]
    lazy = [k for k, a in enumerate(arrays) if a.lazy]
    if lazy:
        import dask.array as da

        parts = [
            da.concatenate([arrays[k].source[lo:hi] for lo, hi in ranges])  # type: ignore[no-untyped-call]
            for k in lazy
        ]
        for k, value in zip(lazy, _compute(parts), strict=True):
            outs[k][:total] = value
            del value
    for k, array in enumerate(arrays):
        if array.lazy:
            continue
        step = array.piece_rows
        at = 0
        for lo, hi in ranges:
            for start in range(lo, hi, step):
                stop = min(start + step, hi)
                outs[k][at : at + stop - start] = array.source[start:stop]
                at += stop - start
                if array.maps:
                    release(array.maps)
    return outs


def read_rows(arrays: list[ChunkedArray], lo: int, hi: int) -> list[np.ndarray]:
    """Rows ``lo:hi`` of each array (see :func:`read_ranges`)."""
    return read_ranges(arrays, [(lo, hi)])


def gather_rows(arrays: list[ChunkedArray], rows: np.ndarray) -> list[np.ndarray]:
    """The sorted rows ``rows`` of each array, in the fit's dtype, reading each page at most once."""
    outs = [np.empty((len(rows), *a.shape[1:]), dtype=a.dtype) for a in arrays]
    lazy = [k for k, a in enumerate(arrays) if a.lazy]
    if lazy:
        for k, value in zip(lazy, _compute([arrays[k].source[rows] for k in lazy]), strict=True):
            outs[k][...] = value
    for k, array in enumerate(arrays):
        if array.lazy:
            continue
        if not array.maps:
            outs[k][...] = array.source[rows]
            continue
        # A page fault maps a whole folio around the page (up to 2 MiB), so the rows are taken
        # piece by piece of the file, RELEASE_BYTES at a time, releasing the pages after each.
        step = array.piece_rows
        edges = np.searchsorted(rows, np.arange(0, array.shape[0] + step, step))
        for start, stop in itertools.pairwise(edges):
            if stop > start:
                outs[k][start:stop] = array.source[rows[start:stop]]
                release(array.maps)
    return outs


# -- the data path of fit ---------------------------------------------------------------------
def training_data(X: Any, y: Any, backend: Backend, shuffle: str | None) -> tuple[Any, Any]:
    """Out-of-core ``X`` and ``y``, validated chunk by chunk: :class:`ChunkedArray` s, or, when they
    hold at most one block, in-memory arrays checked as usual by ``backend.training_data``."""
    from polylin.validation import check_choice, out_of_core_training_data

    mode = check_choice("out_of_core_shuffle", DEFAULT_SHUFFLE if shuffle is None else shuffle, SHUFFLE_MODES)
    if _fits_in_a_block(X, backend.np_dtype):
        return backend.training_data(_in_memory(X), _in_memory(y))
    X_out, y_out = out_of_core_training_data(X, y, backend)
    chunked = ChunkedArray(X_out, backend.np_dtype, mode), ChunkedArray(y_out, backend.np_dtype, mode)
    backend.check_same_data(*chunked)  # the ranks of a torchrun group each opened their own
    return chunked


def _fits_in_a_block(X: Any, dtype: np.dtype) -> bool:
    shape = tuple(X.shape)
    if any(not isinstance(s, int | np.integer) for s in shape):  # dask: unknown sizes (nan)
        return False
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize <= BLOCK_BYTES


def _in_memory(x: Any) -> Any:
    if framework_of(x) == "dask":
        return np.asarray(x.compute())
    mapped = _memmap_of(x)
    return np.array(x) if mapped is not None else x


def check_in_memory_shuffle(shuffle: str | None) -> None:
    """``out_of_core_shuffle`` is for out-of-core data; in memory only ``"exact"`` means anything."""
    if shuffle not in (None, "exact"):
        raise ValueError(
            f"out_of_core_shuffle={shuffle!r} applies to out-of-core X (a dask array or a memory map "
            "larger than polylin.streaming.BLOCK_BYTES); in-memory data is always shuffled exactly. "
            "Leave it out, or pass a dask array or np.load(path, mmap_mode='r')."
        )


def shuffle_label(shuffle: bool, X: Any) -> bool | str:
    """What the result's config records as ``shuffle``: ``"chunks"`` for the chunk shuffle, whose
    batches differ from the in-memory fit's (so that resuming across the two is refused)."""
    if shuffle and isinstance(X, ChunkedArray) and X.shuffle == "chunks":
        return "chunks"
    return bool(shuffle)


def device_data(backend: Backend, X: Any, y: Any) -> tuple[Any, Any]:
    """``X`` and ``y`` on the device; out-of-core data stays where it is (the epochs read it), and
    so do the backend's own arrays (:mod:`polylin.resident`)."""
    if isinstance(X, ChunkedArray):
        return X, y
    resident = device_arrays(X, y)
    if resident is not None and all(r.backend is backend for r in (X, y)):
        return resident
    return backend.device_data(X, y)


def mean_loss(backend: Backend, objective: Objective, params: Params, X: Any, y: Any) -> Array:
    """``objective.mean`` over all the data; for out-of-core data, per-block partial sums
    (each block's ``objective.total`` on the device), added in float64 on the host, then
    rounded to the fit's dtype before the division."""
    if not isinstance(X, ChunkedArray):
        return objective.mean(params, X, y)
    w, b = (np.array(backend.to_numpy(p), dtype=np.float64) for p in params)
    fixed = backend.parameters(w, b, trainable=False)
    rows = block_rows(X, 1)
    total = 0.0
    for lo in range(0, len(X), rows):
        X_block, y_block = read_rows([X, y], lo, min(lo + rows, len(X)))
        X_dev, y_dev = backend.asarray(X_block), backend.asarray(y_block)
        total += float(backend.to_numpy(objective.total(fixed, X_dev, y_dev)))
        del X_dev, y_dev, X_block, y_block
    # The sum in the fit's dtype, as an in-memory mean forms it: it overflows (a diverging fit)
    # exactly when theirs does.
    with np.errstate(over="ignore"):
        summed = float(np.asarray(total, dtype=X.dtype))
    return backend.asarray(np.asarray(summed / len(X), dtype=np.float64))


def chunk_layout(X: Any, batch_size: int) -> str | None:
    """What fixes the chunk shuffle's batches besides the seed: the chunks' bounds and the rows of a
    block (:data:`CHUNK_BYTES`, :data:`BLOCK_BYTES` or dask's chunks). ``None`` for other data, whose
    batches depend on neither. A resumed fit must match it (``RESUME_MUST_MATCH``)."""
    if not (isinstance(X, ChunkedArray) and X.shuffle == "chunks"):
        return None
    import hashlib

    bounds = hashlib.blake2b(np.asarray(X.chunks, dtype=np.int64).tobytes(), digest_size=8).hexdigest()
    return f"{len(X.chunks)} chunks ({bounds}), {block_rows(X, batch_size)} rows a block"


def block_rows(X: ChunkedArray, batch_size: int) -> int:
    """Rows of a block: whole batches, about :data:`BLOCK_BYTES` of ``X`` (at least one batch)."""
    batches = max(1, BLOCK_BYTES // max(1, X.row_bytes * batch_size))
    return batches * batch_size


# -- the epochs ----------------------------------------------------------------------------
@dataclass
class Segment:
    """A block of an epoch: host rows, the local order its steps take them in, its first step (0-based)."""

    X: np.ndarray
    y: np.ndarray
    order: np.ndarray
    first_step: int


@dataclass(frozen=True)
class EpochPlan:
    """What :meth:`StreamedEpochs.order` hands the loop: the epoch and its permutation (exact mode)."""

    epoch: int
    permutation: np.ndarray | None


def _skip_loss(params: Params, X: Array, y: Array) -> Array:
    """The loss a segment's epoch runner evaluates: none (the full-data loss is taken separately)."""
    return params[1]


class StreamedEpochs:
    """The hook :func:`polylin.training.train` calls for out-of-core data.

    ``order(epoch)`` plans an epoch; calling the object with ``(params, plan)``
    runs it segment by segment (module docstring) and returns ``(params,
    loss)``, the full-data loss as the backend's 0-d array. When a segment
    leaves a non-finite parameter the epoch stops there; then, or when the
    loss is non-finite, :attr:`diverged_step` names the first step (1-based in
    the epoch) after which a parameter or the full-data loss is (:meth:`_locate`).
    """

    def __init__(
        self,
        step: Any,
        objective: Objective,
        X: ChunkedArray,
        y: ChunkedArray,
        layout: BatchLayout,
        *,
        seed: int,
        shuffle: bool,
        on_step: Callable[[int, Params], None] | None = None,
    ) -> None:
        self.step, self.objective, self.X, self.y, self.layout = step, objective, X, y, layout
        self.backend: Backend = step.backend
        self.seed, self.shuffle, self.on_step = seed, bool(shuffle), on_step
        self.rows = block_rows(X, layout.batch_size)
        self.diverged_step = layout.steps_per_epoch
        self._orders: dict[int, Array] = {}

    def order(self, epoch: int) -> EpochPlan:
        from polylin.randomness import epoch_order

        exact = self.shuffle and self.X.shuffle == "exact"
        permutation = epoch_order(self.seed, epoch, self.layout.n_examples, True) if exact else None
        return EpochPlan(epoch, permutation)

    def __call__(self, params: Params, plan: EpochPlan, *, evaluate: bool = True) -> tuple[Params, Array]:
        """The epoch of ``plan``, then its full-data loss (``evaluate=False``: 0 in its place, the
        parameters being finite, and no pass over the data for it)."""
        from polylin.training import host_copy

        backend = self.backend
        first = host_copy(backend, params)
        for segment in self._segments(plan):
            params = self._run(params, segment)
            w, b = host_copy(backend, params)
            del segment  # before the next one is read
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                self.diverged_step = self._locate(first, plan)
                return params, backend.asarray(np.asarray(math.nan))
        if not evaluate:
            return params, backend.asarray(np.zeros((), dtype=backend.np_dtype))
        loss = mean_loss(backend, self.objective, params, self.X, self.y)
        if not math.isfinite(float(backend.to_numpy(loss))):
            self.diverged_step = self._locate(first, plan)
        return params, loss

    # -- one segment on the device ------------------------------------------------------------
    def _device_order(self, order: np.ndarray) -> Array:
        if len(order) and order[0] == 0 and order[-1] == len(order) - 1 and _is_range(order):
            found = self._orders.get(len(order))
            if found is None:
                found = self._orders[len(order)] = self.backend.asarray(order)
            return found
        return self.backend.asarray(order)

    def _run(self, params: Params, segment: Segment) -> Params:
        backend, batch = self.backend, self.layout.batch_size
        X_dev, y_dev = backend.asarray(segment.X), backend.asarray(segment.y)
        if self.on_step is None:  # the runner moves the host order itself
            layout = BatchLayout(len(segment.order), batch)
            runner = backend.epoch_runner(self.step, _skip_loss, X_dev, y_dev, layout)
            params, _ = runner(params, segment.order)
        else:
            first, report = segment.first_step, self.on_step
            params = run_steps(
                self.step, params, X_dev, y_dev, self._device_order(segment.order),
                batch_bounds(len(segment.order), batch),
                lambda k, p: report(first + k, p),
            )  # fmt: skip
        backend.synchronize(params)
        return params

    def _locate(self, first: tuple[np.ndarray, np.ndarray], plan: EpochPlan) -> int:
        """The first step (1-based) after which a parameter or the full-data loss is non-finite.

        The in-memory loop's criterion (:func:`polylin.divergence.locate_divergence`), found by
        bisection: each probe replays the epoch from its first parameters up to a step, then
        takes the chunked full-data loss, so about ``log2(steps)`` partial epochs are read.
        It runs only after a fit has diverged.
        """
        good, bad = 0, self.layout.steps_per_epoch
        while bad - good > 1:
            middle = (good + bad) // 2
            if self._finite_after(first, plan, middle):
                good = middle
            else:
                bad = middle
        return bad

    def _finite_after(self, first: tuple[np.ndarray, np.ndarray], plan: EpochPlan, steps: int) -> bool:
        from polylin.training import host_copy

        backend, batch = self.backend, self.layout.batch_size
        params = backend.parameters(*first, trainable=self.step.grad == "autodiff")
        for segment in self._segments(plan):
            if segment.first_step >= steps:
                break
            bounds = batch_bounds(len(segment.order), batch)[: steps - segment.first_step]
            X_dev, y_dev = backend.asarray(segment.X), backend.asarray(segment.y)
            params = run_steps(self.step, params, X_dev, y_dev, backend.asarray(segment.order), bounds)
            del segment, X_dev, y_dev
        w, b = host_copy(backend, params)
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            return False
        loss = mean_loss(backend, self.objective, params, self.X, self.y)
        return math.isfinite(float(backend.to_numpy(loss)))

    # -- the segments of an epoch ----------------------------------------------------------------
    def _segments(self, plan: EpochPlan) -> Iterator[Segment]:
        if not self.shuffle:
            return self._in_order()
        if plan.permutation is not None:
            return self._exact(plan.permutation)
        return self._by_chunks(plan.epoch)

    def _in_order(self) -> Iterator[Segment]:
        n, batch = self.layout.n_examples, self.layout.batch_size
        for lo in range(0, n, self.rows):
            hi = min(lo + self.rows, n)
            X_rows, y_rows = read_rows([self.X, self.y], lo, hi)
            yield Segment(X_rows, y_rows, np.arange(hi - lo), lo // batch)
            del X_rows, y_rows

    def _exact(self, permutation: np.ndarray) -> Iterator[Segment]:
        batch = self.layout.batch_size
        for lo in range(0, len(permutation), self.rows):
            rows = permutation[lo : lo + self.rows]
            sorter = np.argsort(rows, kind="stable")
            X_rows, y_rows = gather_rows([self.X, self.y], rows[sorter])
            local = np.empty(len(rows), dtype=np.int64)
            local[sorter] = np.arange(len(rows))
            yield Segment(X_rows, y_rows, local, lo // batch)
            del X_rows, y_rows

    def _by_chunks(self, epoch: int) -> Iterator[Segment]:
        """Chunks in a random order, grouped into segments of at most a block, each shuffled; the
        rows left over after a segment's last whole batch open the next one."""
        from polylin.randomness import order_generator

        rng = order_generator(self.seed, epoch)  # the epoch's own order stream
        chunks = self.X.chunks
        n, batch = self.layout.n_examples, self.layout.batch_size
        sequence = [chunks[k] for k in rng.permutation(len(chunks))] if len(chunks) > 1 else chunks
        largest = max(hi - lo for lo, hi in chunks)
        capacity = batch + max(self.rows, largest)  # one device shape for every segment
        groups = _groups(sequence, self.rows)
        carry_X = np.empty((0, *self.X.shape[1:]), dtype=self.X.dtype)
        carry_y = np.empty(0, dtype=self.y.dtype)
        done = 0
        for number, group in enumerate(groups):
            held = len(carry_y)
            size = held + sum(hi - lo for lo, hi in group)
            X_rows = np.empty((capacity, *self.X.shape[1:]), dtype=self.X.dtype)
            y_rows = np.empty(capacity, dtype=self.y.dtype)
            X_rows[:held], y_rows[:held] = carry_X, carry_y
            read_ranges([self.X, self.y], group, [X_rows[held:], y_rows[held:]])
            X_rows[size:], y_rows[size:] = 0, 0  # never stepped on: the padding to one shape
            order = np.concatenate(
                [np.arange(len(carry_y)), len(carry_y) + rng.permutation(size - len(carry_y))]
            )
            last = number == len(groups) - 1
            steps = size if last else size - size % batch
            carry_X, carry_y = X_rows[order[steps:]], y_rows[order[steps:]]
            if steps:
                yield Segment(X_rows, y_rows, order[:steps], done // batch)
            del X_rows, y_rows  # before the next group is read: one block in memory at a time
            done += steps
        assert done == n, (done, n)


def _groups(sequence: list[tuple[int, int]], rows: int) -> list[list[tuple[int, int]]]:
    """Consecutive chunks of ``sequence`` grouped while they hold at most ``rows`` rows (at least one)."""
    groups: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    held = 0
    for lo, hi in sequence:
        if current and held + (hi - lo) > rows:
            groups.append(current)
            current, held = [], 0
        current.append((lo, hi))
        held += hi - lo
    if current:
        groups.append(current)
    return groups


def _is_range(order: np.ndarray) -> bool:
    return bool(np.array_equal(order, np.arange(len(order))))


def streamed_epochs(
    step: Any,
    objective: Objective,
    X: Any,
    y: Any,
    layout: BatchLayout,
    *,
    seed: int,
    shuffle: bool,
    on_step: Callable[[int, Params], None] | None = None,
) -> StreamedEpochs | None:
    """The out-of-core epochs of ``train`` when ``X`` is a :class:`ChunkedArray`, else ``None``."""
    if not isinstance(X, ChunkedArray):
        return None
    if not isinstance(y, ChunkedArray):
        raise TypeError("X is out-of-core data but y is not: pass both through polylin.fit.")
    return StreamedEpochs(step, objective, X, y, layout, seed=seed, shuffle=shuffle, on_step=on_step)
