"""The cross-backend test matrix, the demo and the reports.

Each backend's tests run in an environment of their own, installed from its
pinned file in ``environments/``; ``tests(all)`` puts the four frameworks in
one process. Inside a backend's session that backend is *required*: if it
cannot be imported, the run fails (``POLYLIN_REQUIRE_BACKENDS``).

    nox                     # lint, tests for every environment, scale, and the docs (what CI runs)
    nox -s "tests(torch)"   # one backend; nox -s tests runs all five environments
    nox -s demo             # everything installed (four frameworks, every extra); fit on all four
    nox -s report           # the comparison report, each backend in its own environment, merged in report/
    nox -s bench            # polylin against hand-written loops, floors and targets (the performance issue)

``demo`` and ``tests(all)`` install the same environment (:func:`install_everything`),
so the tests run where a user of the README's first command works.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "tests", "scale", "docs"]

PYTHON = "3.11"  # MXNet 1.9.1 and the on-disk torch wheel both need Python 3.11
ENVIRONMENTS = "environments"  # one pinned requirements file per environment: environments/<name>.txt

#: The backends each environment's test session requires (must import there).
REQUIRED_BACKENDS = {
    "numpy": ("numpy", "array-api"),
    "jax": ("numpy", "jax"),
    "torch": ("numpy", "torch"),
    "mxnet": ("numpy", "mxnet"),
    "all": ("numpy", "jax", "torch", "mxnet", "array-api"),
}

#: The environment with every framework, and every extra a user of polylin can need
#: (the tests, the estimator, the command line's progress bars, plots, reports, the benchmarks).
EVERYTHING = "all"
EVERY_EXTRA = ("test", "sklearn", "cli", "plot", "report", "bench")

#: The environments whose backends ``nox -s report`` measures, one part each.
REPORT_ENVIRONMENTS = ("numpy", "jax", "torch", "mxnet")
REPORT_DIR = "report"
REPORT_PARTS = f"{REPORT_DIR}/parts"


def install_environment(session: nox.Session, environment: str, *extras: str) -> None:
    """Install ``environments/<environment>.txt``, then polylin with ``extras``, under the same pins."""
    requirements = f"{ENVIRONMENTS}/{environment}.txt"
    session.install("-r", requirements)
    target = f".[{','.join(extras)}]" if extras else "."
    session.install("-c", requirements, "-e", target)


def install_everything(session: nox.Session, *more_extras: str) -> None:
    """The one environment for everything: all four frameworks and every extra (demo, tests(all), lint)."""
    install_environment(session, EVERYTHING, *EVERY_EXTRA, *more_extras)


def activate_line(session: nox.Session) -> str:
    """The one shell line that enters the session's environment, relative to where nox was started."""
    bin_dir = os.path.relpath(session.bin, session.invoked_from)
    if os.name == "nt":
        return os.path.join(bin_dir, "activate")
    return f"source {os.path.join(bin_dir, 'activate')}"


@nox.session(python=PYTHON)
@nox.parametrize("environment", [nox.param(name, id=name) for name in REQUIRED_BACKENDS])
def tests(session: nox.Session, environment: str) -> None:
    """The test suite in one pinned environment, which requires that environment's backends."""
    if environment == EVERYTHING:
        install_everything(session)
    else:
        install_environment(session, environment, "test")
    session.run(
        "pytest",
        *(session.posargs or ["tests"]),
        env={"POLYLIN_REQUIRE_BACKENDS": ",".join(REQUIRED_BACKENDS[environment]), "JAX_PLATFORMS": "cpu"},
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff and mypy, in the everything environment so that mypy sees every library polylin uses."""
    install_everything(session, "dev")
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
    """Install everything (the four frameworks, every extra), fit the book's setup on each, side by side.

    Ends with the line that enters the environment, in which every command of
    the README and of docs/ runs.
    """
    install_everything(session)
    session.run("polylin", "fit", "--backend", "all", *session.posargs)
    print(f"\nEvery command in the README and docs/ runs in this environment. Enter it with:\n\n"
          f"    {activate_line(session)}\n", flush=True)  # fmt: skip


# -- the comparison report and the benchmark suite (not in the default run) -------------------------------


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """The backend comparison report: each backend measured in its own environment, then merged.

    Queues report-part(numpy), report-part(jax), report-part(torch),
    report-part(mxnet) (each writes report/parts/<backend>.json) and
    report-merge (writes report/report.json, report.md, report.html and the
    PNGs). Options go to every measurement:
    ``nox -s report -- --workload large --repeats 2``.
    """
    import shutil

    shutil.rmtree(REPORT_PARTS, ignore_errors=True)
    for environment in REPORT_ENVIRONMENTS:
        session.notify(f"report-part({environment})", session.posargs)
    session.notify("report-merge")


@nox.session(name="report-part", python=PYTHON)
@nox.parametrize("environment", [nox.param(name, id=name) for name in REPORT_ENVIRONMENTS])
def report_part(session: nox.Session, environment: str) -> None:
    """Measure one backend in its own environment (part of ``report``): report/parts/<backend>.json."""
    install_environment(session, environment, "report")
    session.run(
        "polylin", "compare", "--backends", environment, "--label", environment,
        "--partial", f"{REPORT_PARTS}/{environment}.json", *session.posargs,
    )  # fmt: skip


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
    """polylin against hand-written loops in each framework, the bandwidth floors, scikit-learn, import
    time and memory, in the everything environment: ``nox -s bench`` (about 10 minutes), or
    ``nox -s bench -- --quick``.
    """
    install_everything(session)
    session.run("python", "-m", "benchmarks.run", *session.posargs, env={"JAX_PLATFORMS": "cpu"})


@nox.session(name="bench-out-of-core", python=PYTHON)
def bench_out_of_core(session: nox.Session) -> None:
    """Out-of-core epochs against reading the same bytes from the page cache and against dask-ml's
    ``Incremental(SGDRegressor)``, and a fit on a ``dask.distributed`` ``LocalCluster``
    (``environments/scale-bench.txt``); ``nox -s bench-out-of-core -- --rows 1000000``."""
    install_environment(session, "scale-bench")
    session.run(
        "python", "-m", "benchmarks.out_of_core", "--backends", "numpy,jax,torch", "--dask-cluster", "2",
        *session.posargs, env={"JAX_PLATFORMS": "cpu"},
    )  # fmt: skip


# -- scale: workers=k and data beyond memory (issue 16) ------------------------------------------------------
SCALE_TESTS = ("tests/test_workers.py", "tests/test_out_of_core.py", "tests/test_handoff.py")


@nox.session(python=PYTHON)
def scale(session: nox.Session) -> None:
    """workers=k (jax.sharding, torch.distributed: parity, faults, resume across worker counts, torchrun)
    and data beyond memory (dask, memory maps), on a current JAX with dask and torch pinned
    (``environments/scale.txt``); ``nox -s scale -- -k torch`` passes options to pytest."""
    install_environment(session, "scale", "test")
    session.run(
        "pytest", *(session.posargs or SCALE_TESTS),
        env={"POLYLIN_REQUIRE_BACKENDS": "numpy,jax,torch", "JAX_PLATFORMS": "cpu"},
    )  # fmt: skip
