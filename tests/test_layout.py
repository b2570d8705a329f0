"""The (R, K) memory view that the kernels tile."""

import pytest
import torch

from elu_triton.layout import MemoryView, dense, is_dense, memory_view, same_layout, with_layout_of


def channel_of_each_offset(x: torch.Tensor, view: MemoryView) -> torch.Tensor:
    """The channel the kernels assign to each memory offset, by the view's rule."""
    offsets = torch.arange(view.rows * view.cols)
    row, col = offsets // view.cols, offsets % view.cols
    return col if view.channel_is_column else row % view.channels


@pytest.mark.parametrize(
    "make_x",
    [
        lambda: torch.empty(2, 5, 3, 4),
        lambda: torch.empty(2, 5, 3, 4).to(memory_format=torch.channels_last),
        lambda: torch.empty(2, 5, 3, 4, 6).to(memory_format=torch.channels_last_3d),
        lambda: torch.empty(5, 2, 3).transpose(0, 1),
        lambda: torch.empty(3, 4, 5, 2).permute(3, 2, 0, 1),
        lambda: torch.empty(7, 5),
        lambda: torch.empty(5, 7).t(),
        lambda: torch.empty(1, 5, 1, 1),
    ],
    ids=[
        "nchw",
        "channels_last",
        "channels_last_3d",
        "channel_outermost",
        "permuted",
        "nc",
        "cn",
        "ones",
    ],
)
def test_view_puts_every_element_in_its_channel(make_x):
    x = make_x()
    assert is_dense(x)
    view = memory_view(x, x.shape[1])
    assert view.rows * view.cols == x.numel()
    # Write each element's channel at its memory offset, read it back by rule.
    storage = torch.empty(x.numel(), dtype=torch.long)
    channels = torch.arange(x.shape[1]).reshape(1, -1, *([1] * (x.dim() - 2))).expand(x.shape)
    torch.as_strided(storage, x.shape, x.stride()).copy_(channels)
    assert torch.equal(storage, channel_of_each_offset(x, view))


def test_shared_alpha_is_one_row():
    assert memory_view(torch.empty(4, 6, 5), 1) == MemoryView(1, 120, 1, False)


def test_dense_copies_only_when_needed():
    x = torch.randn(4, 6, 5)
    assert dense(x) is x
    assert dense(x.transpose(1, 2)).data_ptr() == x.data_ptr()
    sliced = x[:, ::2]
    assert not is_dense(sliced)
    copy = dense(sliced)
    assert is_dense(copy) and torch.equal(copy, sliced)
    assert not is_dense(torch.randn(1, 6).expand(3, 6))
    cl = torch.randn(2, 8, 4, 4).to(memory_format=torch.channels_last)[:, ::2]
    assert dense(cl).is_contiguous(memory_format=torch.channels_last)


def test_same_layout_ignores_size_one_dims():
    a = torch.empty(1, 3, 4)
    assert same_layout(a, torch.empty(12).as_strided((1, 3, 4), (999, 4, 1)))
    assert not same_layout(a, torch.empty(1, 4, 3).transpose(1, 2))


def test_with_layout_of_copies_only_when_needed():
    x = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    same = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    assert with_layout_of(same, x) is same
    for other in (
        torch.randn(2, 3, 4, 5),
        torch.randn(1, 3, 4, 5).expand(2, 3, 4, 5),
        same.double(),
    ):
        moved = with_layout_of(other, x)
        assert moved.stride() == x.stride() and moved.dtype == x.dtype
        assert torch.equal(moved, other.to(x.dtype))
