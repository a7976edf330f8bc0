"""SGDLinearRegressor: scikit-learn's checks, pipelines, grid search, clone, partial_fit, on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from conftest import IMPORT_PROBLEMS, backend_params
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import estimator_checks_generator

import polylin
from polylin.backends import get_backend
from polylin.estimator import EXPECTED_FAILED_CHECKS, SGDLinearRegressor
from polylin.losses import get_loss
from polylin.objective import Objective
from polylin.tolerances import tolerance_for
from polylin.training import train

BACKENDS = backend_params()
#: polylin.fit's defaults (the book's): 3 epochs at lr 0.03 in batches of 10.
BOOK_SETUP: dict[str, Any] = {"lr": 0.03, "batch_size": 10, "max_iter": 3, "tol": None}
# The Array API checks need SCIPY_ARRAY_API=1 before scipy is imported; they run in
# a fresh interpreter in test_sklearn_array_api_check below.
ARRAY_API_CHECKS = ("check_array_api_input",)


def _check_name(check: Any) -> str:
    func = getattr(check, "func", check)
    return str(getattr(func, "__name__", repr(func)))


def _sklearn_check_params() -> list[Any]:
    params = []
    for backend_param in BACKENDS:
        (name,) = backend_param.values  # type: ignore[attr-defined]
        if name in IMPORT_PROBLEMS:
            params.append(pytest.param(None, None, id=f"{name}-all-checks", marks=backend_param.marks))  # type: ignore[attr-defined]
            continue
        estimator = SGDLinearRegressor(backend=name)
        for est, check in estimator_checks_generator(
            estimator, legacy=True, expected_failed_checks=EXPECTED_FAILED_CHECKS, mark="xfail"
        ):
            if _check_name(check) in ARRAY_API_CHECKS:
                continue
            params.append(pytest.param(est, check, id=f"{name}-{_check_name(check)}"))
    return params


@pytest.mark.filterwarnings("ignore::polylin.StabilityWarning")
@pytest.mark.parametrize(("estimator", "check"), _sklearn_check_params())
def test_sklearn_check_estimator(estimator: SGDLinearRegressor, check: Any) -> None:
    check(estimator)


def test_every_expected_failure_has_a_reason() -> None:
    for name, reason in EXPECTED_FAILED_CHECKS.items():
        assert name.startswith("check_")
        assert len(reason) > 20


def _missing_device(library: str, device: object) -> str | None:
    """Why a namespace/device combination cannot run here, or None if it can."""
    if library == "torch":
        if "torch" in IMPORT_PROBLEMS:
            return IMPORT_PROBLEMS["torch"]
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            return "torch sees no CUDA GPU on this machine"
        if device == "mps" and not (
            torch.backends.mps.is_available() and os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK") == "1"
        ):
            return "no Apple MPS device (with PYTORCH_ENABLE_MPS_FALLBACK=1) on this machine"
    if library == "cupy":
        try:
            import cupy  # noqa: F401
        except ImportError:
            return "CuPy is not installed (it needs a CUDA GPU)"
    return None


def _array_api_combinations() -> list[Any]:
    from sklearn.utils._array_api import yield_namespace_device_dtype_combinations

    params = []
    for namespace, device, dtype in yield_namespace_device_dtype_combinations():
        label = f"{namespace}-{device}-{dtype}"
        marks: list[Any] = []
        top = namespace.split(".")[0]
        missing = _missing_device(top, device)
        if missing:
            marks.append(pytest.mark.skip(reason=f"{label}: {missing}"))
        device_name = None if device is None else str(getattr(device, "_device", device))
        params.append(pytest.param(namespace, device_name, dtype, id=label, marks=marks))
    return params


@pytest.mark.parametrize(("namespace", "device", "dtype"), _array_api_combinations())
def test_sklearn_array_api_check(namespace: str, device: str | None, dtype: str | None) -> None:
    """scikit-learn's Array API check, values included: fitted attributes and predictions
    in the input's namespace, on its device, equal to the NumPy fit's."""
    code = f"""
import warnings
warnings.simplefilter("ignore")
from sklearn.utils.estimator_checks import check_array_api_input_and_values
import polylin
namespace, device, dtype = {namespace!r}, {device!r}, {dtype!r}
if namespace == "array_api_strict" and device is not None:
    import array_api_strict
    device = array_api_strict.Device(device)
check_array_api_input_and_values(
    "SGDLinearRegressor", polylin.SGDLinearRegressor(random_state=0),
    array_namespace=namespace, device=device, dtype_name=dtype or "float64",
)
print("passed")
"""
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("passed")


# -- the estimator against polylin.fit ------------------------------------------------------
@pytest.fixture(scope="module")
def book_data() -> tuple[np.ndarray, np.ndarray]:
    return polylin.synthetic_data(seed=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_is_polylin_fit(backend: str, book_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book_data
    # The book's setup spelt out: the estimator's defaults are lr="auto", batch 32, max_iter/tol.
    model = SGDLinearRegressor(backend=backend, random_state=5, **BOOK_SETUP).fit(X, y)
    result = polylin.fit(X, y, backend=backend, seed=5)
    np.testing.assert_array_equal(model.coef_, result.w)
    assert float(model.intercept_) == np.float32(result.b)
    assert model.loss_curve_ == [float(v) for v in result.losses]
    assert model.n_iter_ == 3 and model.n_features_in_ == 2
    assert model.coef_.shape == (2,) and model.coef_.dtype == np.float32
    assert model.fit_result_.backend == backend
    assert model.score(X, y) > 0.999


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_fit_continues_with_the_next_epochs_order(
    backend: str, book_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = book_data
    stepwise = SGDLinearRegressor(backend=backend, random_state=1)
    for k in range(1, 4):
        stepwise.partial_fit(X, y)
        assert stepwise.n_iter_ == k and len(stepwise.loss_curve_) == k
    whole = SGDLinearRegressor(backend=backend, random_state=1, max_iter=3, tol=None).fit(X, y)
    tol = tolerance_for("float32")
    # Bitwise on a backend whose epoch is deterministic; JAX may fuse differently per call.
    assert tol.params_close(stepwise.coef_, whole.coef_)
    assert tol.losses_close(np.array(stepwise.loss_curve_), np.array(whole.loss_curve_))
    if backend in ("numpy", "array-api", "torch", "mxnet"):
        np.testing.assert_array_equal(stepwise.coef_, whole.coef_)


def test_partial_fit_on_new_chunks_continues_from_the_current_parameters() -> None:
    X1, y1 = polylin.synthetic_data(n=400, seed=1, dtype="float64")
    X2, y2 = polylin.synthetic_data(n=300, seed=2, dtype="float64")
    model = SGDLinearRegressor(backend="numpy", random_state=7, lr=0.03, batch_size=10).partial_fit(X1, y1)
    after_first = (np.array(model.coef_), np.array([float(model.intercept_)]))
    model.partial_fit(X2, y2)
    # The same epoch by hand: the shared loop from the first call's parameters, epoch index 1.
    be = get_backend("numpy", dtype="float64")
    expected = train(
        be, Objective(be.xp, get_loss("squared")), X2, y2, *after_first,
        lr=0.03, batch_size=10, epochs=2, seed=7, grad="analytic", start_epoch=1,
    )  # fmt: skip
    np.testing.assert_array_equal(model.coef_, expected.w)
    assert float(model.intercept_) == float(expected.b[0])
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    with pytest.raises(ValueError, match="X has 1 features, but SGDLinearRegressor is expecting 2"):
        model.partial_fit(X2[:, :1], y2)


def test_partial_fit_follows_set_params_between_calls() -> None:
    X, y = polylin.synthetic_data(n=200, seed=4)
    model = SGDLinearRegressor(random_state=0).partial_fit(X, y)
    model.set_params(lr=0.01, batch_size=25)
    model.partial_fit(X, y)
    assert model.fit_result_.config["lr"] == 0.01
    assert model.batch_size_ == 25 and model.n_iter_ == 2


# -- scikit-learn machinery, on every backend -------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_pipeline_with_standard_scaler(backend: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[50.0, -20.0, 3.0], scale=[10.0, 0.5, 4.0], size=(400, 3))
    y = X @ np.array([0.3, 4.0, -1.0]) + 2.0 + rng.normal(0, 0.01, 400)
    pipe = make_pipeline(
        StandardScaler(), SGDLinearRegressor(backend=backend, max_iter=20, tol=None, random_state=0)
    )
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.999
    scaler, model = pipe[0], pipe[-1]
    manual = scaler.transform(X) @ np.asarray(model.coef_, np.float64) + float(model.intercept_)
    np.testing.assert_allclose(pipe.predict(X), manual, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grid_search(backend: str, book_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book_data
    search = GridSearchCV(
        SGDLinearRegressor(backend=backend, random_state=0, max_iter=3, tol=None),
        {"lr": [0.0003, 0.03], "batch_size": [10, 50]},
        cv=3,
    )
    search.fit(X, y)
    assert search.best_params_ == {"lr": 0.03, "batch_size": 10}
    assert search.best_score_ > 0.999
    assert search.best_estimator_.fit_result_.backend == backend
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_clone_copies_parameters_not_the_fit(backend: str, book_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book_data
    model = SGDLinearRegressor(backend=backend, lr=0.02, max_iter=2, tol=None, random_state=3).fit(X, y)
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    assert not hasattr(twin, "coef_")
    with pytest.raises(NotFittedError):
        twin.predict(X)
    np.testing.assert_array_equal(twin.fit(X, y).coef_, model.coef_)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ohms_law_through_the_origin(backend: str) -> None:
    """V = I R: with fit_intercept=False the line goes through the origin, b stays exactly 0."""
    rng = np.random.default_rng(42)
    current = rng.uniform(0.0, 10.0, size=(200, 1))  # amperes
    resistance = 4.7  # ohms
    voltage = resistance * current[:, 0] + rng.normal(0.0, 0.05, 200)
    model = SGDLinearRegressor(
        backend=backend, fit_intercept=False, lr=0.01, batch_size=10, max_iter=30, tol=None,
        dtype="float64", random_state=0,
    ).fit(current, voltage)  # fmt: skip
    assert float(model.intercept_) == 0.0
    assert abs(float(model.coef_[0]) - resistance) < 0.01
    np.testing.assert_allclose(model.predict(np.array([[0.0], [2.0]])), [0.0, 2.0 * float(model.coef_[0])])


# -- conventions ------------------------------------------------------------------------------------
def test_init_does_no_validation_and_fit_does() -> None:
    model = SGDLinearRegressor(lr=-1.0, batch_size=0, loss="nope", backend="tensorflow")
    assert model.get_params()["lr"] == -1.0
    X, y = polylin.synthetic_data(n=50)
    with pytest.raises(ValueError, match=r"lr=-1\.0 must be"):
        model.set_params(batch_size=10, loss="squared", backend="numpy").fit(X, y)
    with pytest.raises(ValueError, match="batch_size=0 must be"):
        SGDLinearRegressor(batch_size=0).fit(X, y)
    with pytest.raises(ValueError, match="not a known loss"):
        SGDLinearRegressor(loss="nope").fit(X, y)
    with pytest.raises(ValueError, match="not a known backend"):
        SGDLinearRegressor(backend="tensorflow").fit(X, y)


def test_not_fitted_before_fit() -> None:
    X, y = polylin.synthetic_data(n=20)
    for method in ("predict", "score"):
        with pytest.raises(NotFittedError):
            getattr(SGDLinearRegressor(), method)(*((X,) if method == "predict" else (X, y)))


def test_batch_size_larger_than_n_is_full_batch() -> None:
    X, y = polylin.synthetic_data(n=7)
    model = SGDLinearRegressor(**{**BOOK_SETUP, "batch_size": 100}, random_state=0).fit(X, y)
    assert model.batch_size_ == 7
    reference = polylin.fit(X, y, batch_size=7, seed=0)
    np.testing.assert_array_equal(model.coef_, reference.w)


@pytest.mark.parametrize(("data_dtype", "param", "expected"), [
    ("float32", None, np.float32), ("float64", None, np.float64), ("int64", None, np.float64),
    ("float64", "float32", np.float32), ("float32", "float64", np.float64),
])  # fmt: skip
def test_dtype_follows_x_unless_given(data_dtype: str, param: str | None, expected: type) -> None:
    X, y = polylin.synthetic_data(n=60, dtype="float64")
    X = (X * 10).astype(data_dtype)
    model = SGDLinearRegressor(dtype=param, lr=0.001, max_iter=3, tol=None, random_state=0).fit(X, y)
    assert model.coef_.dtype == expected
    assert model.predict(X).dtype == expected
    assert model.fit_result_.dtype == np.dtype(expected).name


def test_random_state_int_is_deterministic_none_is_not() -> None:
    X, y = polylin.synthetic_data(n=100)
    a = SGDLinearRegressor(random_state=11).fit(X, y)
    b = SGDLinearRegressor(random_state=11).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.seed_ == 11
    seeds = {SGDLinearRegressor(max_iter=1, tol=None).fit(X, y).seed_ for _ in range(3)}
    assert len(seeds) == 3
    state = np.random.RandomState(0)
    assert SGDLinearRegressor(random_state=state).fit(X, y).seed_ == np.random.RandomState(0).randint(
        2**31 - 1
    )


def test_loss_curve_is_the_epoch_history() -> None:
    X, y = polylin.synthetic_data()
    model = SGDLinearRegressor(max_iter=5, tol=None, random_state=0).fit(X, y)
    assert len(model.loss_curve_) == model.n_iter_ == 5
    assert model.loss_curve_[-1] < model.loss_curve_[0] < model.fit_result_.initial_loss


def test_divergence_raises_the_polylin_error() -> None:
    X, y = polylin.synthetic_data(n=100)
    with pytest.raises(polylin.DivergenceError, match="epoch"), pytest.warns(polylin.StabilityWarning):
        SGDLinearRegressor(lr=50.0, random_state=0).fit(X * 100, y)


def test_estimator_is_exported_lazily() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import json, sys, polylin; before = 'sklearn' in sys.modules; "
         "cls = polylin.SGDLinearRegressor; "
         "print(json.dumps([before, 'sklearn' in sys.modules, cls.__name__]))"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == [False, True, "SGDLinearRegressor"]


@pytest.mark.parametrize("backend", backend_params(["mxnet"]))
def test_mxnet_arrays_are_converted_by_their_backend(backend: str) -> None:
    """NumPy cannot read an mxnet array itself; the estimator converts it through its backend."""
    import mxnet

    X, y = polylin.synthetic_data(n=200, seed=2)
    from_mxnet = polylin.SGDLinearRegressor(random_state=0).fit(mxnet.np.array(X), mxnet.np.array(y))
    from_numpy = polylin.SGDLinearRegressor(random_state=0).fit(X, y)
    # backend="auto" trains the mxnet arrays on the mxnet backend: equal to NumPy's up to the
    # rounding the parity matrix allows (MXNet's and NumPy's dot products round differently).
    assert from_mxnet.fit_result_.backend == "mxnet" and from_numpy.fit_result_.backend == "numpy"
    assert tolerance_for("float32").params_close(
        np.append(from_mxnet.coef_, from_mxnet.intercept_), np.append(from_numpy.coef_, from_numpy.intercept_)
    )
