"""Seed 000's parameter shapes are accepted, and typos get a "did you mean"."""

from __future__ import annotations

import re

import numpy as np
import pytest

import polylin
from polylin.dtypes import canonical_dtype
from polylin.losses import get_loss
from polylin.shapes import intercept, weight_vector
from polylin.suggest import did_you_mean

# -- polylin.shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "w", [[1.0, -3.4], np.array([1.0, -3.4]), np.array([[1.0], [-3.4]]), [[1.0], [-3.4]]]
)
def test_weight_vector_takes_a_vector_or_a_column(w: object) -> None:
    out = weight_vector(w)
    assert out.shape == (2,) and out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, -3.4])


@pytest.mark.parametrize(
    ("w", "shape"),
    [
        (np.ones((1, 2)), "(1, 2)"),
        (np.ones((2, 2)), "(2, 2)"),
        (3.0, "()"),
        ([], "(0,)"),
        (np.ones((2, 1, 1)), "(2, 1, 1)"),
    ],
)
def test_weight_vector_rejects_other_shapes_naming_the_accepted_ones(w: object, shape: str) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(f"w must have shape (d,) or (d, 1) with d >= 1 weights; got shape {shape}"),
    ):
        weight_vector(w)


def test_a_row_of_weights_is_called_a_row() -> None:
    with pytest.raises(ValueError, match="a row; pass it as a vector or a column"):
        weight_vector(np.ones((1, 3)), name="true_w")


@pytest.mark.parametrize(
    "b", [0.8, 1, np.float32(0.8), np.array(0.8), np.array([0.8]), [0.8], np.array([[0.8]])]
)
def test_intercept_takes_a_number_or_one_element(b: object) -> None:
    out = intercept(b)
    assert type(out) is float
    assert out == pytest.approx(0.8 if b != 1 else 1.0)


@pytest.mark.parametrize("b", [np.array([0.8, 0.1]), np.ones((1, 2)), np.ones((1, 1, 1)), []])
def test_intercept_rejects_more_than_one_number(b: object) -> None:
    with pytest.raises(
        ValueError, match=re.escape("b must be a number, or an array of shape (1,) or (1, 1); got shape")
    ):
        intercept(b)


def test_strings_and_non_finite_values_are_named() -> None:
    with pytest.raises(TypeError, match=r"w must be numbers of shape .*; got the string '1,2'"):
        weight_vector("1,2")
    with pytest.raises(TypeError, match=r"true_b must be a number.*got the string 'x'"):
        intercept("x", name="true_b")
    with pytest.raises(ValueError, match="w must be finite"):
        weight_vector([1.0, np.nan])
    with pytest.raises(ValueError, match="b must be finite"):
        intercept(np.inf)


def test_synthetic_data_takes_seed_000s_shapes() -> None:
    # The forum post's convention: w a column (d, 1), b an array of shape (1,).
    X_col, y_col = polylin.synthetic_data(np.array([1.0, -3.4]).reshape(-1, 1), np.array([0.8]), 1000)
    X, y = polylin.synthetic_data(np.array([1.0, -3.4]), 0.8, 1000)
    assert X_col.shape == (1000, 2) and y_col.shape == (1000,)
    np.testing.assert_array_equal(X_col, X)
    np.testing.assert_array_equal(y_col, y)
    _, y_11 = polylin.synthetic_data([[1.0], [-3.4]], [[0.8]], 1000)
    np.testing.assert_array_equal(y_11, y)


def test_synthetic_data_still_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match=re.escape("w must have shape (d,) or (d, 1)")):
        polylin.synthetic_data(np.ones((2, 2)), 0.0, 10)
    with pytest.raises(
        ValueError, match=re.escape("b must be a number, or an array of shape (1,) or (1, 1)")
    ):
        polylin.synthetic_data([1.0, 2.0], [1.0, 2.0], 10)


# -- polylin.suggest -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "choices", "suffix"),
    [
        ("jxa", ("numpy", "jax", "torch"), " Did you mean 'jax'?"),
        ("Torch", ("numpy", "jax", "torch"), " Did you mean 'torch'?"),
        ("array_api", ("numpy", "array-api"), " Did you mean 'array-api'?"),
        ("sqaured", ("squared", "absolute", "huber"), " Did you mean 'squared'?"),
        ("tensorflow", ("numpy", "jax", "torch"), ""),
        ("", ("numpy",), ""),
        (None, ("numpy",), ""),
        (3, ("numpy",), ""),
    ],
)
def test_did_you_mean(given: object, choices: tuple[str, ...], suffix: str) -> None:
    assert did_you_mean(given, choices) == suffix


def test_loss_typo_suggests_the_loss() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            "loss='absolut' is not a known loss; choose one of ['absolute', 'huber', 'squared']. "
            "Did you mean 'absolute'?"
        ),
    ):
        get_loss("absolut")
    with pytest.raises(ValueError, match="not a known loss") as info:
        get_loss("mse")
    assert "Did you mean" not in str(info.value)


def test_dtype_typo_suggests_but_a_real_unsupported_dtype_does_not() -> None:
    with pytest.raises(ValueError, match=re.escape("Did you mean 'float32'?")):
        canonical_dtype("flaot32")
    for real in ("float16", "int32", np.int64):
        with pytest.raises(ValueError, match="is not supported") as info:
            canonical_dtype(real)
        assert "Did you mean" not in str(info.value)
