"""Throughput against ``workers=k`` for jax (``jax.sharding``) and torch (``torch.distributed``).

    python -m benchmarks.scale                       # 200000 x 100, batch 1024, k = 1, 2 (about a minute)
    python -m benchmarks.scale --workers 1,2,4 --n 50000
    python -m benchmarks.scale --parity              # max relative difference of k workers against 1

Each (backend, k) runs in a fresh process, so that the XLA host-device count
is set before jax is imported and no run inherits another's threads. The
throughput is examples per second over the fastest epoch after the first
(which compiles; the fastest is the least disturbed on a shared machine); for
torch the epoch clock runs inside rank 0, so the workers' start-up is reported separately as the wall
time of the whole ``fit`` call.

On a machine with C cores, k > C workers cannot run faster than C: they
share the cores. The table therefore also sets the communication per step
against the compute per step, which is what decides how the design scales on
more cores or devices.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

RUN = """
import json, sys, time
import numpy as np
import polylin
n, d, batch, epochs, k, backend, dtype, grad = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
true_w = rng.normal(size=d)
X, y = polylin.synthetic_data(true_w, 1.0, n, seed=1, dtype=dtype)
started = time.perf_counter()
r = polylin.fit(X, y, backend=backend, workers=k, lr=0.01, batch_size=batch, epochs=epochs, seed=0,
                dtype=dtype, grad=grad, check_stability=False)
wall = time.perf_counter() - started
print(json.dumps({"epoch_times": r.epoch_times.tolist(), "wall": wall, "device": r.device,
                  "w": r.w.tolist(), "b": r.b, "losses": r.losses.tolist()}))
"""


def run_one(
    n: int, d: int, batch: int, epochs: int, k: int, backend: str, dtype: str, grad: str
) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("JAX_PLATFORMS", "cpu")
    arguments = json.dumps([n, d, batch, epochs, k, backend, dtype, grad])
    done = subprocess.run(
        [sys.executable, "-c", RUN, arguments], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"{backend} workers={k} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def steady(epoch_times: list[float]) -> float:
    """The fastest epoch after the first (which compiles): on a shared machine the least disturbed."""
    return min(epoch_times[1:] or epoch_times)


def scaling(args: argparse.Namespace) -> None:
    n, d, batch = args.n, args.d, args.batch_size
    steps = -(-n // batch)
    print(f"workload: {n} x {d} float32, batch {batch}, {args.epochs} epochs ({steps} steps an epoch); "
          f"{os.cpu_count()} CPU cores")  # fmt: skip
    print()
    header = f"{'backend':8} {'k':>2} {'examples/s':>12} {'speed-up':>9} {'efficiency':>10}"
    header += f" {'fit wall s':>10}  device"
    print(header)
    print("-" * len(header))
    for backend in args.backends:
        base = None
        for k in args.workers:
            out = run_one(n, d, batch, args.epochs, k, backend, "float32", "autodiff")
            throughput = n / steady(out["epoch_times"])
            base = base or throughput
            print(
                f"{backend:8} {k:>2} {throughput:>12,.0f} {throughput / base:>8.2f}x "
                f"{throughput / base / k:>9.0%} {out['wall']:>10.1f}  {out['device']}",
                flush=True,
            )
    print()
    floats = d + 1
    flops = 2 * batch * d * 2  # forward X w and backward X^T g, 2 flops per multiply-add
    print("communication per step (what is actually sent):")
    print(
        f"  torch: one all_reduce(SUM) of the gradient (grad w, grad b) = d + 1 = {floats} floats "
        f"({4 * floats} bytes);"
    )
    print(
        "         jax: XLA's SPMD partitioner emits two all-reduces, d floats for w and 1 for b (same total)"
    )
    print(f"  a ring all-reduce sends 2(k-1)/k of that per worker: {floats} floats at k = 2, approaching")
    print(f"  2(d+1) = {2 * floats} floats ({8 * floats} bytes) as k grows, whatever the batch size m.")
    print(
        "  Per epoch, besides: one scalar all-reduce for the loss (and, torch, a broadcast of d + 1 floats)."
    )
    print(
        "compute per step: 2·m·d multiply-adds (forward X w, backward X^T g) = "
        f"{flops:,} flops for m = {batch},"
    )
    print(
        f"  split over the k workers ({flops // 2:,} each at k = 2): {flops / (8 * floats):,.0f} flops of the"
    )
    print("  batch per byte sent, and the ratio grows with m and d: the all-reduce does not grow with m.")
    if os.cpu_count() and max(args.workers) > os.cpu_count():  # type: ignore[operator]
        print(
            f"note: this machine has {os.cpu_count()} cores: k > {os.cpu_count()} workers share them "
            "and cannot speed up."
        )


def parity(args: argparse.Namespace) -> None:
    import numpy as np

    n, d, batch = 997, 2, 10
    print(
        f"parity: {n} x {d}, batch {batch} (short last batch of {n % batch}), 3 epochs; "
        "max relative difference"
    )
    print(f"{'backend':8} {'k':>2} {'dtype':8} {'grad':9} {'params':>10} {'losses':>10}")
    for backend in args.backends:
        for dtype in ("float32", "float64"):
            for grad in ("autodiff", "analytic"):
                one = run_one(n, d, batch, 3, 1, backend, dtype, grad)
                for k in [k for k in args.workers if k > 1]:
                    many = run_one(n, d, batch, 3, k, backend, dtype, grad)
                    p1, pk = np.append(one["w"], one["b"]), np.append(many["w"], many["b"])
                    l1, lk = np.asarray(one["losses"]), np.asarray(many["losses"])
                    dp = float(np.max(np.abs(pk - p1) / np.abs(p1)))
                    dl = float(np.max(np.abs(lk - l1) / np.abs(l1)))
                    print(f"{backend:8} {k:>2} {dtype:8} {grad:9} {dp:>10.2e} {dl:>10.2e}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="jax,torch", type=lambda s: s.split(","))
    parser.add_argument("--workers", default="1,2", type=lambda s: [int(k) for k in s.split(",")])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--parity", action="store_true", help="print k-worker against 1-worker differences")
    args = parser.parse_args(argv)
    from polylin.backends import is_installed

    missing = [name for name in args.backends if not is_installed(name)]
    for name in missing:
        print(f"SKIPPED {name}: not installed here (the scale environment, nox -s scale, has jax and torch)")
    args.backends = [name for name in args.backends if name not in missing]
    if args.backends:
        (parity if args.parity else scaling)(args)


if __name__ == "__main__":
    main()
