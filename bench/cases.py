"""What the benchmarks measure: shapes, layouts, dtypes and modes, in one place.

The pytest-benchmark suite (``test_speed.py``) and ``report.py`` both read
this file, so they always measure the same cases.

On a GPU the cases are the issue's shapes at full size, plus four tensors of
256 MB or more (537 MB in fp32, 268 MB in 16-bit) on which the bandwidth
targets are judged: NCHW, channels_last, one shared alpha (C = 1), and
(N, C) with C = 4096. On the CPU the same kinds of case run at sizes a
2-core machine measures in a few minutes, including the CPU target shape
(32, 64, 56, 56).

Minimum traffic per element (what GB/s and the roofline count):
forward reads x and writes y; backward reads x and dy and writes dx;
forward+backward is both. alpha and the dalpha partials are negligible.
"""

from dataclasses import dataclass
from math import prod

import torch

from .matrix import DTYPE_NAMES as DTYPE_NAMES  # cases.DTYPE_NAMES: the names in records
from .matrix import DTYPES

MODES = ("fwd", "bwd", "fwd+bwd")
# Element reads + writes per element of x, per mode.
TENSORS_MOVED = {"fwd": 2, "bwd": 3, "fwd+bwd": 5}

ALL_DTYPES = tuple(DTYPES.values())


@dataclass(frozen=True)
class Case:
    """One input shape and layout, measured in each of its dtypes and each mode."""

    name: str
    shape: tuple[int, ...]
    channels_last: bool = False
    shared_alpha: bool = False  # one alpha for every channel (alpha.numel() == 1)
    dtypes: tuple[torch.dtype, ...] = ALL_DTYPES
    listed: bool = True  # one of the shapes: the speedup targets apply
    roofline: bool = False  # >= 256 MB in every dtype: the bandwidth targets apply
    compiled: bool = True  # run the torch.compile provider (costs compile time)

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def num_alpha(self) -> int:
        return 1 if self.shared_alpha else self.shape[1]

    @property
    def layout(self) -> str:
        return "channels_last" if self.channels_last else "contiguous"

    def describe(self) -> str:
        """e.g. '(64, 64, 112, 112) channels_last, C=64'."""
        return f"{self.shape} {self.layout}, alpha of {self.num_alpha}"


_LARGE = (32, 256, 128, 128)  # 134M elements: 537 MB fp32, 268 MB bf16/fp16

# In the order measured: if the report's time budget runs out, the last
# cases lose their compiled provider first.
GPU_CASES = (
    Case("large", _LARGE, roofline=True),
    # Roofline-only variants: the other memory views the kernels use.
    Case("large_cl", _LARGE, channels_last=True, listed=False, roofline=True, compiled=False),
    Case("large_c1", _LARGE, shared_alpha=True, listed=False, roofline=True, compiled=False),
    Case("large_c4096", (32768, 4096), listed=False, roofline=True, compiled=False),
    Case("conv", (64, 64, 112, 112)),
    Case("conv_cl", (64, 64, 112, 112), channels_last=True),
    Case("mlp", (8192, 4096)),
    Case("deep", (256, 512, 14, 14)),
    Case("demo", (128, 20, 24, 24)),
)

# Measured by bench.candidates only, beside the report's 14x14 "deep": 7x7
# maps (ResNet-50's last stage at batch 256, 103 MB in fp32), whose 49-element
# rows are not 16-byte aligned in any dtype.
CANDIDATE_GPU_CASES = (Case("deep7", (256, 2048, 7, 7), listed=False, compiled=False),)

_FP32 = (torch.float32,)

CPU_CASES = (
    Case("demo", (128, 20, 24, 24)),
    Case("conv", (32, 64, 56, 56)),  # the CPU target shape
    Case("conv_cl", (32, 64, 56, 56), channels_last=True, dtypes=_FP32),
    Case("mlp", (1024, 4096), dtypes=_FP32),
)

# The CPU target: forward+backward vs the eager reference, this case, fp32.
CPU_TARGET_CASE = "conv"


def cases_for(device: torch.device) -> tuple[Case, ...]:
    """The cases measured on this device type."""
    return GPU_CASES if device.type == "cuda" else CPU_CASES


def case_dtypes(device: torch.device) -> list[tuple[Case, torch.dtype]]:
    """Every (case, dtype) pair measured on this device type, in order."""
    return [(case, dtype) for case in cases_for(device) for dtype in case.dtypes]


def bytes_moved(case: Case, dtype: torch.dtype, mode: str) -> int:
    """Minimum bytes a mode must move for this case (the roofline's numerator)."""
    return TENSORS_MOVED[mode] * case.numel * torch.empty((), dtype=dtype).element_size()


@dataclass
class Inputs:
    """The tensors every provider of one (case, dtype) sees: the same values."""

    case: Case
    x: torch.Tensor  # (shape) in the case's layout and dtype
    alpha: torch.Tensor  # (num_alpha,) in x's dtype, like a module converted with .to()
    dy: torch.Tensor  # upstream gradient, x's layout and dtype


def make_inputs(case: Case, dtype: torch.dtype, device: torch.device, seed: int = 0) -> Inputs:
    """Random x and dy ~ N(0, 1) (half of x negative) and alpha in [0.5, 1.5)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    fmt = torch.channels_last if case.channels_last else torch.contiguous_format

    def randn() -> torch.Tensor:
        t = torch.randn(case.shape, generator=gen, device=device, dtype=dtype)
        return t.contiguous(memory_format=fmt)

    x, dy = randn(), randn()
    alpha = torch.rand(case.num_alpha, generator=gen, device=device) + 0.5
    return Inputs(case, x, alpha.to(dtype), dy)


def effective_gbps(case: Case, dtype: torch.dtype, mode: str, ms: float) -> float:
    """The minimum bytes of the mode divided by the time, in GB/s (1e9 bytes/s)."""
    return bytes_moved(case, dtype, mode) / ms / 1e6
