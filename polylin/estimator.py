"""``SGDLinearRegressor``: polylin as a scikit-learn estimator.

It is :func:`polylin.fit` behind scikit-learn's conventions, so it works in a
``Pipeline``, in ``GridSearchCV`` and with ``clone``, on every backend, and
passes scikit-learn's ``check_estimator`` (see :data:`EXPECTED_FAILED_CHECKS`).

Everything follows X
    Arrays that array-api-compat recognises other than NumPy's (torch, jax,
    dask, CuPy, array-api-strict, ...) are taken as they are: with
    ``backend="auto"`` the fit runs on the backend X belongs to (torch on
    torch, jax on jax, the ``"array-api"`` backend on X's own namespace for
    the others) and on X's device, and ``coef_``, ``intercept_`` and the
    predictions come back in X's namespace, on X's device, as they do in
    scikit-learn's Array API support. Anything else (NumPy arrays, lists,
    pandas frames, mxnet arrays) goes through scikit-learn's own input
    validation and gives NumPy results.

Requires scikit-learn >= 1.6 (``pip install 'polylin[sklearn]'``).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # validate_data is new in scikit-learn 1.6
    raise ImportError(
        f"polylin.SGDLinearRegressor needs scikit-learn >= 1.6, which cannot be imported here ({exc}). "
        "Install it with: pip install 'polylin[sklearn]'"
    ) from exc

from polylin.api import fit as polylin_fit
from polylin.backends import backend_for
from polylin.backends.array_api_backend import (
    ResidentArray,
    device_of,
    device_request,
    has_namespace,
    host_array,
    namespace_of,
    to_namespace,
)
from polylin.dtypes import SUPPORTED_DTYPES, canonical_dtype
from polylin.result import FitResult
from polylin.validation import check_positive_int

#: The ``check_estimator`` checks this estimator does not pass, each with the reason.
#: Empty: it passes every check scikit-learn 1.7 runs on a regressor, on every backend.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

_SEED_BOUND = 2**31 - 1


def _is_array_api_input(X: object) -> bool:
    """An array of an Array API namespace other than NumPy's: it is kept as it is."""
    return not isinstance(X, np.ndarray) and has_namespace(X)


class SGDLinearRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Linear regression by minibatch SGD, trained by :func:`polylin.fit` on any backend.

    Parameters
    ----------
    backend : str, default="auto"
        ``"auto"`` (the backend X belongs to: NumPy arrays and lists to
        ``"numpy"``, torch tensors to ``"torch"``, jax arrays to ``"jax"``,
        mxnet arrays to ``"mxnet"``, other Array API arrays to ``"array-api"``),
        or a backend name: ``"numpy"``, ``"jax"``, ``"torch"``, ``"mxnet"``,
        ``"array-api"``.
    lr : float, default=0.03
        Learning rate.
    batch_size : int, default=10
        Examples per minibatch. A batch never holds more than the ``n``
        examples there are: ``batch_size > n`` means full-batch gradient
        descent, ``batch_size = n`` (scikit-learn's checks fit data sets of a
        handful of rows). The batch size used is ``batch_size_``.
    epochs : int, default=3
        Passes over the data in :meth:`fit`.
    loss : {"squared", "absolute", "huber"}, default="squared"
        ``½(ŷ−y)²``, ``|ŷ−y|`` or Huber with δ = 1, averaged over each batch.
    fit_intercept : bool, default=True
        ``False`` fits ``y = Xw`` through the origin (``intercept_`` is 0).
    dtype : {None, "float32", "float64"}, default=None
        The training precision. ``None`` follows X: float32 data trains in
        float32, anything else in float64.
    device : str or None, default=None
        ``None`` follows X (a CUDA tensor trains on its GPU); else ``"cpu"``,
        ``"gpu"``, ``"gpu:N"``, or a device name of X's namespace.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights and the batch order. An int is used as
        :func:`polylin.fit`'s ``seed`` itself, so
        ``SGDLinearRegressor(random_state=0)`` retraces ``polylin.fit(seed=0)``.
    shuffle : bool, default=True
        Visit the examples in a new random order every epoch.
    init : {"normal", "zeros"}, default="normal"
        Initial weights: ``N(0, 0.01²)`` or zeros (the bias starts at 0).
    grad : {None, "autodiff", "analytic"}, default=None
        Framework autodiff (the default where there is one) or the
        hand-derived gradient.
    backend_options : dict or None, default=None
        Extra keyword arguments for the backend (e.g. ``{"fused_epoch": False}``
        on JAX, ``{"block_bytes": 2**24}`` on the array-api backend).

    Attributes
    ----------
    coef_ : array of shape (n_features,)
        The weights, in X's namespace and on X's device (NumPy for NumPy input).
    intercept_ : 0-d array
        The bias, likewise (0 when ``fit_intercept=False``).
    n_iter_ : int
        Epochs trained in all (:meth:`partial_fit` adds one per call).
    loss_curve_ : list of float
        The full-data loss after each epoch (the data of that epoch's call).
    n_features_in_ : int
        Features seen in :meth:`fit`.
    feature_names_in_ : ndarray of str
        Column names, when X is a frame with string column names.
    batch_size_ : int
        The batch size used (``min(batch_size, n)``).
    seed_ : int
        The seed the fit used (drawn from ``random_state`` unless it is an int).
    fit_result_ : polylin.FitResult
        Everything :func:`polylin.fit` reports: backend, version, device, epoch
        times, ...

    Notes
    -----
    scikit-learn's ``check_estimator`` passes with no exception listed (see
    :data:`EXPECTED_FAILED_CHECKS`); its Array API checks need the environment
    variable ``SCIPY_ARRAY_API=1`` and are skipped by scikit-learn without it.
    A Ctrl-C during :meth:`fit` keeps the last completed epoch (``n_iter_``
    says how many). A fit that diverges raises
    :class:`~polylin.errors.DivergenceError`.
    """

    def __init__(
        self,
        *,
        backend: str = "auto",
        lr: float = 0.03,
        batch_size: int = 10,
        epochs: int = 3,
        loss: str = "squared",
        fit_intercept: bool = True,
        dtype: str | None = None,
        device: str | None = None,
        random_state: int | np.random.RandomState | None = None,
        shuffle: bool = True,
        init: str = "normal",
        grad: str | None = None,
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.loss = loss
        self.fit_intercept = fit_intercept
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.shuffle = shuffle
        self.init = init
        self.grad = grad
        self.backend_options = backend_options

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    # -- fitting ------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> SGDLinearRegressor:
        """Train for ``epochs`` epochs from a fresh start."""
        data = self._training_data(X, y, reset=True)
        seed = self._draw_seed()
        result = self._polylin_fit(data, epochs=self.epochs, seed=seed)
        self._store(result, data, seed)
        return self

    def partial_fit(self, X: Any, y: Any) -> SGDLinearRegressor:
        """Train one more epoch on ``(X, y)``, continuing from the current parameters.

        The first call starts like :meth:`fit` with one epoch. Each later call
        continues from ``coef_`` and ``intercept_`` with the next epoch's
        batch order (epoch ``n_iter_``), so ``k`` calls on the same data give
        exactly what ``fit`` gives with ``epochs=k``. The data may differ
        from call to call (a stream of chunks); its features may not, and the
        training dtype is the one of the first call.
        """
        if not hasattr(self, "fit_result_"):
            return self._first_partial_fit(X, y)
        data = self._training_data(X, y, reset=False)
        previous: FitResult = self.fit_result_
        result = self._polylin_fit(
            data,
            epochs=previous.epochs_completed + 1,
            seed=self.seed_,
            warm_start=previous,
        )
        self._store(result, data, self.seed_)
        return self

    def _first_partial_fit(self, X: Any, y: Any) -> SGDLinearRegressor:
        data = self._training_data(X, y, reset=True)
        seed = self._draw_seed()
        self._store(self._polylin_fit(data, epochs=1, seed=seed), data, seed)
        return self

    # -- prediction ----------------------------------------------------------------
    def predict(self, X: Any) -> Any:
        """``X @ coef_ + intercept_``, in X's namespace and on X's device."""
        check_is_fitted(self)
        if _is_array_api_input(X):
            xp, device = namespace_of(X), device_of(X)
            self._check_array_api_features(X, reset=False)
            coef = to_namespace(self.coef_, xp, device)
            intercept = to_namespace(self.intercept_, xp, device, dtype=coef.dtype)
            X = X if X.dtype == coef.dtype else xp.astype(X, coef.dtype)
            return xp.matmul(X, coef) + intercept
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        coef = host_array(self.coef_)
        prediction: np.ndarray = X.astype(coef.dtype, copy=False) @ coef + host_array(self.intercept_)
        return prediction

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² of the predictions, computed in X's namespace for Array API input."""
        if not _is_array_api_input(X):
            return float(super().score(X, y, sample_weight=sample_weight))
        xp, device = namespace_of(X), device_of(X)
        prediction = self.predict(X)
        target = to_namespace(y, xp, device, dtype=prediction.dtype)
        target = xp.reshape(target, (-1,))
        if target.shape[0] != prediction.shape[0]:
            raise ValueError(f"y has {target.shape[0]} values but X has {prediction.shape[0]} rows.")
        weight = (
            xp.ones_like(target)
            if sample_weight is None
            else to_namespace(sample_weight, xp, device, dtype=prediction.dtype)
        )
        residual = float(xp.sum(weight * (target - prediction) ** 2))
        mean = xp.sum(weight * target) / xp.sum(weight)
        total = float(xp.sum(weight * (target - mean) ** 2))
        if total == 0.0:  # a constant target: scikit-learn's r2_score convention
            return 1.0 if residual == 0.0 else 0.0
        return 1.0 - residual / total

    # -- internals ---------------------------------------------------------------------
    def _training_data(self, X: Any, y: Any, *, reset: bool) -> _TrainingData:
        backend = backend_for(X) if self.backend == "auto" else self.backend
        if _is_array_api_input(X):
            if y is None:
                raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
            xp, device = namespace_of(X), device_of(X)
            self._check_array_api_features(X, reset=reset)
            dtype = self._training_dtype(str(X.dtype), reset=reset)
            if not (has_namespace(y) and namespace_of(y) is xp):
                y = to_namespace(np.asarray(y), xp, device)
            request = self.device
            if request is None and backend != "array-api":
                request = device_request(device)
            return _TrainingData(X, y, backend, dtype, request, xp, device)
        X, y = _framework_to_host(X), _framework_to_host(y)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True, reset=reset)
        dtype = self._training_dtype(X.dtype.name, reset=reset)
        np_dtype = SUPPORTED_DTYPES[dtype]
        X = X.astype(np_dtype, copy=False)
        y = np.asarray(y).astype(np_dtype, copy=False)
        return _TrainingData(X, y, backend, dtype, self.device, None, None)

    def _training_dtype(self, data_dtype: str, *, reset: bool) -> str:
        if not reset:  # partial_fit keeps the first call's precision
            return self.fit_result_.dtype  # type: ignore[no-any-return]
        if self.dtype is not None:
            return canonical_dtype(self.dtype)
        return "float32" if data_dtype.endswith("float32") else "float64"

    def _check_array_api_features(self, X: Any, *, reset: bool) -> None:
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2D array, got an array of shape {tuple(X.shape)} instead. Reshape your "
                "data with X.reshape(-1, 1) if it has a single feature, or X.reshape(1, -1) if it is "
                "a single sample."
            )
        n_features = int(X.shape[1])
        if reset:
            self.n_features_in_ = n_features
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _draw_seed(self) -> int:
        state = self.random_state
        if isinstance(state, numbers.Integral) and not isinstance(state, bool):
            return int(state)
        return int(check_random_state(state).randint(_SEED_BOUND))

    def _batch_size(self, n: int) -> int:
        batch_size = check_positive_int("batch_size", self.batch_size, "the book uses batch_size=10")
        return min(batch_size, n)

    def _polylin_fit(
        self, data: _TrainingData, *, epochs: int, seed: int, warm_start: FitResult | None = None
    ) -> FitResult:
        return polylin_fit(
            data.X,
            data.y,
            backend=data.backend,
            lr=self.lr,
            batch_size=self._batch_size(data.n_examples),
            epochs=epochs,
            seed=seed,
            dtype=data.dtype,
            device=data.device_request,
            loss=self.loss,
            shuffle=self.shuffle,
            init=self.init,
            fit_intercept=self.fit_intercept,
            grad=self.grad,
            backend_options=self.backend_options,
            warm_start=warm_start,
        )

    def _store(self, result: FitResult, data: _TrainingData, seed: int) -> None:
        np_dtype = SUPPORTED_DTYPES[result.dtype]
        w = np.asarray(result.w, dtype=np_dtype)
        b = np.asarray(result.b, dtype=np_dtype)
        if data.xp is None:
            self.coef_, self.intercept_ = w.copy(), b
        else:
            self.coef_ = to_namespace(w, data.xp, data.device)
            self.intercept_ = to_namespace(b, data.xp, data.device)
        self.n_iter_ = result.epochs_completed
        self.loss_curve_ = [float(value) for value in result.losses]
        self.batch_size_ = int(result.config["batch_size"])
        self.seed_ = seed
        self.fit_result_ = result


class _TrainingData:
    """Validated data, with what the fit and the fitted attributes need to know about it."""

    def __init__(
        self,
        X: Any,
        y: Any,
        backend: str,
        dtype: str,
        device_request: Any,
        xp: Any,
        device: Any,
    ) -> None:
        self.X, self.y = X, y
        self.backend, self.dtype, self.device_request = backend, dtype, device_request
        self.xp, self.device = xp, device
        self.n_examples, self.n_features = int(X.shape[0]), int(X.shape[1])

    def rows(self, array: Any) -> Any:
        """What :func:`polylin.checkpoint.data_fingerprint` can sample rows of."""
        if isinstance(array, np.ndarray):
            return array
        return ResidentArray(array, SUPPORTED_DTYPES[self.dtype])


def _framework_to_host(x: Any) -> Any:
    """A framework array that array-api-compat does not know (an MXNet array), as NumPy.

    NumPy cannot convert those itself (``np.asarray`` on an ``mxnet.np`` array gives a
    32-dimensional object array), so the array's own backend converts it.
    """
    owner = backend_for(x)
    if owner in ("numpy", "array-api") or _is_array_api_input(x):
        return x
    from polylin.backends import get_backend

    return get_backend(owner).to_numpy(x)
