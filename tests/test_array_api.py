"""Array API inputs: the array-api backend on array-api-strict and dask, "auto", outputs that follow X."""

from __future__ import annotations

import warnings
from typing import Any

import array_api_strict as xps
import dask.array as da
import numpy as np
import pytest
from conftest import IMPORT_PROBLEMS

import polylin
from polylin.backends import backend_for, get_backend, resolve_backend
from polylin.backends.array_api_backend import ArrayApiBackend, FollowArguments, device_of, namespace_of
from polylin.estimator import SGDLinearRegressor
from polylin.tolerances import tolerance_for

STRICT_CPU = xps.Device("CPU_DEVICE")
STRICT_OTHER = xps.Device("device1")


def needs(framework: str) -> Any:
    return pytest.mark.skipif(framework in IMPORT_PROBLEMS, reason=IMPORT_PROBLEMS.get(framework, ""))


def as_strict(a: np.ndarray, device: Any = STRICT_CPU) -> Any:
    return xps.asarray(a, device=device)


def as_dask(a: np.ndarray, rows: int = 128) -> Any:
    return da.from_array(a, chunks=(rows, *a.shape[1:]))


CONVERTERS = {"array_api_strict": as_strict, "dask": as_dask}
CASES = [
    pytest.param(loss, batch_size, shuffle, intercept,
                 id=f"{loss}-b{batch_size}-{'shuf' if shuffle else 'order'}{'' if intercept else '-origin'}")
    for loss, batch_size, shuffle, intercept in [
        ("squared", 10, True, True), ("squared", 7, True, True), ("absolute", 10, False, True),
        ("huber", 7, True, True), ("squared", 10, True, False),
    ]
]  # fmt: skip


# -- the fit agrees with the NumPy backend ------------------------------------------------------
@pytest.mark.parametrize("library", sorted(CONVERTERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("loss", "batch_size", "shuffle", "fit_intercept"), CASES)
def test_fit_agrees_with_numpy(
    library: str, dtype: str, loss: str, batch_size: int, shuffle: bool, fit_intercept: bool
) -> None:
    X, y = polylin.synthetic_data(n=500, seed=2, dtype=dtype)
    options = dict(lr=0.03, batch_size=batch_size, epochs=3, seed=4, dtype=dtype, loss=loss,
                   shuffle=shuffle, fit_intercept=fit_intercept)  # fmt: skip
    reference = polylin.fit(X, y, backend="numpy", **options)
    convert = CONVERTERS[library]
    result = polylin.fit(convert(X), convert(y), backend="array-api", **options)
    assert result.backend == "array-api"
    assert result.backend_version.endswith("(dask.array)" if library == "dask" else "(array_api_strict)")
    tol = tolerance_for(dtype)
    assert tol.params_close(result.w, reference.w), (result.w, reference.w)
    assert tol.params_close(np.array([result.b]), np.array([reference.b]))
    assert tol.losses_close(result.losses, reference.losses), (result.losses, reference.losses)
    assert tol.losses_close(np.array([result.initial_loss]), np.array([reference.initial_loss]))


@pytest.mark.parametrize("block_bytes", [1, 80, 4000, 1 << 20])
def test_dask_blocks_of_any_size_give_the_same_fit(block_bytes: int) -> None:
    """However the epoch is cut into in-memory blocks, the batches are the eager run's."""
    X, y = polylin.synthetic_data(n=333, seed=5)
    reference = polylin.fit(X, y, backend="numpy", batch_size=7, seed=1)
    result = polylin.fit(
        as_dask(X, rows=50), as_dask(y, rows=50), backend="array-api", batch_size=7, seed=1,
        backend_options={"block_bytes": block_bytes},
    )  # fmt: skip
    np.testing.assert_array_equal(result.w, reference.w)
    assert result.b == reference.b
    assert tolerance_for("float32").losses_close(result.losses, reference.losses)


def test_dask_block_rows_are_whole_batches_within_the_budget() -> None:
    be = ArrayApiBackend(namespace="dask.array")
    from polylin.batching import BatchLayout

    layout = BatchLayout(10_000, 7)
    rows = be.block_rows(layout, n_features=4)  # 16 bytes a row (float32), 64 MiB budget
    assert rows % 7 == 0 and rows * 16 <= be.block_bytes
    assert ArrayApiBackend(namespace="dask.array", block_bytes=1).block_rows(layout, 4) == 7
    assert be.lazy and not ArrayApiBackend(namespace="array_api_strict").lazy


def test_dask_data_stays_lazy_until_the_fit_reads_it() -> None:
    """Validation and training read the dask array through dask: no full host copy is handed in."""
    X, y = polylin.synthetic_data(n=400, seed=0)
    be = ArrayApiBackend(like=as_dask(X))
    X_checked, y_checked = be.training_data(as_dask(X), as_dask(y))
    assert isinstance(X_checked.array, da.Array) and isinstance(y_checked.array, da.Array)
    rows = X_checked[np.array([3, 1, 399])]
    np.testing.assert_array_equal(rows, X[[3, 1, 399]])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_dask_divergence_is_located() -> None:
    X, y = polylin.synthetic_data(n=200, seed=0)
    kwargs = dict(lr=40.0, batch_size=10, seed=0, check_stability=False)
    with pytest.raises(polylin.DivergenceError) as numpy_error:
        polylin.fit(X, y, backend="numpy", **kwargs)
    with pytest.raises(polylin.DivergenceError) as dask_error:
        polylin.fit(as_dask(X), as_dask(y), backend="array-api", **kwargs)
    assert (dask_error.value.epoch, dask_error.value.step) == (
        numpy_error.value.epoch,
        numpy_error.value.step,
    )


# -- choosing the backend -------------------------------------------------------------------
def test_auto_picks_the_backend_of_x() -> None:
    X = np.zeros((3, 2))
    assert backend_for(None) == "numpy"
    assert backend_for(X) == "numpy"
    assert backend_for(X.tolist()) == "numpy"
    assert backend_for(as_strict(X)) == "array-api"
    assert backend_for(as_dask(X)) == "array-api"
    backend, options = resolve_backend("auto", as_strict(X))
    assert backend == "array-api" and options["like"] is not None
    assert resolve_backend("array-api", X, {"namespace": "dask.array"}) == (
        "array-api",
        {"namespace": "dask.array"},
    )
    assert resolve_backend("torch", X) == ("torch", {})


def test_framework_of_tells_plain_numpy_arrays_from_their_relatives(tmp_path: Any) -> None:
    from polylin.frameworks import framework_of

    np.save(tmp_path / "X.npy", np.zeros((3, 2)))
    assert framework_of(np.zeros((3, 2), dtype=np.float32)) == "numpy"
    assert framework_of(np.load(tmp_path / "X.npy", mmap_mode="r")) == "numpy"  # a subclass
    assert framework_of(np.zeros(3, dtype=[("a", "f4")])) == "numpy"  # a void dtype
    assert framework_of(np.float32(1.0)) == "numpy"
    assert framework_of([[1.0, 2.0]]) is None
    assert framework_of(as_dask(np.zeros((3, 2)))) == "dask"


@pytest.mark.parametrize(("framework", "make"), [
    pytest.param("torch", lambda a: __import__("torch").asarray(a), marks=needs("torch"), id="torch"),
    pytest.param("jax", lambda a: __import__("jax.numpy").numpy.asarray(a), marks=needs("jax"), id="jax"),
    pytest.param("mxnet", lambda a: __import__("mxnet").np.array(a), marks=needs("mxnet"), id="mxnet"),
])  # fmt: skip
def test_auto_sends_framework_arrays_to_their_backend(framework: str, make: Any) -> None:
    X, y = polylin.synthetic_data(n=100, seed=0)
    assert backend_for(make(X)) == framework
    result = polylin.fit(make(X), make(y), backend="auto", seed=0)
    assert result.backend == framework
    np.testing.assert_allclose(result.w, polylin.fit(X, y, backend=framework, seed=0).w)


def test_auto_on_strict_runs_in_its_namespace() -> None:
    X, y = polylin.synthetic_data(n=100, seed=0)
    result = polylin.fit(as_strict(X), as_strict(y), backend="auto")
    assert (result.backend, result.device) == ("array-api", "CPU_DEVICE")


def test_array_api_backend_without_data_uses_numpy_or_the_named_namespace() -> None:
    default = polylin.fit(backend="array-api")
    assert default.backend_version.endswith("(numpy)")
    strict = polylin.fit(backend="array-api", backend_options={"namespace": "array_api_strict"})
    assert strict.backend_version.endswith("(array_api_strict)")
    np.testing.assert_array_equal(default.w, strict.w)
    np.testing.assert_array_equal(default.w, polylin.fit(backend="numpy").w)


@needs("torch")
def test_array_api_backend_runs_on_torch_tensors() -> None:
    import torch

    X, y = polylin.synthetic_data(n=200, seed=0)
    result = polylin.fit(torch.asarray(X), torch.asarray(y), backend="array-api", seed=3)
    assert result.backend_version.endswith("(torch)")
    reference = polylin.fit(X, y, backend="numpy", seed=3)
    assert tolerance_for("float32").params_close(result.w, reference.w)


# -- devices ------------------------------------------------------------------------------------
def test_the_fit_follows_x_to_its_device() -> None:
    X, y = polylin.synthetic_data(n=100, seed=0)
    result = polylin.fit(as_strict(X, STRICT_OTHER), as_strict(y, STRICT_OTHER), backend="array-api")
    assert result.device == "device1"
    named = polylin.fit(
        backend="array-api", device="device1", backend_options={"namespace": "array_api_strict"}
    )
    assert named.device == "device1"
    cpu = polylin.fit(backend="array-api", device="cpu", backend_options={"namespace": "array_api_strict"})
    assert cpu.device == "CPU_DEVICE"


def test_a_device_the_namespace_lacks_is_a_clear_error() -> None:
    with pytest.raises(
        polylin.DeviceNotAvailableError, match=r"device='gpu:0'.*sees \['CPU_DEVICE', 'device1'"
    ):
        ArrayApiBackend(namespace="array_api_strict", device="gpu")
    with pytest.raises(ValueError, match="namespace='no_such_array_library' cannot be imported"):
        ArrayApiBackend(namespace="no_such_array_library")


# -- validation in the namespace --------------------------------------------------------------
def test_bad_strict_data_is_refused_before_training() -> None:
    X, y = polylin.synthetic_data(n=20, seed=0)
    bad = X.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains a non-finite value \(nan at index \(4, 1\)\)"):
        polylin.fit(as_strict(bad), as_strict(y), backend="array-api")
    with pytest.raises(ValueError, match="X must be 2-D"):
        polylin.fit(as_strict(X[:, 0]), as_strict(y), backend="array-api")
    with pytest.raises(ValueError, match="y has 19 values but X has 20 rows"):
        polylin.fit(as_strict(X), as_strict(y[:-1]), backend="array-api")
    with pytest.raises(TypeError, match="not numeric data"):
        polylin.fit(as_strict(X > 0), as_strict(y), backend="array-api")
    with pytest.warns(UserWarning, match="integer dtype"):
        polylin.fit(as_strict(np.round(X * 10).astype(np.int64)), as_strict(y), backend="array-api", lr=0.001)
    infinite = y.copy()
    infinite[7] = np.inf
    with pytest.raises(ValueError, match=r"y contains a non-finite value \(inf at index 7\)"):
        polylin.fit(as_dask(X), as_dask(infinite), backend="array-api")


def test_y_as_a_column_is_the_same_fit() -> None:
    X, y = polylin.synthetic_data(n=50, seed=0)
    flat = polylin.fit(as_strict(X), as_strict(y), backend="array-api")
    column = polylin.fit(as_strict(X), as_strict(y[:, None]), backend="array-api")
    np.testing.assert_array_equal(flat.w, column.w)


def test_the_callers_arrays_are_not_modified() -> None:
    X, y = polylin.synthetic_data(n=50, seed=0)
    Xs, ys = as_strict(X), as_strict(y)
    polylin.fit(Xs, ys, backend="array-api", dtype="float64")
    np.testing.assert_array_equal(np.from_dlpack(Xs), X)
    assert Xs.dtype == xps.float32


def test_follow_arguments_dispatches_per_call() -> None:
    xp = FollowArguments(namespace_of(as_dask(np.ones(3))))
    assert isinstance(xp.matmul(np.ones((2, 2)), np.ones(2)), np.ndarray)
    assert isinstance(xp.matmul(as_dask(np.ones((2, 2))), as_dask(np.ones(2))), da.Array)
    assert xp.float32 is namespace_of(as_dask(np.ones(3))).float32


# -- the estimator: everything follows X ---------------------------------------------------------
@pytest.mark.parametrize("library", sorted(CONVERTERS))
def test_estimator_outputs_live_in_the_namespace_of_x(library: str) -> None:
    X, y = polylin.synthetic_data(n=300, seed=1, dtype="float64")
    convert = CONVERTERS[library]
    Xa, ya = convert(X), convert(y)
    model = SGDLinearRegressor(random_state=0).fit(Xa, ya)
    reference = SGDLinearRegressor(random_state=0).fit(X, y)
    xp = namespace_of(Xa)
    for value in (model.coef_, model.intercept_, model.predict(Xa)):
        assert namespace_of(value) is xp
    assert model.coef_.shape == (2,) and model.intercept_.shape == ()
    assert model.fit_result_.backend == "array-api"
    tol = tolerance_for("float64")
    assert tol.params_close(np.asarray(model.coef_), reference.coef_)
    np.testing.assert_allclose(np.asarray(model.predict(Xa)), reference.predict(X), rtol=1e-9)
    assert abs(model.score(Xa, ya) - reference.score(X, y)) < 1e-9
    # NumPy input to a model fitted on other arrays gives NumPy output.
    assert isinstance(model.predict(X), np.ndarray)


def test_estimator_keeps_strict_arrays_on_their_device() -> None:
    X, y = polylin.synthetic_data(n=100, seed=1)
    Xs, ys = as_strict(X, STRICT_OTHER), as_strict(y, STRICT_OTHER)
    model = SGDLinearRegressor(random_state=0).fit(Xs, ys)
    assert model.coef_.device == STRICT_OTHER and model.intercept_.device == STRICT_OTHER
    assert model.predict(Xs).device == STRICT_OTHER
    assert model.coef_.dtype == xps.float32
    assert model.fit_result_.device == "device1"


def test_estimator_partial_fit_on_dask_chunks() -> None:
    """A stream of dask chunks: the same model as partial_fit on the NumPy chunks."""
    X, y = polylin.synthetic_data(n=300, seed=1)
    streamed = SGDLinearRegressor(random_state=2, lr=0.1, batch_size=5)
    reference = SGDLinearRegressor(random_state=2, lr=0.1, batch_size=5)
    for chunk in range(3):
        rows = slice(100 * chunk, 100 * (chunk + 1))
        streamed.partial_fit(as_dask(X[rows], rows=30), as_dask(y[rows], rows=30))
        reference.partial_fit(X[rows], y[rows])
    assert streamed.n_iter_ == 3 and isinstance(streamed.coef_, da.Array)
    np.testing.assert_array_equal(np.asarray(streamed.coef_), reference.coef_)
    assert streamed.score(as_dask(X), as_dask(y)) > 0.99


@needs("torch")
def test_estimator_on_torch_tensors_uses_torch_and_returns_tensors() -> None:
    import torch

    X, y = polylin.synthetic_data(n=200, seed=0)
    model = SGDLinearRegressor(random_state=0).fit(torch.asarray(X), torch.asarray(y))
    assert model.fit_result_.backend == "torch"
    assert isinstance(model.coef_, torch.Tensor) and model.coef_.device == torch.asarray(X).device
    prediction = model.predict(torch.asarray(X))
    assert isinstance(prediction, torch.Tensor) and prediction.dtype == torch.float32
    assert device_of(prediction) == device_of(torch.asarray(X))


@needs("jax")
def test_estimator_on_jax_arrays_uses_jax_and_returns_jax_arrays() -> None:
    import jax
    import jax.numpy as jnp

    X, y = polylin.synthetic_data(n=200, seed=0)
    model = SGDLinearRegressor(random_state=0).fit(jnp.asarray(X), jnp.asarray(y))
    assert model.fit_result_.backend == "jax"
    assert isinstance(model.coef_, jax.Array) and isinstance(model.predict(jnp.asarray(X)), jax.Array)


def test_strict_catches_nothing_non_standard_in_the_objective() -> None:
    """The shared objective and losses, run on array-api-strict, give NumPy's gradients."""
    from polylin.losses import LOSSES
    from polylin.objective import Objective

    X, y = polylin.synthetic_data(n=30, seed=0, dtype="float64")
    w, b = np.array([0.5, -1.0]), np.array([0.2])
    np_be = get_backend("numpy", dtype="float64")
    strict_be = ArrayApiBackend(dtype="float64", namespace="array_api_strict")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for loss in LOSSES.values():
            numpy_objective, strict_objective = Objective(np_be.xp, loss), Objective(strict_be.xp, loss)
            expected = numpy_objective.mean((w, b), X, y), numpy_objective.gradient((w, b), X, y)
            strict_args = (
                (strict_be.asarray(w), strict_be.asarray(b)),
                strict_be.asarray(X),
                strict_be.asarray(y),
            )
            got = strict_objective.mean(*strict_args), strict_objective.gradient(*strict_args)
            np.testing.assert_allclose(float(got[0]), float(expected[0]), rtol=1e-13)
            for g, e in zip(got[1], expected[1], strict=True):
                np.testing.assert_allclose(np.from_dlpack(g), e, rtol=1e-13)
