"""``polylin fit``: train on one or more backends and print what the book prints.

Every option of :func:`polylin.fit` has a flag. The data are the book's
synthetic data unless ``--data FILE`` names a CSV, ``.npy`` or ``.npz`` file
(see :mod:`polylin.cli.data_files`). Output: the book's per-epoch lines and
its "error in estimating w / b" when the true parameters are known, or one
JSON document with ``--json``; several backends also get a side-by-side
table. Exit status: 0 done, 1 diverged (with ``--on-divergence stop``),
2 bad input or a failed fit, 130 interrupted (the last completed epoch is
saved, and the command to continue is printed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import types
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import numpy as np

from polylin._version import __version__
from polylin.api import DIVERGENCE_POLICIES, fit
from polylin.backends import KNOWN_BACKENDS, available_backends
from polylin.cli.data_files import DataSet, read_data
from polylin.cli.output import print_table, require, table_of
from polylin.cli.progress import EpochProgress, wanted
from polylin.data import BOOK_N, BOOK_NOISE, BOOK_TRUE_B, BOOK_TRUE_W
from polylin.dtypes import SUPPORTED_DTYPES
from polylin.errors import DivergenceError, StabilityWarning, TrainingInterruptedWarning
from polylin.losses import LOSSES
from polylin.randomness import INIT_SCHEMES
from polylin.result import FitResult, load
from polylin.training import GRAD_MODES

if TYPE_CHECKING:
    from rich.table import Table

EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130
INTERRUPTED_FILE = "polylin-interrupted.npz"

EXAMPLES = """\
examples:
  polylin fit                                   the book: 1000 examples, lr 0.03, batch 10, 3 epochs
  polylin fit --backend torch --epochs 5 --dtype float64
  polylin fit --backend all                     every installed backend, then a table
  polylin fit --backend numpy,jax --loss huber --batch-size 7
  polylin fit --data ohm.csv --target volts --no-intercept --lr 0.01 --epochs 30
  polylin fit --data train.npz --json > result.json
  polylin fit --data train.csv --backend array-api --backend-option namespace=array_api_strict
  polylin fit --epochs 500 --checkpoint run.npz      (Ctrl-C keeps the last epoch in run.npz)
  polylin fit --epochs 800 --checkpoint run.npz --resume run.npz

data files (--data FILE):
  CSV (.csv, .tsv, .txt)  the first row is a header if any field is not a number;
                          --target is a column name or 0-based index (default: the last column),
                          --features a comma-separated list of them (default: all other columns)
  .npy                    a 2-D array; --target and --features are column indices (default: last)
  .npz                    arrays X and y, or the names given with --features and --target;
                          an archive holding a single 2-D array is read like a .npy file
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="train a linear model (the book's setup by default)",
        description=(
            "Train y = Xw + b by minibatch SGD: on the book's synthetic data, or on --data FILE. "
            "Prints the loss after each epoch and the error in w and b when the truth is known."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.error = types.MethodType(_one_line_error, parser)  # type: ignore[method-assign]
    where = parser.add_argument_group("where to train")
    where.add_argument(
        "--backend", default="numpy", metavar="NAME",
        help=f"one of {', '.join(KNOWN_BACKENDS)}, 'auto', a comma-separated list, or 'all' "
        "(every installed one); default numpy",
    )  # fmt: skip
    where.add_argument(
        "--device", default=None, help="cpu (default), gpu, gpu:N, or a device name of the namespace"
    )
    where.add_argument("--dtype", default="float32", choices=sorted(SUPPORTED_DTYPES), help="default float32")
    where.add_argument(
        "--workers", type=int, default=1, metavar="K",
        help="data parallel over K jax devices or K torch processes (jax and torch only; default 1)",
    )  # fmt: skip
    where.add_argument(
        "--out-of-core-shuffle", default=None, choices=["chunks", "exact"],
        help="for data beyond memory (a .npy file larger than one block): chunks (default) or exact",
    )  # fmt: skip
    where.add_argument(
        "--backend-option", action="append", default=[], metavar="[BACKEND:]KEY=VALUE",
        help="an extra backend setting, e.g. jax:fused_epoch=false or namespace=dask.array (repeatable)",
    )  # fmt: skip
    data = parser.add_argument_group("data")
    data.add_argument("--data", metavar="FILE", help="a .csv, .npy or .npz file (default: the book's data)")
    data.add_argument(
        "--target", metavar="COLUMN", help="the target column (or .npz array); default: the last"
    )
    data.add_argument(
        "--features", metavar="COLUMNS", help="comma-separated feature columns; default: the rest"
    )
    data.add_argument("--true-w", metavar="W1,W2,...", type=_floats, help="the generating weights, if known")
    data.add_argument("--true-b", metavar="B", type=float, help="the generating bias, if known")
    training = parser.add_argument_group("training")
    training.add_argument("--lr", type=float, default=0.03, help="learning rate (default 0.03)")
    training.add_argument("--batch-size", type=int, default=10, help="examples per minibatch (default 10)")
    training.add_argument("--epochs", type=int, default=3, help="passes over the data (default 3)")
    training.add_argument(
        "--loss-every", type=int, default=1, metavar="K",
        help="evaluate the full-data loss after every K-th epoch and the last (default 1: every epoch)",
    )  # fmt: skip
    training.add_argument("--seed", type=int, default=0, help="seeds the data, the init and the batch order")
    training.add_argument(
        "--loss", default="squared", choices=sorted(LOSSES), help="default squared (½(ŷ−y)²)"
    )
    training.add_argument("--init", default="normal", choices=INIT_SCHEMES, help="w ~ N(0, 0.01²) or zeros")
    training.add_argument(
        "--grad", default=None, choices=GRAD_MODES, help="autodiff (default where there is one) or analytic"
    )
    training.add_argument("--no-shuffle", action="store_true", help="visit the examples in data order")
    training.add_argument("--no-intercept", action="store_true", help="fit a line through the origin (b = 0)")
    training.add_argument(
        "--on-divergence", default="raise", choices=DIVERGENCE_POLICIES,
        help="raise: stop with an error (exit 2); stop: keep the last finite epoch (exit 1)",
    )  # fmt: skip
    training.add_argument(
        "--no-stability-check", action="store_true", help="skip the warning for lr above 2/λ_max"
    )
    state = parser.add_argument_group("checkpoints")
    state.add_argument(
        "--checkpoint", metavar="PATH",
        help=f"save the result here when the run ends, Ctrl-C included (on Ctrl-C: {INTERRUPTED_FILE})",
    )  # fmt: skip
    state.add_argument(
        "--resume", metavar="PATH", help="continue a saved result up to --epochs epochs in all"
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    output.add_argument(
        "--no-progress", action="store_true",
        help="no progress bar (there is none anyway when the output is not a terminal)",
    )  # fmt: skip
    parser.set_defaults(run=quietly_closed(run))


def _one_line_error(self: argparse.ArgumentParser, message: str) -> NoReturn:
    self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def backend_names(spec: str) -> list[str]:
    """Expand ``'all'`` (every installed backend) and comma-separated lists."""
    if spec == "all":
        return available_backends()
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise ValueError(f"--backend {spec!r} names no backend; use e.g. --backend numpy or --backend all.")
    return names


def backend_options(entries: Sequence[str], backend: str) -> dict[str, Any]:
    """The ``--backend-option`` entries for ``backend``: ``KEY=VALUE`` for all, ``NAME:KEY=VALUE`` for one."""
    options: dict[str, Any] = {}
    for entry in entries:
        scope, colon, setting = entry.partition(":")
        if not colon or "=" in scope:
            scope, setting = "", entry
        key, equals, text = setting.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"--backend-option {entry!r} is not KEY=VALUE (or BACKEND:KEY=VALUE).")
        if scope and scope != backend:
            continue
        try:
            options[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            options[key.strip()] = text
    return options


def _checkpoint_path(given: str | None, backend: str, several: bool, interrupted: bool) -> Path | None:
    if given is None and not interrupted:
        return None
    path = Path(given if given is not None else INTERRUPTED_FILE)
    return path.with_name(f"{path.stem}-{backend}{path.suffix}") if several else path


def _warning_printer(stream: TextIO) -> Any:
    """Warnings as one line each, in the command line's terms."""

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = str(message)
        if issubclass(category, StabilityWarning):
            text = text.replace("Pass check_stability=False", "Pass --no-stability-check")
        print(f"polylin: warning: {text}", file=stream, flush=True)

    return show


def quietly_closed(run: Any) -> Any:
    """Wrap a command's ``run`` so that output piped into a reader that stops early
    (``polylin fit --json | head``) ends the command quietly instead of with a traceback."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return int(run(args))
        except BrokenPipeError:
            # Point stdout at /dev/null so the interpreter's final flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    return guarded


def run(args: argparse.Namespace) -> int:
    names = backend_names(args.backend)
    if len(names) > 1 and not args.json:
        require("rich", needed_for="the side-by-side table of several backends (or pass --json)")
    dataset = read_data(args.data, args.target, args.features) if args.data else None
    if dataset is None and (args.target or args.features):
        raise ValueError("--target and --features need --data FILE.")
    several = len(names) > 1 or args.backend == "all"
    n_examples = dataset.X.shape[0] if dataset is not None else BOOK_N
    checkpoint = _load_checkpoint(args.resume) if args.resume else None
    start_epoch = 0 if checkpoint is None else checkpoint.epochs_completed
    progress_stream = sys.stderr if args.json else sys.stdout
    draw_bar = wanted(sys.stdout, args.no_progress)

    results: list[FitResult] = []
    saved: dict[int, str] = {}
    status = 0
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(sys.stderr)
        warnings.simplefilter("ignore", TrainingInterruptedWarning)  # reported below, with the path
        for name in names:
            if several and not args.json:
                print(f"== {name}", flush=True)
            progress = EpochProgress(
                label=name,
                epochs=args.epochs,
                steps_per_epoch=max(1, math.ceil(n_examples / max(1, args.batch_size))),
                start_epoch=start_epoch,
                bar=progress_stream if draw_bar else None,
            )
            with progress:

                def on_epoch(
                    epoch: int, loss: float, seconds: float, progress: EpochProgress = progress
                ) -> None:
                    progress.epoch_done(epoch, loss)
                    if not args.json:
                        shown = (
                            f"loss {loss:f}" if math.isfinite(loss) else "loss not evaluated (--loss-every)"
                        )
                        progress.print(f"epoch {epoch}, {shown}")

                result = _fit_one(args, name, dataset, checkpoint, on_epoch)
            results.append(result)
            if not args.json:
                _print_estimates(result)
            path = _checkpoint_path(args.checkpoint, name, several, result.interrupted)
            if path is not None:
                saved[len(results) - 1] = str(result.save(path))
            if result.diverged_at is not None:
                epoch, step = result.diverged_at
                kept = (
                    f"the result holds epoch {result.epochs_completed}, the last finite one"
                    if result.epochs_completed
                    else "no epoch finished, so the result holds the initial parameters"
                )
                print(
                    f"polylin: {name} diverged at epoch {epoch}, step {step}; {kept}. "
                    "Lower --lr, or standardise the features.",
                    file=sys.stderr,
                )
                status = max(status, EXIT_DIVERGED)
            if result.interrupted:
                print(
                    f"polylin: interrupted after epoch {result.epochs_completed} of {args.epochs} on {name}; "
                    f"saved to {saved[len(results) - 1]}. Continue with: polylin fit [the same options] "
                    f"--resume {saved[len(results) - 1]}",
                    file=sys.stderr,
                    flush=True,
                )
                status = EXIT_INTERRUPTED
                break
    if args.json:
        print(json.dumps(_document(results, dataset, saved), indent=2, allow_nan=False))
    elif len(results) > 1:
        print()
        print_table(side_by_side(results))
    return status


def _load_checkpoint(path: str) -> FitResult:
    try:
        return load(path)
    except FileNotFoundError:
        raise ValueError(
            f"--resume {path}: no such file; pass the path a --checkpoint was saved to."
        ) from None


def _fit_one(
    args: argparse.Namespace, name: str, dataset: DataSet | None, checkpoint: FitResult | None, on_epoch: Any
) -> FitResult:
    try:
        return _call_fit(args, name, dataset, checkpoint, on_epoch)
    except DivergenceError as exc:
        raise DivergenceError(
            f"training diverged on {name}: a non-finite loss or parameter appeared at epoch {exc.epoch}, "
            f"step {exc.step} (--lr {args.lr:g}). Lower --lr, standardise the features, or pass "
            "--on-divergence stop to keep the last finite epoch.",
            epoch=exc.epoch,
            step=exc.step,
            last_finite_w=exc.last_finite_w,
            last_finite_b=exc.last_finite_b,
            result=exc.result,
        ) from None


def _call_fit(
    args: argparse.Namespace, name: str, dataset: DataSet | None, checkpoint: FitResult | None, on_epoch: Any
) -> FitResult:
    return fit(
        None if dataset is None else dataset.X,
        None if dataset is None else dataset.y,
        backend=name,
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        loss_every=args.loss_every,
        seed=args.seed,
        dtype=args.dtype,
        device=args.device,
        loss=args.loss,
        shuffle=not args.no_shuffle,
        init=args.init,
        fit_intercept=not args.no_intercept,
        grad=args.grad,
        on_divergence=args.on_divergence,
        true_w=args.true_w,
        true_b=args.true_b,
        on_epoch=on_epoch,
        backend_options=backend_options(args.backend_option, name),
        resume=checkpoint,
        check_stability=not args.no_stability_check,
        workers=args.workers,
        out_of_core_shuffle=args.out_of_core_shuffle,
    )


def _print_estimates(result: FitResult) -> None:
    if result.w_error is not None:
        print(f"error in estimating w: {result.w_error}")
        print(f"error in estimating b: {result.b_error}")
    else:
        print(f"w: {result.w}")
        print(f"b: {result.b}")


def _document(results: list[FitResult], dataset: DataSet | None, saved: dict[int, str]) -> dict[str, Any]:
    if dataset is None:
        data: dict[str, Any] = {
            "source": "synthetic",
            "n_examples": BOOK_N,
            "noise": BOOK_NOISE,
            "true_w": list(BOOK_TRUE_W),
            "true_b": BOOK_TRUE_B,
        }
        if results:
            data["true_w"] = None if results[0].true_w is None else results[0].true_w.tolist()
            data["true_b"] = results[0].true_b
    else:
        data = {
            "source": dataset.path,
            "n_examples": int(dataset.X.shape[0]),
            "features": list(dataset.feature_names),
            "target": dataset.target_name,
        }
    runs = [_run_record(result, saved.get(index)) for index, result in enumerate(results)]
    return {"polylin_version": __version__, "data": data, "runs": runs}


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _run_record(result: FitResult, checkpoint: str | None) -> dict[str, Any]:
    def numbers(values: Any) -> Any:
        if values is None:
            return None
        return [_finite_or_none(v) for v in np.asarray(values, dtype=np.float64).ravel().tolist()]

    return {
        "backend": result.backend,
        "backend_version": result.backend_version,
        "device": result.device,
        "dtype": result.dtype,
        "config": result.config,
        "w": numbers(result.w),
        "b": _finite_or_none(float(result.b)),
        "losses": numbers(result.losses),
        "initial_loss": _finite_or_none(float(result.initial_loss)),
        "final_loss": _finite_or_none(float(result.final_loss)),
        "epoch_seconds": numbers(result.epoch_times),
        "w_error": numbers(result.w_error),
        "b_error": None if result.b_error is None else _finite_or_none(result.b_error),
        "diverged_at": None if result.diverged_at is None else list(result.diverged_at),
        "interrupted": result.interrupted,
        "checkpoint": checkpoint,
    }


def side_by_side(results: list[FitResult]) -> Table:
    """One row per backend: versions, final loss, errors and time per epoch."""
    rows = []
    for r in results:
        w_err = max(abs(float(e)) for e in r.w_error) if r.w_error is not None else float("nan")
        b_err = abs(r.b_error) if r.b_error is not None else float("nan")
        steady = r.epoch_times[1:] if len(r.epoch_times) > 1 else r.epoch_times
        ms = f"{1e3 * float(sorted(steady)[len(steady) // 2]):.3f}" if len(steady) else "-"
        rows.append((
            r.backend, r.backend_version, r.device, r.dtype, f"{r.final_loss:.6g}",
            f"{w_err:.2e}", f"{b_err:.2e}", ms,
        ))  # fmt: skip
    columns = ("backend", "version", "device", "dtype", "final loss", "max |w err|", "|b err|", "ms/epoch")
    return table_of(columns, rows)
