"""Importing polylin is cheap, and backend lookup fails clearly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import backend_params

import polylin
from polylin.backends import BACKENDS, KNOWN_BACKENDS, backend_class

REPO = Path(__file__).resolve().parent.parent


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_import_polylin_imports_no_framework() -> None:
    probe = run_python(
        "import sys, polylin\n"
        "loaded = [m for m in ('jax', 'torch', 'mxnet', 'matplotlib', 'sklearn') if m in sys.modules]\n"
        "print(loaded)"
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


def test_import_polylin_is_lazy_and_every_public_name_resolves() -> None:
    probe = run_python(
        "import sys, polylin\n"
        "print('numpy' in sys.modules)\n"
        "names = sorted(set(polylin.__all__) | {'SGDLinearRegressor', 'compare', 'plot', 'experiments'})\n"
        "print(all(getattr(polylin, name) is not None for name in names))\n"
        "print('numpy' in sys.modules, polylin.fit.__module__, 'fit' in dir(polylin))\n"
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["False", "True", "True", "polylin.api", "True"]
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        polylin.fitt  # noqa: B018 - the lookup is the test


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="not a known backend") as info:
        polylin.fit(backend="tensorflow")
    for name in KNOWN_BACKENDS:
        assert name in str(info.value)


def test_missing_backend_names_the_install_command() -> None:
    # Make "torch" unimportable in a fresh interpreter, as on a machine without it.
    probe = run_python(
        "import sys; sys.modules['torch'] = None\n"
        "import polylin\n"
        "try:\n"
        "    polylin.fit(backend='torch')\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, '|', exc)\n"
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith("BackendNotInstalledError |")
    assert f"Install it with: {BACKENDS['torch'].install}" in probe.stdout
    assert "pip install -r " in BACKENDS["torch"].install


def test_install_hints_name_files_that_exist() -> None:
    for entry in BACKENDS.values():
        words = entry.install.split()
        if "-r" in words:
            requirements = words[words.index("-r") + 1]
            assert (REPO / requirements).is_file(), f"{entry.name}: {entry.install!r} names a missing file"
            assert requirements.startswith("environments/"), entry.install


def test_unknown_backend_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match=r"backend='jxa' is not a known backend.*Did you mean 'jax'\?"):
        polylin.fit(backend="jxa")
    with pytest.raises(ValueError, match=r"Did you mean 'torch'\?"):
        backend_class("Torch")
    with pytest.raises(ValueError, match="not a known backend") as info:
        polylin.fit(backend="tensorflow")
    assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize("backend", backend_params())
def test_jax_float64_does_not_leak_x64_globally(backend: str) -> None:
    polylin.fit(backend=backend, dtype="float64", epochs=1)
    if "jax" in sys.modules:
        import jax
        import jax.numpy as jnp

        assert not jax.config.read("jax_enable_x64")
        assert jnp.ones(1).dtype == jnp.float32


def gpu_present(backend: str) -> bool:
    """Ask the framework itself, independently of polylin, whether it sees a GPU."""
    if backend == "torch":
        import torch

        return bool(torch.cuda.is_available())
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "mxnet":
        import mxnet

        return bool(mxnet.context.num_gpus())
    return False


@pytest.mark.parametrize("backend", backend_params())
def test_gpu_request(backend: str) -> None:
    if gpu_present(backend):
        result = polylin.fit(backend=backend, device="gpu", epochs=1)
        assert "cpu" not in result.device.lower()
        assert result.final_loss < 1e-2
    else:
        with pytest.raises(polylin.DeviceNotAvailableError, match="device='gpu:0' is not available") as info:
            polylin.fit(backend=backend, device="gpu", epochs=1)
        assert "device='cpu'" in str(info.value)
        assert backend_class(backend)().device_name.lower().startswith("cpu")


def test_bad_device_string() -> None:
    with pytest.raises(ValueError, match="not a device polylin understands"):
        polylin.fit(device="tpu-ish")


def test_numpy_backend_has_no_autodiff() -> None:
    with pytest.raises(ValueError, match="grad='analytic'"):
        polylin.fit(backend="numpy", grad="autodiff")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0}, "lr=0 must be a finite number > 0"),
        ({"lr": float("nan")}, "lr=nan"),
        ({"batch_size": 0}, "batch_size=0 must be a whole number >= 1"),
        ({"batch_size": 2000}, "larger than the 1000 examples"),
        ({"epochs": 0}, "epochs=0"),
        ({"loss": "mse"}, "loss='mse' is not a known loss"),
        (
            {"loss": "hubber"},
            "loss='hubber' is not a known loss; choose one of ['absolute', 'huber', "
            "'squared']. Did you mean 'huber'?",
        ),
        ({"dtype": "float16"}, "dtype='float16' is not supported"),
        (
            {"dtype": "flaot64"},
            "dtype='flaot64' is not supported: polylin trains in 'float32' or "
            "'float64'. Pass dtype='float32' (the default) or dtype='float64'. Did you mean 'float64'?",
        ),
        ({"init": "ones"}, "init='ones'"),
    ],
)
def test_bad_options_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        polylin.fit(**kwargs)  # type: ignore[arg-type]


def test_y_as_column_means_the_same_as_y_flat() -> None:
    X, y = polylin.synthetic_data(n=200, seed=1)
    flat = polylin.fit(X, y, epochs=2)
    column = polylin.fit(X, y.reshape(-1, 1), epochs=2)
    np.testing.assert_array_equal(flat.w, column.w)
    assert flat.b == column.b
