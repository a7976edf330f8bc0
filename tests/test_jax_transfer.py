"""Host arrays handed to JAX aligned, so that its CPU runtime uses them in place (jax_transfer)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import backend_params

from polylin.backends import get_backend
from polylin.backends.jax_transfer import ALIGNMENT, MIN_STAGED_BYTES, aligned_empty, host_for_device

LARGE_ROWS = MIN_STAGED_BYTES // (4 * 8) + 1  # float32 rows of 8 columns: just over the staging size


def misaligned(shape: tuple[int, ...], dtype: object = np.float32, shift: int = 16) -> np.ndarray:
    """Random values in an array whose data starts ``shift`` bytes past an alignment boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    base = aligned_empty((size + ALIGNMENT,), dtype)
    out = base[shift // dtype.itemsize : shift // dtype.itemsize + size].reshape(shape)
    out[...] = np.random.default_rng(0).normal(size=shape).astype(dtype)
    assert out.ctypes.data % ALIGNMENT == shift
    return out


@pytest.mark.parametrize("shape", [(3,), (5, 7), (1000, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint8])
def test_aligned_empty_starts_on_the_boundary(shape: tuple[int, ...], dtype: object) -> None:
    out = aligned_empty(shape, dtype)
    assert out.shape == shape and out.dtype == np.dtype(dtype) and out.flags.c_contiguous
    assert out.ctypes.data % ALIGNMENT == 0
    out[...] = 1  # writable, and every element is inside the buffer
    assert out.sum() == out.size


def test_a_large_misaligned_array_is_copied_aligned_and_left_untouched() -> None:
    host = misaligned((LARGE_ROWS, 8))
    before = host.copy()
    staged = host_for_device(host, np.float32, stage=True)
    assert staged.ctypes.data % ALIGNMENT == 0
    assert not np.shares_memory(staged, host)
    np.testing.assert_array_equal(staged, before)
    np.testing.assert_array_equal(host, before)


def test_staging_converts_the_dtype_in_the_same_copy() -> None:
    host = misaligned((LARGE_ROWS, 8), np.float64, shift=8)
    staged = host_for_device(host, np.float32, stage=True)
    assert staged.dtype == np.float32 and staged.ctypes.data % ALIGNMENT == 0
    np.testing.assert_array_equal(staged, host.astype(np.float32))
    order = np.random.default_rng(1).permutation(LARGE_ROWS * 8)  # int64, as epoch orders are
    np.testing.assert_array_equal(host_for_device(order, np.int32, stage=True), order.astype(np.int32))


def test_arrays_already_aligned_small_or_not_staged_are_not_copied() -> None:
    aligned = aligned_empty((LARGE_ROWS, 8), np.float32)
    aligned[...] = 2.0
    assert host_for_device(aligned, np.float32, stage=True) is aligned
    small = misaligned((10, 8))
    assert np.shares_memory(host_for_device(small, np.float32, stage=True), small)
    large = misaligned((LARGE_ROWS, 8))
    assert host_for_device(large, np.float32, stage=False) is large


def test_a_non_contiguous_large_array_is_staged_contiguous() -> None:
    wide = np.asarray(misaligned((LARGE_ROWS, 16)))
    view = wide[:, ::2]
    staged = host_for_device(view, np.float32, stage=True)
    assert staged.flags.c_contiguous and staged.ctypes.data % ALIGNMENT == 0
    np.testing.assert_array_equal(staged, view)


@pytest.mark.parametrize("backend", backend_params(["jax"]))
def test_jax_takes_aligned_host_data_without_a_copy(backend: str) -> None:
    """On the CPU, an aligned array reaches JAX in place, and a misaligned one reaches it with its
    values intact whichever path the runtime needs (it aliases it, or polylin stages it)."""
    be = get_backend(backend)
    aligned = aligned_empty((LARGE_ROWS, 8), np.float32)
    aligned[...] = np.arange(aligned.size, dtype=np.float32).reshape(aligned.shape)
    placed = be.asarray(aligned)
    assert np.shares_memory(np.asarray(placed), aligned)
    host = misaligned((LARGE_ROWS, 8))
    np.testing.assert_array_equal(np.asarray(be.asarray(host)), host)
    order = np.random.default_rng(2).permutation(LARGE_ROWS)
    np.testing.assert_array_equal(np.asarray(be.asarray(order)), order)


@pytest.mark.parametrize("backend", backend_params(["jax"]))
def test_the_alignment_probe_predicts_what_happens_to_large_arrays(backend: str) -> None:
    """The probe looks at 64 KiB arrays once; its answer must hold for the arrays staged (≥ 1 MiB)."""
    import jax

    from polylin.backends.jax_transfer import stages_for_alignment

    device = get_backend(backend).device
    aligned = aligned_empty((LARGE_ROWS, 8), np.float32)
    aligned[...] = 1.0
    host = misaligned((LARGE_ROWS, 8))

    def aliased(array: np.ndarray) -> bool:
        return bool(np.shares_memory(np.asarray(jax.device_put(array, device)), array))

    assert stages_for_alignment(jax, device) == (aliased(aligned) and not aliased(host))


@pytest.mark.parametrize("backend", backend_params(("jax",)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_fit_compiles_its_epoch_once_with_host_orders_and_parameters(
    backend: str, dtype: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The order and the parameters reach the compiled epoch as host arrays on every epoch: a host
    and a device argument would be two signatures, and the second epoch would compile again."""
    import logging

    import jax

    import polylin

    X = np.random.default_rng(7).normal(size=(331, 5)).astype(dtype)
    y = X @ np.arange(5.0) + 1.0
    with caplog.at_level(logging.DEBUG, logger="jax"), jax.log_compiles(True):
        first = polylin.fit(X, y, backend=backend, dtype=dtype, epochs=3, batch_size=9)
        again = polylin.fit(X, y, backend=backend, dtype=dtype, epochs=3, batch_size=9)
    compiles = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling")]
    assert len([m for m in compiles if "one_epoch" in m]) == 1, compiles
    assert first.w.tobytes() == again.w.tobytes()
    assert isinstance(
        get_backend(backend, dtype=dtype).parameters(np.zeros(5), np.zeros(1), trainable=True)[0], np.ndarray
    )


@pytest.mark.parametrize("backend", backend_params(("jax",)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_small_data_stays_on_the_host_for_the_compiled_epoch_and_trains_the_same(
    backend: str, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the default CPU device, data of at most ``host_data_max_bytes`` an array reaches the fused
    epoch as host arrays (jit reads them in place); larger data, per-step epochs and the data of a
    fit with the limit at 0 are moved. Every way gives the same bits."""
    import jax

    import polylin
    from polylin.backends.jax_backend import JaxBackend

    X = np.random.default_rng(3).normal(size=(257, 4))
    y = X @ np.arange(4.0) - 0.5
    be = get_backend(backend, dtype=dtype)
    with be.context():
        X_small, y_small = be.device_data(X, y)
        assert isinstance(X_small, np.ndarray) and isinstance(y_small, np.ndarray)
        assert X_small.dtype == be.np_dtype and X_small.flags.c_contiguous
        big = np.zeros((be.host_data_max_bytes // be.np_dtype.itemsize + 1,))
        assert all(isinstance(a, jax.Array) for a in be.device_data(big[:, None], big))
        stepwise = get_backend(backend, dtype=dtype, fused_epoch=False)
        assert all(isinstance(a, jax.Array) for a in stepwise.device_data(X, y))
    on_host = polylin.fit(X, y, backend=backend, dtype=dtype, epochs=2, batch_size=8)
    monkeypatch.setattr(JaxBackend, "host_data_max_bytes", 0)
    with be.context():
        assert all(isinstance(a, jax.Array) for a in be.device_data(X, y))
    moved = polylin.fit(X, y, backend=backend, dtype=dtype, epochs=2, batch_size=8)
    assert on_host.w.tobytes() == moved.w.tobytes() and on_host.b == moved.b
    np.testing.assert_array_equal(on_host.losses, moved.losses)
