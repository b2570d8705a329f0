"""The wheel installs the device code as elu_triton.kernels, never as a top-level `kernels`.

`kernels` is the import name of Hugging Face's popular package; shadowing it
would break users who have both installed.
"""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    pytest.importorskip("setuptools")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, cwd=out,
    )  # fmt: skip
    (wheel,) = out.glob("elu_triton-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_kernels_are_a_subpackage(wheel_names):
    assert "elu_triton/kernels/__init__.py" in wheel_names
    assert "elu_triton/kernels/forward.py" in wheel_names
    assert "elu_triton/kernels/backward.py" in wheel_names
    assert "elu_triton/demo/cli.py" in wheel_names


def test_no_top_level_kernels(wheel_names):
    top_levels = {name.split("/")[0] for name in wheel_names}
    assert "kernels" not in top_levels, sorted(top_levels)
    assert not any(name.startswith(("tests/", "bench/")) for name in wheel_names)


def test_pytest_keeps_the_root_off_sys_path():
    # Nothing in our configuration puts the repository root on sys.path.
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--import-mode=importlib" in config["addopts"]
    assert "pythonpath" not in config
    assert not (ROOT / "conftest.py").exists()
