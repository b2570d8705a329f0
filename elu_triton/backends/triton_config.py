"""Launch configuration of the Triton kernels: the one place that knows tiles and warps.

Tuning is kept per device kind (``TUNING``): NVIDIA and ROCm GPUs, and the
CPU, where Triton's interpreter runs the kernels. A new kind (XPU, say) is one row.
``tuning_for`` is the row a launch takes: ``TUNING``'s, with the fields that
the ``ELU_TRITON_TUNING`` switch (``switches.py``) sets for the input's
element size; unset, the row itself. ``launch_config_for`` is pure host
arithmetic, so ``codegen.py`` can compile exactly what a launch on a GPU
tensor would run, on a machine without one.
"""

import dataclasses
import functools
from dataclasses import dataclass
from typing import NamedTuple

import torch
import triton

from .. import switches
from ..layout import MemoryView, is_dense, memory_view
from ..precision import compute_dtype
from .base import device_kind


@dataclass(frozen=True)
class Tuning:
    """Launch constants of one device kind."""

    tile_elements: int  # elements per program
    tile_max_bytes: int  # ... and at most this many bytes of each tensor
    num_warps: int
    # With the channel per column, each tile writes one dalpha partial per
    # column: at least this many rows per tile keep the partials at 1/32 of x
    # (one row per tile would make them as large as x, for C = 4096).
    column_min_rows: int = 32
    # Rows of at most this many elements are never split across column blocks,
    # however much the block pads (0: never): a candidate for 14x14 and 7x7
    # maps, whose rows the padding rule splits into 16- and 4-element pieces.
    whole_row_max: int = 0


TUNING = {
    # 16 elements per thread of 8 warps; tiles sized in elements, not bytes:
    # the fp32 arithmetic per element sets the registers, so a 16-bit tile of
    # fp32's bytes would hold too many (H200 figures: bench/RESULTS.md).
    "cuda": Tuning(tile_elements=4096, tile_max_bytes=16 * 1024, num_warps=8),
    # ROCm GPUs, whose warps (wavefronts) are 64 wide: the same tile and the
    # same 16 elements per thread (four 128-bit accesses per tensor).
    "rocm": Tuning(tile_elements=4096, tile_max_bytes=16 * 1024, num_warps=4),
    # In the interpreter every program costs a Python round trip, so tiles
    # are as large as numpy handles comfortably; warps mean nothing there.
    "cpu": Tuning(tile_elements=1 << 16, tile_max_bytes=1 << 20, num_warps=1),
}
# PyTorch calls ROCm GPUs "cuda" devices; a ROCm build of torch tells them apart.
_CUDA_KIND = "rocm" if torch.version.hip else "cuda"


def tuning_kind(device_type: str) -> str:
    """The TUNING row of a device type: "cuda" devices are "rocm" under a ROCm build of torch."""
    return _CUDA_KIND if device_type == "cuda" else device_type


def tuning_for(kind: str, element_size: int) -> Tuning:
    """The tuning of a launch on kind's devices for inputs of element_size-byte elements.

    ``TUNING[kind]``, with the fields ELU_TRITON_TUNING sets for that size
    (``switches.py``): a candidate for a GPU run to measure, the row itself
    when the switch is unset.
    """
    fields = switches.tuning_overrides(switches.TUNING, element_size)
    return dataclasses.replace(TUNING[kind], **fields) if fields else TUNING[kind]


# Every multiply-add whose rounding matters is an explicit tl.fma in the
# kernels; fusion off (Triton 3.10's default) keeps any other product and sum
# rounded as written, whatever the installed Triton's default.
COMPILE_OPTIONS = {"enable_fp_fusion": False}

_INT32_LIMIT = 2**31
# Column blocks are powers of two; a K that is not one pads the last block
# with masked lanes. Narrower blocks waste less: take the widest that wastes
# at most an eighth (masked lanes still cost issue slots, which bound the
# 16-bit kernels).
_MAX_PADDING = 1 / 8
# Largest alignment hint: 16 elements is 128 bits even for 8-bit types.
_MAX_K_MULTIPLE = 16


@dataclass(frozen=True)
class LaunchConfig:
    block_r: int
    block_k: int
    k_multiple: int  # a power of two dividing K: rows start that aligned
    num_warps: int
    index_64: bool  # 64-bit offsets, only for tensors of 2^31+ elements
    grid: tuple
    dalpha_partials_shape: tuple  # (C, sums per channel): see kernels/learnable_elu_backward.py


class KernelArgs(NamedTuple):
    """The kernels' arguments for one layout, derived once (``kernel_args``)."""

    config: LaunchConfig
    sizes: tuple  # the kernels' (R, K, C) arguments
    partials_dtype: torch.dtype  # of the dalpha partials: the compute dtype
    constants: dict  # their constexpr and launch keywords, shared by both kernels


def kernel_args(x: torch.Tensor, num_alpha: int) -> KernelArgs | None:
    """The kernels' arguments for x, or None if x is not dense; cached per layout.

    Small activations cost more on the host than on the GPU, so the Python
    that derives a launch, the density check included, runs once per (shape,
    strides, dtype, device kind, alpha size).
    """
    return _kernel_args(x.shape, x.stride(), x.dtype, tuning_kind(device_kind(x)), num_alpha)


def kernel_args_for(
    shape: tuple, strides: tuple, dtype: torch.dtype, device_type: str, num_alpha: int
) -> KernelArgs | None:
    """``kernel_args`` of a layout given as plain ints (a traced tensor's, specialized)."""
    return _kernel_args(shape, strides, dtype, tuning_kind(device_type), num_alpha)


@functools.lru_cache(maxsize=4096)
def _kernel_args(shape, strides, dtype, kind, num_alpha) -> KernelArgs | None:
    layout = torch.empty_strided(shape, strides, device="meta")
    if not is_dense(layout):
        return None
    view = memory_view(layout, num_alpha)
    cfg = launch_config_for(view, dtype.itemsize, tuning_for(kind, dtype.itemsize))
    constants = dict(
        CHANNEL_IS_COLUMN=view.channel_is_column, BLOCK_R=cfg.block_r, BLOCK_K=cfg.block_k,
        K_MULTIPLE=cfg.k_multiple, INDEX_64=cfg.index_64, num_warps=cfg.num_warps,
        **COMPILE_OPTIONS,
    )  # fmt: skip
    return KernelArgs(
        config=cfg, sizes=(view.rows, view.cols, view.channels),
        partials_dtype=compute_dtype(dtype), constants=constants,
    )  # fmt: skip


def clear_kernel_args() -> None:
    """Forget every layout's kernel arguments (``backends.clear_caches``, for tests)."""
    _kernel_args.cache_clear()


def launch_config_for(view: MemoryView, element_size: int, tuning: Tuning) -> LaunchConfig:
    """Tile shape, warps, grid and dalpha partials for the (R, K) view of a dense tensor.

    Args:
        view: the (R, K) memory view; R*K is the tensor's element count.
        element_size: bytes per element of the tensor.
        tuning: the device kind's constants (``tuning_for``).
    """
    tile = max(min(tuning.tile_elements, tuning.tile_max_bytes // element_size), 1)
    vector = max(16 // element_size, 1)  # elements in one 128-bit access
    widest = max(tile // tuning.column_min_rows, 1) if view.channel_is_column else tile
    if view.cols <= tuning.whole_row_max:
        block_k = min(triton.next_power_of_2(view.cols), widest)
    else:
        block_k = _column_block(view.cols, widest, vector)
    block_r = min(tile // block_k, triton.next_power_of_2(view.rows))
    row_blocks, col_blocks = triton.cdiv(view.rows, block_r), triton.cdiv(view.cols, block_k)
    if view.channel_is_column:
        partials = (view.channels, row_blocks)
    else:
        partials = (view.channels, col_blocks * (view.rows // view.channels))
    return LaunchConfig(
        block_r=block_r,
        block_k=block_k,
        k_multiple=min(view.cols & -view.cols, _MAX_K_MULTIPLE),  # lowest set bit
        num_warps=tuning.num_warps,
        index_64=view.rows * view.cols >= _INT32_LIMIT,
        grid=(row_blocks * col_blocks,),
        dalpha_partials_shape=partials,
    )


def _column_block(cols: int, widest: int, vector: int) -> int:
    """The widest power-of-two column block padding at most _MAX_PADDING of its lanes.

    Never narrower than one 128-bit vector; if no width pads little enough,
    the one that pads least (the wider of equals).
    """

    def padding(block: int) -> float:
        return triton.cdiv(cols, block) * block / cols - 1

    block = least_padded = min(triton.next_power_of_2(cols), widest)
    while padding(block) > _MAX_PADDING and block > vector:
        block //= 2
        if padding(block) < padding(least_padded):
            least_padded = block
    return block if padding(block) <= _MAX_PADDING else least_padded
