"""Bad input: a clear error naming the argument, the problem and the fix, raised before any training.

Every case runs on every backend. ``polylin.api.train`` is replaced by a
function that fails the test, so an error raised after training started
cannot pass. The arrays passed are NumPy arrays or, where it matters, the
backend's own arrays.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import IMPORT_PROBLEMS, backend_params

import polylin
import polylin.api
from polylin.backends import BACKENDS as BACKENDS_REGISTRY
from polylin.backends import KNOWN_BACKENDS, get_backend

BACKENDS = backend_params()
# The array-api backend validates arrays of its own namespace (which, with ``like=X``, includes
# NumPy arrays) in its own code, with its own wording: the tests of error messages and data
# conversions below cover the backends whose data goes through polylin.validation. Options,
# the y (n, 1) / (n,) equivalence and the immutability of inputs are tested on every backend.
HOST_VALIDATED = backend_params([name for name in KNOWN_BACKENDS if name != "array-api"])
N = 50


# -- helpers shared with the other reliability tests ---------------------------------
def native(backend: str, host: np.ndarray) -> Any:
    """``host`` as the backend's own array type, keeping its dtype (NumPy for ``"numpy"``)."""
    if backend == "numpy":
        return np.array(host, copy=True)
    if backend == "torch":
        import torch

        return torch.as_tensor(np.array(host, copy=True))
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.asarray(host)
    if backend == "mxnet":
        import mxnet

        return mxnet.np.array(host, dtype=host.dtype)
    if backend == "array-api":  # array-api-strict: an Array API library with no extras
        import array_api_strict

        return array_api_strict.asarray(np.array(host, copy=True))
    raise AssertionError(f"no native arrays known for backend {backend!r}")


def to_host(x: Any) -> np.ndarray:
    """A NumPy copy of any framework's array."""
    if hasattr(x, "asnumpy"):
        return np.array(x.asnumpy())
    if hasattr(x, "detach"):
        return np.array(x.detach().cpu().numpy())
    if isinstance(x, np.ndarray):
        return np.array(x, copy=True)
    return np.array(np.from_dlpack(x), copy=True)


def book_data(n: int = N, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    return polylin.synthetic_data(n=n, seed=seed)


def installed_framework_other_than(backend: str) -> str:
    """A framework other than the backend's own whose arrays can be made here; skips if none."""
    for name in ("torch", "jax", "mxnet", "numpy"):
        if name != backend and (name == "numpy" or name not in IMPORT_PROBLEMS):
            return name
    pytest.skip("needs the arrays of a second framework (torch, jax or mxnet), and none is installed")


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the training loop is ever entered."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started before the bad input was reported")

    monkeypatch.setattr(polylin.api, "train", refuse)


def expect_error(call: Callable[[], object], error: type[BaseException], *fragments: str) -> BaseException:
    """``call()`` raises ``error`` and its message holds every fragment (literal text)."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return info.value


# -- shapes ------------------------------------------------------------------------------
@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", HOST_VALIDATED)
@pytest.mark.parametrize("own_arrays", [False, True], ids=["numpy-arrays", "backend-arrays"])
class TestShapes:
    def data(self, backend: str, own_arrays: bool, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        return (native(backend, X), native(backend, y)) if own_arrays else (X, y)

    def test_x_one_dimensional(self, backend: str, own_arrays: bool) -> None:
        X, y = book_data()
        Xb, yb = self.data(backend, own_arrays, X[:, 0], y)
        expect_error(
            lambda: polylin.fit(Xb, yb, backend=backend),
            ValueError,
            "X must be 2-D with shape (n_examples, n_features); got shape (50,)",
            "X.reshape(-1, 1)",
        )

    def test_x_three_dimensional(self, backend: str, own_arrays: bool) -> None:
        X, y = book_data()
        Xb, yb = self.data(backend, own_arrays, X.reshape(N, 2, 1), y)
        expect_error(
            lambda: polylin.fit(Xb, yb, backend=backend),
            ValueError,
            "X must be 2-D",
            "got shape (50, 2, 1)",
            "Flatten the features",
        )

    def test_y_wrong_length(self, backend: str, own_arrays: bool) -> None:
        X, y = book_data()
        Xb, yb = self.data(backend, own_arrays, X, y[:-1])
        expect_error(
            lambda: polylin.fit(Xb, yb, backend=backend),
            ValueError,
            "y has 49 values but X has 50 rows",
            "one target per row of X",
        )

    def test_y_with_two_columns(self, backend: str, own_arrays: bool) -> None:
        X, y = book_data()
        Xb, yb = self.data(backend, own_arrays, X, np.stack([y, y], axis=1))
        expect_error(
            lambda: polylin.fit(Xb, yb, backend=backend),
            ValueError,
            "y must have shape (n,) or (n, 1); got shape (50, 2)",
            "pass one column of y at a time",
        )

    def test_zero_rows(self, backend: str, own_arrays: bool) -> None:
        Xb, yb = self.data(backend, own_arrays, np.zeros((0, 2), np.float32), np.zeros(0, np.float32))
        expect_error(
            lambda: polylin.fit(Xb, yb, backend=backend),
            ValueError,
            "X has shape (0, 2), with no examples",
            "pass at least one example (row) and one feature (column)",
        )

    def test_zero_features(self, backend: str, own_arrays: bool) -> None:
        Xb, yb = self.data(backend, own_arrays, np.zeros((N, 0), np.float32), np.zeros(N, np.float32))
        expect_error(
            lambda: polylin.fit(Xb, yb, backend=backend),
            ValueError,
            "X has shape (50, 0), with no features",
            "at least one example (row) and one feature (column)",
        )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("own_arrays", [False, True], ids=["numpy-arrays", "backend-arrays"])
def test_y_column_and_flat_y_are_the_same_fit(backend: str, own_arrays: bool) -> None:
    X, y = book_data()
    make = (lambda a: native(backend, a)) if own_arrays else (lambda a: a)
    flat = polylin.fit(make(X), make(y), backend=backend, epochs=4, batch_size=7, lr=0.2)
    column = polylin.fit(make(X), make(y.reshape(-1, 1)), backend=backend, epochs=4, batch_size=7, lr=0.2)
    assert flat.w.tobytes() == column.w.tobytes()
    assert flat.b == column.b
    assert flat.losses.tobytes() == column.losses.tobytes()
    assert flat.final_loss < 1e-2  # and it is a real fit, not a broadcast (n, n) residual


# -- values --------------------------------------------------------------------------------
@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", HOST_VALIDATED)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where", ["X", "y"])
def test_non_finite_values(backend: str, bad: float, where: str) -> None:
    X, y = book_data()
    if where == "X":
        X[7, 1] = bad
        position = "(7, 1)"
    else:
        y[12] = bad
        position = "12"
    expect_error(
        lambda: polylin.fit(X, y, backend=backend),
        ValueError,
        f"{where} contains a non-finite value ({bad} at index {position})",
        "remove or impute NaN and inf before fitting",
    )


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", HOST_VALIDATED)
def test_value_beyond_float32_range(backend: str) -> None:
    X, y = book_data()
    X64 = X.astype(np.float64)
    X64[4, 0] = 1e300  # finite in float64, inf once converted to the training dtype
    expect_error(
        lambda: polylin.fit(X64, y, backend=backend, dtype="float32"),
        ValueError,
        "X holds 1e+300 (at index (4, 0)), beyond the largest float32 (3.403e+38)",
        "pass dtype='float64', or rescale X",
    )


# -- types -----------------------------------------------------------------------------
@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", HOST_VALIDATED)
@pytest.mark.parametrize(
    ("make_X", "fragments"),
    [
        (
            lambda X: X.astype(str),
            ["X has dtype <U", "which is not numeric data", "pass real numbers (float32 or float64)"],
        ),
        (
            lambda X: np.array([*X.astype(object)[:-1], [1.5, "a"]], dtype=object),
            ["X has dtype object and holds a value that is not a number", "pass real numbers"],
        ),
        (lambda X: X + 1j, ["X has complex dtype complex", "polylin fits real numbers", "X.real"]),
        (
            lambda X: X.astype("datetime64[s]"),
            ["X has dtype datetime64[s], which is not numeric data", "X.astype('float32')"],
        ),
    ],
    ids=["strings", "object-with-text", "complex", "datetime"],
)
def test_non_numeric_x_is_refused(backend: str, make_X: Callable[..., Any], fragments: list[str]) -> None:
    X, y = book_data()
    expect_error(lambda: polylin.fit(make_X(X), y, backend=backend), TypeError, *fragments)


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", HOST_VALIDATED)
def test_non_numeric_y_is_refused(backend: str) -> None:
    X, y = book_data()
    expect_error(
        lambda: polylin.fit(X, y.astype(str), backend=backend),
        TypeError,
        "y has dtype <U",
        "which is not numeric data",
    )


@pytest.mark.parametrize("backend", HOST_VALIDATED)
@pytest.mark.parametrize("own_arrays", [False, True], ids=["numpy-arrays", "backend-arrays"])
def test_integer_data_is_converted_with_a_warning(backend: str, own_arrays: bool) -> None:
    rng = np.random.default_rng(5)
    X_int = rng.integers(-3, 4, size=(N, 2)).astype(np.int32)
    y_int = (2 * X_int[:, 0] - 3 * X_int[:, 1] + 4).astype(np.int32)
    make = (lambda a: native(backend, a)) if own_arrays else (lambda a: a)
    with pytest.warns(polylin.DataConversionWarning) as record:
        converted = polylin.fit(make(X_int), make(y_int), backend=backend, epochs=2)
    messages = [str(w.message) for w in record if issubclass(w.category, polylin.DataConversionWarning)]
    assert any(m.startswith("X has dtype int32; polylin converts it to float32.") for m in messages)
    assert any("Pass y.astype('float32') to silence this warning." in m for m in messages)
    with warnings.catch_warnings():
        warnings.simplefilter("error", polylin.DataConversionWarning)
        floats = polylin.fit(X_int.astype(np.float32), y_int.astype(np.float32), backend=backend, epochs=2)
    assert converted.w.tobytes() == floats.w.tobytes()
    assert converted.b == floats.b


@pytest.mark.parametrize("backend", HOST_VALIDATED)
def test_integers_beyond_float32_precision_are_flagged(backend: str) -> None:
    X, y = book_data()
    big = (X * 1e8).astype(np.int64)  # beyond 2**24: not exact in float32
    with pytest.warns(polylin.DataConversionWarning, match="too large to be represented exactly in float32"):
        polylin.fit(big, y, backend=backend, epochs=1, lr=1e-18, check_stability=False)


@pytest.mark.parametrize("backend", HOST_VALIDATED)
def test_boolean_and_numeric_object_data_are_converted(backend: str) -> None:
    X, y = book_data()
    X_bool = X > 0
    with pytest.warns(
        polylin.DataConversionWarning, match="X has dtype bool; polylin converts it to float32"
    ):
        from_bool = polylin.fit(X_bool, y, backend=backend, epochs=1)
    with pytest.warns(polylin.DataConversionWarning, match="X has dtype object"):
        from_object = polylin.fit(X_bool.astype(np.float32).astype(object), y, backend=backend, epochs=1)
    assert from_bool.w.tobytes() == from_object.w.tobytes()


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", HOST_VALIDATED)
def test_x_and_y_from_two_frameworks(backend: str) -> None:
    other = installed_framework_other_than(backend)
    X, y = book_data()
    own_X, foreign_y = native(backend, X), native(other, y)
    first, second = (backend, other)
    error = expect_error(
        lambda: polylin.fit(own_X, foreign_y, backend=backend),
        TypeError,
        f"X comes from {first} (",
        f"but y from {second} (",
        "pass both from the same framework, or both as NumPy arrays",
    )
    assert "Tensor" in str(error) or "ndarray" in str(error) or "Array" in str(error)


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", HOST_VALIDATED)
def test_another_frameworks_arrays(backend: str) -> None:
    other = installed_framework_other_than(backend)
    if other == "numpy":  # numpy arrays are welcome everywhere; use a third framework
        candidates = [n for n in ("jax", "mxnet") if n not in IMPORT_PROBLEMS and n != backend]
        if not candidates:
            pytest.skip(f"needs the arrays of a framework other than numpy and {backend}; none is installed")
        other = candidates[0]
    X, y = book_data()
    expect_error(
        lambda: polylin.fit(native(other, X), native(other, y), backend=backend),
        TypeError,
        f"X is a {other} array",
        f"but backend={backend!r} takes NumPy arrays or its own arrays",
        f"Convert X to NumPy, or pass backend={other!r}",
    )


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", HOST_VALIDATED)
def test_only_one_of_x_and_y(backend: str) -> None:
    X, y = book_data()
    expect_error(
        lambda: polylin.fit(X, None, backend=backend), ValueError, "y is missing", "pass both X and y"
    )
    expect_error(lambda: polylin.fit(None, y, backend=backend), ValueError, "X is missing", "or neither")


# -- options -----------------------------------------------------------------------------
OPTION_CASES: list[tuple[dict[str, Any], type[BaseException], list[str]]] = [
    ({"batch_size": 0}, ValueError, ["batch_size=0 must be a whole number >= 1", "batch_size=10"]),
    ({"batch_size": -5}, ValueError, ["batch_size=-5 must be a whole number >= 1"]),
    ({"batch_size": 2.5}, ValueError, ["batch_size=2.5 must be a whole number >= 1"]),
    ({"batch_size": 51}, ValueError, ["batch_size=51 is larger than the 50 examples", "batch_size <= 50"]),
    ({"lr": 0}, ValueError, ["lr=0 must be a finite number > 0", "the book uses lr=0.03"]),
    ({"lr": -0.1}, ValueError, ["lr=-0.1 must be a finite number > 0"]),
    ({"lr": float("nan")}, ValueError, ["lr=nan must be a finite number > 0"]),
    ({"lr": float("inf")}, ValueError, ["lr=inf must be a finite number > 0"]),
    ({"lr": "0.03"}, ValueError, ["lr='0.03' must be a finite number > 0"]),
    ({"epochs": 0}, ValueError, ["epochs=0 must be a whole number >= 1", "epochs=3"]),
    ({"epochs": -2}, ValueError, ["epochs=-2 must be a whole number >= 1"]),
    ({"loss": "mse"}, ValueError, ["loss='mse' is not a known loss", "['absolute', 'huber', 'squared']"]),
    ({"dtype": "float16"}, ValueError, ["dtype='float16' is not supported", "dtype='float64'"]),
    ({"dtype": "int32"}, ValueError, ["dtype='int32' is not supported", "dtype='float32' (the default)"]),
    ({"seed": -1}, ValueError, ["seed=-1 must be a whole number >= 0", "seed=0"]),
    ({"seed": 1.5}, ValueError, ["seed=1.5 must be a whole number >= 0"]),
    ({"init": "ones"}, ValueError, ["init='ones' is not one of ['normal', 'zeros']"]),
    ({"on_divergence": "ignore"}, ValueError, ["on_divergence='ignore' is not one of ['raise', 'stop']"]),
    ({"grad": "numeric"}, ValueError, ["grad='numeric' is not one of ['autodiff', 'analytic']"]),
    ({"device": "tpu"}, ValueError, ["device='tpu' is not", "'cpu'"]),
    ({"true_w": [1.0, 2.0, 3.0]}, ValueError, ["true_w has shape (3,); X has 2 features"]),
]


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("options", "error", "fragments"),
    OPTION_CASES,
    ids=[",".join(f"{k}={v}" for k, v in case[0].items()) for case in OPTION_CASES],
)
def test_bad_option(
    backend: str, options: dict[str, Any], error: type[BaseException], fragments: list[str]
) -> None:
    X, y = book_data()
    expect_error(lambda: polylin.fit(X, y, backend=backend, **options), error, *fragments)


def gpu_present(backend: str) -> bool:
    """Ask the framework itself, independently of polylin, whether it sees a GPU."""
    if backend == "torch":
        import torch

        return bool(torch.cuda.is_available())
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "mxnet":
        import mxnet

        return bool(mxnet.context.num_gpus())
    return False


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", BACKENDS)
def test_absent_gpu(backend: str) -> None:
    if gpu_present(backend):
        pytest.skip(f"{backend} sees a GPU here, so device='gpu' is not absent")
    X, y = book_data()
    expect_error(
        lambda: polylin.fit(X, y, backend=backend, device="gpu"),
        polylin.DeviceNotAvailableError,
        "device='gpu",
        f"is not available to the {backend} backend",
        "'cpu'",
    )


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("name", ["tensorflow", "Torch", ""])
def test_unknown_backend(name: str) -> None:
    expect_error(
        lambda: polylin.fit(backend=name),
        ValueError,
        f"backend={name!r} is not a known backend; choose one of {list(KNOWN_BACKENDS)}",
    )


@pytest.mark.usefixtures("no_training")
def test_backend_that_is_not_a_name() -> None:
    expect_error(lambda: polylin.fit(backend=3), ValueError, "backend=3 must be a backend name")  # type: ignore[arg-type]


# The modules whose absence makes each backend "not installed".
HIDDEN_MODULE = {
    "numpy": "array_api_compat",
    "jax": "jax",
    "torch": "torch",
    "mxnet": "mxnet",
    "array-api": "array_api_compat",
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_not_installed(backend: str) -> None:
    module = HIDDEN_MODULE[backend]
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "import polylin\n"
        "try:\n"
        f"    polylin.fit(backend={backend!r})\n"
        "except polylin.BackendNotInstalledError as exc:\n"
        "    print('refused |', exc)\n"
    )
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert probe.returncode == 0, probe.stderr
    message = probe.stdout
    assert message.startswith(f"refused | The {backend} backend needs ")
    assert f"cannot be imported here (import of {module} halted" in message
    assert f"Install it with: {BACKENDS_REGISTRY[backend].install}" in message


# -- inputs are never modified -------------------------------------------------------------
def fingerprint(x: Any) -> tuple[bytes, str, tuple[int, ...]]:
    host = to_host(x)
    return host.tobytes(), str(host.dtype), tuple(host.shape)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("dtype", "own_arrays", "y_column"),
    [
        ("float32", False, False),
        ("float64", False, True),
        ("int64", False, False),
        ("float32", True, False),
        ("float32", True, True),
    ],
    ids=["numpy-f32", "numpy-f64-ycolumn", "numpy-int64", "backend-f32", "backend-f32-ycolumn"],
)
def test_inputs_are_never_modified(backend: str, dtype: str, own_arrays: bool, y_column: bool) -> None:
    X, y = book_data()
    X, y = (X * 3).astype(dtype), (y * 3).astype(dtype)
    if y_column:
        y = y.reshape(-1, 1)
    if own_arrays:
        X, y = native(backend, X), native(backend, y)
    before = fingerprint(X), fingerprint(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the conversion of integers is tested above
        for training_dtype in ("float32", "float64"):
            result = polylin.fit(X, y, backend=backend, epochs=2, dtype=training_dtype, lr=0.01)
            assert np.isfinite(result.final_loss)
    assert (fingerprint(X), fingerprint(y)) == before
    if backend == "torch" and own_arrays:
        assert not X.requires_grad and not y.requires_grad


# -- a string is called a string -----------------------------------------------------------
@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("backend", HOST_VALIDATED)
@pytest.mark.parametrize("text", ["abc", b"abc", np.str_("data.csv"), np.array("data.csv")], ids=repr)
def test_a_string_is_called_a_string(backend: str, text: object) -> None:
    X, y = book_data()
    error = expect_error(
        lambda: polylin.fit(text, y, backend=backend),
        TypeError,
        "X is a string (",
        "not an array of numbers",
        "pass a NumPy array of real numbers with shape (n_examples, n_features)",
        "numpy.loadtxt(path",
    )
    assert "got shape ()" not in str(error)
    expect_error(lambda: polylin.fit(X, text, backend=backend), TypeError, "y is a string (", "shape (n,)")


# -- the finiteness and range checks: exact, one read, no copies ---------------------------
def _validated(X: np.ndarray, y: np.ndarray, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    from polylin.backends import get_backend
    from polylin.validation import host_training_data

    return host_training_data(X, y, get_backend("numpy", dtype=dtype))


@pytest.mark.parametrize("width", [3, 40], ids=["narrow-sum", "wide-matvec"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("source", ["float32", "float64"])
def test_a_bad_value_in_a_later_block_is_found(width: int, bad: float, source: str) -> None:
    from polylin.validation import _CHUNK_ROWS

    rows = 2 * _CHUNK_ROWS + 5
    X = np.random.default_rng(0).normal(size=(rows, width)).astype(source)
    y = np.zeros(rows, dtype=source)
    X[_CHUNK_ROWS + 17, width - 1] = bad
    expect_error(
        lambda: _validated(X, y),
        ValueError,
        f"X contains a non-finite value ({bad} at index ({_CHUNK_ROWS + 17}, {width - 1}))",
    )
    X[_CHUNK_ROWS + 17, width - 1] = 0.0
    y[-1] = bad
    expect_error(
        lambda: _validated(X, y), ValueError, f"y contains a non-finite value ({bad} at index {rows - 1})"
    )


@pytest.mark.parametrize("extra", [0, 1], ids=["checked-whole", "checked-in-blocks"])
@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_a_bad_value_is_named_on_either_side_of_the_whole_check(extra: int, bad: float) -> None:
    """Up to ``_WHOLE_CHECK_VALUES`` values in the training dtype, y is checked in one ``isfinite``;
    beyond, in blocks: the same message, with the same index, either way."""
    from polylin.validation import _WHOLE_CHECK_VALUES, _check_values

    y = np.zeros(_WHOLE_CHECK_VALUES + extra, dtype=np.float32)
    for where in (0, y.size // 2, y.size - 1):
        y[where] = bad
        expect_error(
            lambda: _check_values("y", y, np.dtype(np.float32)),
            ValueError,
            f"y contains a non-finite value ({bad} at index {where})",
        )
        y[where] = 0.0
    _check_values("y", y, np.dtype(np.float32))  # finite again: passes


@pytest.mark.parametrize("width", [3, 40], ids=["narrow-sum", "wide-matvec"])
def test_finite_values_whose_sum_overflows_pass(width: int) -> None:
    big = np.finfo(np.float32).max / 2
    X = np.full((1000, width), big, dtype=np.float32)  # every sum overflows, every value is fine
    y = np.full(1000, -big, dtype=np.float32)
    X_checked, y_checked = _validated(X, y)
    assert X_checked is X and y_checked is y


def test_a_wider_float_beyond_the_training_range_in_a_later_block() -> None:
    from polylin.validation import _CAST_BLOCK_VALUES

    width = 8
    rows = 3 * (_CAST_BLOCK_VALUES // width) + 11
    X = np.random.default_rng(1).normal(size=(rows, width))  # float64, trained in float32
    X[rows - 3, 5] = -1e300
    expect_error(
        lambda: _validated(X, np.zeros(rows)),
        ValueError,
        f"X holds -1e+300 (at index ({rows - 3}, 5)), beyond the largest float32",
    )
    X[rows - 3, 5] = np.finfo(np.float32).max  # the largest float32 itself is in range
    X_checked, _ = _validated(X, np.zeros(rows))
    assert X_checked is X  # checked, not converted (the backend converts once, when it transfers)
    X[rows - 3, 5] = np.nan
    expect_error(lambda: _validated(X, np.zeros(rows)), ValueError, f"(nan at index ({rows - 3}, 5))")


@pytest.mark.parametrize(
    ("source", "dtype"), [("float32", "float32"), ("float64", "float32"), ("float64", "float64")]
)
@pytest.mark.parametrize("order", ["C", "F"])
def test_validation_neither_copies_nor_allocates_the_data_again(source: str, dtype: str, order: str) -> None:
    import tracemalloc

    X = np.asarray(np.random.default_rng(2).normal(size=(200_000, 20)).astype(source), order=order)
    y = np.zeros(200_000, dtype=source)
    tracemalloc.start()
    try:
        X_checked, y_checked = _validated(X, y, dtype)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert X_checked is X and y_checked is y
    assert peak < X.nbytes / 8, f"validation allocated {peak} bytes for {X.nbytes} bytes of X"


# -- the probed value check: X's one read also gives X w0, for the initial loss -------------------
@pytest.mark.parametrize("init", ["normal", "zeros"])
@pytest.mark.parametrize("loss", ["squared", "huber", "absolute"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_initial_loss_from_the_value_check_is_the_objective(
    init: str, loss: str, fit_intercept: bool, dtype: str
) -> None:
    from polylin.randomness import initial_parameters

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40_000, 20)).astype(dtype)
    y = (X @ rng.normal(size=20) + 0.5).astype(dtype)
    result = polylin.fit(X, y, epochs=1, loss=loss, init=init, fit_intercept=fit_intercept, dtype=dtype)
    w0, _ = initial_parameters(0, 20, init)
    residual = X.astype(np.float64) @ w0 - y
    pointwise = {
        "squared": 0.5 * residual**2,
        "absolute": np.abs(residual),
        "huber": np.where(np.abs(residual) <= 1, 0.5 * residual**2, np.abs(residual) - 0.5),
    }[loss]
    np.testing.assert_allclose(
        result.initial_loss, pointwise.mean(), rtol=1e-5 if dtype == "float32" else 1e-12
    )


def test_the_probe_fills_in_x_times_w_and_is_skipped_where_it_cannot_apply() -> None:
    from polylin.validation import Probe, host_training_data

    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(50_000, 3)).astype(np.float32), rng.normal(size=50_000).astype(np.float32)
    be = get_backend("numpy")
    weights = np.array([0.5, -0.25, 2.0])
    probe = Probe(lambda d: weights[:d])
    host_training_data(X, y, be, probe)
    assert probe.fitted is not None and probe.fitted.dtype == np.float32
    np.testing.assert_allclose(probe.fitted, X @ weights.astype(np.float32), rtol=1e-6)
    # A zero weight could hide a NaN from the product (0·x skipped by a BLAS): the plain check runs.
    with_zero = Probe(lambda d: np.array([0.5, 0.0, 2.0]))
    host_training_data(X, y, be, with_zero)
    assert with_zero.fitted is None
    # float64 data for a float32 fit is cast block by block for its range check: no probe there.
    wide = Probe(lambda d: weights[:d])
    host_training_data(X.astype(np.float64), y, be, wide)
    assert wide.fitted is None


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_the_probed_check_finds_a_bad_value_in_any_block(bad: float) -> None:
    from polylin.validation import Probe, host_training_data

    X, y = np.ones((70_000, 4), dtype=np.float32), np.ones(70_000, dtype=np.float32)
    X[69_999, 3] = bad  # the last row of the last block
    with pytest.raises(ValueError, match=r"X contains a non-finite value \(.* at index \(69999, 3\)\)"):
        host_training_data(X, y, get_backend("numpy"), Probe(lambda d: np.full(d, 0.01)))


def test_the_probed_check_reports_the_first_bad_value_after_an_overflowing_block() -> None:
    """X w0 is one product over all of X; the search for the bad value then reads block by block, past
    a block whose products overflow but whose values are finite, to the first bad one."""
    from polylin.validation import Probe, host_training_data

    X, y = np.ones((70_000, 4), dtype=np.float32), np.ones(70_000, dtype=np.float32)
    X[:100] = 3e38  # the first block: finite values, products beyond float32
    X[40_001, 2], X[69_999, 3] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"X contains a non-finite value \(nan at index \(40001, 2\)\)"):
        host_training_data(X, y, get_backend("numpy"), Probe(lambda d: np.full(d, 0.9)))


def test_finite_values_whose_products_overflow_pass_the_probed_check() -> None:
    """A block whose products overflow float32 goes to the exact check, which finds nothing wrong."""
    from polylin.validation import Probe, host_training_data

    X, y = np.full((20_000, 2), 3e38, dtype=np.float32), np.zeros(20_000, dtype=np.float32)
    probe = Probe(lambda d: np.full(d, 0.9))
    host_training_data(X, y, get_backend("numpy"), probe)
    assert probe.fitted is not None and np.isinf(probe.fitted).all()


@pytest.mark.parametrize("backend", backend_params(("numpy", "jax", "torch", "mxnet")))
def test_a_fit_takes_its_initial_loss_from_the_value_check(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second pass over X before training: the initial loss comes from the check's X w0."""
    from polylin.objective import Objective

    calls: list[str] = []
    original = Objective.mean_of_fitted

    def spied(self: Objective, *args: Any) -> Any:
        calls.append("from the check")
        return original(self, *args)

    monkeypatch.setattr(Objective, "mean_of_fitted", spied)
    X, y = book_data()
    polylin.fit(X, y, backend=backend, epochs=1)
    assert calls == ["from the check"]
