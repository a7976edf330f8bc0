"""Autodiff gradients equal the hand-derived ones, and both equal finite differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import AUTODIFF_BACKENDS, backend_params

import polylin
from polylin.backends import get_backend
from polylin.losses import LOSSES, get_loss
from polylin.objective import Objective
from polylin.tolerances import FINITE_DIFFERENCE_RTOL, FINITE_DIFFERENCE_STEP, tolerance_for

RNG = np.random.default_rng(11)
X_BATCH = RNG.normal(size=(13, 3))  # 13: not a "nice" batch size
Y_BATCH = RNG.normal(size=13) * 3
W_AT = RNG.normal(size=3)
B_AT = np.array([0.3])


def numpy_gradient(loss: str) -> tuple[np.ndarray, np.ndarray]:
    be = get_backend("numpy", dtype="float64")
    objective = Objective(be.xp, get_loss(loss))
    return objective.gradient((W_AT.copy(), B_AT.copy()), X_BATCH, Y_BATCH)


def finite_difference_gradient(loss: str) -> np.ndarray:
    be = get_backend("numpy", dtype="float64")
    objective = Objective(be.xp, get_loss(loss))
    theta = np.concatenate([W_AT, B_AT])
    h = FINITE_DIFFERENCE_STEP
    grad = np.empty_like(theta)
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        f_up = objective((up[:-1], up[-1:]), X_BATCH, Y_BATCH)
        f_down = objective((down[:-1], down[-1:]), X_BATCH, Y_BATCH)
        grad[i] = (f_up - f_down) / (2 * h)
    return grad


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_hand_derived_gradient_matches_finite_differences(loss: str) -> None:
    gw, gb = numpy_gradient(loss)
    np.testing.assert_allclose(
        np.concatenate([gw, gb]), finite_difference_gradient(loss), rtol=FINITE_DIFFERENCE_RTOL
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("backend", backend_params(AUTODIFF_BACKENDS))
def test_autodiff_matches_hand_derived(backend: str, loss: str, dtype: str) -> None:
    be = get_backend(backend, dtype=dtype)
    objective = Objective(be.xp, get_loss(loss))
    with be.context():
        params = be.parameters(W_AT, B_AT, trainable=True)
        X, y = be.asarray(X_BATCH), be.asarray(Y_BATCH)
        value, (gw, gb) = be.value_and_grad(objective)(params, X, y)
        autodiff = np.concatenate([be.to_numpy(gw), be.to_numpy(gb)]).astype(np.float64)
        hand_w, hand_b = objective.gradient(be.parameters(W_AT, B_AT, trainable=False), X, y)
        hand = np.concatenate([be.to_numpy(hand_w), be.to_numpy(hand_b)]).astype(np.float64)
        value = float(be.to_numpy(value))
    reference = np.concatenate(numpy_gradient(loss))
    rtol = tolerance_for(dtype).grad_rtol
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(autodiff, reference, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(hand, reference, rtol=0, atol=rtol * scale)
    if dtype == "float64":
        np.testing.assert_allclose(autodiff, finite_difference_gradient(loss), rtol=FINITE_DIFFERENCE_RTOL)
    numpy_value = Objective(get_backend("numpy", dtype="float64").xp, get_loss(loss))(
        (W_AT, B_AT), X_BATCH, Y_BATCH
    )
    assert value == pytest.approx(float(numpy_value), rel=rtol)


@pytest.mark.parametrize("backend", backend_params(AUTODIFF_BACKENDS))
def test_no_gradient_accumulates_across_steps(backend: str) -> None:
    """Two identical gradient calls give identical gradients (no torch-style accumulation)."""
    be = get_backend(backend, dtype="float64")
    objective = Objective(be.xp, get_loss("squared"))
    with be.context():
        params = be.parameters(W_AT, B_AT, trainable=True)
        X, y = be.asarray(X_BATCH), be.asarray(Y_BATCH)
        grad = be.grad(objective)
        first = [be.to_numpy(g).copy() for g in grad(params, X, y)]
        second = [be.to_numpy(g).copy() for g in grad(params, X, y)]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_squared_loss_carries_the_half() -> None:
    be = get_backend("numpy", dtype="float64")
    objective = Objective(be.xp, get_loss("squared"))
    X = np.array([[1.0], [2.0]])
    value = objective((np.array([1.0]), np.array([0.0])), X, np.array([0.0, 0.0]))
    assert value == pytest.approx((0.5 * 1 + 0.5 * 4) / 2)


def test_huber_is_quadratic_inside_and_linear_outside() -> None:
    xp = get_backend("numpy", dtype="float64").xp
    huber = get_loss("huber")
    r = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(huber.pointwise(xp, r), [2.5, 0.125, 0.0, 0.125, 2.5])
    np.testing.assert_allclose(huber.derivative(xp, r), [-1.0, -0.5, 0.0, 0.5, 1.0])


def test_analytic_and_autodiff_fits_agree_on_torch_style_short_batch() -> None:
    """A short last batch is normalised by its own size: 1001 examples, batch 10."""
    X, y = polylin.synthetic_data(n=1001, seed=4, dtype="float64")
    full = polylin.fit(X, y, backend="numpy", batch_size=10, dtype="float64", epochs=1, shuffle=False)
    # Reproduce the last step by hand: the last batch has exactly one example.
    head = polylin.fit(X[:1000], y[:1000], backend="numpy", batch_size=10, dtype="float64",
                       epochs=1, shuffle=False)  # fmt: skip
    r = X[1000] @ head.w + head.b - y[1000]
    expected_w = head.w - 0.03 * r * X[1000]  # divided by 1, the actual batch size
    np.testing.assert_allclose(full.w, expected_w, rtol=1e-12)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("backend", backend_params(AUTODIFF_BACKENDS))
def test_summed_loss_gradients_are_m_times_the_mean_ones(backend: str, loss: str) -> None:
    """The training step differentiates the batch's summed loss and divides the step by m."""
    be = get_backend(backend, dtype="float64")
    with be.context():  # JAX: float64 enabled
        check_summed_gradients(be, Objective.for_backend(be, get_loss(loss)))


def check_summed_gradients(be: Any, objective: Objective) -> None:
    params = be.parameters(W_AT, B_AT, trainable=False)
    X, y = be.asarray(X_BATCH), be.asarray(Y_BATCH)
    m = X_BATCH.shape[0]
    mean = [be.to_numpy(g) for g in objective.gradient(params, X, y)]
    by_hand = [be.to_numpy(g) for g in objective.total_gradient(params, X, y)]
    trainable = be.parameters(W_AT, B_AT, trainable=True)
    autodiff = [be.to_numpy(g) for g in be.grad(objective.total)(trainable, X, y)]
    rtol = tolerance_for("float64").grad_rtol
    for mean_g, hand_g, auto_g in zip(mean, by_hand, autodiff, strict=True):
        np.testing.assert_allclose(hand_g, m * mean_g, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(auto_g, hand_g, rtol=rtol, atol=rtol)
    total = float(np.asarray(be.to_numpy(objective.total(params, X, y))).reshape(-1)[0])
    value = float(np.asarray(be.to_numpy(objective(params, X, y))).reshape(-1)[0])
    assert total == pytest.approx(m * value, rel=1e-12)


@pytest.mark.parametrize("backend", backend_params())
def test_objectives_of_two_backend_instances_compare_equal(backend: str) -> None:
    """Compiled-function caches are keyed by the objective: a new fit's must equal the last one's."""
    first, second = get_backend(backend), get_backend(backend)
    loss = get_loss("squared")
    one, other = (Objective.for_backend(be, loss) for be in (first, second))
    assert one == other
    if backend == "jax":  # jax.jit caches by the function's hash
        assert hash(one) == hash(other)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trainable", [False, True])
@pytest.mark.parametrize("backend", backend_params())
def test_a_backends_fused_residual_is_the_plain_one(backend: str, trainable: bool, dtype: str) -> None:
    """``Objective.for_backend`` takes the backend's kernels (torch subtracts ``y`` in place on the
    product's fresh output); the residual, the loss and its gradient stay those of ``X w + b − y``,
    and the data are left as they were."""
    be = get_backend(backend, dtype=dtype)
    trainable = trainable and be.has_autodiff
    with be.context():
        fused = Objective.for_backend(be, get_loss("huber"))
        plain = Objective(be.xp, get_loss("huber"))
        assert fused.affine is be.affine and fused.fused_residual is be.fused_residual
        X, y = be.asarray(X_BATCH), be.asarray(Y_BATCH)
        params = be.parameters(W_AT, B_AT, trainable=trainable)
        rtol = tolerance_for(dtype).grad_rtol
        np.testing.assert_allclose(
            be.to_numpy(fused.residual(params, X, y)), be.to_numpy(plain.residual(params, X, y)), rtol=rtol
        )
        if trainable:
            got, want = (be.grad(objective.total)(params, X, y) for objective in (fused, plain))
            for g_fused, g_plain in zip(got, want, strict=True):
                np.testing.assert_allclose(be.to_numpy(g_fused), be.to_numpy(g_plain), rtol=rtol, atol=rtol)
        np.testing.assert_array_equal(be.to_numpy(X), X_BATCH.astype(dtype))
        np.testing.assert_array_equal(be.to_numpy(y), Y_BATCH.astype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trainable", [False, True])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("backend", backend_params())
def test_descend_is_the_update_along_the_hand_derived_gradient(
    backend: str, loss: str, trainable: bool, dtype: str
) -> None:
    """``Backend.descend`` (the analytic step; torch fuses it into ``addmv_``) moves the parameters
    exactly as ``update`` does along ``Objective.total_gradient``, in place where the framework allows."""
    be = get_backend(backend, dtype=dtype)
    trainable = trainable and be.has_autodiff  # without autodiff, parameters are never trainable
    lr = 0.05
    with be.context():
        objective = Objective.for_backend(be, get_loss(loss))
        X, y = be.asarray(X_BATCH), be.asarray(Y_BATCH)
        along = be.parameters(W_AT, B_AT, trainable=trainable)
        g = objective.residual_derivative(along, X, y)
        expected = [
            np.array(be.to_numpy(p), dtype=np.float64)
            for p in be.update(
                be.parameters(W_AT, B_AT, trainable=False),
                objective.total_gradient(be.parameters(W_AT, B_AT, trainable=False), X, y),
                lr,
            )
        ]
        moved = be.descend(along, g, X, lr)
        got = [np.array(be.to_numpy(p), dtype=np.float64) for p in moved]
    tol = tolerance_for(dtype)
    for have, want, start in zip(got, expected, (W_AT, B_AT), strict=True):
        assert not np.allclose(want, start)  # the step moved something
        assert tol.params_close(have, want), (have, want)
