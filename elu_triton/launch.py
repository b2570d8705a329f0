"""Launching the Triton kernels: allocation, launch constants, grids.

This is the one place that knows block sizes and warp counts. It runs the
kernels on CUDA tensors, and on CPU tensors through Triton's interpreter when
TRITON_INTERPRET=1 was set before import. Inputs are already validated
(``checks.py``) and non-empty.
"""

import functools
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import torch
import triton

from .kernels import learnable_elu_backward_kernel, learnable_elu_forward_kernel
from .layout import MemoryView, dense, memory_view, with_layout_of
from .precision import compute_dtype

# Elements per tile. On the GPU: 8 warps of 16 elements per thread (4096),
# at most 16 KiB of each tensor (2048 fp64). Measured on an H200: fp32 at this
# size reaches the copy bandwidth with 2-3 blocks per SM; 16-bit tiles of
# 8192 (the same bytes as fp32) needed 117-150 registers, one block per SM,
# and fell to 39-89%: the fp32 arithmetic per element, not the bytes, sets
# the registers, so tiles are sized in elements.
# In the interpreter every program costs a Python round trip, so tiles are
# as large as numpy handles comfortably.
_GPU_TILE_ELEMENTS = 4096
_GPU_TILE_MAX_BYTES = 16 * 1024
_GPU_NUM_WARPS = 8
_INTERPRETER_TILE_ELEMENTS = 1 << 16
_INT32_LIMIT = 2**31
# Column blocks are powers of two; a K that is not one pads the last block
# with masked lanes. Narrower blocks waste less: take the widest that wastes
# at most an eighth (masked lanes still cost issue slots, which bound the
# 16-bit kernels).
_MAX_PADDING = 1 / 8
# With the channel per column, each tile writes one dalpha partial per
# column: at least this many rows per tile keep the partials at 1/32 of x
# (one row per tile would make them as large as x, for C = 4096).
_MIN_ROWS_CHANNEL_PER_COLUMN = 32
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


def plan(x: torch.Tensor, num_alpha: int) -> tuple[MemoryView, LaunchConfig]:
    """The memory view and launch configuration of dense x, cached per layout.

    Small activations cost more on the host than on the GPU, so the Python
    that derives a launch runs once per (shape, strides, dtype size, device
    kind, alpha size).
    """
    return _plan(tuple(x.shape), x.stride(), x.element_size(), x.device.type == "cuda", num_alpha)


@functools.lru_cache(maxsize=4096)
def _plan(shape, strides, element_size, on_gpu, num_alpha):
    view = memory_view(torch.empty_strided(shape, strides, device="meta"), num_alpha)
    return view, launch_config_for(view, element_size, on_gpu)


def launch_config_for(view: MemoryView, element_size: int, on_gpu: bool) -> LaunchConfig:
    """Tile shape, warps and grid for the (R, K) view of a dense tensor.

    Args:
        view: the (R, K) memory view; R*K is the tensor's element count.
        element_size: bytes per element of the tensor.
        on_gpu: a CUDA tensor (else the interpreter runs the kernels).

    Pure host arithmetic, so ``codegen.py`` can compile exactly what a launch
    on a CUDA tensor would run, on a machine without one.
    """
    if on_gpu:
        tile = min(_GPU_TILE_ELEMENTS, _GPU_TILE_MAX_BYTES // element_size)
    else:
        tile = _INTERPRETER_TILE_ELEMENTS
    vector = max(16 // element_size, 1)  # elements in one 128-bit access
    widest = tile // _MIN_ROWS_CHANNEL_PER_COLUMN if view.channel_is_column else tile
    block_k = _column_block(view.cols, widest, vector)
    block_r = min(tile // block_k, triton.next_power_of_2(view.rows))
    grid = (triton.cdiv(view.rows, block_r) * triton.cdiv(view.cols, block_k),)
    index_64 = view.rows * view.cols >= _INT32_LIMIT
    k_multiple = min(view.cols & -view.cols, _MAX_K_MULTIPLE)  # lowest set bit
    return LaunchConfig(block_r, block_k, k_multiple, _GPU_NUM_WARPS, index_64, grid)


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


def _device_guard(x: torch.Tensor):
    # Triton launches on the current CUDA device; make that x's device.
    return torch.cuda.device(x.device) if x.device.type == "cuda" else nullcontext()


def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y = learnable_elu(x, alpha), in x's dtype and memory format."""
    x = dense(x)
    alpha = alpha.contiguous()
    y = torch.empty_like(x)
    view, cfg = plan(x, alpha.numel())
    with _device_guard(x):
        learnable_elu_forward_kernel[cfg.grid](
            x, alpha, y, view.rows, view.cols, view.channels,
            CHANNEL_IS_COLUMN=view.channel_is_column,
            BLOCK_R=cfg.block_r, BLOCK_K=cfg.block_k, K_MULTIPLE=cfg.k_multiple,
            INDEX_64=cfg.index_64,
            num_warps=cfg.num_warps,
        )  # fmt: skip
    return y


def backward(
    dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(dx, dalpha): dx in x's dtype and memory format, dalpha in alpha's dtype or None."""
    x = dense(x)
    dy = with_layout_of(dy, x)  # the kernel reads x and dy at the same offsets
    alpha = alpha.contiguous()
    dx = torch.empty_like(x)
    view, cfg = plan(x, alpha.numel())
    partials_shape = _dalpha_partials_shape(view, cfg) if compute_dalpha else (0,)
    dalpha_partials = torch.empty(partials_shape, dtype=compute_dtype(x.dtype), device=x.device)
    with _device_guard(x):
        learnable_elu_backward_kernel[cfg.grid](
            dy, x, alpha, dx, dalpha_partials, view.rows, view.cols, view.channels,
            CHANNEL_IS_COLUMN=view.channel_is_column, COMPUTE_DALPHA=compute_dalpha,
            BLOCK_R=cfg.block_r, BLOCK_K=cfg.block_k, K_MULTIPLE=cfg.k_multiple,
            INDEX_64=cfg.index_64,
            num_warps=cfg.num_warps,
        )  # fmt: skip
    if not compute_dalpha:
        return dx, None
    # Fixed-order sum along contiguous rows of (C, sums per channel): no atomics.
    return dx, dalpha_partials.sum(dim=1).to(alpha.dtype)


def _dalpha_partials_shape(view: MemoryView, cfg: LaunchConfig) -> tuple[int, int]:
    """(C, sums per channel): see kernels/backward.py."""
    if view.channel_is_column:
        return (view.channels, triton.cdiv(view.rows, cfg.block_r))
    return (view.channels, triton.cdiv(view.cols, cfg.block_k) * (view.rows // view.channels))
