"""What a wheel and an sdist of the checkout carry: every module, at its import path.

The device code ships as elu_triton.kernels, never as a top-level `kernels`:
that is the import name of Hugging Face's popular package, and shadowing it
would break users who have both installed. Installing and running the wheel
is ``test_install.py``'s job.
"""

import importlib.util
import tarfile
import zipfile
from pathlib import Path

import pytest

import elu_triton

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> the package it installs as (pyproject's package-dir).
SOURCE_ROOTS = {"elu_triton": "elu_triton", "kernels": "elu_triton.kernels"}


def _source_packages() -> dict[str, Path]:
    """Every package folder of the checkout (one with an __init__.py), by import name."""
    packages = {}
    for folder, package in SOURCE_ROOTS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            packages[".".join((package, *parts))] = init.parent
    return packages


def _installed_modules() -> set[str]:
    """Paths every distribution must hold: each .py file, as installed (elu_triton/...)."""
    modules = set()
    for name, folder in _source_packages().items():
        prefix = name.replace(".", "/")
        modules.update(f"{prefix}/{path.name}" for path in folder.glob("*.py"))
    return modules


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _build_backend_file() -> str:
    """The in-tree build backend's file, relative to the root (pyproject's backend-path)."""
    build_system = _pyproject()["build-system"]
    (folder,) = build_system["backend-path"]
    return f"{folder}/{build_system['build-backend']}.py"


def test_the_build_backend_checks_the_setuptools_that_pyproject_requires():
    # pip --no-build-isolation ignores `requires`; the backend's check enforces
    # it, so the two must name one minimum.
    spec = importlib.util.spec_from_file_location("build_backend", ROOT / _build_backend_file())
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    minimum = f"setuptools>={backend.MINIMUM_SETUPTOOLS}"
    assert _pyproject()["build-system"]["requires"] == [minimum]
    assert minimum in _pyproject()["project"]["optional-dependencies"]["test"]


def test_every_package_folder_is_listed():
    # The package list is written by hand (discovery cannot map kernels/ to
    # elu_triton.kernels): a new subpackage must fail here, not in a user's import.
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    assert set(_source_packages()) == listed


def test_the_kernels_folder_installs_as_a_subpackage():
    assert _pyproject()["tool"]["setuptools"]["package-dir"] == {"elu_triton.kernels": "kernels"}


@pytest.mark.e2e
@pytest.mark.parametrize("which", ["wheel", "wheel_from_sdist"])
def test_wheels_carry_every_module(built_distributions, which):
    with zipfile.ZipFile(built_distributions[which]) as wheel:
        names = set(wheel.namelist())
    missing = _installed_modules() - names
    assert not missing, f"{which} lacks {sorted(missing)}"
    top_levels = {name.split("/")[0] for name in names}
    assert top_levels == {"elu_triton", f"elu_triton-{elu_triton.__version__}.dist-info"}
    assert f"elu_triton-{elu_triton.__version__}.dist-info/licenses/LICENSE" in names


@pytest.mark.e2e
def test_sdist_carries_every_source_file(built_distributions):
    with tarfile.open(built_distributions["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    sources = {
        str(path.relative_to(ROOT))
        for folder in SOURCE_ROOTS
        for path in (ROOT / folder).rglob("*.py")
    }
    missing = sources - names
    assert not missing, f"the sdist lacks {sorted(missing)}"
    # The in-tree backend too: without it, the sdist's wheel cannot build.
    assert {"LICENSE", "README.md", "pyproject.toml", _build_backend_file()} <= names


def test_the_version_is_written_once():
    assert "version" in _pyproject()["project"]["dynamic"]
    assert elu_triton.__version__ == elu_triton._version.__version__


@pytest.mark.e2e
def test_distributions_carry_the_package_version(built_distributions):
    version = elu_triton.__version__
    assert built_distributions["wheel"].name.startswith(f"elu_triton-{version}-")
    assert built_distributions["sdist"].name == f"elu_triton-{version}.tar.gz"


def test_pytest_keeps_the_root_off_sys_path():
    # Nothing in our configuration puts the repository root on sys.path.
    config = _pyproject()["tool"]["pytest"]["ini_options"]
    assert "--import-mode=importlib" in config["addopts"]
    assert "pythonpath" not in config
    assert not (ROOT / "conftest.py").exists()
