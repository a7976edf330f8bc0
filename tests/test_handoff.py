"""polylin.handoff: how the launcher of ``workers=k`` hands a fit's data to its worker processes."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from polylin import handoff, streaming

X_DATA = np.arange(600, dtype=np.float64).reshape(200, 3) / 7


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 512)  # 42 rows of float32 X a block
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 128)


def chunked(source: object, shuffle: str = "chunks") -> streaming.ChunkedArray:
    return streaming.ChunkedArray(source, np.dtype(np.float32), shuffle)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_in_memory_data_is_read_back_whole_not_streamed(tmp_path: Path) -> None:
    """In-memory data stays in memory in the workers, whatever its size: a worker given a memory map
    of it would stream it, with other batches than the launcher's in-memory fit."""
    spec = handoff.describe("X", X_DATA, tmp_path / "")
    again = handoff.reopen(spec)
    assert not streaming.is_out_of_core(again)
    np.testing.assert_array_equal(again, X_DATA)
    assert handoff.streaming_settings(spec) == (None, {})


def test_a_whole_memory_mapped_file_is_reopened_from_its_own_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "X.npy"
    path.parent.mkdir()
    np.save(path, np.asfortranarray(X_DATA))
    source = np.load(path, mmap_mode="r")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spec = handoff.describe("X", chunked(source, "exact"), scratch)
    assert files(scratch) == []  # no copy written
    again = handoff.reopen(spec)
    assert streaming.is_out_of_core(again) and again.dtype == np.float64
    np.testing.assert_array_equal(again, X_DATA)
    assert handoff.streaming_settings(spec) == ("exact", {"BLOCK_BYTES": 512, "CHUNK_BYTES": 128})


def test_a_view_of_a_memory_map_is_mapped_again_without_a_copy(tmp_path: Path) -> None:
    """The usual layout, features and target in one file: X is a strided view of the map."""
    np.save(tmp_path / "both.npy", np.column_stack([X_DATA, X_DATA[:, 0] + 1]))
    matrix = np.load(tmp_path / "both.npy", mmap_mode="r")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for view in (matrix[:, :-1], matrix[:, -1], matrix[10:150:3, 1:]):
        again = handoff.reopen(handoff.describe("X", chunked(view), scratch))
        assert files(scratch) == []
        assert streaming.is_out_of_core(again) and again.dtype == np.float64
        np.testing.assert_array_equal(again, view)


def test_a_reversed_view_is_written_in_the_fits_dtype(tmp_path: Path) -> None:
    np.save(tmp_path / "X.npy", X_DATA)
    view = np.load(tmp_path / "X.npy", mmap_mode="r")[::-1]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    again = handoff.reopen(handoff.describe("X", chunked(view), scratch))
    assert files(scratch) == ["X.npy"]
    assert streaming.is_out_of_core(again) and again.dtype == np.float32
    np.testing.assert_array_equal(again, X_DATA[::-1].astype(np.float32))


def test_a_copy_on_write_map_is_written_with_what_this_process_changed(tmp_path: Path) -> None:
    np.save(tmp_path / "X.npy", X_DATA)
    private = np.load(tmp_path / "X.npy", mmap_mode="c")
    private[0, 0] = -1.0  # in this process only: the file keeps its value
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    again = handoff.reopen(handoff.describe("X", chunked(private), scratch))
    assert files(scratch) == ["X.npy"] and again[0, 0] == -1.0


def test_a_dask_array_keeps_its_row_chunks(tmp_path: Path) -> None:
    """The chunk shuffle draws dask's row chunks: the workers' array must have the same ones."""
    source = da.from_array(X_DATA, chunks=((50, 70, 80), 3))
    spec = handoff.describe("X", chunked(source), tmp_path)
    again = handoff.reopen(spec)
    assert isinstance(again, da.Array) and again.chunks[0] == (50, 70, 80)
    assert chunked(again).chunks == chunked(source).chunks
    np.testing.assert_array_equal(again.compute(), X_DATA.astype(np.float32))
