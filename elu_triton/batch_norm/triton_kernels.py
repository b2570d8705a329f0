"""The Triton backend of the fused layer: allocation and launches of its kernels.

Launch constants come from ``launch.pass_args``: the activation's
(``backends/triton_config.kernel_args``: the (R, K) view, tiles, grid and
partials' shape, per channel), with each pass's own tile on NVIDIA GPUs; per-
channel partial sums are summed, and the statistics' per-segment partials
combined, on the host in a fixed order (fp64), so the statistics and
dweight, dbias and dparam are reproducible run to run. Each
entry point goes through the activation's ``backends/device_guard``: the
launch on x's device, every negated view resolved (``PerChannel``'s vectors
are resolved where they are built). The kernels take the activation's
device helpers (``activations.FusedActivation.kernel_value``, ``kernel_grads``) as
constexpr arguments: one compiled kernel per activation.
"""

import functools

import torch

from ..backends.device_guard import guard_needed, run_guarded
from ..kernels import activation as activation_kernels
from ..kernels.batch_norm_backward import (
    batch_norm_activation_dx_kernel,
    batch_norm_activation_reduce_kernel,
)
from ..kernels.batch_norm_forward import batch_norm_activation_forward_kernel
from ..kernels.batch_norm_statistics import batch_norm_statistics_kernel
from ..layout import dense, with_layout_of
from .launch import on_nvidia, pass_args
from .statistics import (
    PerChannel,
    combine_segments,
    dx_coefficients,
    dz_xhat_sum,
    elements_per_channel,
    normalize_scale,
)


def kernel_helpers(activation) -> tuple:
    """(value helper, grads helper): the activation's @triton.jit functions, by their names."""
    helpers = _HELPERS.get(activation.name)
    if helpers is None:
        helpers = (
            getattr(activation_kernels, activation.kernel_value),
            getattr(activation_kernels, activation.kernel_grads),
        )
        _HELPERS[activation.name] = helpers
    return helpers


_HELPERS: dict[str, tuple] = {}


def _dense_with_pass_args(x: torch.Tensor, pass_name: str):
    """(dense x, a pass's kernel arguments for it: ``launch.pass_args``)."""
    x = dense(x)
    return x, pass_args(x, pass_name)


def _partials(x: torch.Tensor, args, count: int | None = None) -> torch.Tensor:
    """A (C, partials per channel) matrix, or count of them stacked (one allocation)."""
    shape = args.config.dalpha_partials_shape
    return x.new_empty(shape if count is None else (count, *shape), dtype=args.partials_dtype)


def statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, biased var) of each channel of x, in the compute dtype."""
    if guard_needed(x):
        return run_guarded(statistics, 1, x)
    x, args = _dense_with_pass_args(x, "statistics")
    partials = _partials(x, args, 3)  # c_t, s1_t, s2_t
    batch_norm_statistics_kernel[args.config.grid](
        x, *partials.unbind(0), *args.sizes, LOADS_FIRST=on_nvidia(x), **args.constants
    )
    lengths = _segment_lengths(args, x.device)
    return combine_segments(partials, lengths, elements_per_channel(x))


def _segment_lengths(args, device: torch.device) -> torch.Tensor:
    """(partials per channel,) fp64: the elements behind each of a channel's partials.

    Cached per layout and device (read only), as the plans are: five small
    ops per forward otherwise. Not while a CUDA graph is being captured: a
    tensor made then holds its values only once the graph is replayed.
    """
    block_r, block_k = args.config.block_r, args.config.block_k
    key = (*args.sizes, block_r, block_k, args.constants["CHANNEL_IS_COLUMN"], device)
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        return _lengths(*key)
    return _cached_lengths(*key)


def _lengths(rows, cols, channels, block_r, block_k, channel_is_column, device) -> torch.Tensor:
    """As ``kernels/tiles.store_channel_partials`` lays the partials out: per
    column, row block i at [i]; per row, column block j of row o at
    [j*(R//C) + o]. Every block is full but the last one. (Device ops only:
    no copy from the host, which CUDA graph capture would refuse.)
    """
    if channel_is_column:
        extent, block, repeats = rows, block_r, 1
    else:
        extent, block, repeats = cols, block_k, rows // channels
    starts = torch.arange(0, extent, block, dtype=torch.float64, device=device)
    lengths = starts.neg_().add_(extent).clamp_(max=block)
    return lengths[:, None].expand(-1, repeats).reshape(-1)


_cached_lengths = functools.lru_cache(maxsize=256)(_lengths)


def normalize_activate(
    x: torch.Tensor, mean: torch.Tensor, invstd: torch.Tensor, per_channel: PerChannel
) -> torch.Tensor:
    """y = the activation of batch norm of x, in x's dtype and memory format."""
    if guard_needed(x, mean, invstd):
        return run_guarded(normalize_activate, 3, x, mean, invstd, per_channel)
    x, args = _dense_with_pass_args(x, "forward")
    y = torch.empty_like(x)
    value, _ = kernel_helpers(per_channel.activation)
    scale = normalize_scale(per_channel, invstd)
    batch_norm_activation_forward_kernel[args.config.grid](
        x, mean, scale, per_channel.bias, per_channel.param, y, *args.sizes,
        ACTIVATION=value, LOADS_FIRST=on_nvidia(x), **args.constants,
    )  # fmt: skip
    return y


def _reduce(
    dy: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    scale: torch.Tensor,
    per_channel: PerChannel,
    compute_dparam: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(sum dz, sum dz*xhat, sum dparam terms or None) per channel, fp64 (C,).

    scale: ``statistics.normalize_scale(per_channel, invstd)``.
    """
    x, args = _dense_with_pass_args(x, "reduce")
    dy = with_layout_of(dy, x)  # read at x's offsets
    # dz, dz*(x - mean) and dparam partials: one allocation
    partials = _partials(x, args, 3 if compute_dparam else 2).unbind(0)
    dparam_partials = partials[2] if compute_dparam else partials[0]  # (never written then)
    _, grads = kernel_helpers(per_channel.activation)
    batch_norm_activation_reduce_kernel[args.config.grid](
        x, dy, mean, scale, per_channel.bias, per_channel.param,
        partials[0], partials[1], dparam_partials, *args.sizes, ACTIVATION_GRADS=grads,
        COMPUTE_DPARAM=compute_dparam, LOADS_FIRST=on_nvidia(x), **args.constants,
    )  # fmt: skip
    # (A sum each: the gradients they become must not share a storage.)
    sums = [p.sum(1, dtype=torch.float64) for p in partials]
    return sums[0], dz_xhat_sum(sums[1], invstd), sums[2] if compute_dparam else None


def _dx(
    dy: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    per_channel: PerChannel,
    coefficients: tuple,
    training: bool,
) -> torch.Tensor:
    """dx in x's dtype and memory format (coefficients: ``statistics.dx_coefficients``)."""
    x, args = _dense_with_pass_args(x, "dx")
    dy = with_layout_of(dy, x)
    dx = torch.empty_like(x)
    scale, offset, slope = coefficients
    _, grads = kernel_helpers(per_channel.activation)
    # (In eval the kernel reads no offset or slope: any vector stands in.)
    batch_norm_activation_dx_kernel[args.config.grid](
        x, dy, mean, scale, per_channel.bias, per_channel.param,
        scale if offset is None else offset, scale if slope is None else slope, dx,
        *args.sizes, ACTIVATION_GRADS=grads, TRAINING=training,
        LOADS_FIRST=on_nvidia(x), **args.constants,
    )  # fmt: skip
    return dx


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    per_channel: PerChannel,
    training: bool,
    compute_sums: bool,
    compute_dparam: bool,
    compute_dx: bool,
) -> tuple[tuple | None, torch.Tensor | None]:
    """((sum dz, sum dz*xhat, sum dparam terms or None) fp64 (C,) or None, dx or None).

    The reduction pass (when sums are due), then the dx pass (when dx is).
    """
    if guard_needed(dy, x, mean):  # (invstd is made fresh from var for each backward)
        args = (invstd, per_channel, training, compute_sums, compute_dparam, compute_dx)
        return run_guarded(backward, 3, dy, x, mean, *args)
    scale = normalize_scale(per_channel, invstd)
    sums = None
    if compute_sums:
        sums = _reduce(dy, x, mean, invstd, scale, per_channel, compute_dparam)
    if not compute_dx:
        return sums, None
    coefficients = dx_coefficients(scale, invstd, sums, elements_per_channel(x), training)
    return sums, _dx(dy, x, mean, per_channel, coefficients, training)
