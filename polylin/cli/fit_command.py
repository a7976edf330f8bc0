"""``polylin fit``: train on one or more backends and print what the book prints."""

from __future__ import annotations

import argparse
from typing import Any

from polylin.api import fit
from polylin.backends import KNOWN_BACKENDS, available_backends
from polylin.dtypes import SUPPORTED_DTYPES
from polylin.losses import LOSSES
from polylin.randomness import INIT_SCHEMES
from polylin.result import FitResult
from polylin.training import GRAD_MODES


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="train a linear model (the book's setup by default)",
        description="Train y = Xw + b by minibatch SGD on the book's synthetic data.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  polylin fit --backend torch\n"
            "  polylin fit --backend jax --dtype float64 --epochs 5\n"
            "  polylin fit --backend all --batch-size 7 --loss huber\n"
        ),
    )
    parser.add_argument(
        "--backend", default="numpy",
        help=f"one of {', '.join(KNOWN_BACKENDS)}, a comma-separated list, or 'all' (installed ones)",
    )  # fmt: skip
    parser.add_argument("--lr", type=float, default=0.03, help="learning rate (default 0.03)")
    parser.add_argument("--batch-size", type=int, default=10, help="minibatch size (default 10)")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the data (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, init and batch order")
    parser.add_argument("--dtype", default="float32", choices=sorted(SUPPORTED_DTYPES))
    parser.add_argument("--device", default=None, help="cpu (default), gpu, gpu:N")
    parser.add_argument("--loss", default="squared", choices=sorted(LOSSES))
    parser.add_argument("--init", default="normal", choices=INIT_SCHEMES)
    parser.add_argument("--grad", default=None, choices=GRAD_MODES,
                        help="autodiff (default where available) or analytic")  # fmt: skip
    parser.add_argument("--no-shuffle", action="store_true", help="visit examples in data order")
    parser.add_argument("--no-intercept", action="store_true", help="fit a line through the origin")
    parser.set_defaults(run=run)


def backend_names(spec: str) -> list[str]:
    """Expand ``'all'`` and comma-separated lists."""
    if spec == "all":
        return available_backends()
    return [name.strip() for name in spec.split(",") if name.strip()]


def run(args: argparse.Namespace) -> int:
    results: list[FitResult] = []
    for name in backend_names(args.backend):
        if len(results) or "," in args.backend or args.backend == "all":
            print(f"== {name}")
        result = fit(
            backend=name,
            lr=args.lr,
            batch_size=args.batch_size,
            epochs=args.epochs,
            seed=args.seed,
            dtype=args.dtype,
            device=args.device,
            loss=args.loss,
            init=args.init,
            grad=args.grad,
            shuffle=not args.no_shuffle,
            fit_intercept=not args.no_intercept,
            on_epoch=lambda epoch, loss, seconds: print(f"epoch {epoch}, loss {loss:f}"),
        )
        print(f"error in estimating w: {result.w_error}")
        print(f"error in estimating b: {result.b_error}")
        results.append(result)
    if len(results) > 1:
        print()
        print(side_by_side(results))
    return 0


def side_by_side(results: list[FitResult]) -> str:
    """One row per backend: versions, final loss, errors and time per epoch."""
    header = (
        "backend",
        "version",
        "device",
        "dtype",
        "final loss",
        "max |w err|",
        "|b err|",
        "ms/epoch",
    )
    rows = [header]
    for r in results:
        w_err = max(abs(float(e)) for e in r.w_error) if r.w_error is not None else float("nan")
        b_err = abs(r.b_error) if r.b_error is not None else float("nan")
        steady = r.epoch_times[1:] if len(r.epoch_times) > 1 else r.epoch_times
        rows.append((
            r.backend, r.backend_version, r.device, r.dtype, f"{r.final_loss:.6g}",
            f"{w_err:.2e}", f"{b_err:.2e}", f"{1e3 * float(sorted(steady)[len(steady) // 2]):.3f}",
        ))  # fmt: skip
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
