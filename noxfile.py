"""The cross-backend test matrix.

Each backend gets a session of its own, in its own virtual environment,
installed from its pinned file in ``backends/``; ``all`` puts the four
frameworks in one process. Inside a backend's session that backend is
*required*: if it cannot be imported, the run fails (``POLYLIN_REQUIRE_BACKENDS``).

    nox                 # lint, every backend session, the all-in-one matrix and the docs
    nox -s torch        # one backend
    nox -s demo         # fit the book's setup on all four, side by side
    nox -s report       # the comparison report, each backend in its own environment, merged in report/
    nox -s bench        # polylin against hand-written loops, floors and targets (the performance issue)
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "numpy", "jax", "torch", "mxnet", "all", "docs"]

PYTHON = "3.11"  # MXNet 1.9.1 and the on-disk torch wheel both need Python 3.11
BACKEND_SESSIONS = {
    "numpy": ("numpy", "array-api"),
    "jax": ("numpy", "jax"),
    "torch": ("numpy", "torch"),
    "mxnet": ("numpy", "mxnet"),
    "all": ("numpy", "jax", "torch", "mxnet", "array-api"),
}


def install_environment(session: nox.Session, environment: str, *extras: str) -> None:
    """Install ``backends/<environment>.txt``, then polylin with ``extras``, under the same pins."""
    requirements = f"backends/{environment}.txt"
    session.install("-r", requirements)
    target = f".[{','.join(extras)}]" if extras else "."
    session.install("-c", requirements, "-e", target)


def run_matrix(session: nox.Session, environment: str) -> None:
    install_environment(session, environment, "test")
    required = ",".join(BACKEND_SESSIONS[environment])
    session.run(
        "pytest",
        *(session.posargs or ["tests"]),
        env={"POLYLIN_REQUIRE_BACKENDS": required, "JAX_PLATFORMS": "cpu"},
    )


@nox.session(python=PYTHON)
def numpy(session: nox.Session) -> None:
    """The NumPy backend on current NumPy."""
    run_matrix(session, "numpy")


@nox.session(python=PYTHON)
def jax(session: nox.Session) -> None:
    """The JAX backend on a current JAX (NumPy 2)."""
    run_matrix(session, "jax")


@nox.session(python=PYTHON)
def torch(session: nox.Session) -> None:
    """The PyTorch backend."""
    run_matrix(session, "torch")


@nox.session(python=PYTHON)
def mxnet(session: nox.Session) -> None:
    """The MXNet backend (numpy<1.24)."""
    run_matrix(session, "mxnet")


@nox.session(name="all", python=PYTHON)
def all_backends(session: nox.Session) -> None:
    """All four frameworks in one process: the full parity matrix."""
    run_matrix(session, "all")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff and mypy, in the all-four environment so that mypy sees every library polylin uses."""
    install_environment(session, "all", "dev", "test", "report", "bench", "cli", "sklearn")
    session.run("ruff", "check", "polylin", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "polylin", "tests", "benchmarks", "noxfile.py")
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site with MkDocs; any warning fails the build (--strict)."""
    install_environment(session, "numpy", "docs")
    site = f"{session.create_tmp()}/site"
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Fit the book's setup on every backend and print the results side by side."""
    install_environment(session, "all")
    session.run("polylin", "fit", "--backend", "all", *session.posargs)


# -- the comparison report and the benchmark suite (not in the default run) -------------------------------
REPORT_ENVIRONMENTS = ("numpy", "jax", "torch", "mxnet")
REPORT_DIR = "report"
REPORT_PARTS = f"{REPORT_DIR}/parts"


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """The backend comparison report: each backend measured in its own environment, then merged.

    Queues report-numpy, report-jax, report-torch, report-mxnet (each writes
    report/parts/<backend>.json) and report-merge (writes report/report.json,
    report.md, report.html and the PNGs). Options go to every measurement:
    ``nox -s report -- --workload large --repeats 2``.
    """
    import shutil

    shutil.rmtree(REPORT_PARTS, ignore_errors=True)
    for environment in REPORT_ENVIRONMENTS:
        session.notify(f"report-{environment}", session.posargs)
    session.notify("report-merge")


def measure_in_own_environment(session: nox.Session, environment: str) -> None:
    install_environment(session, environment, "report")
    session.run(
        "polylin", "compare", "--backends", environment, "--label", environment,
        "--partial", f"{REPORT_PARTS}/{environment}.json", *session.posargs,
    )  # fmt: skip


@nox.session(name="report-numpy", python=PYTHON)
def report_numpy(session: nox.Session) -> None:
    """Measure the NumPy backend in the numpy environment (part of ``report``)."""
    measure_in_own_environment(session, "numpy")


@nox.session(name="report-jax", python=PYTHON)
def report_jax(session: nox.Session) -> None:
    """Measure the JAX backend in the jax environment (part of ``report``)."""
    measure_in_own_environment(session, "jax")


@nox.session(name="report-torch", python=PYTHON)
def report_torch(session: nox.Session) -> None:
    """Measure the PyTorch backend in the torch environment (part of ``report``)."""
    measure_in_own_environment(session, "torch")


@nox.session(name="report-mxnet", python=PYTHON)
def report_mxnet(session: nox.Session) -> None:
    """Measure the MXNet backend in the mxnet environment (part of ``report``)."""
    measure_in_own_environment(session, "mxnet")


@nox.session(name="report-merge", python=PYTHON)
def report_merge(session: nox.Session) -> None:
    """Merge report/parts/*.json into one report; a backend with no part is listed as skipped."""
    import glob

    parts = sorted(glob.glob(f"{REPORT_PARTS}/*.json"))
    if not parts:
        session.error(f"no partial results in {REPORT_PARTS}/; run: nox -s report")
    install_environment(session, "numpy", "report")
    session.run(
        "polylin", "compare", "--merge", *parts, "--backends", ",".join(REPORT_ENVIRONMENTS),
        "--out", REPORT_DIR,
    )  # fmt: skip


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """polylin against hand-written loops in each framework, the bandwidth floors, scikit-learn, import time
    and memory, in the all-four environment: ``nox -s bench`` (about 10 minutes), ``nox -s bench -- --quick``.
    """
    install_environment(session, "all", "bench")
    session.run("python", "-m", "benchmarks.run", *session.posargs, env={"JAX_PLATFORMS": "cpu"})


# -- scale: workers=k on jax and torch (issue 16); self-contained, not in the default run ------------------
@nox.session(python=PYTHON)
def scale(session: nox.Session) -> None:
    """workers=k: jax.sharding and torch.distributed parity, faults, resume across worker counts,
    torchrun; ``nox -s scale -- -k torch`` passes options to pytest."""
    import pathlib

    folder = "environments" if pathlib.Path("environments/all.txt").exists() else "backends"
    requirements = f"{folder}/all.txt"
    session.install("-r", requirements)
    session.install("-c", requirements, "-e", ".[test]")
    session.run(
        "pytest",
        *(
            session.posargs
            or [
                "tests/test_workers.py",
                *sorted(str(p) for p in pathlib.Path("tests").glob("test_scale*.py")),
            ]
        ),
        env={"POLYLIN_REQUIRE_BACKENDS": "numpy,jax,torch", "JAX_PLATFORMS": "cpu"},
    )
