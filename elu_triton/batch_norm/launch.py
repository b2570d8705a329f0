"""The launch of the fused batch norm's passes on NVIDIA GPUs: LOADS_FIRST, larger tiles.

Each pass starts from the activation's launch for x's layout
(``backends/triton_config.kernel_args``: on GPUs 4096-element tiles, 16
elements per thread). On NVIDIA GPUs the batch norm's passes issue every
load of a tile before its math (``kernels/batch_norm_math.py``, LOADS_FIRST),
so a program pays one memory round trip however large its tile, and larger
tiles spread what a program pays once: its index math, its reductions
across the CTA (three per pass in the statistics and the reduction, one
broadcast back) and their partials, which with the channel per column are
one per column of each tile. ``PASS_TILE_ELEMENTS`` holds each pass's tile:

- statistics: x alone in registers, 64 elements per thread. With the
  channel per column its three partials per tile column were a third of x's
  bytes in bf16 at 32-row tiles, and the model (``bench/static_model``)
  capped the pass at 68% of copy (bf16) and 81% (fp32) for their traffic
  alone;
- forward, reduction, dx: 32 elements per thread; at 64 the reduction and dx
  need 200-255 registers and spill.

With the channel per column a tile is at most ``MAX_BLOCK_K`` columns wide
(its rows grow instead, and its partials shrink): a per-channel vector as
wide as the CTA has threads is loaded one value per thread and moved into
the tile's layout through shared memory, whose barriers come before the
math and cost a round trip each.

AMD GPUs and the CPU interpreter keep the activation's tiles (no model or
measurement says otherwise there) and LOADS_FIRST off (``on_nvidia``).
"""

import dataclasses

import torch
import triton

from ..backends.triton_config import (
    KernelArgs,
    LaunchConfig,
    Tuning,
    kernel_args,
    launch_config_for,
)
from ..checks import channel_count
from ..layout import MemoryView

# Elements per program of each pass on NVIDIA GPUs, at 8 warps; at most 32 KiB
# of each tensor (64 KiB for the statistics), so fp64 tiles hold half as many.
PASS_TILE_ELEMENTS = {"statistics": 16384, "forward": 8192, "reduce": 8192, "dx": 8192}
_NUM_WARPS = 8
MAX_BLOCK_K = 128  # columns per tile with the channel per column (see above)

# torch calls ROCm GPUs "cuda" devices too; only a CUDA build has NVIDIA's.
_NVIDIA = torch.version.hip is None
_CACHE_SIZE = 4096  # layouts and passes remembered (as kernel_args' cache)


def on_nvidia(x: torch.Tensor) -> bool:
    """Whether x is on an NVIDIA GPU: the passes' LOADS_FIRST (inline PTX), their own tiles."""
    return _NVIDIA and x.is_cuda


def pass_tuning(pass_name: str) -> Tuning:
    """The Tuning of a pass on NVIDIA GPUs."""
    elements = PASS_TILE_ELEMENTS[pass_name]
    tile_bytes = (64 if pass_name == "statistics" else 32) * 1024
    return Tuning(tile_elements=elements, tile_max_bytes=tile_bytes, num_warps=_NUM_WARPS)


def pass_launch_config(view: MemoryView, element_size: int, pass_name: str) -> LaunchConfig:
    """A pass's tile, grid and partials for the (R, K) view on an NVIDIA GPU.

    ``launch_config_for`` with the pass's tile; with the channel per column,
    a wider tile than MAX_BLOCK_K columns gives its width to rows.
    """
    tuning = pass_tuning(pass_name)
    cfg = launch_config_for(view, element_size, tuning)
    if not view.channel_is_column or cfg.block_k <= MAX_BLOCK_K:
        return cfg
    block_k = MAX_BLOCK_K
    tile = cfg.block_r * cfg.block_k
    block_r = min(tile // block_k, triton.next_power_of_2(view.rows))
    row_blocks = triton.cdiv(view.rows, block_r)
    return dataclasses.replace(
        cfg,
        block_r=block_r,
        block_k=block_k,
        grid=(row_blocks * triton.cdiv(view.cols, block_k),),
        dalpha_partials_shape=(view.channels, row_blocks),
    )


def pass_args(x: torch.Tensor, pass_name: str) -> KernelArgs:
    """The kernel arguments of a pass over dense x: the activation's, with the pass's tile.

    Worked out once per (layout, pass), as ``kernel_args`` is per layout.
    """
    args = kernel_args(x, channel_count(x))
    if not on_nvidia(x):
        return args
    key = (x.shape, x.stride(), x.dtype, pass_name)
    found = _PASS_ARGS.get(key)
    if found is None:
        if len(_PASS_ARGS) >= _CACHE_SIZE:
            _PASS_ARGS.clear()
        found = _PASS_ARGS[key] = _with_pass_tile(args, x.element_size(), pass_name)
    return found


_PASS_ARGS: dict = {}


def _with_pass_tile(args: KernelArgs, element_size: int, pass_name: str) -> KernelArgs:
    view = MemoryView(*args.sizes, args.constants["CHANNEL_IS_COLUMN"])
    cfg = pass_launch_config(view, element_size, pass_name)
    constants = dict(args.constants, BLOCK_R=cfg.block_r, BLOCK_K=cfg.block_k,
                     num_warps=cfg.num_warps)  # fmt: skip
    return args._replace(config=cfg, constants=constants)
