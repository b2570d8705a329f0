"""How the kernels see a tensor: its elements in memory order as an (R, K) matrix.

For a dense tensor (any permutation of a contiguous layout: contiguous,
channels_last, channels_last_3d, transposed), the memory offset o of the
element with channel c satisfies c = (o // inner) % C, where inner = x.stride(1)
is the extent of the dims laid out below the channel dim. So memory is an
(outer, C, inner) block, which the kernels tile as a row-major (R, K) matrix:

- inner > 1 (NCHW-like): R = outer*C rows of K = inner, channel = row % C;
- inner == 1 (channels_last, (N, C) inputs): R = outer rows of K = C,
  channel = column;
- one shared alpha: a single row, R = 1 and K = numel.

Non-dense inputs (slices, expanded tensors) are copied to a dense tensor
first; the kernels never see strides.
"""

from dataclasses import dataclass

import torch

from .checks import channel_count


@dataclass(frozen=True)
class MemoryView:
    """The (R, K) matrix view of a dense tensor and where its channel sits."""

    rows: int  # R
    cols: int  # K, also the row stride in elements
    channels: int  # C = alpha.numel()
    channel_is_column: bool  # channel = column index, else row % C


def is_dense(t: torch.Tensor) -> bool:
    """Whether t's elements tile a block of memory with no gap and no overlap.

    True exactly for permutations of a contiguous layout: sorted by stride,
    each dim's stride is the product of the sizes below it (size-1 dims,
    whose stride is never used, are skipped).
    """
    expected_stride = 1
    dims = sorted((stride, size) for size, stride in zip(t.shape, t.stride()) if size != 1)
    for stride, size in dims:
        if stride != expected_stride:
            return False
        expected_stride *= size
    return True


def dense(t: torch.Tensor) -> torch.Tensor:
    """t itself when it is dense, else a dense copy (channels_last kept where suggested)."""
    if is_dense(t):
        return t
    return t.clone(memory_format=torch.preserve_format)


def memory_view(x: torch.Tensor, num_alpha: int) -> MemoryView:
    """The view of dense, non-empty x for an alpha of num_alpha (1 or C) elements."""
    channels = channel_count(x)
    if num_alpha == 1 or channels == 1:
        return MemoryView(rows=1, cols=x.numel(), channels=1, channel_is_column=False)
    inner = x.stride(1)
    if inner == 1:
        return MemoryView(x.numel() // channels, channels, channels, channel_is_column=True)
    return MemoryView(x.numel() // inner, inner, channels, channel_is_column=False)


def same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether a and b put equal indices at equal memory offsets (size-1 dims ignored)."""
    return all(size == 1 or sa == sb for size, sa, sb in zip(a.shape, a.stride(), b.stride()))


def with_layout_of(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """t with dense x's layout and dtype: t itself if it has them, else one copy.

    Gradients may arrive expanded (stride 0, from a sum) or in another memory
    format than x; code that walks x's memory in order needs them at x's offsets.
    """
    if t.dtype == x.dtype and (t.stride() == x.stride() or same_layout(t, x)):
        return t
    return torch.empty_like(x).copy_(t)
