"""The package installed as a user installs it, from a wheel or by the documented GPU install.

An editable install (which every other test runs on) finds any file of the
checkout, so a module that the wheel leaves out goes unnoticed there. Here
the wheel built from the checkout goes into a fresh virtual environment that
sees this environment's torch, triton and numpy through a .pth file (which
adds the folder without running this environment's editable-install hooks),
and code runs from a folder outside the repository, with TRITON_INTERPRET
unset: what a user on this machine would run.

The GPU check's install, ``pip install --no-deps --no-build-isolation -e .``,
builds with the environment's own setuptools, unchecked by pip: it must work
with setuptools 77 to 81 (77 reads the license fields; torch 2.11 requires
below 82), and fail below 77 with a message that names the setuptools needed
and the one found. Those tests install setuptools from PyPI (network, pip's
cache) into fresh environments, one for each release.
"""

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

# Builds the wheel and installs it into a new virtual environment: minutes.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]

# Run by the installed package: forward and backward against the float64
# reference, on whichever backend serves the CPU without the interpreter.
_CHECK = textwrap.dedent(
    """
    import sys
    import torch
    import elu_triton
    from elu_triton import LearnableELU, reference

    assert elu_triton.__file__.startswith(sys.prefix), elu_triton.__file__
    layer = LearnableELU(4, init=0.5)
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    y.backward(torch.ones_like(y))
    x64 = x.detach().clone().requires_grad_()
    a64 = layer.alpha.detach().clone().requires_grad_()
    y64 = reference.learnable_elu(x64, a64)
    y64.backward(torch.ones_like(y64))
    torch.testing.assert_close(y, y64, rtol=1e-14, atol=0)
    torch.testing.assert_close(x.grad, x64.grad, rtol=1e-14, atol=0)
    torch.testing.assert_close(layer.alpha.grad, a64.grad, rtol=1e-12, atol=0)
    print("installed", elu_triton.__version__, elu_triton.backends.backend_for("cpu").name)
    """
)


def _new_venv(folder: Path) -> Path:
    """A virtual environment in folder, without pip (this environment's pip serves it); its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return folder / "bin" / "python"


def _pip(python: Path, *arguments: str) -> list:
    """The command that runs this environment's pip on the environment of python."""
    return [sys.executable, "-m", "pip", "--python", str(python), *arguments]


def _see_this_environment(python: Path) -> None:
    """Make this environment's packages (torch, triton, numpy) importable by python: a .pth file."""
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    Path(site_packages, "test_environment.pth").write_text("\n".join(ours) + "\n")


@pytest.fixture(scope="module")
def user_venv(built_distributions, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed (not editable); its bin folder."""
    python = _new_venv(tmp_path_factory.mktemp("user") / "venv")
    _see_this_environment(python)
    subprocess.run(
        _pip(python, "install", "-q", "--no-deps", "--no-index", str(built_distributions["wheel"])),
        check=True, capture_output=True,
    )  # fmt: skip
    return python.parent


def _user_environment() -> dict:
    """This process's environment without what points at the checkout or the interpreter."""
    hidden = ("TRITON_INTERPRET", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    return {key: value for key, value in os.environ.items() if key not in hidden}


def _run(
    command: list, cwd: Path, timeout: float, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, cwd=cwd, env=_user_environment(), capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, (
            f"{command} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
        )
    return result


def test_the_installed_wheel_imports_and_matches_the_reference(user_venv, tmp_path):
    result = _run([user_venv / "python", "-c", _CHECK], cwd=tmp_path, timeout=300)
    assert result.stdout.startswith("installed ")
    assert not result.stderr, f"the package printed warnings: {result.stderr}"


def test_the_installed_demo_trains(user_venv, tmp_path):
    result = _run(
        [user_venv / "elu-triton-demo", "--epochs", "1", "--no-figures"], cwd=tmp_path, timeout=600
    )
    assert "test accuracy" in result.stdout
    assert (tmp_path / "elu_triton_demo" / "summary.json").is_file()


def _documented_install(
    setuptools: str, source: Path, folder: Path
) -> tuple[Path, subprocess.CompletedProcess]:
    """The GPU check's install of source, in a fresh environment in folder with this setuptools.

    Returns the environment's python and the install's result, failed or not.
    """
    python = _new_venv(folder / "venv")
    _run(_pip(python, "install", "-q", f"setuptools=={setuptools}"), cwd=folder, timeout=300)
    result = _run(
        _pip(python, "install", "--no-deps", "--no-build-isolation", "-e", str(source)),
        cwd=folder, timeout=300, check=False,
    )  # fmt: skip
    return python, result


# The oldest setuptools that builds the package and the newest that torch 2.11
# allows (below 82): the GPU machine's range.
@pytest.mark.parametrize("setuptools", ["77.0.3", "81.0.0"])
def test_the_documented_gpu_install_works_with(setuptools, checkout_copy, tmp_path):
    python, result = _documented_install(setuptools, checkout_copy, tmp_path)
    assert result.returncode == 0, f"install failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    # Editable: the package imports from the checkout, device code at its import path.
    _see_this_environment(python)
    check = (
        "import importlib.metadata, elu_triton, elu_triton.kernels;"
        f"assert elu_triton.__file__.startswith({str(checkout_copy)!r}), elu_triton.__file__;"
        "print(importlib.metadata.metadata('elu_triton')['License-Expression'])"
    )
    assert _run([python, "-c", check], cwd=tmp_path, timeout=300).stdout.strip() == "MIT"


def test_the_documented_gpu_install_names_the_setuptools_it_needs(checkout_copy, tmp_path):
    # 76.1.0: the newest release below the minimum, which fails without the
    # backend's check with an obscure validation error on project.license.
    _, result = _documented_install("76.1.0", checkout_copy, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "elu_triton needs setuptools>=77 to build" in output, output
    assert "found setuptools 76.1.0 (" in output, output
