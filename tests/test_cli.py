"""The command line prints what the book prints."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import backend_params


def polylin_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polylin", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("backend", backend_params())
def test_fit_prints_the_books_lines(backend: str) -> None:
    done = polylin_cli("fit", "--backend", backend)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(",")[0] for line in epochs] == ["epoch 1", "epoch 2", "epoch 3"]
    final = float(re.match(r"epoch 3, loss (\S+)", epochs[-1]).group(1))  # type: ignore[union-attr]
    assert 0 < final < 1e-4
    assert any(line.startswith("error in estimating w:") for line in lines)
    assert any(line.startswith("error in estimating b:") for line in lines)


def test_fit_on_several_backends_prints_a_table() -> None:
    done = polylin_cli("fit", "--backend", "numpy,numpy", "--epochs", "1")
    assert done.returncode == 0, done.stderr
    assert "final loss" in done.stdout
    assert done.stdout.count("== numpy") == 2


def test_bad_option_is_one_line_on_stderr() -> None:
    done = polylin_cli("fit", "--backend", "nope")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert "not a known backend" in done.stderr


def test_a_backend_option_the_backend_does_not_take_is_one_line_naming_it() -> None:
    done = polylin_cli("fit", "--backend", "numpy", "--backend-option", "fused_epoch=false")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert "backend_options ['fused_epoch'] are not options of the numpy backend" in done.stderr


def test_backends_lists_every_backend() -> None:
    done = polylin_cli("backends")
    assert done.returncode == 0, done.stderr
    for name in ("numpy", "jax", "torch", "mxnet"):
        assert re.search(rf"^{name}\s", done.stdout, re.M)
