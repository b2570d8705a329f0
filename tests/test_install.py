"""The wheel installed as a user installs it: not editable, the checkout out of sight.

An editable install (which every other test runs on) finds any file of the
checkout, so a module that the wheel leaves out goes unnoticed there. Here
the wheel built from the checkout goes into a fresh virtual environment that
sees this environment's torch, triton and numpy through a .pth file (which
adds the folder without running this environment's editable-install hooks),
and code runs from a folder outside the repository, with TRITON_INTERPRET
unset: what a user on this machine would run.
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


@pytest.fixture(scope="module")
def user_venv(built_distributions, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed (not editable); its bin folder."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    Path(site_packages, "test_environment.pth").write_text("\n".join(ours) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(built_distributions["wheel"])],
        check=True, capture_output=True,
    )  # fmt: skip
    return venv / "bin"


def _user_environment() -> dict:
    """This process's environment without what points at the checkout or the interpreter."""
    hidden = ("TRITON_INTERPRET", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    return {key: value for key, value in os.environ.items() if key not in hidden}


def _run(command: list, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, cwd=cwd, env=_user_environment(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
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
