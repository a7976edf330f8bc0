"""``polylin.fit``: validate, pick the backend, train with the shared loop, report."""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from polylin import streaming
from polylin.backends import backend_class, resolve_backend
from polylin.backends.base import Backend
from polylin.data import BOOK_N, BOOK_NOISE, BOOK_TRUE_B, BOOK_TRUE_W, synthetic_data
from polylin.distributed import launch_torch_workers, plan_workers
from polylin.dtypes import canonical_dtype
from polylin.errors import DivergenceError, DivergenceWarning, TrainingInterruptedWarning
from polylin.host_loss import on_numpy
from polylin.losses import Loss, get_loss
from polylin.objective import Objective
from polylin.randomness import INIT_SCHEMES, initial_parameters
from polylin.result import FitResult
from polylin.resume import ResumePoint, data_fingerprint, resume_point, warm_start_point
from polylin.shapes import intercept, weight_vector
from polylin.stability import warn_if_unstable
from polylin.streaming import is_out_of_core
from polylin.training import GRAD_MODES, EpochCallback, TrainingRun, train
from polylin.validation import Probe, check_choice, check_learning_rate, check_positive_int, check_seed

DIVERGENCE_POLICIES = ("raise", "stop")


def fit(
    X: Any = None,
    y: Any = None,
    *,
    backend: str = "numpy",
    lr: float = 0.03,
    batch_size: int = 10,
    epochs: int = 3,
    seed: int = 0,
    dtype: str = "float32",
    device: str | None = None,
    loss: str = "squared",
    shuffle: bool = True,
    init: str = "normal",
    fit_intercept: bool = True,
    grad: str | None = None,
    on_divergence: str = "raise",
    true_w: Sequence[float] | np.ndarray | None = None,
    true_b: float | None = None,
    on_epoch: EpochCallback | None = None,
    backend_options: Mapping[str, Any] | None = None,
    resume: str | os.PathLike[str] | FitResult | None = None,
    warm_start: FitResult | None = None,
    check_stability: bool = True,
    workers: int = 1,
    out_of_core_shuffle: str | None = None,
    loss_every: int = 1,
) -> FitResult:
    """Fit ``y ≈ X w + b`` by minibatch SGD on the chosen backend.

    With no ``X`` and ``y``, trains on the book's synthetic data
    (``w = [2, −3.4]``, ``b = 4.2``, noise σ = 0.01, n = 1000) drawn from ``seed``.

    Parameters
    ----------
    X, y:
        Training data: ``X`` of shape ``(n, d)``, ``y`` of shape ``(n,)`` or ``(n, 1)``,
        as NumPy arrays (or anything NumPy converts) or the chosen backend's own arrays.
        They are never modified. The backend's own arrays in the fit's dtype on its device
        are validated there and trained on as they are, without a copy (:mod:`polylin.resident`).
    backend:
        ``"numpy"``, ``"jax"``, ``"torch"``, ``"mxnet"``; ``"array-api"``, the
        hand-derived loop on X's own Array API namespace and device (dask,
        array-api-strict, CuPy, ...); or ``"auto"``, the backend X belongs to
        (see :func:`polylin.backends.backend_for`).
    lr, batch_size, epochs:
        Learning rate, examples per minibatch (``1 ≤ batch_size ≤ n``; the last
        batch of an epoch may be shorter) and passes over the data.
    seed:
        Seeds the data (when generated), the initial parameters and the batch order.
    dtype:
        ``"float32"`` (default) or ``"float64"``.
    device:
        ``"cpu"`` (default), ``"gpu"``/``"cuda"`` or ``"gpu:N"``.
    loss:
        ``"squared"`` (½(ŷ−y)², averaged over the batch), ``"absolute"`` or ``"huber"``.
    shuffle:
        Visit examples in a new random order each epoch (``False``: in data order).
    init:
        ``"normal"`` (``w ~ N(0, 0.01²)``, ``b = 0``) or ``"zeros"``.
    fit_intercept:
        ``False`` fits a line through the origin: ``b`` stays 0 (Ohm's law, V = IR).
    grad:
        ``"autodiff"`` (the framework differentiates; default where it can) or
        ``"analytic"`` (the hand-derived gradient; the only choice on NumPy).
    on_divergence:
        ``"raise"`` a :class:`~polylin.errors.DivergenceError`, or ``"stop"``: warn
        (:class:`~polylin.errors.DivergenceWarning`, with the same advice) and return
        the last finite epoch with ``diverged_at`` set.
    true_w, true_b:
        The generating parameters of your own data, if known, for the error report.
    on_epoch:
        Called as ``on_epoch(epoch, loss, seconds)`` after each epoch. Where the loss of large data
        runs beside the next epoch (see ``backend_options``), it is called once that epoch's steps
        are done, with the same values.
    backend_options:
        Extra keyword arguments for the backend: ``{"fused_epoch": False}`` on JAX, or
        ``{"host_loss": False}`` on NumPy, JAX, torch and MXNet, which keeps the full-data loss of
        large data on a CPU in the framework; by default NumPy evaluates it in place, beside the
        next epoch where a core is free (``docs/backends.md``). A key the backend does not take is
        refused with the ones it does.
    resume:
        A :class:`FitResult`, or the path of one saved with :meth:`FitResult.save`, to
        continue: training resumes after its last completed epoch and runs until
        ``epochs`` epochs in all. The data, loss, lr, batch size, seed, shuffle,
        intercept and dtype must be the checkpoint's (else a
        :class:`~polylin.errors.CheckpointError`); on the same backend the result is
        bitwise that of an uninterrupted run.
    warm_start:
        A :class:`FitResult` to continue on *this* data, which may differ from the data
        it was trained on (only the number of features must match): its parameters
        carry over and the epoch count, hence the batch order, continues. This is what
        :meth:`SGDLinearRegressor.partial_fit` uses.
    check_stability:
        Warn (:class:`~polylin.errors.StabilityWarning`) before training when ``lr`` is
        above ``2/λ_max``, the full-batch gradient-descent bound (see :mod:`polylin.stability`).
    workers:
        Data parallelism: split every global batch over ``workers`` devices
        (``backend="jax"``, :mod:`jax.sharding`; on the CPU polylin sets
        ``XLA_FLAGS=--xla_force_host_platform_device_count=k`` if jax is not yet
        imported) or processes (``backend="torch"``, :mod:`torch.distributed`: polylin
        starts them, or joins the group when run under ``torchrun``). The batches,
        learning rate, initial parameters and order are the one-process fit's, and
        so is the result, within the parity tolerances (see ``docs/scale.md``).
    out_of_core_shuffle:
        For ``X`` beyond memory (a dask array, or a memory map such as
        ``np.load(path, mmap_mode="r")``, larger than one block), which the fit reads block
        by block on any backend (:mod:`polylin.streaming`): ``"chunks"`` (the default:
        chunks in a random order, rows shuffled within blocks of them; streaming speed) or
        ``"exact"`` (the in-memory fit's batches; each epoch reads the data several times).
        With ``shuffle=False`` both equal the in-memory fit.
    loss_every:
        Evaluate the full-data loss after every ``loss_every``-th epoch (epochs ``k, 2k, ...``,
        counted from the first epoch) and after the last one, as ``1`` (the default, the book's
        loop) does after each. An epoch without it skips that pass over X and records NaN in
        ``losses`` (and in ``on_epoch``'s ``loss``); the parameters are the same. Such an epoch
        still checks that the parameters are finite, so a divergence is caught from them, or at
        the next evaluated loss.

    Notes
    -----
    A Ctrl-C during training stops it after the last completed epoch: the
    result has ``interrupted=True`` (and a
    :class:`~polylin.errors.TrainingInterruptedWarning` says so); save it with
    ``result.save(path)`` and continue with ``fit(..., resume=path)``.
    """
    backend, backend_options = resolve_backend(backend, X, backend_options)
    plan = plan_workers(backend, workers, device)  # before the backend imports jax: XLA_FLAGS
    cls = backend_class(backend) if isinstance(backend, str) else _unknown_backend(backend)
    if plan.backend_class is not None:
        cls, backend_options = plan.backend_class, {**backend_options, **plan.backend_options}
    options = _checked_options(cls, lr, batch_size, epochs, seed, loss, dtype, init, on_divergence, grad)
    lr, batch_size, epochs, seed, loss_fn, dtype, grad = options
    loss_every = check_positive_int(
        "loss_every", loss_every, "loss_every=1 (the default) evaluates the full-data loss after every epoch"
    )
    if resume is not None and warm_start is not None:
        raise ValueError(
            "Pass resume= (continue the same run) or warm_start= (continue on new data), not both."
        )
    be = cls(dtype=dtype, device=device, **_checked_backend_options(cls, backend_options))
    fresh = resume is None and warm_start is None
    initial = functools.cache(lambda d: initial_parameters(seed, d, init))  # drawn once, used twice
    probe = Probe(lambda d: initial(d)[0]) if fresh else None

    if X is None and y is None:
        true_w = np.asarray(BOOK_TRUE_W) if true_w is None else true_w
        true_b = (BOOK_TRUE_B if fit_intercept else 0.0) if true_b is None else true_b
        X_host, y_host = synthetic_data(true_w, true_b, BOOK_N, noise=BOOK_NOISE, seed=seed, dtype=dtype)
    elif is_out_of_core(X) and be.name != "array-api":  # beyond memory: read block by block
        X_host, y_host = streaming.training_data(X, y, be, out_of_core_shuffle)
    else:  # the check of X's values also computes X w0, for the initial loss
        X_host, y_host = be.training_data(X, y, probe)
    if not is_out_of_core(X):
        streaming.check_in_memory_shuffle(out_of_core_shuffle)
    n, d = X_host.shape
    if batch_size > n:
        raise ValueError(
            f"batch_size={batch_size} is larger than the {n} examples; use batch_size <= {n} "
            f"(batch_size={n} is full-batch gradient descent)."
        )
    true_w = None if true_w is None else _true_weights(true_w, d)
    true_b = None if true_b is None else intercept(true_b, "true_b")
    if plan.spawn:
        worker_options = dict(
            lr=lr, batch_size=batch_size, epochs=epochs, seed=seed, dtype=dtype, device=device, loss=loss,
            shuffle=shuffle, init=init, fit_intercept=fit_intercept, grad=grad, on_divergence=on_divergence,
            true_w=true_w, true_b=true_b, backend_options=backend_options, resume=resume,
            warm_start=warm_start, check_stability=check_stability, loss_every=loss_every,
        )  # fmt: skip
        return launch_torch_workers(plan.workers, X_host, y_host, worker_options, on_epoch)  # type: ignore[no-any-return]

    w0, b0 = (np.array(p, copy=True) for p in initial(d))
    config = {
        "lr": lr,
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": seed,
        "loss": loss_fn.name,
        "shuffle": streaming.shuffle_label(shuffle, X_host),
        "chunk_layout": streaming.chunk_layout(X_host, batch_size),
        "init": init,
        "fit_intercept": bool(fit_intercept),
        "grad": grad,
        "n_examples": n,
        "n_features": d,
        "data_fingerprint": data_fingerprint(X_host, y_host, be.np_dtype),
        "workers": plan.workers,
    }
    start = _start_point(resume, warm_start, config, be.dtype, d, epochs)
    if start is not None:
        if start.start_epoch == epochs:
            return start.previous  # already trained for `epochs` epochs: nothing to do
        w0, b0 = start.w, start.b
        true_w = start.previous.true_w if true_w is None else true_w
        true_b = start.previous.true_b if true_b is None else true_b
        config["resumed_at_epochs"] = [*start.previous.config.get("resumed_at_epochs", []), start.start_epoch]
    if check_stability:
        warn_if_unstable(X_host, lr, loss=loss_fn.name, fit_intercept=bool(fit_intercept), stacklevel=2)

    objective = Objective(be.xp, loss_fn, fit_intercept=bool(fit_intercept))
    with be.context():
        X_dev, y_dev = streaming.device_data(be, X_host, y_host)
        if start is None:
            fitted = None if probe is None else probe.fitted
            initial_loss = _initial_loss(objective, be, w0, b0, X_host, y_host, X_dev, y_dev, fitted)
        else:
            initial_loss = start.previous.initial_loss
        run = train(
            be, objective, X_dev, y_dev, w0, b0,
            lr=lr, batch_size=batch_size, epochs=epochs, seed=seed, shuffle=shuffle, grad=grad,
            on_epoch=on_epoch, start_epoch=0 if start is None else start.start_epoch, loss_every=loss_every,
        )  # fmt: skip
    result = _result(run, start, be, config, initial_loss, true_w, true_b)
    _report_stops(run, result, epochs, lr, on_divergence)
    return result


def _initial_loss(
    objective: Objective, be: Backend, w0: np.ndarray, b0: np.ndarray,
    X_host: Any, y_host: Any, X_dev: Any, y_dev: Any, fitted: np.ndarray | None,
) -> float:  # fmt: skip
    """The loss before training. Data already on the host in the fit's dtype are evaluated there,
    with NumPy, without two parameter transfers and an eager evaluation's dispatches (on JAX, 5 %
    of a warm fit of the book's 1000 examples); from ``fitted = X w0`` where the check of X's
    values computed it (:class:`~polylin.validation.Probe`), else with one pass over X."""
    dtype = be.np_dtype
    on_host_arrays = isinstance(X_host, np.ndarray) and isinstance(y_host, np.ndarray)
    if on_host_arrays and X_host.dtype == dtype and y_host.dtype == dtype:
        on_host = on_numpy(objective)
        b = b0.astype(dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            if fitted is not None and fitted.shape == y_host.shape:
                return float(on_host.mean_of_fitted(fitted, b, y_host))
            return float(on_host.mean((w0.astype(dtype), b), X_host, y_host))
    params = be.parameters(w0, b0, trainable=False)
    return float(be.to_numpy(streaming.mean_loss(be, objective, params, X_dev, y_dev)))


def _checked_options(
    cls: Any, lr: object, batch_size: object, epochs: object, seed: object, loss: object,
    dtype: object, init: object, on_divergence: object, grad: object,
) -> tuple[float, int, int, int, Loss, str, str]:  # fmt: skip
    """Every option checked before any work, each with an error that names the fix."""
    lr = check_learning_rate(lr)
    batch_size = check_positive_int("batch_size", batch_size, "the book uses batch_size=10")
    epochs = check_positive_int("epochs", epochs, "the book trains for epochs=3")
    seed = check_seed(seed)
    loss_fn = get_loss(str(loss))
    dtype = canonical_dtype(dtype)
    check_choice("init", init, INIT_SCHEMES)
    check_choice("on_divergence", on_divergence, DIVERGENCE_POLICIES)
    if grad is None:
        grad = "autodiff" if cls.has_autodiff else "analytic"
    check_choice("grad", grad, GRAD_MODES)
    if grad == "autodiff" and not cls.has_autodiff:
        raise ValueError(
            f"grad='autodiff' is not available on the {cls.name} backend, which has no autodiff "
            "library; its gradients are derived by hand: use grad='analytic' (the default there)."
        )
    return lr, batch_size, epochs, seed, loss_fn, dtype, str(grad)


def _checked_backend_options(cls: Any, options: Any) -> dict[str, Any]:
    """``options`` as keyword arguments of ``cls``, or an error that names the ones it takes."""
    checked: dict[str, Any] = dict(options or {})
    accepted = _backend_option_names(cls) if checked else None
    unknown = [] if accepted is None else sorted(set(checked) - set(accepted))
    if unknown:
        takes = f"it takes {list(accepted or ())}" if accepted else "it takes none"
        raise ValueError(
            f"backend_options {unknown} are not options of the {cls.name} backend; {takes} "
            "(dtype and device are fit's own arguments)."
        )
    return checked


@functools.lru_cache(maxsize=32)
def _backend_option_names(cls: Any) -> tuple[str, ...] | None:
    """The keyword-only arguments of ``cls``'s constructor (its options), read once per class (an
    ``inspect.signature`` costs about 10 µs, 5 % of a warm JAX fit of the book's data); ``None``
    for a constructor that takes ``**kwargs`` and says for itself what it refuses."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _true_weights(true_w: Any, d: int) -> np.ndarray:
    weights = weight_vector(true_w, "true_w")
    if weights.shape != (d,):
        raise ValueError(
            f"true_w has shape {weights.shape}; X has {d} features: pass one true weight per feature "
            "(shape (d,) or a column (d, 1)), or leave true_w out."
        )
    return weights


def _start_point(
    resume: Any, warm_start: Any, config: dict[str, Any], dtype: str, d: int, epochs: int
) -> ResumePoint | None:
    if resume is not None:
        return resume_point(resume, config=config, dtype=dtype)
    if warm_start is not None:
        return warm_start_point(warm_start, n_features=d, epochs=epochs)
    return None


def _result(
    run: TrainingRun, start: ResumePoint | None, be: Backend, config: dict[str, Any],
    initial_loss: float, true_w: np.ndarray | None, true_b: float | None,
) -> FitResult:  # fmt: skip
    losses, epoch_times = run.losses, run.epoch_times
    if start is not None:  # the history so far, then this run's epochs
        losses = [*start.previous.losses, *losses]
        epoch_times = [*start.previous.epoch_times, *epoch_times]
    info = be.info()
    return FitResult(
        w=run.w.astype(be.np_dtype),
        b=float(run.b[0]),
        losses=np.asarray(losses, dtype=np.float64),
        initial_loss=initial_loss,
        epoch_times=np.asarray(epoch_times, dtype=np.float64),
        backend=info.name,
        backend_version=info.version,
        device=info.device,
        dtype=info.dtype,
        config=config,
        true_w=None if true_w is None else np.asarray(true_w, dtype=np.float64),
        true_b=None if true_b is None else float(true_b),
        diverged_at=None if run.divergence is None else (run.divergence.epoch, run.divergence.step),
        interrupted=run.interrupted,
    )


def _report_stops(run: TrainingRun, result: FitResult, epochs: int, lr: float, on_divergence: str) -> None:
    """Warn of an interruption; raise, or warn of, a divergence (``on_divergence``)."""
    if run.interrupted:
        warnings.warn(
            f"Training was interrupted (Ctrl-C) after {result.epochs_completed} of {epochs} epochs; "
            "the result holds the last completed epoch. Save it with result.save(path) and "
            "continue with fit(..., resume=path).",
            TrainingInterruptedWarning,
            stacklevel=3,
        )
    if run.divergence is None:
        return
    message = (
        f"Training diverged on the {result.backend} backend: a non-finite loss or parameter "
        f"appeared at epoch {run.divergence.epoch}, step {run.divergence.step} (lr={lr}). "
        "Lower the learning rate, or standardise the features (zero mean, unit variance)."
    )
    if on_divergence == "stop":
        warnings.warn(
            f"{message} fit(on_divergence='stop') returns the last finite epoch "
            f"({result.epochs_completed} completed); result.diverged_at says where.",
            DivergenceWarning,
            stacklevel=3,
        )
        return
    raise DivergenceError(
        f"{message} The last finite parameters are on this error as .last_finite_w and .last_finite_b.",
        epoch=run.divergence.epoch,
        step=run.divergence.step,
        last_finite_w=result.w,
        last_finite_b=result.b,
        result=result,
    )


def _unknown_backend(backend: object) -> Any:
    raise ValueError(f"backend={backend!r} must be a backend name such as 'numpy' or 'jax'.")
