"""Shared fixtures: devices, per-dtype tolerances and the float64 reference check.

Tests run on CPU always (through the Triton interpreter when TRITON_INTERPRET=1,
as in CI; else through the PyTorch backend) and on CUDA when a GPU is present.
"""

import importlib
import importlib.util
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from elu_triton import backends, learnable_elu, reference
from elu_triton.backends import use_backend


def _load_layers():
    """tests/layers.py, the contract tests' layer registry (importlib mode: no tests/ on sys.path)."""
    spec = importlib.util.spec_from_file_location(
        "elu_triton_test_layers", Path(__file__).with_name("layers.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


LAYERS = _load_layers().LAYERS

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
# Under the interpreter (CI) "cpu" runs the Triton kernels; "cpu-torch" then
# also runs every device test through the PyTorch backend, the one that CPU
# users without TRITON_INTERPRET get.
DEVICES = (
    ["cpu"] + (["cpu-torch"] if INTERPRET else []) + (["cuda"] if torch.cuda.is_available() else [])
)

# Per-dtype (rtol, atol) for y and dx against float64 math on the same inputs.
# Inputs are exactly representable in both, so the only error is the kernel's
# arithmetic and the final rounding to the output dtype:
# - fp16/bf16: computed in fp32, then rounded: at most half an ulp of the
#   output dtype; we allow one ulp (2^-10 and 2^-7), because Triton's
#   interpreter truncates fp32 -> bf16 where the GPU rounds to nearest.
# - fp32: the promise, relative error below 1e-6 (about 8 ulps:
#   range reduction, polynomial, the alpha product and dy product each round).
# - fp64: the same chain in fp64, a few ulps; 1e-14 leaves room.
# atol is the dtype's smallest normal number: below it, GPUs flush to zero.
TOLERANCES = {
    torch.float16: (2.0**-10, torch.finfo(torch.float16).tiny),
    torch.bfloat16: (2.0**-7, torch.finfo(torch.bfloat16).tiny),
    torch.float32: (1e-6, torch.finfo(torch.float32).tiny),
    torch.float64: (1e-14, torch.finfo(torch.float64).tiny),
}

# dalpha is a sum of up to millions of terms, accumulated in fp32 (fp64 for
# fp64 inputs) in tiles and then over tiles, so its error scales with the sum
# of the terms' magnitudes, not with the result (which may cancel to ~0):
# |err| <= SUM_RTOL * sum(|terms|), with SUM_RTOL covering each term's few
# ulps plus log2(n) roundings of the tree sum. Then one rounding to alpha's dtype.
SUM_RTOL = {torch.float32: 1e-5, torch.float64: 1e-13}


@pytest.fixture
def fresh_caches():
    """Backend caches emptied before the test and after it: no patched launch outlives it."""
    backends.clear_caches()
    yield
    backends.clear_caches()


@pytest.fixture
def launched_kernel_kwargs(monkeypatch):
    """The keyword arguments of every activation kernel launch of the Triton backend, in order."""
    from elu_triton.backends import triton_kernels

    seen = []

    class Recording:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            launch = self.kernel[grid]

            def record_and_launch(*args, **kwargs):
                seen.append(kwargs)
                return launch(*args, **kwargs)

            return record_and_launch

    for name in ("learnable_elu_forward_kernel", "learnable_elu_backward_kernel"):
        monkeypatch.setattr(triton_kernels, name, Recording(getattr(triton_kernels, name)))
    return seen


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cpu-torch":
        with use_backend("torch"):
            yield "cpu"
    else:
        yield request.param


def reference_grads(x, alpha, dy):
    """(y, dx, dalpha, sum of |dalpha terms| per channel), all in float64.

    The reference's dx comes from autograd of expm1, i.e. dy * alpha * (expm1(x) + 1),
    which is itself off by up to an ulp of |dy * alpha| where exp(x) is small;
    ``assert_dx_close`` allows for that.
    """
    x64 = x.detach().double().requires_grad_()
    a64 = alpha.detach().double().requires_grad_()
    y64 = reference.learnable_elu(x64, a64)
    dx64, da64 = torch.autograd.grad(y64, (x64, a64), dy.double())
    # The same sum over |terms|, for the dalpha error bound.
    a_abs = torch.ones_like(a64)
    _, da_abs = torch.autograd.grad(
        reference.learnable_elu(x64, a_abs.requires_grad_()), (x64, a_abs),
        dy.double().abs(), allow_unused=True,
    )  # fmt: skip
    return y64.detach(), dx64, da64, da_abs.abs()


def assert_close(actual, expected, dtype, what):
    rtol, atol = TOLERANCES[dtype]
    torch.testing.assert_close(
        actual.double(), expected, rtol=rtol, atol=atol, equal_nan=True,
        msg=lambda m: f"{what} ({dtype}): {m}",
    )  # fmt: skip


def assert_dx_close(actual, expected, dy, alpha, x_dtype):
    """dx within tolerance, plus the float64 reference's own error of 2^-52 |dy * alpha|."""
    rtol, atol = TOLERANCES[x_dtype]
    a = reference.alpha_for_broadcast(alpha.detach().double(), expected)
    reference_error = 2.0**-52 * (dy.double() * a).abs()
    err = (actual.double() - expected).abs()
    bound = rtol * expected.abs() + atol + reference_error
    assert torch.equal(actual.isnan(), expected.isnan()), "NaN positions differ in dx"
    ok = (err <= bound) | (actual.double() == expected)
    assert bool(ok.all()), f"dx ({x_dtype}): max error {(err - bound).max():.3g} over bound"


def assert_dalpha_close(actual, expected, term_sums, x_dtype, alpha_dtype):
    sum_rtol = SUM_RTOL[torch.float64 if x_dtype == torch.float64 else torch.float32]
    out_rtol, _ = TOLERANCES[alpha_dtype]
    bound = sum_rtol * term_sums + out_rtol * expected.abs()
    err = (actual.double() - expected).abs()
    finite = expected.isfinite()
    assert torch.equal(actual.isnan(), expected.isnan()), (actual, expected)
    assert bool((err[finite] <= bound[finite]).all()), (
        f"dalpha ({x_dtype} x, {alpha_dtype} alpha): max error {err[finite].max():.3g} "
        f"over bound {bound[finite].min():.3g}"
    )


@pytest.fixture
def check_against_reference():
    """Run learnable_elu forward and backward on (x, alpha, dy) and compare with float64."""

    def check(x, alpha, dy=None, channel_dim=1):
        x = x.detach().requires_grad_()
        alpha = alpha.detach().requires_grad_()
        y = learnable_elu(x, alpha, channel_dim=channel_dim)
        if dy is None:
            dy = torch.randn_like(y)
        dx, dalpha = torch.autograd.grad(y, (x, alpha), dy)
        assert y.dtype == x.dtype and dx.dtype == x.dtype and dalpha.dtype == alpha.dtype
        returned = y, dx, dalpha
        if channel_dim != 1 and x.dim() >= 2:  # compared with the reference on dim 1
            x, y, dx, dy = (t.movedim(channel_dim, 1) for t in (x, y, dx, dy))
        y64, dx64, da64, term_sums = reference_grads(x, alpha, dy)
        assert_close(y, y64, x.dtype, "y")
        assert_dx_close(dx, dx64, dy, alpha, x.dtype)
        assert_dalpha_close(dalpha, da64, term_sums, x.dtype, alpha.dtype)
        return returned

    return check


def random_alpha(channels, dtype=torch.float32, device="cpu"):
    """Alphas in [0.5, 2): away from 0, so relative errors mean something."""
    return torch.rand(channels, dtype=dtype, device=device) * 1.5 + 0.5


@pytest.fixture
def assert_compiled_matches_eager():
    """torch.compile(model, fullgraph=True) gives eager's outputs and parameter gradients on x."""

    def check(model, x):
        compiled = torch.compile(model, fullgraph=True)
        eager_out = model(x)
        eager_out.sum().backward()
        eager_grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        compiled_out = compiled(x)
        compiled_out.sum().backward()
        torch.testing.assert_close(compiled_out, eager_out, rtol=1e-5, atol=1e-5)
        for p, g in zip(model.parameters(), eager_grads):
            torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)

    return check


def pytest_generate_tests(metafunc):
    """Contract tests run over every layer: ``layer``, with ``mode`` or ``vector`` if asked for.

    mode: each of the layer's ``modes``; vector: each of its per-channel
    parameters (``tests/layers.py``).
    """
    names = metafunc.fixturenames
    if "layer" not in names:
        return
    if "mode" in names:
        cases = [(layer, mode) for layer in LAYERS for mode in layer.modes]
        ids = [f"{layer.name}-{mode}" for layer, mode in cases]
        metafunc.parametrize(("layer", "mode"), cases, ids=ids)
    elif "vector" in names:
        cases = [(layer, name) for layer in LAYERS for name in layer.vectors]
        ids = [f"{layer.name}-{name}" for layer, name in cases]
        metafunc.parametrize(("layer", "vector"), cases, ids=ids)
    else:
        metafunc.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])


@pytest.fixture
def every_layer():
    """All the layers of tests/layers.py at once, for a contract too slow to run per layer."""
    return LAYERS


@pytest.fixture
def make_alpha():
    return random_alpha


def pytest_collection_modifyitems(config, items):
    if INTERPRET or torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="the Triton kernels run on CUDA or under TRITON_INTERPRET=1")
    for item in items:
        if "kernels" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def log_uniform():
    def draw(n, low, high, dtype=torch.float64):
        return torch.exp(torch.empty(n, dtype=dtype).uniform_(math.log(low), math.log(high)))

    return draw


ROOT = Path(__file__).resolve().parents[1]
# What a build of the package reads from the checkout (build_backend/: the
# in-tree backend that pyproject.toml's backend-path names).
BUILD_INPUTS = (
    "pyproject.toml",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "build_backend",
    "elu_triton",
    "kernels",
)


def _copy_build_inputs(folder: Path) -> Path:
    """Copy the build's inputs into the empty folder; returns folder.

    Builds start from a fresh copy: setuptools reuses the build/ and
    *.egg-info folders of earlier builds, which would hide a missing package.
    """
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, folder / name)
    return folder


@pytest.fixture
def checkout_copy(tmp_path_factory) -> Path:
    """A fresh copy of what a build reads from the checkout, for one test to build or install."""
    return _copy_build_inputs(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="session")
def built_distributions(tmp_path_factory) -> dict[str, Path]:
    """The package as a user gets it, built once: {"wheel", "sdist", "wheel_from_sdist"}.

    "wheel" is what ``pip install .`` or ``pip install git+URL`` builds from a
    checkout; ``python -m build`` makes the sdist, then its wheel from the
    sdist's own files. No build isolation: the build uses this environment's
    setuptools, so the test needs no network.
    """
    source = _copy_build_inputs(tmp_path_factory.mktemp("checkout"))
    from_checkout = tmp_path_factory.mktemp("wheel")
    from_sdist = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(from_checkout), str(source)],
        check=True, capture_output=True, cwd=from_checkout,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(from_sdist), str(source)],
        check=True, capture_output=True, cwd=from_sdist,
    )  # fmt: skip
    (wheel,) = from_checkout.glob("elu_triton-*.whl")
    (sdist,) = from_sdist.glob("elu_triton-*.tar.gz")
    (wheel_from_sdist,) = from_sdist.glob("elu_triton-*.whl")
    return {"wheel": wheel, "sdist": sdist, "wheel_from_sdist": wheel_from_sdist}


def _import_torchvision():
    """torchvision, or a skip where it is missing or does not import.

    Where torchvision's compiled extension does not load beside the installed
    torch (a CUDA build of torchvision beside a CPU torch), ``import
    torchvision`` fails on its meta registrations for two ops; defining their
    schemas first lets the model code, which needs neither, import.
    """
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    try:
        return importlib.import_module("torchvision")
    except (ImportError, RuntimeError) as error:  # "operator torchvision::nms does not exist"
        if "torchvision::" not in str(error):
            pytest.skip(f"torchvision does not import here: {error}")
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    library = torch.library.Library("torchvision", "DEF")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _import_torchvision.library = library  # kept alive: a collected Library drops its ops
    try:
        return importlib.import_module("torchvision")
    except (ImportError, RuntimeError) as error:
        pytest.skip(f"torchvision does not import here: {error}")


@pytest.fixture(scope="session")
def torchvision():
    """torchvision for the real-model tests and the docs' snippets; skips without it."""
    return _import_torchvision()


@pytest.fixture(scope="session")
def timm(torchvision):
    """timm (which imports torchvision); skips without either."""
    return pytest.importorskip("timm")
