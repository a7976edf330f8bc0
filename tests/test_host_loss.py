"""On a CPU, the full-data loss evaluated by NumPy in the framework's own memory (polylin.host_loss),
beside the next epoch where the backend's epochs leave a core free."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from conftest import backend_params

import polylin
from polylin.backends import backend_class, get_backend
from polylin.losses import get_loss
from polylin.objective import Objective

VIEWS = backend_params(("numpy", "jax", "torch", "mxnet"))  # array-api: no view (its namespace is X's)
#: Backends whose arrays a framework write can change in place (JAX's are immutable, NumPy's are the data).
MUTABLE = backend_params(("torch", "mxnet"))


def data(
    n: int = 403, d: int = 6, seed: int = 5, dtype: object = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    return X, (X @ np.linspace(-1.0, 2.0, d) + 0.3 + 0.01 * rng.normal(size=n)).astype(dtype)


@pytest.fixture
def host_loss_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each fit since evaluated its loss with NumPy (``True``) or in the framework."""
    from polylin import training

    calls: list[bool] = []
    original = training.host_loss

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(training, "host_loss", spy)
    return calls


@pytest.fixture
def from_any_size(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """The host loss for data of any size, so that small test data takes it."""
    monkeypatch.setattr(backend_class(backend), "host_loss_min_bytes", 0)


@pytest.mark.parametrize("backend", MUTABLE)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_host_view_is_the_frameworks_memory_read_only(backend: str, dtype: str) -> None:
    be = get_backend(backend, dtype=dtype)
    X, y = data(n=2000, dtype=dtype)
    with be.context():
        X_dev, _ = be.device_data(X, y)
        view = be.host_view(X_dev)
        assert not isinstance(X_dev, np.ndarray)  # the framework's array
        assert view is not None and view.dtype == be.np_dtype and not view.flags.writeable
        np.testing.assert_array_equal(view, X.astype(be.np_dtype))
        # A view, not a copy: a change to the framework's array shows through it.
        before = float(be.to_numpy(X_dev)[0, 0])
        X_dev[0, 0] = before + 1
        if backend == "mxnet":
            X_dev.wait_to_read()
        assert view[0, 0] == be.np_dtype.type(before + 1)


@pytest.mark.parametrize("backend", backend_params(("numpy", "jax")))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_host_view_of_numpy_and_jax_data_is_their_buffer_read_only(backend: str, dtype: str) -> None:
    """JAX's CPU buffer (which aliases a large aligned NumPy input) and the NumPy backend's own array,
    seen in place; the caller's array keeps its writeable flag."""
    be = get_backend(backend, dtype=dtype)
    X, y = data(n=60_000, dtype=dtype)  # over the size jax keeps on the host, so a device buffer
    with be.context():
        X_dev, _ = be.device_data(X, y)
        view = be.host_view(X_dev)
        assert view is not None and view.dtype == be.np_dtype and not view.flags.writeable
        np.testing.assert_array_equal(view, X)
        assert isinstance(X_dev, np.ndarray) is (backend == "numpy")
        pointer = X_dev.ctypes.data if backend == "numpy" else X_dev.unsafe_buffer_pointer()
        assert view.__array_interface__["data"][0] == pointer  # the buffer itself, not a copy
        assert X.flags.writeable and X_dev is not view
        small = np.ones((3, 2), dtype=be.np_dtype)  # a host array kept as it is: seen as it is
        small_view = be.host_view(small)
        assert small_view is not None and np.shares_memory(small_view, small) and small.flags.writeable


@pytest.mark.parametrize("backend", VIEWS)
@pytest.mark.parametrize("loss", ["squared", "huber", "absolute"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_the_host_loss_is_the_objectives_mean_on_numpy(
    backend: str, loss: str, fit_intercept: bool, from_any_size: None
) -> None:
    from polylin.host_loss import host_loss

    be = get_backend(backend)
    X, y = data(n=2000)
    with be.context():
        X_dev, y_dev = be.device_data(X, y)
        objective = Objective(be.xp, get_loss(loss), fit_intercept=fit_intercept)
        w, b = np.linspace(0.5, -0.5, 6).astype(np.float32), np.array([0.25], np.float32)
        evaluate = host_loss(be, objective, X_dev, y_dev)
        assert evaluate is not None
        in_framework = float(be.to_numpy(objective.mean(be.parameters(w, b, trainable=False), X_dev, y_dev)))
        on_host = evaluate(w, b)
    assert isinstance(on_host, float)
    assert on_host == pytest.approx(in_framework, rel=1e-5)
    assert np.isnan(evaluate(np.full(6, np.inf, np.float32), b))


#: Each backend's threshold: NumPy's and JAX's host loss gains only beside the next epoch.
THRESHOLDS = {"numpy": "BESIDE_MIN_BYTES", "jax": "BESIDE_MIN_BYTES", "torch": "HOST_LOSS_MIN_BYTES"}


@pytest.mark.parametrize("backend", VIEWS)
def test_the_host_loss_applies_only_to_large_data_with_views(backend: str) -> None:
    import polylin.host_loss
    from polylin.host_loss import host_loss

    threshold = getattr(polylin.host_loss, THRESHOLDS.get(backend, "HOST_LOSS_MIN_BYTES"))
    assert backend_class(backend).host_loss_min_bytes == threshold
    be = get_backend(backend)
    X, y = data(n=2000)
    objective = Objective(be.xp, get_loss("squared"))
    with be.context():
        X_dev, y_dev = be.device_data(X, y)
        be.host_loss_min_bytes = X.nbytes
        assert host_loss(be, objective, X_dev, y_dev) is not None  # from the threshold on
        be.host_loss_min_bytes = X.nbytes + 1
        assert host_loss(be, objective, X_dev, y_dev) is None  # below it
        be.host_loss_min_bytes = 0
        off = get_backend(backend, host_loss=False)
        off.host_loss_min_bytes = 0
        assert host_loss(off, objective, X_dev, y_dev) is None  # the option
    # array-api: X's namespace may be anything (dask, CuPy): no view, its own loss, as before
    assert get_backend("array-api").host_view(X) is None


@pytest.mark.parametrize("backend", backend_params(("jax",)))
def test_jax_evaluates_the_loss_with_numpy(
    backend: str, host_loss_calls: list[bool], from_any_size: None
) -> None:
    be = get_backend(backend)
    X, y = data(n=60_000, d=20)  # 4.6 MiB: a device buffer (the threshold is the next test's)
    with be.context():
        X_dev, _ = be.device_data(X, y)
        assert be.host_view(X_dev) is not None
        assert be.host_view(np.ones(3)) is not None  # small data kept on the host is seen in place too
    polylin.fit(X, y, backend=backend, epochs=1, batch_size=4096, lr=0.01)
    assert host_loss_calls == [True]


@pytest.mark.parametrize("backend", backend_params(("torch",)))
def test_no_view_of_a_tensor_that_records_gradients_or_of_the_workers(backend: str) -> None:
    import torch

    be = get_backend(backend)
    assert be.host_view(torch.ones(3, requires_grad=True)) is None
    from polylin.backends.torch_distributed import DistributedTorchBackend

    assert DistributedTorchBackend.host_view is not type(be).host_view  # the ranks split their loss


def _fit(X: np.ndarray, y: np.ndarray, backend: str, *, host: bool, **options: Any) -> polylin.FitResult:
    backend_options = {**options.pop("backend_options", {}), "host_loss": host}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return polylin.fit(X, y, backend=backend, backend_options=backend_options, **options)


OPTIONS = [
    {},
    {"loss": "huber", "fit_intercept": False},
    {"loss": "absolute", "loss_every": 2},
    {"dtype": "float64"},
]
OPTION_IDS = ["squared", "huber-no-intercept", "absolute-loss-every-2", "float64"]


#: Each backend with each gradient it has (NumPy: the analytic one only).
BACKEND_GRADS = [
    pytest.param(case.values[0], grad, id=f"{case.id}-{grad}", marks=case.marks)
    for case in VIEWS
    for grad in ("autodiff", "analytic")
    if grad == "analytic" or case.values[0] != "numpy"
]


@pytest.mark.parametrize(("backend", "grad"), BACKEND_GRADS)
@pytest.mark.parametrize("options", OPTIONS, ids=OPTION_IDS)
def test_fits_with_the_loss_on_the_host_train_the_same(
    backend: str, grad: str, options: dict[str, Any], host_loss_calls: list[bool], from_any_size: None
) -> None:
    """The parameters are bit for bit those of the fit whose framework evaluates the loss, and the
    losses agree to rounding (NaN where ``loss_every`` skips one, in both)."""
    X, y = data()
    common = dict(options, grad=grad, epochs=3, batch_size=16, lr=0.05)
    on_host = _fit(X, y, backend, host=True, **common)
    assert host_loss_calls == [True]
    in_framework = _fit(X, y, backend, host=False, **common)
    assert host_loss_calls == [True, False]  # host_loss=False: the framework's loss
    assert on_host.w.tobytes() == in_framework.w.tobytes() and on_host.b == in_framework.b
    np.testing.assert_array_equal(np.isnan(on_host.losses), np.isnan(in_framework.losses))
    np.testing.assert_allclose(on_host.losses, in_framework.losses, rtol=1e-5)
    assert on_host.final_loss == pytest.approx(in_framework.final_loss, rel=1e-5)


@pytest.mark.parametrize("backend", VIEWS)
def test_a_loop_that_observes_every_step_takes_it_too(
    backend: str, host_loss_calls: list[bool], from_any_size: None
) -> None:
    from polylin.training import train

    X, y = data()
    runs, steps = [], []
    for host in (True, False):
        be = get_backend(backend, host_loss=host)
        with be.context():
            X_dev, y_dev = be.device_data(X, y)
            objective = Objective(be.xp, get_loss("squared"))
            run = train(
                be, objective, X_dev, y_dev, np.zeros(6), np.zeros(1), lr=0.05, batch_size=32,
                epochs=2, seed=0, on_step=lambda k, params: steps.append(k),
                grad="autodiff" if be.has_autodiff else "analytic",
            )  # fmt: skip
            runs.append(run)
    assert host_loss_calls == [True, False] and len(steps) == 2 * 2 * 13  # each step seen
    assert runs[0].w.tobytes() == runs[1].w.tobytes()
    np.testing.assert_allclose(runs[0].losses, runs[1].losses, rtol=1e-5)


@pytest.mark.parametrize("backend", VIEWS)
def test_a_divergence_is_caught_at_the_same_step_with_the_loss_on_the_host(
    backend: str, host_loss_calls: list[bool], from_any_size: None
) -> None:
    X, y = data()
    X[:, 0] *= 1e3  # lr 0.5 on this scale overflows within the first epochs
    common = dict(epochs=4, batch_size=16, lr=0.5, check_stability=False, on_divergence="stop")
    on_host, in_framework = (
        _fit(X, y, backend, host=True, **common),
        _fit(X, y, backend, host=False, **common),
    )
    assert host_loss_calls == [True, False]
    assert on_host.diverged_at is not None and on_host.diverged_at == in_framework.diverged_at
    assert on_host.w.tobytes() == in_framework.w.tobytes()
    np.testing.assert_allclose(on_host.losses, in_framework.losses, rtol=1e-5)


@pytest.mark.parametrize("backend", backend_params(("torch", "jax")))
def test_by_default_only_data_from_the_threshold_up_takes_the_host_path(
    backend: str, host_loss_calls: list[bool]
) -> None:
    d = 32
    X, y = data(n=backend_class(backend).host_loss_min_bytes // (4 * d), d=d)
    _fit(X, y, backend, host=True, epochs=1, batch_size=4096, lr=0.01)
    assert host_loss_calls == [True]  # exactly the threshold
    _fit(X[:-1], y[:-1], backend, host=True, epochs=1, batch_size=4096, lr=0.01)
    assert host_loss_calls == [True, False]  # one row below it


def test_an_option_a_backend_does_not_take_is_refused_with_the_ones_it_does() -> None:
    X, y = data(n=50)
    with pytest.raises(
        ValueError, match=r"\['fused_epoch'\] are not options of the numpy backend; it takes \['host_loss'\]"
    ):
        polylin.fit(X, y, backend="numpy", backend_options={"fused_epoch": False})
    with pytest.raises(ValueError, match=r"\['host_loss'\] are not options of the array-api backend"):
        polylin.fit(X, y, backend="array-api", backend_options={"host_loss": False})

    from polylin.api import _checked_backend_options
    from polylin.backends.numpy_backend import NumpyBackend

    class Plain(NumpyBackend):  # a backend whose constructor takes no options
        def __init__(self, dtype: object = "float32", device: object = None) -> None:
            super().__init__(dtype, device)

    with pytest.raises(
        ValueError, match=r"\['host_loss'\] are not options of the numpy backend; it takes none"
    ):
        _checked_backend_options(Plain, {"host_loss": False})


@pytest.mark.parametrize("backend", backend_params(("jax",)))
def test_jax_names_the_options_it_takes(backend: str) -> None:
    X, y = data(n=50)
    with pytest.raises(
        ValueError,
        match=r"\['bogus'\] are not options of the jax backend; it takes \['fused_epoch', 'host_loss'\]",
    ):
        polylin.fit(X, y, backend=backend, backend_options={"bogus": False})
