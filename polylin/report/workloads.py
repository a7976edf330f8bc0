"""The named workloads of the comparison report and the benchmark suite, and their data.

A :class:`Workload` fixes everything a run depends on: the data (size,
generating parameters, noise, seed, dtype), the optimiser (learning rate,
batch size, epochs) and how many SGD steps one epoch runs. :func:`make_data`
draws the data with :func:`polylin.synthetic_data`, and :func:`training_plan`
turns it into exactly what every run sees: the rows trained on and the order
of the examples in each epoch. polylin and the hand-written loops of
``benchmarks/`` both follow that plan, so their parameters can be compared
number for number.

The learning rates
------------------
* ``book``: the chapter's 0.03.
* ``large`` (features ~ N(0, 1), d = 100, batch 1024): the gradient of the
  mean ½ squared loss has the Hessian ``XᵀX/m`` over a batch, whose largest
  eigenvalue is about ``(1 + √(d/m))² ≈ 1.73`` for m = 1024. SGD is stable for
  ``lr < 2/1.73``; lr = 0.1 keeps ``lr·λ_max ≈ 0.17``, an order of magnitude
  inside that bound, and still contracts the error by ``(1 − 0.1)`` per step, so
  the first of the 977 steps of an epoch already reach the noise floor.
* ``tiny-batch`` (d = 10, batch 1): one example's Hessian ``x xᵀ`` has the
  eigenvalue ``|x|² ≈ d = 10`` (rarely above 25); lr = 0.01 keeps
  ``lr·|x|² ≈ 0.1`` and converges long before 10,000 steps.

Steps per epoch
---------------
``tiny-batch`` measures per-step overhead: 100,000 examples, batch 1,
20,000 steps, as two epochs of 10,000 steps (the first is the compile and
warm-up epoch, the second the steady state). :func:`polylin.fit` has no
option to stop an epoch early, so an epoch of 10,000 steps trains on the
first 10,000 of the 100,000 rows (i.i.d. rows, so a smaller sample of the
same distribution); the report records this as ``plan.method``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polylin.data import BOOK_N, BOOK_NOISE, BOOK_TRUE_B, BOOK_TRUE_W, synthetic_data
from polylin.dtypes import SUPPORTED_DTYPES, canonical_dtype
from polylin.randomness import epoch_order, initial_parameters


@dataclass(frozen=True)
class Workload:
    """One benchmark setting: data, optimiser and repeats.

    ``steps_per_epoch`` (``None``: every batch) caps the minibatch steps of
    one epoch; ``repeats`` is how many fits the report times.
    """

    name: str
    n: int
    d: int
    batch_size: int
    lr: float
    epochs: int
    steps_per_epoch: int | None = None
    dtype: str = "float32"
    seed: int = 0
    noise: float = BOOK_NOISE
    repeats: int = 5
    purpose: str = ""

    def __post_init__(self) -> None:
        for name in ("n", "d", "batch_size", "epochs", "repeats"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"workload option {name}={value!r} must be a whole number >= 1.")
        if self.steps_per_epoch is not None and (
            not isinstance(self.steps_per_epoch, (int, np.integer)) or self.steps_per_epoch < 1
        ):
            raise ValueError(
                f"workload option steps_per_epoch={self.steps_per_epoch!r} must be a whole number >= 1 "
                "or None (every batch)."
            )
        if not (isinstance(self.lr, (int, float)) and np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"workload option lr={self.lr!r} must be a finite number > 0.")
        if self.batch_size > self.n:
            raise ValueError(
                f"workload option batch_size={self.batch_size} is larger than n={self.n}; "
                f"use batch_size <= n."
            )
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))

    @property
    def rows_per_epoch(self) -> int:
        """How many examples one epoch visits."""
        if self.steps_per_epoch is None:
            return self.n
        return min(self.n, self.steps_per_epoch * self.batch_size)

    @property
    def steps(self) -> int:
        """Minibatch steps per epoch."""
        return -(-self.rows_per_epoch // self.batch_size)

    @property
    def description(self) -> str:
        """The sizes and settings in words, then what the workload is for."""
        text = (
            f"{self.n:,} x {self.d} {self.dtype}, batch {self.batch_size}, lr {self.lr:g}, "
            f"{self.epochs} epoch{'s' if self.epochs > 1 else ''}"
        )
        if self.steps_per_epoch is not None:
            text += f" of {self.steps:,} steps ({self.epochs * self.steps:,} steps)"
        return f"{text}: {self.purpose}." if self.purpose else f"{text}."

    @property
    def data_bytes(self) -> int:
        """Bytes of X and y in the workload's dtype."""
        itemsize = SUPPORTED_DTYPES[self.dtype].itemsize
        return (self.n * self.d + self.n) * itemsize

    def as_dict(self) -> dict[str, Any]:
        """Every field, plus the derived sizes, for the report's manifest."""
        out = dataclasses.asdict(self)
        out.update(
            rows_per_epoch=self.rows_per_epoch, steps_per_epoch_run=self.steps, description=self.description
        )
        return out

    def replace(self, **changes: Any) -> Workload:
        return dataclasses.replace(self, **changes)


WORKLOADS: dict[str, Workload] = {
    "book": Workload(
        "book",
        n=BOOK_N,
        d=2,
        batch_size=10,
        lr=0.03,
        epochs=3,
        repeats=7,
        purpose="the chapter's setup",
    ),
    "large": Workload(
        "large",
        n=1_000_000,
        d=100,
        batch_size=1024,
        lr=0.1,
        epochs=3,
        repeats=3,
        purpose="bound by memory bandwidth",
    ),
    "tiny-batch": Workload(
        "tiny-batch",
        n=100_000,
        d=10,
        batch_size=1,
        lr=0.01,
        epochs=2,
        steps_per_epoch=10_000,
        repeats=2,
        purpose="per-step overhead",
    ),
}

#: Smaller versions of the workloads, for tests and ``--quick`` runs: same shape of problem, seconds to run.
QUICK_WORKLOADS: dict[str, Workload] = {
    "book": WORKLOADS["book"].replace(repeats=2, purpose="the chapter's setup (quick)"),
    "large": WORKLOADS["large"].replace(
        n=20_000, d=20, batch_size=256, repeats=2, purpose="large, made small (quick)"
    ),
    "tiny-batch": WORKLOADS["tiny-batch"].replace(
        n=4_000, steps_per_epoch=500, repeats=2, purpose="tiny-batch, made small (quick)"
    ),
}

_OPTION_NAMES = {f.name for f in dataclasses.fields(Workload)} - {"name", "purpose"}


def get_workload(
    workload: str | Workload | Mapping[str, Any] = "book", *, quick: bool = False, **options: Any
) -> Workload:
    """A :class:`Workload` from a name, a mapping of options, or a Workload, with ``options`` applied.

    ``get_workload("large", n=200_000)`` is ``large`` on 200,000 rows; a mapping
    such as ``{"n": 5000, "d": 8}`` starts from ``book``'s settings. Changed
    options rename the workload ``"custom"`` (its ``purpose`` says what changed).
    """
    table = QUICK_WORKLOADS if quick else WORKLOADS
    if isinstance(workload, Workload):
        base = workload
    elif isinstance(workload, str):
        if workload not in table:
            raise ValueError(
                f"workload={workload!r} is not a known workload; choose one of {list(table)}, "
                "or pass a mapping of options such as {'n': 5000, 'd': 8, 'batch_size': 32}."
            )
        base = table[workload]
    elif isinstance(workload, Mapping):
        options = {**dict(workload), **options}
        base = table["book"]
    else:
        raise TypeError(f"workload={workload!r} must be a workload name, a mapping of options or a Workload.")
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise ValueError(f"unknown workload option(s) {unknown}; the options are {sorted(_OPTION_NAMES)}.")
    options = {k: v for k, v in options.items() if v is not None or k == "steps_per_epoch"}
    changed = {k: v for k, v in options.items() if getattr(base, k) != v}
    if not set(changed) - {"repeats"}:
        return base.replace(**changed)
    what = ", ".join(f"{k}={v!r}" for k, v in sorted(changed.items()))
    return base.replace(name="custom", purpose=f"{base.name} with {what}", **changed)


def true_parameters(workload: Workload) -> tuple[np.ndarray, float]:
    """The generating ``(w, b)``: the book's for two features, else a fixed draw from the seed."""
    if workload.d == len(BOOK_TRUE_W):
        return np.asarray(BOOK_TRUE_W, dtype=np.float64), BOOK_TRUE_B
    rng = np.random.default_rng([workload.seed, 1000 + workload.d])
    return rng.uniform(-2.0, 2.0, workload.d), BOOK_TRUE_B


def make_data(workload: Workload) -> tuple[np.ndarray, np.ndarray]:
    """The workload's ``(X, y)``, drawn by :func:`polylin.synthetic_data` from its seed."""
    w, b = true_parameters(workload)
    return synthetic_data(w, b, workload.n, noise=workload.noise, seed=workload.seed, dtype=workload.dtype)


def fingerprint(*arrays: np.ndarray) -> str:
    """A short hash of the arrays' shapes, dtypes and bytes: equal data, equal fingerprint."""
    digest = hashlib.blake2b(digest_size=12)
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.shape}{contiguous.dtype.str}".encode())
        digest.update(contiguous.reshape(-1).data.cast("B"))
    return digest.hexdigest()


@dataclass
class TrainingPlan:
    """Exactly what one run trains on: rows, initial parameters and each epoch's order.

    ``fit_kwargs`` are the :func:`polylin.fit` options that reproduce the plan
    with ``fit(X, y, **fit_kwargs)``; ``orders[e]`` are the row indices of
    epoch ``e`` in visiting order (``batch_size`` at a time, the last batch
    possibly short): the permutation :func:`~polylin.randomness.epoch_order`
    draws over the rows of ``X``; :meth:`draw_order` draws it again, as a
    training loop does between its epochs.
    """

    workload: Workload
    X: np.ndarray
    y: np.ndarray
    w0: np.ndarray
    b0: np.ndarray
    method: str
    fit_kwargs: dict[str, Any] = field(default_factory=dict)
    orders: list[np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.orders = [self.draw_order(epoch) for epoch in range(self.workload.epochs)]

    def draw_order(self, epoch: int) -> np.ndarray:
        """Epoch ``epoch``'s order, drawn afresh (equal to ``orders[epoch]``)."""
        return epoch_order(self.workload.seed, epoch, self.X.shape[0])

    @property
    def batch_size(self) -> int:
        return self.workload.batch_size

    @property
    def lr(self) -> float:
        return self.workload.lr


def training_plan(workload: Workload, X: np.ndarray, y: np.ndarray) -> TrainingPlan:
    """The rows, initial parameters and epoch orders polylin uses for ``workload`` on ``(X, y)``."""
    rows = workload.rows_per_epoch
    fit_kwargs: dict[str, Any] = {
        "lr": workload.lr,
        "batch_size": workload.batch_size,
        "epochs": workload.epochs,
        "seed": workload.seed,
        "dtype": workload.dtype,
    }
    if rows == workload.n:
        method = "every row, every epoch"
        X_run, y_run = X, y
    else:
        method = (
            f"the first {rows} of the {workload.n} rows, every epoch (polylin.fit has no "
            "steps_per_epoch option)"
        )
        X_run, y_run = X[:rows], y[:rows]
    w0, b0 = initial_parameters(workload.seed, workload.d, "normal")
    return TrainingPlan(workload, X_run, y_run, w0, b0, method, fit_kwargs)
