"""Exercise: if the number of examples cannot be divided by the batch size, what does ``data_iter`` do?

It yields a last, shorter batch of ``n mod B`` examples (the book's
``indices[i: min(i + batch_size, n)]``). What that batch then does depends on
how its gradient is normalised, and three policies are compared here on the
book's data with ``n = 1000`` and ``B = 300`` (batches of 300, 300, 300, 100;
lr 0.1, as batches this large average away most of the gradient noise):

* **mean over its own examples** (polylin): every step is the mean gradient
  of the examples in it, so the short batch takes a step as long as a full
  one, and each of its examples weighs ``300/100 = 3`` times more;
* **divide by the nominal batch size** (the book's ``sgd`` divides by
  ``batch_size`` whatever the batch holds): the short batch's step is
  ``100/300`` as long, every example weighs the same, and one epoch adds up
  to exactly one full-data gradient's worth of examples;
* **drop the last batch** (``drop_last=True`` in PyTorch's ``DataLoader``):
  100 examples sit out each epoch; with shuffling it is a different 100 each
  time, without shuffling the same 100 are never seen at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from polylin.backends import get_backend
from polylin.batching import BatchLayout
from polylin.data import BOOK_TRUE_B, BOOK_TRUE_W, minibatches, synthetic_data
from polylin.experiments._common import ExperimentResult, Trace, table, trace_sgd
from polylin.losses import get_loss
from polylin.objective import Objective
from polylin.randomness import epoch_order, initial_parameters
from polylin.types import Array, Params

if TYPE_CHECKING:
    from matplotlib.figure import Figure

POLICIES = ("mean over its own examples", "divide by nominal batch size", "drop the last batch")


@dataclass(frozen=True)
class NominalBatchObjective(Objective):
    """The book's ``sgd``, which divides by ``batch_size`` whatever the batch holds.

    The SGD step moves by ``lr/m`` times the gradient of :meth:`total`, ``m``
    being the examples in the batch, so :meth:`total` is scaled by ``m/B``: the
    step is then ``lr/B · Σᵢ ∇l(rᵢ)`` for the nominal batch size ``B``. The
    reported loss (:meth:`mean`) is not changed.
    """

    nominal: int = field(default=10, kw_only=True)

    def total(self, params: Params, X: Array, y: Array) -> Array:
        """``(m/B) Σᵢ l(rᵢ)``."""
        # Scaled before the reduction: MXNet cannot record a scalar times a 0-d array.
        residual = self.residual(params, X, y)
        return self.xp.sum(self.loss.pointwise(self.xp, residual) * (X.shape[0] / self.nominal))

    def gradient(self, params: Params, X: Array, y: Array) -> Params:
        """The gradient of :meth:`total`, by hand: ``(m/B)`` times :meth:`Objective.gradient`."""
        scale = X.shape[0] / self.nominal
        grad_w, grad_b = super().gradient(params, X, y)
        return grad_w * scale, grad_b * scale


@dataclass
class LastBatchResult(ExperimentResult):
    """Batch sizes, the last step's length under each policy, the examples never seen, the traces."""

    backend: str
    n: int
    batch_size: int
    batch_sizes: list[int]
    last_step_ratio: float
    unseen_without_shuffle: int
    unseen_with_shuffle: int
    traces: list[Trace]
    name: str = field(default="last-batch", init=False)

    def final_errors(self) -> list[float]:
        """max |true − fitted| over ``(w, b)`` at the end of each policy's run."""
        true = np.array([*BOOK_TRUE_W, BOOK_TRUE_B])
        return [float(np.max(np.abs(true - np.array([*t.w, t.b])))) for t in self.traces]

    def example_weights(self) -> dict[str, np.ndarray]:
        """Per example, in visiting order: the factor its gradient gets in one epoch's updates."""
        sizes = np.array(self.batch_sizes)
        per_batch = {
            POLICIES[0]: 1.0 / sizes,
            POLICIES[1]: np.full(len(sizes), 1.0 / self.batch_size),
            POLICIES[2]: np.where(sizes < self.batch_size, 0.0, 1.0 / sizes),
        }
        return {name: np.repeat(weights, sizes) for name, weights in per_batch.items()}

    def summary(self) -> str:
        rows = [
            (t.label, f"{t.final_loss:.3g}", f"{e:.1e}")
            for t, e in zip(self.traces, self.final_errors(), strict=True)
        ]
        return (
            f"Last partial batch on {self.backend}: n = {self.n}, batch size {self.batch_size}\n"
            f"batch sizes in an epoch: {self.batch_sizes}\n"
            f"last step's length, nominal division / mean over its examples: {self.last_step_ratio:.4f} "
            f"(= {self.batch_sizes[-1]}/{self.batch_size})\n"
            f"drop_last: examples never seen in {len(self.traces[0].loss_at_epoch_ends())} epochs: "
            f"{self.unseen_without_shuffle} without shuffling, {self.unseen_with_shuffle} with shuffling\n"
            + table(("policy", "final loss", "max|error| in (w, b)"), rows)
        )

    def figure(self) -> Figure:
        from polylin.plot import COLOURS, _new_figure, trace_figure

        fig = _new_figure(11.0, 4.2)
        left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
        for k, (label, weights) in enumerate(self.example_weights().items()):
            left.step(
                np.arange(self.n),
                weights * self.batch_size,
                where="post",
                color=COLOURS[k],
                linestyle=("-", "--", ":")[k],
                linewidth=2 - 0.4 * k,
                label=label,
            )
        for edge in np.cumsum(self.batch_sizes)[:-1]:
            left.axvline(edge, color="grey", linewidth=0.5)
        left.set_xlabel("example, in the order an epoch visits them")
        left.set_ylabel("weight of its gradient (1 = a full batch's example)")
        left.set_title(f"batches of {self.batch_sizes}")
        left.legend(frameon=False, fontsize=8, loc="upper left")
        left.set_ylim(-0.2, 1.15 * self.batch_size / self.batch_sizes[-1])
        trace_figure(self.traces, title="full-data loss", floor=5e-5, floor_label="noise floor", ax=right)
        fig.suptitle(f"The last partial batch ({self.backend}): n = {self.n}, batch size {self.batch_size}")
        return fig


def last_batch(
    backend: str = "numpy",
    *,
    n: int = 1000,
    batch_size: int = 300,
    epochs: int = 40,
    lr: float = 0.1,
    seed: int = 0,
    dtype: str = "float32",
) -> LastBatchResult:
    """Train with each way of treating the last partial batch and measure what it changes."""
    if n % batch_size == 0:
        raise ValueError(
            f"batch_size={batch_size} divides n={n}; choose one that does not, e.g. {batch_size + 1}."
        )
    X, y = synthetic_data(n=n, seed=seed, dtype=dtype)
    sizes = [len(xb) for xb, _ in minibatches(X, y, batch_size, seed=seed)]

    # The last step from the same parameters, under the two normalisations, on the backend itself:
    # the step is lr/m times the gradient of the batch's total, m = the examples in the batch.
    be = get_backend(backend, dtype=dtype)
    with be.context():
        layout = BatchLayout(n, batch_size)
        order = epoch_order(seed, 0, n, True)
        tail = be.asarray(order[layout.n_full * batch_size :])
        Xt, yt = (be.xp.take(be.asarray(a), tail, axis=0) for a in (X, y))
        m = int(Xt.shape[0])
        w0, b0 = initial_parameters(seed, X.shape[1])
        params = be.parameters(w0, b0, trainable=False)
        loss = get_loss("squared")
        mean_step = Objective(be.xp, loss).gradient(params, Xt, yt)
        nominal_step = NominalBatchObjective(be.xp, loss, nominal=batch_size).gradient(params, Xt, yt)
        lengths = [
            np.sqrt(sum(float(np.sum((be.to_numpy(g) / m) ** 2)) for g in gs))
            for gs in (mean_step, nominal_step)
        ]

    common: dict[str, Any] = {
        "lr": lr,
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": seed,
        "dtype": dtype,
    }
    traces = [
        trace_sgd(backend, X, y, w0, b0, label=POLICIES[0], **common),
        trace_sgd(
            backend,
            X,
            y,
            w0,
            b0,
            label=POLICIES[1],
            objective=lambda xp: NominalBatchObjective(xp, loss, nominal=batch_size),
            **common,
        ),
        trace_sgd(backend, X, y, w0, b0, label=POLICIES[2], drop_last=True, **common),
    ]

    def unseen(shuffle: bool) -> int:
        seen = np.zeros(n, dtype=bool)
        for epoch in range(epochs):
            seen[epoch_order(seed, epoch, n, shuffle)[: layout.n_full * batch_size]] = True
        return int(n - seen.sum())

    return LastBatchResult(
        backend, n, batch_size, sizes, lengths[1] / lengths[0], unseen(False), unseen(True), traces
    )
