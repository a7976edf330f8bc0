"""The cross-backend test matrix.

Each backend gets a session of its own, in its own virtual environment,
installed from its pinned file in ``backends/``; ``all`` puts the four
frameworks in one process. Inside a backend's session that backend is
*required*: if it cannot be imported, the run fails (``POLYLIN_REQUIRE_BACKENDS``).

    nox                 # lint, every backend session, the all-in-one matrix and the docs
    nox -s torch        # one backend
    nox -s demo         # fit the book's setup on all four, side by side
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "numpy", "jax", "torch", "mxnet", "all"]

PYTHON = "3.11"  # MXNet 1.9.1 and the on-disk torch wheel both need Python 3.11
BACKEND_SESSIONS = {
    "numpy": ("numpy",),
    "jax": ("numpy", "jax"),
    "torch": ("numpy", "torch"),
    "mxnet": ("numpy", "mxnet"),
    "all": ("numpy", "jax", "torch", "mxnet"),
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
    """ruff and mypy."""
    install_environment(session, "numpy", "dev")
    session.run("ruff", "check", "polylin", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "polylin", "tests", "noxfile.py")
    session.run("mypy")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Fit the book's setup on every backend and print the results side by side."""
    install_environment(session, "all")
    session.run("polylin", "fit", "--backend", "all", *session.posargs)
