"""The codegen checks' case table: which kernels, dtypes, layouts and GPU targets.

Each ``CodegenCase`` names one specialization to compile: a kernel of
``KERNELS``, the dtype of x, a memory layout of ``EXAMPLE_SHAPE`` and a GPU
target of ``TARGETS``; ``all_cases`` lists those the codegen tests check.
Compiling them is ``codegen.py``'s job, reading what comes out
``assembly.py``'s. Pure host data: nothing here compiles or needs a GPU.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from . import kernels
from .layout import MemoryView, memory_view

# (N, C, H, W) with K = H*W = 576 (NCHW) and K = C = 64 (channels_last)
# multiples of 16: Triton then knows rows start 16-byte aligned. (With K = 49
# or 196, 7x7 or 14x14 maps, it does not, and the accesses become scalar.)
EXAMPLE_SHAPE = (8, 64, 24, 24)


@dataclass(frozen=True)
class Kernel:
    """A kernel to check, and which of its pointers move activation-sized tensors."""

    function: str  # its name in elu_triton.kernels
    big_loads: tuple  # pointers read element by element: 128-bit accesses expected
    big_stores: tuple  # pointers written element by element


KERNELS = {
    "forward": Kernel("learnable_elu_forward_kernel", ("x_ptr",), ("y_ptr",)),
    "backward": Kernel("learnable_elu_backward_kernel", ("x_ptr", "dy_ptr"), ("dx_ptr",)),
    # The fused batch norm + activation (elu_triton.batch_norm).
    "bn_statistics": Kernel("batch_norm_statistics_kernel", ("x_ptr",), ()),
    "bn_forward": Kernel("batch_norm_activation_forward_kernel", ("x_ptr",), ("y_ptr",)),
    "bn_reduce": Kernel("batch_norm_activation_reduce_kernel", ("x_ptr", "dy_ptr"), ()),
    "bn_dx": Kernel("batch_norm_activation_dx_kernel", ("x_ptr", "dy_ptr"), ("dx_ptr",)),
}
ACTIVATION_KERNELS = ("forward", "backward")
# The batch norm's kernels that take the activation's helpers, and the
# activations checked (batch_norm.ACTIVATIONS' names; the first is the default).
ACTIVATION_PARAMETER_KERNELS = ("bn_forward", "bn_reduce", "bn_dx")
FUSED_ACTIVATIONS = ("learnable_elu", "prelu")
LAYOUTS = ("channel_per_row", "channel_per_column", "shared_alpha")
DTYPES = ("float32", "bfloat16", "float16", "float64")
# GPUTarget(backend, arch, warp size) of each family checked: Ampere, Hopper,
# Blackwell; CDNA3 (MI300) and CDNA2 (MI200).
TARGETS = {
    "sm_80": ("cuda", 80, 32),
    "sm_90": ("cuda", 90, 32),
    "sm_100": ("cuda", 100, 32),
    "gfx942": ("hip", "gfx942", 64),
    "gfx90a": ("hip", "gfx90a", 64),
}


@dataclass(frozen=True)
class CodegenCase:
    """One specialization to compile: kernel, input dtype, memory layout, GPU target."""

    kernel: str  # one of KERNELS
    dtype: str  # one of DTYPES, the dtype of x (and y, dy, dx)
    layout: str  # one of LAYOUTS
    compute_dalpha: bool = True  # backward only (the batch norm's: COMPUTE_DPARAM)
    target: str = "sm_90"  # one of TARGETS
    activation: str = "learnable_elu"  # the fused batch norm's: a key of batch_norm.ACTIVATIONS
    shape: tuple = EXAMPLE_SHAPE  # of x, (N, C, ...) or (N, C); the launch is specialized to it

    @property
    def isa(self) -> str:
        """ "ptx" for NVIDIA targets, "amdgcn" for ROCm ones."""
        return "ptx" if TARGETS[self.target][0] == "cuda" else "amdgcn"


def example_view(layout: str, shape: tuple = EXAMPLE_SHAPE) -> MemoryView:
    """The (R, K) view the host builds for x of ``shape`` in the given layout.

    channel_per_column: channels_last for 4-d shapes; a 2-d (N, C) is one already.
    """
    x = torch.empty(shape, device="meta")
    if layout == "channel_per_row":
        return memory_view(x, shape[1])
    if layout == "channel_per_column":
        if x.dim() == 4:
            x = x.to(memory_format=torch.channels_last)
        return memory_view(x, shape[1])
    if layout == "shared_alpha":
        return memory_view(x, 1)
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def activation_helpers(activation: str) -> dict:
    """The constexpr arguments naming an activation's device helpers, by argument name."""
    from .batch_norm.activations import activation_named
    from .kernels import activation as helpers

    row = activation_named(activation)
    return {
        "ACTIVATION": getattr(helpers, row.kernel_value),
        "ACTIVATION_GRADS": getattr(helpers, row.kernel_grads),
    }


def kernel_function(kernel: str):
    """The @triton.jit function of a KERNELS entry."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {tuple(KERNELS)}, got {kernel!r}")
    return getattr(kernels, KERNELS[kernel].function)


def all_cases(targets: Sequence[str] = tuple(TARGETS)) -> list[CodegenCase]:
    """The cases the codegen tests check, per target.

    The activation: every kernel, 16/32-bit dtype and layout, the backward
    without dalpha, and fp64. The fused batch norm (a channel per row or
    column, never a shared one: its statistics are per channel): fp32 and
    bf16 in both layouts, and fp64; and for each other fused activation
    (PReLU), its kernels that take the activation, fp32 and bf16 in both
    layouts.
    """
    cases = []
    for target in targets:
        cases += [
            CodegenCase(k, d, layout, target=target)
            for k in ACTIVATION_KERNELS
            for d in DTYPES[:3]
            for layout in LAYOUTS
        ]
        cases += [
            CodegenCase("backward", d, "channel_per_row", compute_dalpha=False, target=target)
            for d in DTYPES[:3]
        ]
        cases += [
            CodegenCase(k, "float64", "channel_per_row", target=target) for k in ACTIVATION_KERNELS
        ]
        batch_norm = [k for k in KERNELS if k not in ACTIVATION_KERNELS]
        cases += [
            CodegenCase(k, d, layout, target=target)
            for k in batch_norm
            for d in ("float32", "bfloat16")
            for layout in LAYOUTS[:2]
        ]
        cases += [CodegenCase(k, "float64", "channel_per_row", target=target) for k in batch_norm]
        # The other fused activations: the kernels that take an activation, fp32 and bf16
        # in both layouts.
        cases += [
            CodegenCase(k, d, layout, target=target, activation=activation)
            for activation in FUSED_ACTIVATIONS[1:]
            for k in ACTIVATION_PARAMETER_KERNELS
            for d in ("float32", "bfloat16")
            for layout in LAYOUTS[:2]
        ]
    return cases
