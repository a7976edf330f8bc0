"""``polylin plot``: the data, the fitted plane or loss curves, written to a PNG or SVG file."""

from __future__ import annotations

import argparse
from typing import Any

from polylin.cli.output import require

KINDS = ("data", "plane", "losses")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="draw the book's data, the fitted plane, or loss curves to a .png or .svg file",
        description=(
            "Draw a picture of the book's setup. data: each feature against y with its marginal slope; "
            "plane: the fitted plane in 3-D; losses: loss after each epoch, one curve per backend."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  polylin plot data --out data.png\n"
            "  polylin plot plane --backend torch --out plane.svg\n"
            "  polylin plot losses --backend all --epochs 5 --out losses.png\n"
        ),
    )
    parser.add_argument("kind", choices=KINDS, help="which picture")
    parser.add_argument(
        "--backend",
        default="numpy",
        help="backend for the fit ('losses' takes a comma-separated list or 'all')",
    )
    parser.add_argument("--out", default=None, help="output file, .png or .svg (default: KIND.png)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the fit (default 3)")
    parser.add_argument("--lr", type=float, default=0.03, help="learning rate (default 0.03)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, init and batch order")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require("matplotlib", needed_for="polylin plot")
    from polylin import plot
    from polylin.api import fit
    from polylin.data import synthetic_data
    from polylin.experiments._common import backend_list

    out = args.out or f"{args.kind}.png"
    backends = backend_list(args.backend)
    if not backends:
        raise ValueError(f"--backend {args.backend!r} names no installed backend; see `polylin backends`.")
    if args.kind != "losses" and len(backends) > 1:
        raise ValueError(f"polylin plot {args.kind} fits on one backend; got --backend {args.backend!r}.")
    X, y = synthetic_data(seed=args.seed)
    results = {name: fit(backend=name, epochs=args.epochs, lr=args.lr, seed=args.seed) for name in backends}
    first = results[backends[0]]
    if args.kind == "data":
        fig = plot.data(X, y, w=first.w)
    elif args.kind == "plane":
        fig = plot.plane(X, y, first.w, first.b)
    else:
        fig = plot.loss_curves(results, title=f"Loss after each epoch (lr {args.lr:g}, batch 10)")
    print(f"figure: {plot.save(fig, out)}")
    return 0
