"""SGDLinearRegressor's convergence conventions: max_iter, tol, n_iter_no_change, early_stopping.

They follow scikit-learn's SGDRegressor; the figures on the diabetes data are the
acceptance test of issue 17 (standardised: R² within 0.01 of LinearRegression;
unscaled: converged, or a ConvergenceWarning).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from conftest import backend_params
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import ShuffleSplit
from sklearn.preprocessing import StandardScaler

import polylin
from polylin.estimator import AUTO_LR_NOISE_FACTOR, SGDLinearRegressor
from polylin.stability import largest_curvature


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True, scaled=False)
    return X, StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def book() -> tuple[np.ndarray, np.ndarray]:
    return polylin.synthetic_data(seed=4, dtype="float64")


def _stop_epoch(values: list[float], tol: float, patience: int, *, higher_is_better: bool) -> int | None:
    """scikit-learn's rule, written out: the first epoch after `patience` epochs in a row no better than
    the best so far by `tol`, or None if it never fires."""
    best = -math.inf if higher_is_better else math.inf
    count = 0
    for epoch, value in enumerate(values, start=1):
        worse = value < best + tol if higher_is_better else value > best - tol
        count = count + 1 if worse else 0
        best = max(best, value) if higher_is_better else min(best, value)
        if count >= patience:
            return epoch
    return None


def _fit_recording(model: SGDLinearRegressor, X: Any, y: Any) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


# -- the acceptance figures: scikit-learn's diabetes data --------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_standardised_diabetes_is_within_001_of_linear_regression(
    diabetes: tuple[np.ndarray, np.ndarray, np.ndarray], seed: int
) -> None:
    _, X, y = diabetes
    reference = LinearRegression().fit(X, y).score(X, y)
    model = SGDLinearRegressor(random_state=seed)
    convergence_warnings = _fit_recording(model, X, y)
    assert convergence_warnings == []
    assert model.n_iter_ < model.max_iter
    assert abs(model.score(X, y) - reference) < 0.01, (model.score(X, y), reference)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unscaled_diabetes_converges_or_warns(
    diabetes: tuple[np.ndarray, np.ndarray, np.ndarray], seed: int
) -> None:
    X, _, y = diabetes
    reference = LinearRegression().fit(X, y).score(X, y)
    model = SGDLinearRegressor(random_state=seed)
    convergence_warnings = _fit_recording(model, X, y)
    assert np.all(np.isfinite(model.coef_))  # no silent divergence
    converged = abs(model.score(X, y) - reference) < 0.01
    assert converged or convergence_warnings
    if convergence_warnings:
        assert "StandardScaler" in str(convergence_warnings[0].message)


def test_unscaled_diabetes_names_the_column_that_cannot_have_converged(
    diabetes: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """tol stops the unscaled fit (each epoch gains less than tol), long before the flattest
    column could have been learned: the warning says so, and which column."""
    X, _, y = diabetes
    model = SGDLinearRegressor(random_state=0)
    (warning,) = _fit_recording(model, X, y)
    message = str(warning.message)
    assert model.n_iter_ < model.max_iter
    assert "cannot have converged" in message and "column " in message
    column = int(message.split("column ")[1].split()[0])
    assert 0 <= column < X.shape[1]
    assert "Standardise" in message and "lower tol" in message and "raise lr" in message


# -- the stopping rule -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", backend_params())
def test_tol_stops_early_on_easy_data(backend: str, book: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book
    model = SGDLinearRegressor(backend=backend, random_state=0, tol=1e-3, n_iter_no_change=3)
    assert _fit_recording(model, X, y) == []
    assert model.n_iter_ < model.max_iter
    assert model.n_iter_ == len(model.loss_curve_)
    # It stopped exactly where scikit-learn's rule fires on its own loss curve.
    assert _stop_epoch(model.loss_curve_, 1e-3, 3, higher_is_better=False) == model.n_iter_
    assert model.score(X, y) > 0.999


@pytest.mark.parametrize(("tol", "patience"), [(1e-3, 1), (1e-3, 5), (1e-6, 2), (0.0, 4)])
def test_the_stop_is_scikit_learns_rule(
    book: tuple[np.ndarray, np.ndarray], tol: float, patience: int
) -> None:
    X, y = book
    model = SGDLinearRegressor(random_state=3, tol=tol, n_iter_no_change=patience, max_iter=300)
    model.fit(X, y)
    stop = _stop_epoch(model.loss_curve_, tol, patience, higher_is_better=False)
    assert stop == model.n_iter_ if stop is not None else model.n_iter_ == 300
    # More patience never stops earlier.
    patient = SGDLinearRegressor(random_state=3, tol=tol, n_iter_no_change=patience + 3, max_iter=300)
    assert patient.fit(X, y).n_iter_ >= model.n_iter_


def test_epoch_by_epoch_is_one_uninterrupted_polylin_fit(book: tuple[np.ndarray, np.ndarray]) -> None:
    """The epochs, their order and the seed are those of polylin.fit with n_iter_ epochs."""
    X, y = book
    model = SGDLinearRegressor(random_state=8).fit(X, y)
    result = polylin.fit(X, y, lr=model.lr_, batch_size=32, epochs=model.n_iter_, seed=8, dtype="float64")
    np.testing.assert_array_equal(model.coef_, result.w)
    assert float(model.intercept_) == result.b
    assert model.loss_curve_ == [float(v) for v in result.losses]


def test_tol_none_runs_exactly_max_iter_without_warning(book: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book
    model = SGDLinearRegressor(random_state=0, tol=None, max_iter=7)
    assert _fit_recording(model, X, y) == []
    assert model.n_iter_ == 7 and len(model.loss_curve_) == 7
    # A flat loss would have stopped it with a tol: tol=None trains on regardless.
    assert _stop_epoch(model.loss_curve_, 1.0, 1, higher_is_better=False) is not None
    once = polylin.fit(X, y, lr=model.lr_, batch_size=32, epochs=7, seed=0, dtype="float64")
    np.testing.assert_array_equal(model.coef_, once.w)


def test_max_iter_running_out_warns_and_names_the_fixes(
    diabetes: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, _, y = diabetes
    model = SGDLinearRegressor(random_state=0, max_iter=4)
    with pytest.warns(ConvergenceWarning, match="max_iter=4") as record:
        model.fit(X, y)
    message = str(record[0].message)
    assert model.n_iter_ == 4
    for fix in ("Standardise the features", "StandardScaler", "raise max_iter", "raise lr", "lr_="):
        assert fix in message, fix


def test_t_counts_the_minibatch_updates(book: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book
    model = SGDLinearRegressor(random_state=0, batch_size=64, max_iter=4, tol=None).fit(X, y)
    assert model.t_ == 4 * math.ceil(1000 / 64)
    model.partial_fit(X[:100], y[:100])
    assert model.t_ == 4 * math.ceil(1000 / 64) + math.ceil(100 / 64) and model.n_iter_ == 5


# -- early stopping ------------------------------------------------------------------------------------
def test_early_stopping_holds_out_validation_fraction(book: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book
    model = SGDLinearRegressor(
        random_state=5, early_stopping=True, validation_fraction=0.2, n_iter_no_change=3
    )
    model.fit(X, y)
    assert model.fit_result_.config["n_examples"] == 800
    scores = model.validation_scores_
    assert scores is not None and len(scores) == model.n_iter_ < model.max_iter
    assert _stop_epoch(scores, 1e-3, 3, higher_is_better=True) == model.n_iter_
    # The held-out rows are ShuffleSplit's with the fit's seed; the model trained on the others only.
    train_rows, validation_rows = next(ShuffleSplit(n_splits=1, test_size=200, random_state=5).split(X))
    train_rows, validation_rows = np.sort(train_rows), np.sort(validation_rows)
    alone = polylin.fit(
        X[train_rows],
        y[train_rows],
        lr=model.lr_,
        batch_size=32,
        epochs=model.n_iter_,
        seed=5,
        dtype="float64",
    )
    np.testing.assert_array_equal(model.coef_, alone.w)
    assert scores[-1] == pytest.approx(model.score(X[validation_rows], y[validation_rows]), abs=1e-12)


def test_without_early_stopping_every_row_trains(book: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book
    model = SGDLinearRegressor(random_state=5, validation_fraction=0.5).fit(X, y)
    assert model.fit_result_.config["n_examples"] == 1000 and model.validation_scores_ is None


def test_early_stopping_on_array_api_input_matches_numpy(book: tuple[np.ndarray, np.ndarray]) -> None:
    xps = pytest.importorskip("array_api_strict")
    X, y = book
    params: dict[str, Any] = {"random_state": 2, "early_stopping": True, "max_iter": 40}
    strict = SGDLinearRegressor(**params).fit(xps.asarray(X), xps.asarray(y))
    reference = SGDLinearRegressor(**params).fit(X, y)
    assert strict.fit_result_.backend == "array-api"
    assert strict.n_iter_ == reference.n_iter_ and strict.lr_ == reference.lr_
    np.testing.assert_allclose(np.asarray(strict.coef_), reference.coef_, rtol=1e-9)
    assert strict.validation_scores_ is not None and reference.validation_scores_ is not None
    np.testing.assert_allclose(strict.validation_scores_, reference.validation_scores_, rtol=1e-9)


# -- lr="auto" -----------------------------------------------------------------------------------------
def test_auto_lr_is_the_documented_formula(book: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book
    model = SGDLinearRegressor(random_state=0, max_iter=1, tol=None).fit(X, y)
    n, batch = 1000, 32
    trace = 1.0 + float(np.mean(np.sum(X**2, axis=1)))
    expected = min(1.0 / largest_curvature(X), batch * (n - 1) / (AUTO_LR_NOISE_FACTOR * trace * (n - batch)))
    assert expected * 0.9 <= model.lr_ <= expected  # rounded down to 2 significant digits
    assert float(f"{model.lr_:.2g}") == model.lr_
    assert model.fit_result_.config["lr"] == model.lr_
    # A full batch has no minibatch noise: the rate is 1/λ_max (rounded down).
    full = SGDLinearRegressor(random_state=0, batch_size=n, max_iter=1, tol=None).fit(X, y)
    assert 0.9 / largest_curvature(X) <= full.lr_ <= 1.0 / largest_curvature(X)


def test_auto_lr_scales_with_the_features(book: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book
    small = SGDLinearRegressor(random_state=0, max_iter=1, tol=None).fit(X, y)
    large = SGDLinearRegressor(random_state=0, max_iter=1, tol=None).fit(X * 100, y)
    assert large.lr_ < small.lr_ / 1000  # curvature x 10^4, minus the intercept's share


def test_numeric_lr_is_used_as_given_and_partial_fit_keeps_auto(book: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book
    assert SGDLinearRegressor(lr=0.02, max_iter=1, tol=None).fit(X, y).lr_ == 0.02
    stream = SGDLinearRegressor(random_state=0).partial_fit(X, y)
    chosen = stream.lr_
    chunk = X[:50] * 2
    assert SGDLinearRegressor().partial_fit(chunk, y[:50]).lr_ != chosen  # it would get another rate
    stream.partial_fit(chunk, y[:50])
    assert stream.lr_ == chosen and stream.fit_result_.config["lr"] == chosen


# -- Ctrl-C, deprecation, bad values ---------------------------------------------------------------------
def test_ctrl_c_between_epochs_keeps_the_last_epoch(
    book: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = book
    real_fit = polylin.fit

    def interrupted_at_epoch_3(*args: Any, **kwargs: Any) -> Any:
        if kwargs["epochs"] == 3:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr("polylin.estimator.polylin_fit", interrupted_at_epoch_3)
    model = SGDLinearRegressor(random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    assert [w.category for w in caught] == [polylin.TrainingInterruptedWarning]  # no ConvergenceWarning
    assert "after 2 epochs" in str(caught[0].message)
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2


def test_epochs_is_deprecated_for_max_iter_with_tol_none(book: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = book
    with pytest.warns(FutureWarning, match=r"max_iter=4, tol=None"):
        old = SGDLinearRegressor(epochs=4, random_state=1).fit(X, y)
    new = SGDLinearRegressor(max_iter=4, tol=None, random_state=1).fit(X, y)
    assert old.n_iter_ == 4
    np.testing.assert_array_equal(old.coef_, new.coef_)


@pytest.mark.parametrize(("params", "match"), [
    ({"max_iter": 0}, r"max_iter=0 must be a whole number >= 1"),
    ({"max_iter": 2.5}, r"max_iter=2\.5 must be a whole number"),
    ({"max_iter": True}, r"max_iter=True must be a whole number"),
    ({"tol": -1e-3}, r"tol=-0\.001 must be a number >= 0 .* or None"),
    ({"tol": float("nan")}, r"tol=nan must be a number >= 0"),
    ({"tol": "small"}, r"tol='small' must be a number >= 0"),
    ({"n_iter_no_change": 0}, r"n_iter_no_change=0 must be a whole number >= 1"),
    ({"early_stopping": "yes"}, r"early_stopping='yes' must be True or False"),
    ({"validation_fraction": 0.0}, r"validation_fraction=0\.0 must be a number strictly between 0 and 1"),
    ({"validation_fraction": 1}, r"validation_fraction=1 must be a number strictly between 0 and 1"),
    ({"validation_fraction": True}, r"validation_fraction=True must be a number"),
    ({"lr": "fast"}, r"lr='fast' is not a learning rate: .* lr='auto'"),
    ({"epochs": 0}, r"epochs=0 must be a whole number >= 1"),
])  # fmt: skip
def test_bad_values_get_clear_errors(params: dict[str, Any], match: str) -> None:
    X, y = polylin.synthetic_data(n=50)
    model = SGDLinearRegressor(**params)  # the constructor only stores them
    with pytest.raises(ValueError, match=match):
        model.fit(X, y)


def test_early_stopping_on_too_few_rows_says_what_to_change() -> None:
    X, y = polylin.synthetic_data(n=10)
    with pytest.raises(ValueError, match=r"9 for training and 1 for validation.*early_stopping=False"):
        SGDLinearRegressor(early_stopping=True, validation_fraction=0.1).fit(X, y)
    model = SGDLinearRegressor(early_stopping=True, validation_fraction=0.2, random_state=0).fit(X, y)
    assert model.fit_result_.config["n_examples"] == 8
