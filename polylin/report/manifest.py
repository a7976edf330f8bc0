"""What a report records about where it ran: versions, Python, CPU, threads.

Nothing here imports a framework. Versions come from the installed
distributions' metadata; native thread pools (BLAS, OpenMP) from
threadpoolctl when it is installed, which sees the pools of whatever the
process has already loaded.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sys
from typing import Any

from polylin._version import __version__

#: Distributions whose versions a report lists when they are installed.
DISTRIBUTIONS = (
    "numpy",
    "array-api-compat",
    "jax",
    "jaxlib",
    "torch",
    "mxnet",
    "matplotlib",
    "scikit-learn",
    "threadpoolctl",
)

#: Environment variables that change how many threads the frameworks use.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "XLA_FLAGS",
    "JAX_PLATFORMS",
    "MXNET_ENGINE_TYPE",
    "MXNET_CPU_WORKER_NTHREADS",
    "MXNET_OMP_MAX_THREADS",
)


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), or all of them."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return len(affinity(0))
    return os.cpu_count() or 1


def versions() -> dict[str, str]:
    """Installed versions of polylin and the distributions it is compared with."""
    out = {"polylin": __version__}
    for name in DISTRIBUTIONS:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def thread_pools() -> list[dict[str, Any]] | str:
    """The native thread pools loaded in this process, or why they cannot be listed."""
    try:
        from threadpoolctl import threadpool_info  # type: ignore[import-untyped]
    except ImportError:
        return "threadpoolctl is not installed (pip install threadpoolctl)"
    pools = []
    for pool in threadpool_info():
        pools.append(
            {
                "api": pool.get("user_api"),
                "library": pool.get("internal_api"),
                "threads": pool.get("num_threads"),
                "file": os.path.basename(str(pool.get("filepath", ""))),
            }
        )
    return pools


def host() -> dict[str, Any]:
    """The machine and interpreter: CPU, CPU counts, OS, Python."""
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }


def environment() -> dict[str, Any]:
    """One process's software: Python, executable, versions, thread settings and pools."""
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "versions": versions(),
        "thread_variables": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
        "thread_pools": thread_pools(),
    }


def now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
