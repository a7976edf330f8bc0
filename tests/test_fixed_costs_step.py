"""The per-fit and per-step shortcuts of the eager and per-step paths compute what the plain loop does.

JAX's per-step path runs its steps on the parameters joined into one vector, with the batch's rows
passed from the host; torch's epoch splits the order once and runs the hand-derived step in
``inference_mode``; a compiling backend's cache keeps one compiled epoch for equal steps, and drops
the least recently used.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import backend_params

from polylin.backends import get_backend
from polylin.backends.base import run_steps
from polylin.batching import BatchLayout, batch_bounds
from polylin.losses import get_loss
from polylin.objective import Objective
from polylin.randomness import epoch_order
from polylin.training import sgd_step

N, D, BATCH = 203, 3, 10  # a short last batch


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(N, D))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.3


def _epochs(be, run_epoch, w0, b0, trainable, order_of):  # type: ignore[no-untyped-def]
    params = be.parameters(w0, b0, trainable=trainable)
    losses = []
    for epoch in range(3):
        params, value = run_epoch(params, order_of(epoch_order(5, epoch, N)))
        losses.append(float(be.to_numpy(value)))
    return [np.array(be.to_numpy(p)) for p in params], losses


@pytest.mark.parametrize("loss", ["squared", "huber"])
@pytest.mark.parametrize("grad", ["autodiff", "analytic"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("backend", backend_params(["jax", "torch"]))
def test_the_epoch_runner_is_the_plain_loop_bit_for_bit(
    backend: str, grad: str, loss: str, fit_intercept: bool
) -> None:
    """torch's epoch is the plain loop shared by the eager backends (``run_steps``, a step at a
    time, outside any grad mode) of its fused step; JAX's per-step epoch on a host order (θ joined,
    rows from the host) is its per-step epoch on an order already on the device (the step on
    ``(w, b)``, batches cut there)."""
    options = {"fused_epoch": False} if backend == "jax" else {}
    be = get_backend(backend, dtype="float64", **options)
    X_host, y_host = _data()
    w0, b0 = np.array([0.1, 0.0, -0.1]), np.array([0.05])
    trainable = grad == "autodiff"
    with be.context():
        objective = Objective(be.xp, get_loss(loss), fit_intercept=fit_intercept)
        step = sgd_step(be, objective, grad, 0.01)
        X, y = be.device_data(X_host, y_host)
        run_epoch = be.epoch_runner(step, objective.mean, X, y, BatchLayout(N, BATCH))
        have, losses = _epochs(be, run_epoch, w0, b0, trainable, lambda order: order)
        if backend == "jax":
            want, want_losses = _epochs(be, run_epoch, w0, b0, trainable, be.asarray)
        else:
            from polylin.backends.torch_backend import _fused_step

            bounds, fused = batch_bounds(N, BATCH), _fused_step(step)

            def plain(params, order):  # type: ignore[no-untyped-def]
                params = run_steps(fused, params, X, y, be.asarray(order), bounds)
                return params, objective.mean(params, X, y)

            want, want_losses = _epochs(be, plain, w0, b0, trainable, lambda order: order)
            params, _ = run_epoch(be.parameters(w0, b0, trainable=trainable), epoch_order(5, 0, N))
            assert not any(p.is_inference() for p in params)  # ordinary tensors, as the fit's were
    for h, w in zip(have, want, strict=True):
        assert h.tobytes() == w.tobytes()
    assert losses == want_losses
    np.testing.assert_array_equal(be.to_numpy(X), X_host)  # the data untouched


@pytest.mark.parametrize("backend", backend_params(["jax"]))
def test_jax_per_step_epochs_take_parameters_from_anywhere(backend: str) -> None:
    """An epoch handed other parameters than the last one returned (host arrays, device arrays,
    the same ones again) starts from them, and gives the same bits as the first time."""
    import jax

    be = get_backend(backend, fused_epoch=False)
    X_host, y_host = _data()
    objective = Objective(be.xp, get_loss("squared"))
    step = sgd_step(be, objective, "autodiff", 0.01)
    X, y = be.device_data(X_host, y_host)
    assert all(isinstance(a, jax.Array) for a in (X, y))
    run_epoch = be.epoch_runner(step, objective.mean, X, y, BatchLayout(N, BATCH))
    order = epoch_order(1, 0, N)
    start = be.parameters(np.zeros(D), np.zeros(1), trainable=True)
    first, loss = run_epoch(start, order)
    again, loss_again = run_epoch(start, order)  # host parameters again
    from_device, _ = run_epoch(tuple(jax.device_put(np.asarray(p)) for p in start), order)
    after, _ = run_epoch(first, order)  # the parameters the last epoch returned: the next epoch
    after_again, _ = run_epoch(first, order)  # the same ones again
    for params in (again, from_device):
        assert all(np.array_equal(np.asarray(p), np.asarray(q)) for p, q in zip(params, first, strict=True))
    assert float(loss) == float(loss_again)
    for p, q in zip(after, after_again, strict=True):
        assert np.asarray(p).tobytes() == np.asarray(q).tobytes()
    assert not np.array_equal(np.asarray(after[0]), np.asarray(first[0]))


@pytest.mark.parametrize("backend", backend_params(["jax"]))
def test_equal_steps_share_one_compiled_epoch(backend: str) -> None:
    from polylin.backends import jax_backend

    def runner_parts(lr: float):  # type: ignore[no-untyped-def]
        be = get_backend(backend, fused_epoch=False)
        objective = Objective(be.xp, get_loss("squared"))
        return be, objective, sgd_step(be, objective, "analytic", lr)

    (be, objective, step), (be2, objective2, step2) = runner_parts(0.01), runner_parts(0.01)
    other = runner_parts(0.02)[2]
    assert step == step2 and hash(step) == hash(step2) and step is not step2
    assert step != other and step != object()
    layout = BatchLayout(N, BATCH)

    def built(be, objective, step):  # type: ignore[no-untyped-def]
        key = ("epoch", step, jax_backend._function_key(objective.mean), layout, be)
        return jax_backend._cached(key, lambda: be._stepwise_epoch(step, objective.mean, layout))

    first = built(be, objective, step)
    assert built(be2, objective2, step2) is first
    assert built(be, objective, other) is not first


def test_the_compiled_cache_keeps_the_most_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from polylin.backends import jax_backend

    monkeypatch.setattr(jax_backend, "_COMPILED", {})
    monkeypatch.setattr(jax_backend, "CACHE_SIZE", 3)
    for key in "abc":
        jax_backend._cached(key, lambda key=key: key.upper())
    assert jax_backend._cached("a", lambda: "rebuilt") == "A"  # a hit, now the most recent
    jax_backend._cached("d", lambda: "D")  # drops "b", the least recently used
    assert list(jax_backend._COMPILED) == ["c", "a", "d"]
    assert jax_backend._cached("b", lambda: "rebuilt") == "rebuilt"
