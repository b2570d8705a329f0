"""channel_dim: the channels on a dim other than 1, features-last above all, with no copy."""

import io
import pickle

import pytest
import torch
import torch.utils.flop_counter

from elu_triton import LazyLearnableELU, LearnableELU, learnable_elu, reference
from elu_triton.backends import use_backend


@pytest.mark.parametrize(
    "shape, channel_dim",
    [((2, 5, 6, 7), -1), ((2, 5, 6, 7), 3), ((3, 9, 8), -1), ((4, 6, 5), 2), ((6, 3, 5), 0)],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_the_reference_on_dim_1(
    shape, channel_dim, dtype, device, check_against_reference, make_alpha
):
    torch.manual_seed(0)
    x = torch.randn(shape, device=device, dtype=dtype) * 3
    x.view(-1)[:4] = torch.tensor([0.0, -1e-7, -30.0, 1e-7])  # edges of the branch
    alpha = make_alpha(shape[channel_dim], device=device)
    y, _, _ = check_against_reference(x, alpha, channel_dim=channel_dim)
    # The reference takes the same keyword (default tolerances: an expm1 may round apart).
    ref = reference.learnable_elu(x, alpha, channel_dim=channel_dim)
    torch.testing.assert_close(ref, y.detach())


def test_features_last_is_served_with_no_copy(device, monkeypatch):
    """(B, N, D) with channel_dim=-1: no copy of x or dy, and y and dx come back in x's layout."""
    from elu_triton import layout
    from elu_triton.backends import torch_ops, triton_kernels

    copies = []

    def recording_dense(t):
        copies.append(not layout.is_dense(t))
        return layout.dense(t)

    for module in (torch_ops, triton_kernels):
        monkeypatch.setattr(module, "dense", recording_dense)
    monkeypatch.setattr(
        torch_ops, "with_layout_of", lambda t, x: copies.append(t.stride() != x.stride()) or t
    )
    monkeypatch.setattr(
        triton_kernels, "with_layout_of", lambda t, x: copies.append(t.stride() != x.stride()) or t
    )
    x = torch.randn(4, 10, 16, device=device, requires_grad=True)
    alpha = torch.rand(16, device=device, requires_grad=True)
    y = learnable_elu(x, alpha, channel_dim=-1)
    assert y.shape == x.shape and y.is_contiguous()
    dx, _ = torch.autograd.grad(y, (x, alpha), torch.randn_like(y))
    assert dx.is_contiguous() and not any(copies)


def test_features_last_kernel_sees_the_channel_per_column():
    """The moved view is dense with stride 1 on dim 1: the kernels read it in place."""
    from elu_triton.layout import is_dense, memory_view

    x = torch.randn(4, 10, 16)
    moved = x.movedim(-1, 1)
    assert is_dense(moved) and moved.data_ptr() == x.data_ptr()
    view = memory_view(moved, 16)
    assert view.channel_is_column and (view.rows, view.cols) == (40, 16)


@pytest.mark.parametrize("channel_dim", [-1, 0, 5])
def test_fewer_than_two_dims_have_one_channel_whatever_channel_dim(channel_dim, device):
    x = torch.randn(7, device=device)
    alpha = torch.tensor([0.3], device=device)
    torch.testing.assert_close(
        learnable_elu(x, alpha, channel_dim=channel_dim), reference.learnable_elu(x, alpha)
    )


def test_channel_dim_out_of_range_and_not_an_int():
    x, alpha = torch.randn(2, 3, 4), torch.rand(4)
    with pytest.raises(ValueError, match=r"channel_dim must be in \[-3, 3\) .* got 3"):
        learnable_elu(x, alpha, channel_dim=3)
    with pytest.raises(TypeError, match="channel_dim must be an int, got float"):
        learnable_elu(x, alpha, channel_dim=-1.0)
    with pytest.raises(TypeError, match="channel_dim must be an int, got bool"):
        LearnableELU(4, channel_dim=True)


def test_wrong_alpha_size_names_the_callers_dim_and_shape():
    with pytest.raises(
        ValueError, match=r"C=4 elements \(C: dim 2 of x.*shape \(2, 3, 4\)\), got 5"
    ):
        learnable_elu(torch.randn(2, 3, 4), torch.rand(5), channel_dim=-1)


def test_module_channel_dim(device):
    act = LearnableELU(16, init=0.4, channel_dim=-1, device=device)
    assert repr(act) == "LearnableELU(num_channels=16, init=0.4, channel_dim=-1)"
    x = torch.randn(2, 5, 5, 16, device=device)
    torch.testing.assert_close(act(x), reference.learnable_elu(x, act.alpha, channel_dim=-1))


def test_lazy_sizes_alpha_on_the_chosen_dim():
    act = LazyLearnableELU(init=0.5, channel_dim=-1)
    assert repr(act) == "LazyLearnableELU(init=0.5, channel_dim=-1)"
    act(torch.randn(2, 16, 16, 384))
    assert type(act) is LearnableELU and act.alpha.shape == (384,) and act.channel_dim == -1
    act(torch.randn(2, 24, 24, 384))  # another resolution: the same channels


def test_lazy_on_dim_1_suggests_channel_dim_minus_1_for_features_last_input():
    """The issue's ConvNeXt case: sized on the height, then a larger image."""
    act = LazyLearnableELU()
    act(torch.randn(2, 16, 16, 384))
    assert act.alpha.shape == (16,)
    with pytest.raises(ValueError) as error:
        act(torch.randn(2, 24, 24, 384))
    message = str(error.value)
    assert "16 alphas, one per channel on dim 1" in message and "has 24 there" in message
    assert "(2, 16, 16, 384)" in message and "channel_dim=-1" in message


def test_suggests_channel_dim_minus_1_when_the_last_dim_has_alphas_size():
    with pytest.raises(ValueError, match="channel_dim=-1"):
        LearnableELU(32)(torch.randn(2, 7, 32))


def test_state_dict_and_pickles_from_before_load():
    """A module pickled before channel_dim existed has no such attribute: the class default serves."""
    act = LearnableELU(3, init=0.7)
    del act.__dict__["channel_dim"]  # as unpickled from an older version
    restored = pickle.loads(pickle.dumps(act))
    x = torch.randn(2, 3, 4)
    assert restored.channel_dim == 1
    torch.testing.assert_close(restored(x), reference.learnable_elu(x, act.alpha))
    buffer = io.BytesIO()
    torch.save(LearnableELU(3, init=0.7).state_dict(), buffer)
    buffer.seek(0)
    fresh = LearnableELU(3, channel_dim=-1)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.all(fresh.alpha == 0.7)


def test_zero_dim_alpha_as_f_prelu(device):
    torch.manual_seed(0)
    x = torch.randn(5, 5, device=device, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(0.25, device=device, dtype=torch.float64, requires_grad=True)
    y = learnable_elu(x, alpha)
    dy = torch.randn_like(y)
    dx, dalpha = torch.autograd.grad(y, (x, alpha), dy)
    x64, a64 = x.detach().requires_grad_(), alpha.detach().requires_grad_()
    want = reference.learnable_elu(x64, a64)
    want_dx, want_da = torch.autograd.grad(want, (x64, a64), dy)
    assert dalpha.shape == () and want_da.shape == ()
    torch.testing.assert_close(y, want, rtol=1e-14, atol=0)
    torch.testing.assert_close(dx, want_dx, rtol=1e-14, atol=1e-300)
    torch.testing.assert_close(dalpha, want_da, rtol=1e-12, atol=1e-12)
    # Also with channels, and through the op under a dispatch mode.
    x4 = torch.randn(2, 3, 4, device=device)
    with torch.utils.flop_counter.FlopCounterMode(display=False):
        got = learnable_elu(x4, torch.tensor(0.5, device=device))
    torch.testing.assert_close(got, reference.learnable_elu(x4, torch.tensor([0.5], device=device)))


def test_zero_dim_alpha_gradcheck():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    with use_backend("torch"):
        assert torch.autograd.gradcheck(learnable_elu, (x, alpha))


def test_zero_dim_alpha_second_order_and_opcheck():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(learnable_elu, (x, alpha))
    torch.library.opcheck(torch.ops.elu_triton.forward, (x, alpha))
    torch.library.opcheck(
        torch.ops.elu_triton.backward, (torch.randn(3, 4, dtype=torch.float64), x, alpha, True)
    )
