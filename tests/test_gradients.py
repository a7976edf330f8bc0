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
    """The hand-derived gradient of the *mean* loss: ``Objective.gradient`` (of the sum) over m."""
    be = get_backend("numpy", dtype="float64")
    objective = Objective(be.xp, get_loss(loss))
    grad_w, grad_b = objective.gradient((W_AT.copy(), B_AT.copy()), X_BATCH, Y_BATCH)
    m = X_BATCH.shape[0]
    return grad_w / m, grad_b / m


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
        gw, gb = be.gradient(objective.mean)(params, X, y)
        autodiff = np.concatenate([be.to_numpy(gw), be.to_numpy(gb)]).astype(np.float64)
        hand_w, hand_b = objective.gradient(be.parameters(W_AT, B_AT, trainable=False), X, y)
        hand = np.concatenate([be.to_numpy(hand_w), be.to_numpy(hand_b)]).astype(np.float64) / len(Y_BATCH)
        value = float(np.asarray(be.to_numpy(objective.mean(params, X, y))).reshape(-1)[0])
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
        grad = be.gradient(objective.mean)
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
        check_summed_gradients(be, Objective(be.xp, get_loss(loss)))


def check_summed_gradients(be: Any, objective: Objective) -> None:
    params = be.parameters(W_AT, B_AT, trainable=False)
    X, y = be.asarray(X_BATCH), be.asarray(Y_BATCH)
    m = X_BATCH.shape[0]
    trainable = be.parameters(W_AT, B_AT, trainable=True)
    mean = [be.to_numpy(g) for g in be.gradient(objective.mean)(trainable, X, y)]
    by_hand = [be.to_numpy(g) for g in objective.gradient(params, X, y)]
    autodiff = [be.to_numpy(g) for g in be.gradient(objective.total)(trainable, X, y)]
    rtol = tolerance_for("float64").grad_rtol
    for mean_g, hand_g, auto_g in zip(mean, by_hand, autodiff, strict=True):
        np.testing.assert_allclose(hand_g, m * mean_g, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(auto_g, hand_g, rtol=rtol, atol=rtol)
    total = float(np.asarray(be.to_numpy(objective.total(params, X, y))).reshape(-1)[0])
    value = float(np.asarray(be.to_numpy(objective(params, X, y))).reshape(-1)[0])
    assert total == pytest.approx(m * value, rel=1e-12)


@pytest.mark.parametrize("backend", backend_params())
def test_objectives_and_steps_of_two_backend_instances_compare_equal(backend: str) -> None:
    """Compiled-function caches are keyed by the backend, the objective and the step: a new fit's
    must equal the last one's."""
    from polylin.training import sgd_step

    first, second = get_backend(backend), get_backend(backend)
    loss = get_loss("squared")
    one, other = (Objective(be.xp, loss) for be in (first, second))
    assert first == second and hash(first) == hash(second)
    assert one == other
    if backend == "jax":  # jax.jit caches by the function's hash
        assert hash(one) == hash(other)
    for grad in ("autodiff", "analytic") if first.has_autodiff else ("analytic",):
        steps = [sgd_step(be, objective, grad, 0.03) for be, objective in ((first, one), (second, other))]
        assert steps[0] == steps[1] and hash(steps[0]) == hash(steps[1])
    assert get_backend(backend, dtype="float64") != first
    if backend == "jax":  # a subclass's own settings are part of the (remembered) identity
        per_step = get_backend(backend, fused_epoch=False)
        assert per_step != first and per_step == get_backend(backend, fused_epoch=False)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trainable", [False, True])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("backend", backend_params())
def test_a_step_is_the_update_along_the_gradient_and_leaves_the_data_alone(
    backend: str, loss: str, trainable: bool, dtype: str
) -> None:
    """The one SGD step (``training.sgd_step``) moves the parameters exactly as ``update`` does along
    the hand-derived gradient over m (autodiff's, when trainable), and leaves the data as they were."""
    from polylin.training import sgd_step

    be = get_backend(backend, dtype=dtype)
    trainable = trainable and be.has_autodiff  # without autodiff, parameters are never trainable
    lr, m = 0.05, len(Y_BATCH)
    with be.context():
        objective = Objective(be.xp, get_loss(loss))
        X, y = be.asarray(X_BATCH), be.asarray(Y_BATCH)
        expected = [
            np.array(be.to_numpy(p), dtype=np.float64)
            for p in be.update(
                be.parameters(W_AT, B_AT, trainable=False),
                objective.gradient(be.parameters(W_AT, B_AT, trainable=False), X, y),
                lr / m,
            )
        ]
        step = sgd_step(be, objective, "autodiff" if trainable else "analytic", lr)
        moved = step(be.parameters(W_AT, B_AT, trainable=trainable), X, y, be.asarray(np.arange(m)))
        got = [np.array(be.to_numpy(p), dtype=np.float64) for p in moved]
        np.testing.assert_array_equal(be.to_numpy(X), X_BATCH.astype(dtype))
        np.testing.assert_array_equal(be.to_numpy(y), Y_BATCH.astype(dtype))
    tol = tolerance_for(dtype)
    for have, want, start in zip(got, expected, (W_AT, B_AT), strict=True):
        assert not np.allclose(want, start)  # the step moved something
        assert tol.params_close(have, want), (have, want)


@pytest.mark.parametrize("backend", backend_params())
def test_without_intercept_the_gradient_of_b_is_zero_on_every_path(backend: str) -> None:
    """``fit_intercept=False``: ``b`` is not in the model, so neither gradient moves it."""
    be = get_backend(backend, dtype="float64")
    with be.context():
        objective = Objective(be.xp, get_loss("huber"), fit_intercept=False)
        X, y = be.asarray(X_BATCH), be.asarray(Y_BATCH)
        paths = [objective.gradient(be.parameters(W_AT, B_AT, trainable=False), X, y)]
        if be.has_autodiff:
            paths.append(be.gradient(objective.total)(be.parameters(W_AT, B_AT, trainable=True), X, y))
        for grad_w, grad_b in paths:
            assert float(np.abs(be.to_numpy(grad_b)).max()) == 0.0
            assert float(np.abs(be.to_numpy(grad_w)).max()) > 0.0


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("grad", ["autodiff", "analytic"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("backend", backend_params(["torch"]))
def test_torchs_fused_step_is_the_plain_step(backend: str, loss: str, grad: str, fit_intercept: bool) -> None:
    """torch's epoch runner runs the SGD step with fused kernels (``addmv``, ``addmv_``): the same
    parameters as the plain step, and the data untouched."""
    from polylin.backends.torch_backend import _fused_step
    from polylin.training import sgd_step

    be = get_backend(backend, dtype="float64")
    objective = Objective(be.xp, get_loss(loss), fit_intercept=fit_intercept)
    step = sgd_step(be, objective, grad, 0.05)
    fused = _fused_step(step)
    assert fused is not None
    X, y = be.asarray(X_BATCH), be.asarray(Y_BATCH)
    trainable = grad == "autodiff"
    plain_params = be.parameters(W_AT, B_AT, trainable=trainable)
    fused_params = be.parameters(W_AT, B_AT, trainable=trainable)
    for idx in (np.arange(5), np.arange(5, 13)):
        plain_params = step(plain_params, X, y, be.asarray(idx))
        fused_params = fused(fused_params, X, y, be.asarray(idx))
    for have, want in zip(fused_params, plain_params, strict=True):
        np.testing.assert_allclose(be.to_numpy(have), be.to_numpy(want), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(be.to_numpy(X), X_BATCH)
    np.testing.assert_array_equal(be.to_numpy(y), Y_BATCH)
    assert _fused_step(sgd_step(be, _Subclass(be.xp, get_loss(loss)), grad, 0.05)) is None


class _Subclass(Objective):
    """An objective of the user's: torch's fused step does not know it, so it runs the plain step."""
