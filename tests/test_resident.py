"""Training data that already lives on the backend: validated there, trained on without a copy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import backend_params

import polylin
import polylin.backends
from polylin.backends import get_backend

FRAMEWORKS = ("jax", "torch", "mxnet")


def native(backend: str, host: np.ndarray) -> Any:
    """``host`` as the framework's own array (not through polylin), in its dtype, on the CPU."""
    if backend == "jax":
        import jax

        with polylin.backends.get_backend("jax", dtype=host.dtype.name).context():  # float64: x64 on
            return jax.device_put(host, jax.devices("cpu")[0])
    if backend == "torch":
        import torch

        return torch.from_numpy(host.copy())
    import mxnet as mx

    return mx.nd.array(host, dtype=host.dtype)


@pytest.mark.parametrize("backend", backend_params(FRAMEWORKS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_fit_on_device_arrays_moves_no_data_and_equals_the_host_fit(
    backend: str, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = polylin.synthetic_data([2.0, -3.4], 4.2, 500, seed=1, dtype=dtype)
    on_host = polylin.fit(X, y, backend=backend, dtype=dtype, batch_size=7)
    cls = type(get_backend(backend, dtype=dtype))
    moved: list[tuple[int, ...]] = []
    original = cls.asarray

    def spied(self: Any, host: Any) -> Any:
        if np.asarray(host).dtype.kind == "f":
            moved.append(np.shape(host))
        return original(self, host)

    monkeypatch.setattr(cls, "asarray", spied)
    X_dev, y_dev = native(backend, X), native(backend, y.reshape(-1, 1))  # y as a column too
    assert get_backend(backend, dtype=dtype).holds(X_dev)
    on_device = polylin.fit(X_dev, y_dev, backend=backend, dtype=dtype, batch_size=7)
    assert (500, 2) not in moved and (500,) not in moved and (500, 1) not in moved
    assert on_device.w.tobytes() == on_host.w.tobytes() and on_device.b == on_host.b
    np.testing.assert_array_equal(on_device.losses, on_host.losses)
    assert on_device.initial_loss == pytest.approx(on_host.initial_loss, rel=1e-6)
    assert on_device.config["data_fingerprint"] == on_host.config["data_fingerprint"]
    np.testing.assert_array_equal(native_to_numpy(backend, X_dev), X)  # the user's array is unchanged


def native_to_numpy(backend: str, x: Any) -> np.ndarray:
    return np.asarray(get_backend(backend).to_numpy(x))


@pytest.mark.parametrize("backend", backend_params(FRAMEWORKS))
@pytest.mark.parametrize(("where", "bad"), [("X", np.nan), ("X", -np.inf), ("y", np.inf)])
def test_a_bad_value_in_a_device_array_is_named_as_on_the_host(backend: str, where: str, bad: float) -> None:
    X, y = polylin.synthetic_data([2.0, -3.4], 4.2, 300, seed=2)
    if where == "X":
        X[123, 1] = bad
        position = "(123, 1)"
    else:
        y[45] = bad
        position = "45"
    with pytest.raises(ValueError, match="non-finite") as info:
        polylin.fit(native(backend, X), native(backend, y), backend=backend)
    assert f"{where} contains a non-finite value ({bad} at index {position})" in str(info.value)


@pytest.mark.parametrize("backend", backend_params(FRAMEWORKS))
def test_device_arrays_of_another_dtype_are_converted_as_host_data_is(backend: str) -> None:
    X, y = polylin.synthetic_data([2.0, -3.4], 4.2, 300, seed=3, dtype="float64")
    if backend == "jax":  # jax makes float64 arrays only with x64 on: use an int array instead
        X_dev, y_dev = native(backend, X.astype(np.float32)), native(backend, y.astype(np.float32))
        dtype = "float64"
    else:
        X_dev, y_dev, dtype = native(backend, X), native(backend, y), "float32"
    be = get_backend(backend, dtype=dtype)
    assert not be.holds(X_dev)
    result = polylin.fit(X_dev, y_dev, backend=backend, dtype=dtype)
    expected = polylin.fit(
        native_to_numpy(backend, X_dev), native_to_numpy(backend, y_dev), backend=backend, dtype=dtype
    )
    assert result.w.tobytes() == expected.w.tobytes()


def test_a_tensor_that_requires_grad_is_not_trained_on_in_place() -> None:
    torch = pytest.importorskip("torch")
    X = torch.zeros((10, 2), requires_grad=True)
    assert not get_backend("torch").holds(X)
