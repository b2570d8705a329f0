"""pyproject.toml's build backend: setuptools.build_meta, once setuptools is new enough.

pyproject.toml's ``license = "MIT"`` and ``license-files`` (PEP 639) need
setuptools 77 or newer. ``[build-system] requires`` says so, but
``pip install --no-build-isolation`` (the GPU check's documented install)
builds with whatever setuptools the environment has and checks nothing; an
older one then fails deep in its validation of ``project.license``. Each
hook here checks the version first and names what is needed and what was
found. The checks import nothing but setuptools, so they work without torch.

This file lies outside the packages: the sdist carries it (MANIFEST.in) so
that its wheel builds, and no wheel installs it.
"""

import re

# Keep in step with [build-system] requires (tests/test_install.py checks).
MINIMUM_SETUPTOOLS = 77


def _require_setuptools() -> None:
    """Raise RuntimeError unless the setuptools that builds is MINIMUM_SETUPTOOLS or newer."""
    try:
        import setuptools
    except ImportError:
        found = "no setuptools"
    else:
        found = f"setuptools {setuptools.__version__} ({setuptools.__path__[0]})"
        major = re.match(r"\d+", setuptools.__version__)
        if major and int(major.group()) >= MINIMUM_SETUPTOOLS:
            return
    raise RuntimeError(
        f"elu_triton needs setuptools>={MINIMUM_SETUPTOOLS} to build (pyproject.toml's PEP 639"
        f" license field), found {found}. pip's --no-build-isolation builds with this"
        f' environment\'s setuptools: first pip install "setuptools>={MINIMUM_SETUPTOOLS},<82"'
        " (torch 2.11 requires setuptools<82)."
    )


def _checked(name: str):
    """setuptools.build_meta's hook `name`, called after the version check.

    build_meta is imported only after the check, so that even a release
    without the hook (editable installs came in 64) reports the version.
    """

    def hook(*args, **kwargs):
        _require_setuptools()
        from setuptools import build_meta

        return getattr(build_meta, name)(*args, **kwargs)

    hook.__name__ = hook.__qualname__ = name
    return hook


# The PEP 517 and PEP 660 hooks setuptools.build_meta provides, each checked.
get_requires_for_build_wheel = _checked("get_requires_for_build_wheel")
get_requires_for_build_sdist = _checked("get_requires_for_build_sdist")
get_requires_for_build_editable = _checked("get_requires_for_build_editable")
prepare_metadata_for_build_wheel = _checked("prepare_metadata_for_build_wheel")
prepare_metadata_for_build_editable = _checked("prepare_metadata_for_build_editable")
build_wheel = _checked("build_wheel")
build_sdist = _checked("build_sdist")
build_editable = _checked("build_editable")
