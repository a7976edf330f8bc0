"""Regenerate the figures in docs/images: ``python docs/make_figures.py``.

The experiments run with their default settings on the NumPy backend (their
numbers are the same on every backend); the second-derivative experiment
runs on every installed backend, since comparing them is its point.
"""

from __future__ import annotations

from pathlib import Path

import polylin
from polylin import experiments, plot

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> None:
    X, y = polylin.synthetic_data(seed=0)
    results = {name: polylin.fit(X, y, backend=name, seed=0) for name in polylin.available_backends()}
    plot.save(plot.data(X, y, w=results["numpy"].w), IMAGES / "data.png")
    plot.save(plot.plane(X, y, results["numpy"].w, results["numpy"].b), IMAGES / "plane.png")
    plot.save(plot.loss_curves(results, title="Loss after each epoch, every backend"), IMAGES / "losses.png")
    for name, experiment in experiments.EXPERIMENTS.items():
        result = experiment.function(None if experiment.multi_backend else "numpy")
        print(result.summary(), end="\n\n")
        plot.save(result.figure(), IMAGES / f"{name}.png")


if __name__ == "__main__":
    main()
