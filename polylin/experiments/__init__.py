"""The chapter's exercises as experiments: each a function returning numbers, a summary and a figure.

>>> from polylin import experiments
>>> result = experiments.run("last-batch", backend="numpy", epochs=2)
>>> result.batch_sizes
[300, 300, 300, 100]

Every experiment takes a backend name (the second-derivative one takes
several) and returns an :class:`~polylin.experiments._common.ExperimentResult`
with ``summary()`` (text with the numbers) and ``figure()`` (matplotlib,
imported only then). ``polylin experiment NAME --backend ... --out fig.png``
runs one from the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polylin.experiments._common import ExperimentResult, Trace, trace_sgd
from polylin.experiments.data_size import data_size
from polylin.experiments.initialisation import initialisation
from polylin.experiments.last_batch import last_batch
from polylin.experiments.learning_rate import learning_rate
from polylin.experiments.ohm import ohm
from polylin.experiments.outliers import outliers
from polylin.experiments.planck import planck
from polylin.experiments.second_derivatives import second_derivatives
from polylin.experiments.shuffle import shuffle


@dataclass(frozen=True)
class Experiment:
    """A registry entry: the function, what it answers, and whether it takes several backends."""

    name: str
    function: Callable[..., ExperimentResult]
    question: str
    multi_backend: bool = False


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "initialisation", initialisation, "zeros, N(0, 0.01²) or variance 1000: what converges, how fast"
        ),
        Experiment(
            "learning-rate", learning_rate, "lr 0.003, 0.03, 0.3, 3: how fast the loss drops, and divergence"
        ),
        Experiment("data-size", data_size, "error in w and b against n, log-spaced from 5 to 10,000"),
        Experiment("last-batch", last_batch, "a batch size that does not divide n: what the last batch does"),
        Experiment("outliers", outliers, "squared vs absolute vs Huber loss with y[4] = 10000"),
        Experiment(
            "second-derivatives",
            second_derivatives,
            "Hessians from each backend's autodiff vs XᵀX/n",
            multi_backend=True,
        ),
        Experiment("ohm", ohm, "Ohm's law: recover each resistance; the scaling problem of raw units"),
        Experiment(
            "planck", planck, "Planck's law: temperature from a spectrum, by Wien's line and directly"
        ),
        Experiment("shuffle", shuffle, "why shuffle: adversarially ordered data with and without shuffling"),
    )
}
#: Short names and the exercise numbers accepted as well.
ALIASES = {
    "init": "initialisation",
    "initialization": "initialisation",
    "lr": "learning-rate",
    "n": "data-size",
    "batch": "last-batch",
    "hessian": "second-derivatives",
    **{str(k): name for k, name in enumerate(EXPERIMENTS, start=1)},
}


def get(name: str) -> Experiment:
    """Look an experiment up by name, alias or number (1-9)."""
    key = ALIASES.get(str(name).lower(), str(name).lower().replace("_", "-"))
    try:
        return EXPERIMENTS[key]
    except KeyError:
        raise ValueError(
            f"experiment {name!r} is not known; choose one of {list(EXPERIMENTS)} (or its number 1-9)."
        ) from None


def run(name: str, backend: Any = "numpy", **options: Any) -> ExperimentResult:
    """Run experiment ``name`` on ``backend`` (a name, or several for ``second-derivatives``)."""
    experiment = get(name)
    if experiment.multi_backend:
        return experiment.function(backend, **options)
    if not isinstance(backend, str) or "," in backend or backend == "all":
        raise ValueError(
            f"experiment {experiment.name!r} runs on one backend at a time; got backend={backend!r}. "
            "Run it once per backend."
        )
    return experiment.function(backend, **options)


__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "ExperimentResult",
    "Trace",
    "data_size",
    "get",
    "initialisation",
    "last_batch",
    "learning_rate",
    "ohm",
    "outliers",
    "planck",
    "run",
    "second_derivatives",
    "shuffle",
    "trace_sgd",
]
