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

Convergence
    ``fit`` follows ``SGDRegressor``'s conventions: up to ``max_iter`` epochs,
    stopping once the training loss (or, with ``early_stopping``, the R² on a
    held-out ``validation_fraction``) has not improved by ``tol`` for
    ``n_iter_no_change`` epochs in a row, and a ``ConvergenceWarning`` when
    ``max_iter`` runs out first. It drives :func:`polylin.fit` one epoch at a
    time with ``warm_start=``, so the epochs, their batch order and the seed
    are those of one uninterrupted ``polylin.fit`` run.

Requires scikit-learn >= 1.6 (``pip install 'polylin[sklearn]'``).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score
    from sklearn.model_selection import ShuffleSplit
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
    device_of,
    device_request,
    has_namespace,
    host_array,
    namespace_of,
    to_namespace,
)
from polylin.dtypes import SUPPORTED_DTYPES, canonical_dtype
from polylin.errors import TrainingInterruptedWarning
from polylin.resident import ResidentArray
from polylin.result import FitResult
from polylin.stability import largest_curvature
from polylin.validation import check_positive_int

#: The ``check_estimator`` checks this estimator does not pass, each with the reason.
#: Empty: it passes every check scikit-learn 1.7 runs on a regressor, on every backend.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

_SEED_BOUND = 2**31 - 1

#: ``lr="auto"`` keeps the minibatch noise of a constant learning rate near 0.5 % of the loss:
#: ``lr <= batch / (AUTO_LR_NOISE_FACTOR * tr H)`` (see :meth:`SGDLinearRegressor._auto_lr`).
AUTO_LR_NOISE_FACTOR = 100.0
#: ``lr="auto"`` estimates ``tr H``, the mean squared norm of a row, from at most this many rows.
_TRACE_SAMPLE_ROWS = 1 << 16
_TRACE_SAMPLE_SEED = 20240601
#: The learning rate of ``lr="auto"`` when the data give it no scale (all-zero X, no intercept).
_NO_SCALE_LR = 0.03


@dataclass(frozen=True)
class _Schedule:
    """The validated stopping rule of one ``fit``."""

    max_iter: int
    tol: float | None
    n_iter_no_change: int
    early_stopping: bool
    validation_fraction: float


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
    lr : float or "auto", default="auto"
        Learning rate (constant through the fit). ``"auto"`` derives it from
        the training data: ``min(1/λ_max, B/(100·tr H·(n−B)/(n−1)))``, where
        ``H = X̃ᵀX̃/n`` is the Hessian of the squared loss (``X̃``: X with a
        column of ones for the intercept), ``λ_max`` its largest eigenvalue
        (estimated by :func:`polylin.stability.largest_curvature`) and
        ``tr H`` the mean squared norm of a row, ``B`` the batch size.
        ``1/λ_max`` is half the gradient-descent stability bound; the second
        term keeps the jitter that a constant learning rate leaves around the
        minimum near 0.5 % of the loss (it is infinite for full batches,
        which have no noise). The value is rounded down to two significant
        digits and stored in ``lr_``. The book's value is ``lr=0.03``.
    batch_size : int, default=32
        Examples per minibatch. A batch never holds more than the ``n``
        examples there are: ``batch_size > n`` means full-batch gradient
        descent, ``batch_size = n`` (scikit-learn's checks fit data sets of a
        handful of rows). The batch size used is ``batch_size_``. With
        ``lr="auto"`` an epoch makes the same progress whatever the batch
        size (the learning rate grows with it); larger batches mean fewer,
        cheaper steps. The book uses ``batch_size=10``.
    max_iter : int, default=1000
        The most epochs (passes over the training data) :meth:`fit` trains.
    tol : float or None, default=1e-3
        The stopping criterion: :meth:`fit` stops once the full-data training
        loss after an epoch has been ``> best_loss - tol`` for
        ``n_iter_no_change`` consecutive epochs (``best_loss``: the lowest so
        far), or, with ``early_stopping``, the validation R² has been
        ``< best_score + tol``. ``None`` trains exactly ``max_iter`` epochs.
    n_iter_no_change : int, default=5
        Consecutive epochs without an improvement of at least ``tol`` that
        end the fit.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (chosen from the seed),
        train on the rest, and stop on the validation R² instead of the
        training loss.
    validation_fraction : float, default=0.1
        The share of rows held out by ``early_stopping``, in ``(0, 1)``.
    epochs : int or None, default=None
        Deprecated: ``epochs=k`` is ``max_iter=k, tol=None``, the estimator's
        meaning before ``max_iter`` and ``tol`` existed.
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
        Seeds the initial weights, the batch order and the validation split.
        An int is used as :func:`polylin.fit`'s ``seed`` itself, so
        ``SGDLinearRegressor(random_state=0, lr=0.03, batch_size=10,
        max_iter=3, tol=None)`` retraces ``polylin.fit(seed=0)``.
    shuffle : bool, default=True
        Visit the examples in a new random order every epoch.
    init : {"normal", "zeros"}, default="normal"
        Initial weights: ``N(0, 0.01²)`` or zeros (the bias starts at 0).
    grad : {None, "autodiff", "analytic"}, default=None
        Framework autodiff (the default where there is one) or the
        hand-derived gradient.
    backend_options : dict or None, default=None
        Extra keyword arguments for the backend (e.g. ``{"fused_epoch": False}``
        on JAX, ``{"host_loss": False}`` on NumPy, JAX, torch and MXNet, ``{"block_bytes": 2**24}``
        on the array-api backend).

    Attributes
    ----------
    coef_ : array of shape (n_features,)
        The weights, in X's namespace and on X's device (NumPy for NumPy input).
    intercept_ : 0-d array
        The bias, likewise (0 when ``fit_intercept=False``).
    n_iter_ : int
        Epochs trained in all: where :meth:`fit` stopped; :meth:`partial_fit`
        adds one per call.
    t_ : int
        Minibatch updates made in all (``n_iter_`` times the steps of an epoch).
    lr_ : float
        The learning rate used (the value ``lr="auto"`` chose, or ``lr``).
    loss_curve_ : list of float
        The full-data training loss after each epoch (the data of that epoch's call).
    validation_scores_ : list of float or None
        With ``early_stopping``, the validation R² after each epoch; else ``None``.
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
    :class:`~polylin.errors.DivergenceError`. A fit that runs out of
    ``max_iter`` before meeting ``tol`` warns with
    :class:`sklearn.exceptions.ConvergenceWarning`.
    """

    def __init__(
        self,
        *,
        backend: str = "auto",
        lr: float | str = "auto",
        batch_size: int = 32,
        max_iter: int = 1000,
        tol: float | None = 1e-3,
        n_iter_no_change: int = 5,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        epochs: int | None = None,
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
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
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
        """Train from a fresh start until ``tol`` is met or ``max_iter`` epochs have run."""
        schedule = self._schedule()
        data = self._training_data(X, y, reset=True)
        seed = self._draw_seed()
        train, validation = self._validation_split(data, seed, schedule)
        stats = _row_statistics(train.rows(train.X), fit_intercept=bool(self.fit_intercept))
        lr = self._learning_rate(train, stats)
        result, stopped, scores = self._train(train, validation, seed, lr, schedule)
        self._store(result, train, seed, lr)
        steps = _steps_per_epoch(train.n_examples, self.batch_size_)
        self.t_ = self.n_iter_ * steps
        self.validation_scores_ = scores
        if schedule.tol is not None and stopped != "interrupted":
            self._warn_if_not_converged(result, schedule, scores, stopped == "tol", stats, steps)
        return self

    def partial_fit(self, X: Any, y: Any) -> SGDLinearRegressor:
        """Train one more epoch on ``(X, y)``, continuing from the current parameters.

        The first call starts like :meth:`fit` with one epoch. Each later call
        continues from ``coef_`` and ``intercept_`` with the next epoch's
        batch order (epoch ``n_iter_``), so ``k`` calls on the same data give
        exactly what ``fit`` gives with ``max_iter=k, tol=None``. The data may
        differ from call to call (a stream of chunks); its features may not,
        and the training dtype is the one of the first call. As in
        scikit-learn, ``max_iter``, ``tol`` and ``early_stopping`` do not
        apply; ``lr="auto"`` is resolved on the first call's data and kept
        (``lr_``) for the later calls.
        """
        if not hasattr(self, "fit_result_"):
            return self._first_partial_fit(X, y)
        data = self._training_data(X, y, reset=False)
        previous: FitResult = self.fit_result_
        lr = self.lr_ if isinstance(self.lr, str) and self.lr == "auto" else self._learning_rate(data, None)
        result = self._polylin_fit(
            data,
            epochs=previous.epochs_completed + 1,
            seed=self.seed_,
            lr=lr,
            warm_start=previous,
        )
        steps = self.t_ + _steps_per_epoch(data.n_examples, self._batch_size(data.n_examples))
        self._store(result, data, self.seed_, lr)
        self.t_ = steps
        return self

    def _first_partial_fit(self, X: Any, y: Any) -> SGDLinearRegressor:
        data = self._training_data(X, y, reset=True)
        seed = self._draw_seed()
        lr = self._learning_rate(data, None)
        self._store(self._polylin_fit(data, epochs=1, seed=seed, lr=lr), data, seed, lr)
        self.t_ = _steps_per_epoch(data.n_examples, self.batch_size_)
        self.validation_scores_ = None
        return self

    def _train(
        self,
        train: _TrainingData,
        validation: _TrainingData | None,
        seed: int,
        lr: float,
        schedule: _Schedule,
    ) -> tuple[FitResult, str, list[float] | None]:
        """Epochs until the stopping rule fires: (the last result, why it stopped, validation R²s).

        Why: ``"tol"`` (the rule fired), ``"max_iter"`` or ``"interrupted"`` (Ctrl-C).
        """
        if schedule.tol is None and validation is None:  # a fixed number of epochs: one polylin.fit
            whole = self._polylin_fit(train, epochs=schedule.max_iter, seed=seed, lr=lr)
            return whole, "interrupted" if whole.interrupted else "max_iter", None
        scores: list[float] | None = None if validation is None else []
        stop = _NoImprovement(schedule.tol, schedule.n_iter_no_change, higher_is_better=scores is not None)
        result: FitResult | None = None
        try:
            for epoch in range(1, schedule.max_iter + 1):
                result = self._polylin_fit(
                    train, epochs=epoch, seed=seed, lr=lr, warm_start=result, check_stability=epoch == 1
                )
                if result.interrupted:  # Ctrl-C inside the epoch: polylin.fit has warned
                    return result, "interrupted", scores
                if scores is not None and validation is not None:
                    scores.append(_r2(validation, result))
                    value = scores[-1]
                else:
                    value = float(result.losses[-1])
                if stop.update(value):
                    return result, "tol", scores
        except KeyboardInterrupt:  # Ctrl-C between two epochs
            if result is None:
                raise
            warnings.warn(
                f"Training was interrupted (Ctrl-C) after {result.epochs_completed} epochs; the "
                "estimator holds the last completed epoch (n_iter_ says how many).",
                TrainingInterruptedWarning,
                stacklevel=3,
            )
            return result, "interrupted", scores
        assert result is not None  # max_iter >= 1
        return result, "max_iter", scores

    def _warn_if_not_converged(
        self,
        result: FitResult,
        schedule: _Schedule,
        scores: list[float] | None,
        converged: bool,
        stats: _RowStatistics,
        steps: int,
    ) -> None:
        """Warn if ``max_iter`` ran out, or if ``tol`` stopped a fit that cannot have converged."""
        if scores is not None:
            what = f"validation R² (best {max(scores):.6g}, last {scores[-1]:.6g})"
        else:
            what = f"training loss (best {min(result.losses):.6g}, last {result.losses[-1]:.6g})"
        fixes = (
            "Standardise the features (e.g. make_pipeline(StandardScaler(), SGDLinearRegressor())), "
            f"raise max_iter, or raise lr (this fit used lr_={self.lr_:g})."
        )
        if not converged:
            message = (
                f"{type(self).__name__} reached max_iter={schedule.max_iter} epochs before converging: "
                f"the {what} was still improving by tol={schedule.tol:g} within the last "
                f"n_iter_no_change={schedule.n_iter_no_change} epochs, so the model may underfit. {fixes}"
            )
        else:
            epochs_needed = stats.epochs_to_converge(self.lr_, steps)
            if not self.n_iter_ < epochs_needed:
                return
            column = stats.slowest_column
            message = (
                f"{type(self).__name__} stopped after {self.n_iter_} epochs, when the {what} no longer "
                f"improved by tol={schedule.tol:g}, but it cannot have converged: column {column} of X "
                f"(mean {stats.means[column]:.3g}, standard deviation {stats.stds[column]:.3g}) is "
                f"learned along a direction of curvature {stats.slowest:.3g}, where SGD at "
                f"lr_={self.lr_:g} with {steps} steps an epoch needs about {epochs_needed:.3g} epochs; "
                "its progress per epoch is below tol long before that, so the model may underfit. "
                f"{fixes.replace('raise max_iter', 'lower tol')}"
            )
        warnings.warn(message, ConvergenceWarning, stacklevel=3)

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
        return _namespace_r2(xp, target, prediction, weight)

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

    def _schedule(self) -> _Schedule:
        """The stopping rule's parameters, validated (``epochs`` is the deprecated ``max_iter, tol=None``)."""
        if self.epochs is not None:
            epochs = check_positive_int("epochs", self.epochs, "or leave epochs=None and use max_iter")
            warnings.warn(
                f"epochs={epochs} is deprecated: pass max_iter={epochs}, tol=None to train exactly "
                f"{epochs} epochs (what epochs= did), or max_iter with a tol to stop when the loss "
                "stops improving.",
                FutureWarning,
                stacklevel=3,
            )
            max_iter, tol = epochs, None
        else:
            max_iter = check_positive_int(
                "max_iter", self.max_iter, "scikit-learn's default is max_iter=1000"
            )
            tol = _check_tol(self.tol)
        patience = check_positive_int(
            "n_iter_no_change", self.n_iter_no_change, "scikit-learn's default is n_iter_no_change=5"
        )
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping={self.early_stopping!r} must be True or False.")
        fraction = self.validation_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, numbers.Real)
            or not 0.0 < float(fraction) < 1.0
        ):
            raise ValueError(
                f"validation_fraction={fraction!r} must be a number strictly between 0 and 1, the share "
                "of rows that early_stopping holds out; scikit-learn's default is 0.1."
            )
        return _Schedule(max_iter, tol, patience, bool(self.early_stopping), float(fraction))

    def _validation_split(
        self, data: _TrainingData, seed: int, schedule: _Schedule
    ) -> tuple[_TrainingData, _TrainingData | None]:
        """With ``early_stopping``: (the training rows, the held-out rows), split from ``seed``."""
        if not schedule.early_stopping:
            return data, None
        n = data.n_examples
        n_validation = math.ceil(schedule.validation_fraction * n)
        if n_validation < 2 or n - n_validation < 1:
            raise ValueError(
                f"early_stopping with validation_fraction={schedule.validation_fraction} splits the {n} "
                f"rows into {n - n_validation} for training and {n_validation} for validation; it needs "
                "at least 1 training row and 2 validation rows (an R² needs 2). Change "
                "validation_fraction, pass more rows, or set early_stopping=False."
            )
        splitter = ShuffleSplit(n_splits=1, test_size=n_validation, random_state=seed)
        train_rows, validation_rows = next(splitter.split(np.zeros((n, 1))))
        return data.take(np.sort(train_rows)), data.take(np.sort(validation_rows))

    def _learning_rate(self, data: _TrainingData, stats: _RowStatistics | None) -> float:
        """``lr`` itself, or the value of ``lr="auto"`` on these data (polylin.fit validates numbers)."""
        if isinstance(self.lr, str):
            if self.lr != "auto":
                raise ValueError(
                    f"lr={self.lr!r} is not a learning rate: pass a finite number > 0 (the book uses "
                    "lr=0.03), or lr='auto' to derive one from the data."
                )
            if stats is None:
                stats = _row_statistics(data.rows(data.X), fit_intercept=bool(self.fit_intercept))
            return self._auto_lr(data, stats)
        return self.lr  # type: ignore[return-value]

    def _auto_lr(self, data: _TrainingData, stats: _RowStatistics) -> float:
        """``min(1/λ_max, B / (100 · tr H · (n−B)/(n−1)))``, rounded down to 2 significant digits.

        ``H = X̃ᵀX̃/n``, ``B`` the batch size. Below ``2/λ_max`` full-batch
        descent is stable; half of it leaves room for the minibatches' own
        curvature. With a constant rate ``η``, SGD ends up jittering around
        the minimum, adding about ``η·tr H/(2B)·(n−B)/(n−1)`` of the minimum's
        loss to it (a batch's gradient noise has covariance ``≈ σ²H/B``, less
        the finite-population share of batches drawn without replacement); the
        second bound keeps that near 0.5 %. Full batches have no noise, and get
        ``1/λ_max``.
        """
        rows = data.rows(data.X)
        try:
            curvature = largest_curvature(rows, fit_intercept=bool(self.fit_intercept))
        except ValueError as exc:  # no rows or no features
            raise ValueError(f"lr='auto' cannot be derived: {exc}") from exc
        trace = stats.trace
        n, batch = data.n_examples, self._batch_size(data.n_examples)
        stable = math.inf if curvature == 0.0 else 1.0 / curvature
        # Batches drawn without replacement: their noise shrinks by (n - B)/(n - 1), to 0 at B = n.
        without_replacement = 0.0 if n == 1 else (n - batch) / (n - 1)
        noise = AUTO_LR_NOISE_FACTOR * trace * without_replacement
        quiet = math.inf if noise == 0.0 else batch / noise
        lr = min(stable, quiet)
        if math.isinf(lr):  # all-zero X through the origin: nothing to learn, any rate will do
            return _NO_SCALE_LR
        if not lr > 0.0 or not math.isfinite(curvature):
            raise ValueError(
                f"lr='auto' found no usable learning rate: the features are too large (λ_max = "
                f"{curvature:.3g}). Standardise them (e.g. sklearn.preprocessing.StandardScaler)."
            )
        return _round_down(lr)

    def _polylin_fit(
        self,
        data: _TrainingData,
        *,
        epochs: int,
        seed: int,
        lr: float,
        warm_start: FitResult | None = None,
        check_stability: bool = True,
    ) -> FitResult:
        return polylin_fit(
            data.X,
            data.y,
            backend=data.backend,
            lr=lr,
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
            check_stability=check_stability,
        )

    def _store(self, result: FitResult, data: _TrainingData, seed: int, lr: float) -> None:
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
        self.lr_ = float(result.config.get("lr", lr))
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

    def take(self, rows: np.ndarray) -> _TrainingData:
        """These rows (sorted NumPy indices) of X and y, in the data's own namespace and device."""
        if self.xp is None:
            X, y = self.X[rows], self.y[rows]
        else:
            index = self.xp.asarray(rows.astype(np.int64), device=self.device)
            X, y = self.xp.take(self.X, index, axis=0), self.xp.take(self.y, index, axis=0)
        return _TrainingData(X, y, self.backend, self.dtype, self.device_request, self.xp, self.device)


class _NoImprovement:
    """scikit-learn's stopping rule: ``patience`` values in a row no better than the best by ``tol``."""

    def __init__(self, tol: float | None, patience: int, *, higher_is_better: bool) -> None:
        self.tol, self.patience, self.sign = tol, patience, -1.0 if higher_is_better else 1.0
        self.best, self.count = math.inf, 0

    def update(self, value: float) -> bool:
        """Record one epoch's value (a loss, or a score); ``True`` when training should stop."""
        value = self.sign * value  # lower is better from here on
        if self.tol is None:  # tol=None: never stop early
            return False
        self.count = self.count + 1 if value > self.best - self.tol else 0
        self.best = min(self.best, value)
        return self.count >= self.patience


def _check_tol(tol: object) -> float | None:
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not float(tol) >= 0.0:
        raise ValueError(
            f"tol={tol!r} must be a number >= 0 (the least improvement of the loss per epoch that "
            "counts; scikit-learn's default is tol=1e-3), or None to train exactly max_iter epochs."
        )
    return float(tol)


def _steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def _round_down(value: float) -> float:
    """``value`` rounded down to two significant digits (0.0291 → 0.029)."""
    step = 10.0 ** (math.floor(math.log10(value)) - 1)
    return float(f"{math.floor(value / step) * step:.2g}")


@dataclass(frozen=True)
class _RowStatistics:
    """What ``lr="auto"`` and the convergence check need to know about the rows of X."""

    trace: float  # tr H = mean ‖x̃ᵢ‖²
    means: np.ndarray
    stds: np.ndarray
    slowest: float  # the smallest curvature along one column (inf when no column varies)
    slowest_column: int

    def epochs_to_converge(self, lr: float, steps: int) -> float:
        """Epochs SGD at ``lr`` needs to shrink the error along the slowest column by ``e``."""
        if not math.isfinite(self.slowest) or self.slowest <= 0.0:
            return 0.0
        return 1.0 / (lr * self.slowest * steps)


def _row_statistics(rows: Any, *, fit_intercept: bool) -> _RowStatistics:
    """Per-column moments of (a fixed sample of at most ``_TRACE_SAMPLE_ROWS``) rows, in float64.

    A column ``x`` of mean ``m`` and second moment ``a`` is learned, together
    with the intercept, through the block ``[[a, m], [m, 1]]`` of ``H``; its
    smaller eigenvalue ``(a − m²)/λ_big`` is the curvature along that column,
    and no direction of ``H`` is flatter than the flattest of these blocks
    allows (Cauchy interlacing gives ``λ_min(H)`` ≤ it). Without an
    intercept the block is ``a`` itself.
    """
    n = int(rows.shape[0])
    if n > _TRACE_SAMPLE_ROWS:
        picked = np.random.default_rng(_TRACE_SAMPLE_SEED).choice(n, size=_TRACE_SAMPLE_ROWS, replace=False)
        sample = np.asarray(rows[np.sort(picked)], dtype=np.float64)
    else:
        sample = np.asarray(rows, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        means = np.mean(sample, axis=0)
        variances = np.var(sample, axis=0)
        second = variances + means**2
        trace = float(np.sum(second)) + (1.0 if fit_intercept else 0.0)
        if fit_intercept:
            big = (second + 1.0 + np.sqrt((second - 1.0) ** 2 + 4.0 * means**2)) / 2.0
            curvature = np.where(variances > 0.0, variances / big, np.inf)
        else:
            curvature = np.where(second > 0.0, second, np.inf)
    curvature = np.where(np.isfinite(curvature), curvature, np.inf)
    column = int(np.argmin(curvature)) if curvature.size else 0
    slowest = float(curvature[column]) if curvature.size else math.inf
    return _RowStatistics(trace, means, np.sqrt(variances), slowest, column)


def _r2(validation: _TrainingData, result: FitResult) -> float:
    """R² of ``result``'s parameters on the held-out rows, in their namespace."""
    dtype = SUPPORTED_DTYPES[result.dtype]
    w, b = np.asarray(result.w, dtype=dtype), np.asarray(result.b, dtype=dtype)
    if validation.xp is None:
        return float(r2_score(validation.y, validation.X @ w + b))
    xp, device = validation.xp, validation.device
    coef = to_namespace(w, xp, device)
    X = validation.X if validation.X.dtype == coef.dtype else xp.astype(validation.X, coef.dtype)
    prediction = xp.matmul(X, coef) + to_namespace(b, xp, device, dtype=coef.dtype)
    target = xp.reshape(to_namespace(validation.y, xp, device, dtype=coef.dtype), (-1,))
    return _namespace_r2(xp, target, prediction, xp.ones_like(target))


def _namespace_r2(xp: Any, target: Any, prediction: Any, weight: Any) -> float:
    residual = float(xp.sum(weight * (target - prediction) ** 2))
    mean = xp.sum(weight * target) / xp.sum(weight)
    total = float(xp.sum(weight * (target - mean) ** 2))
    if total == 0.0:  # a constant target: scikit-learn's r2_score convention
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


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
