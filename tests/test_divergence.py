"""Divergence: reported where it happens, with the last finite parameters, and warned about before.

The cases are the seeds': the learning-rate exercise's ``lr = 3`` on the
book's data, and a reader's Ohm's-law data (voltages 1..100 V across several
resistors, raw unscaled features). The reported epoch and step are checked
against SGD written out by hand in NumPy.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import backend_params

import polylin
from polylin.data import BOOK_N, BOOK_NOISE, BOOK_TRUE_B, BOOK_TRUE_W
from polylin.randomness import epoch_order, initial_parameters
from polylin.stability import largest_curvature, sample_size, stability_bound, warn_if_unstable

BACKENDS = backend_params()


def ohm_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Voltages 1..100 V across 1, 2, 5 and 10 Ω; the feature is the measured I·R, the target V."""
    rng = np.random.default_rng(seed)
    resistances = np.array([1.0, 2.0, 5.0, 10.0])
    volts = np.tile(np.arange(1.0, 101.0), resistances.size)
    ohms = np.repeat(resistances, 100)
    amperes = volts / ohms + rng.normal(0.0, 0.01, volts.size)
    return (amperes * ohms)[:, None].astype(np.float32), volts.astype(np.float32)


def book_data(dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    return polylin.synthetic_data(BOOK_TRUE_W, BOOK_TRUE_B, BOOK_N, noise=BOOK_NOISE, seed=0, dtype=dtype)


Position = tuple[int, int]  # (1-based epoch, 1-based step within it)


def reference_divergence(
    X: np.ndarray, y: np.ndarray, *, lr: float, batch_size: int, seed: int, epochs: int, dtype: str
) -> tuple[Position, Position, int]:
    """Minibatch SGD by hand, in ``dtype``: where must a correct implementation report divergence?

    Returns ``(earliest, latest, steps_between)``. After the step at ``latest``
    a parameter, a residual or a term ½r² is non-finite, or the exact mean of
    the terms is beyond the dtype's range, so every implementation's full-data
    loss is non-finite; before ``earliest`` even the exact sum of the terms is
    within range, so no implementation's is. In between, it depends on how
    the framework sums the mean (in the dtype, or wider).
    """
    kind = np.dtype(dtype).type
    log_largest = math.log(float(np.finfo(dtype).max))
    n, d = X.shape
    X, y = X.astype(dtype), y.astype(dtype)
    w0, b0 = initial_parameters(seed, d, "normal")
    w, b = w0.astype(dtype), b0.astype(dtype)
    earliest: tuple[Position, int] | None = None
    count = 0
    with np.errstate(all="ignore"):
        for epoch in range(1, epochs + 1):
            order = epoch_order(seed, epoch - 1, n)
            for step, start in enumerate(range(0, n, batch_size), start=1):
                count += 1
                idx = order[start : start + batch_size]
                g = (X[idx] @ w + b - y[idx]) / kind(len(idx))
                w = w - kind(lr) * (g @ X[idx])
                b = b - kind(lr) * g.sum(keepdims=True)
                terms = kind(0.5) * ((X @ w + b - y) ** 2)
                finite = np.isfinite(w).all() and np.isfinite(b).all() and np.isfinite(terms).all()
                log_sum = math.inf
                if finite:
                    halves = terms.astype(np.float64)
                    top = float(halves.max())
                    log_sum = math.log(top) + math.log(float((halves / top).sum())) if top > 0 else -math.inf
                if earliest is None and log_sum > log_largest:
                    earliest = ((epoch, step), count)
                if log_sum - math.log(n) > log_largest:
                    assert earliest is not None
                    return earliest[0], (epoch, step), count - earliest[1]
    raise AssertionError("the reference did not diverge")


CASES = {
    "book-lr3-float32": (lambda: book_data("float32"), 3.0, 10, "float32"),
    "book-lr3-float64": (lambda: book_data("float64"), 3.0, 10, "float64"),
    "ohm-lr0.03-float32": (ohm_data, 0.03, 10, "float32"),
    "ohm-lr0.01-batch7-float64": (ohm_data, 0.01, 7, "float64"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_divergence_is_reported_where_it_happens(backend: str, case: str) -> None:
    make_data, lr, batch_size, dtype = CASES[case]
    X, y = make_data()
    earliest, latest, between = reference_divergence(
        X, y, lr=lr, batch_size=batch_size, seed=0, epochs=10, dtype=dtype
    )
    assert between <= 3 and earliest[0] == latest[0]  # the reference pins the step down
    with pytest.warns(polylin.StabilityWarning), pytest.raises(polylin.DivergenceError) as info:
        polylin.fit(X, y, backend=backend, lr=lr, batch_size=batch_size, epochs=10, dtype=dtype)
    error = info.value
    epoch = error.epoch
    assert earliest <= (error.epoch, error.step) <= latest
    message = str(error)
    assert f"at epoch {epoch}, step {error.step} (lr={lr})" in message
    assert "Lower the learning rate, or standardise the features" in message
    assert ".last_finite_w and .last_finite_b" in message

    # The last finite parameters are those after the last complete epoch (the initial ones
    # when the first epoch diverged), bitwise what a fit of that many epochs returns.
    if epoch == 1:
        w0, b0 = initial_parameters(0, X.shape[1], "normal")
        expected_w, expected_b = w0.astype(dtype), float(np.asarray(b0, dtype=dtype)[0])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", polylin.StabilityWarning)
            before = polylin.fit(
                X, y, backend=backend, lr=lr, batch_size=batch_size, epochs=epoch - 1, dtype=dtype
            )
        expected_w, expected_b = before.w, before.b
    assert error.last_finite_w.tobytes() == expected_w.tobytes()
    assert error.last_finite_b == expected_b
    assert np.isfinite(error.last_finite_w).all()
    assert error.result is not None and error.result.epochs_completed == epoch - 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["book-lr3-float32", "ohm-lr0.03-float32"])
def test_on_divergence_stop_returns_the_last_finite_epoch(backend: str, case: str) -> None:
    make_data, lr, batch_size, dtype = CASES[case]
    X, y = make_data()
    earliest, latest, _ = reference_divergence(
        X, y, lr=lr, batch_size=batch_size, seed=0, epochs=10, dtype=dtype
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # stopping warns once, and check_stability=False is quiet
        result = polylin.fit(
            X, y, backend=backend, lr=lr, batch_size=batch_size, epochs=10, dtype=dtype,
            on_divergence="stop", check_stability=False,
        )  # fmt: skip
    assert [w.category for w in caught] == [polylin.DivergenceWarning]
    advice = str(caught[0].message)
    assert "Lower the learning rate, or standardise the features" in advice
    assert f"step {result.diverged_at[1]}" in advice and "diverged_at" in advice
    assert result.diverged_at is not None
    assert earliest <= result.diverged_at <= latest
    assert result.epochs_completed == result.diverged_at[0] - 1
    assert np.isfinite(result.w).all() and math.isfinite(result.b)
    assert np.isfinite(result.losses).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_divergence_in_a_later_epoch(backend: str) -> None:
    """Full-batch GD at lr = 2.5, above the bound (1.89): the error grows by |1 − 2.5·1.056| ≈ 1.64
    per step and overflows float32 dozens of epochs later."""
    X, y = book_data("float32")
    earliest, latest, between = reference_divergence(
        X, y, lr=2.5, batch_size=1000, seed=0, epochs=200, dtype="float32"
    )
    assert earliest[0] > 50 and between <= 8
    with pytest.warns(polylin.StabilityWarning):
        result = polylin.fit(X, y, backend=backend, lr=2.5, batch_size=1000, epochs=200, on_divergence="stop")
    assert result.diverged_at is not None
    assert earliest <= result.diverged_at <= latest
    assert result.diverged_at[1] == 1  # one step per epoch
    assert result.epochs_completed == result.diverged_at[0] - 1
    # The loss was growing, epoch after epoch, before it overflowed.
    assert (np.diff(result.losses[-5:]) > 0).all()


# -- the stability bound, before training -------------------------------------------------
def exact_curvature(X: np.ndarray, fit_intercept: bool = True) -> float:
    A = X.astype(np.float64)
    if fit_intercept:
        A = np.hstack([A, np.ones((A.shape[0], 1))])
    return float(np.linalg.eigvalsh(A.T @ A / A.shape[0]).max())


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("data", [book_data, ohm_data], ids=["book", "ohm"])
def test_power_method_estimate_matches_the_eigenvalue(data: object, fit_intercept: bool) -> None:
    X, _ = data()  # type: ignore[operator]
    estimate = largest_curvature(X, fit_intercept=fit_intercept)
    assert estimate == pytest.approx(exact_curvature(X, fit_intercept), rel=1e-4)
    assert largest_curvature(X, fit_intercept=fit_intercept) == estimate  # deterministic


def test_book_bound_is_about_two() -> None:
    X, _ = book_data()
    assert 1.8 < stability_bound(X) < 2.0  # λ_max ≈ 1.06 for N(0, 1) features and the intercept


def test_sampled_estimate_on_many_rows() -> None:
    # 100 000 rows of 63 features: the estimate uses a sample of 65 536 of them.
    rng = np.random.default_rng(1)
    X = rng.normal(0.0, 1.0, (100_000, 63))
    X[:, 1] *= 10.0
    X[:, 2] += 5.0
    assert sample_size(*X.shape) < X.shape[0]
    assert largest_curvature(X) == pytest.approx(exact_curvature(X), rel=0.05)
    assert largest_curvature(X) == largest_curvature(X)


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e30])
def test_estimate_at_extreme_magnitudes(scale: float) -> None:
    X, _ = book_data("float64")
    X = X * scale
    assert largest_curvature(X, fit_intercept=False) == pytest.approx(
        exact_curvature(X, fit_intercept=False), rel=1e-4
    )


def test_estimate_beyond_float64_and_of_zeros() -> None:
    X, _ = book_data("float64")
    assert largest_curvature(X * 1e200) == math.inf  # λ ~ 1e400: the bound is then 0
    assert stability_bound(X * 1e200) == 0.0
    assert stability_bound(np.zeros((5, 2)), fit_intercept=False) == math.inf
    assert largest_curvature(np.zeros((5, 2))) == pytest.approx(1.0)  # only the intercept's ones


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["squared", "huber"])
def test_stability_warning_fires_on_the_book_at_lr_3(backend: str, loss: str) -> None:
    with pytest.warns(polylin.StabilityWarning) as record:
        polylin.fit(backend=backend, lr=3.0, loss=loss, epochs=1, on_divergence="stop")
    message = str(next(w.message for w in record if w.category is polylin.StabilityWarning))
    assert message.startswith("lr=3 is above 2/λ_max = 1.89")
    assert "λ_max = 1.06" in message
    assert "Use a learning rate below 1.89, e.g. lr=0.95, or standardise the features" in message
    assert "check_stability=False" in message
    assert record[0].filename == __file__  # it points at the caller's line


@pytest.mark.parametrize("backend", BACKENDS)
def test_stability_warning_on_the_ohm_data(backend: str) -> None:
    X, y = ohm_data()
    with pytest.warns(polylin.StabilityWarning, match=r"lr=0.03 is above 2/λ_max = 0.000591"):
        polylin.fit(X, y, backend=backend, on_divergence="stop")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the forum's lr = 0.0003 is below the bound and converges
        result = polylin.fit(X, y, backend=backend, lr=0.0003, epochs=3)
    assert abs(float(result.w[0]) - 1.0) < 0.01


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "options",
    [{"lr": 0.03}, {"lr": 1.5}, {"lr": 3.0, "check_stability": False}, {"lr": 3.0, "loss": "absolute"}],
    ids=["lr0.03", "lr1.5", "disabled", "absolute-loss"],
)
def test_stability_warning_stays_quiet(backend: str, options: dict[str, object]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", polylin.StabilityWarning)
        polylin.fit(backend=backend, epochs=1, on_divergence="stop", **options)  # type: ignore[arg-type]


def test_bound_without_intercept_ignores_the_ones_column() -> None:
    X, _ = ohm_data()
    mean_square = float(np.mean(X.astype(np.float64) ** 2))  # λ_max of a single column is its mean square
    with pytest.warns(polylin.StabilityWarning, match=r"largest eigenvalue of XᵀX/n\); training"):
        bound = warn_if_unstable(X, 1.0, loss="squared", fit_intercept=False)
    assert bound == pytest.approx(2.0 / mean_square, rel=1e-9)
    assert warn_if_unstable(X, 1.0, loss="absolute", fit_intercept=False) is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["squared", "absolute", "huber"])
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("where", ["w0", "w1", "b"])
def test_a_non_finite_parameter_makes_the_full_data_loss_non_finite(
    backend: str, loss: str, bad: float, where: str
) -> None:
    """The training loop detects divergence from the full-data loss alone (polylin.training.train):
    that is sound only if any non-finite parameter makes the loss non-finite, also through a
    feature column of zeros (0·∞ is NaN) and through a zero weight elsewhere."""
    from polylin.backends import get_backend
    from polylin.losses import get_loss
    from polylin.objective import Objective

    X = np.array([[0.0, 1.0], [0.0, -2.0], [0.0, 0.5]], dtype=np.float32)  # column 0 is all zeros
    y = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    w, b = np.zeros(2), np.zeros(1)
    {"w0": w, "w1": w, "b": b}[where][{"w0": 0, "w1": 1, "b": 0}[where]] = bad
    be = get_backend(backend)
    with be.context():
        objective = Objective(be.xp, get_loss(loss))
        params = be.parameters(w, b, trainable=False)
        value = float(be.to_numpy(objective.mean(params, be.asarray(X), be.asarray(y))))
    assert not math.isfinite(value), f"{where}={bad} left the {loss} loss finite ({value}) on {backend}"
