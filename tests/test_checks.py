"""Bad input gets a clear error on the host, naming what was expected and what was given."""

import numpy as np
import pytest
import torch

from elu_triton import LearnableELU, LearnableELUFunction, learnable_elu

ENTRY_POINTS = [learnable_elu, LearnableELUFunction.apply, torch.ops.elu_triton.forward]


@pytest.fixture(params=ENTRY_POINTS, ids=["functional", "function", "op"])
def forward(request):
    return request.param


def test_alpha_not_1d(forward):
    with pytest.raises(
        ValueError, match=r"alpha must be 1-D with 1 or C=4 elements \(or 0-D\), got shape \(2, 2\)"
    ):
        forward(torch.randn(2, 4, 3), torch.ones(2, 2))


def test_alpha_wrong_size(forward):
    with pytest.raises(ValueError, match=r"1 or C=4 elements .* got 3"):
        forward(torch.randn(2, 4, 3), torch.ones(3))


def test_alpha_per_channel_on_1d_input(forward):
    with pytest.raises(ValueError, match=r"1 or C=1 elements .*shape \(5,\)\), got 5"):
        forward(torch.randn(5), torch.ones(5))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64], ids=str)
def test_x_not_float(forward, dtype):
    with pytest.raises(TypeError, match=f"x must have a floating-point dtype, got {dtype}"):
        forward(torch.zeros(2, 3, dtype=dtype), torch.ones(3))


def test_alpha_not_float(forward):
    with pytest.raises(TypeError, match="alpha must have a floating-point dtype, got torch.int32"):
        forward(torch.zeros(2, 3), torch.ones(3, dtype=torch.int32))


@pytest.mark.parametrize("forward", ENTRY_POINTS[:2], ids=["functional", "function"])
def test_not_a_tensor(forward):
    with pytest.raises(TypeError, match="alpha must be a torch.Tensor, got float"):
        forward(torch.zeros(2, 3), 1.0)


@pytest.mark.parametrize("x_requires_grad", [False, True])
def test_none_alpha(x_requires_grad):
    # None used to pass the eager route's tests (as "no second tensor") and then
    # fail on alpha.requires_grad.
    with pytest.raises(TypeError, match="alpha must be a torch.Tensor, got NoneType"):
        learnable_elu(torch.zeros(2, 3, requires_grad=x_requires_grad), None)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype")
@pytest.mark.parametrize("forward", ENTRY_POINTS[:2], ids=["functional", "function"])
def test_sparse_and_nested_tensors(forward):
    # First, valid calls whose signatures read the same as the sparse ones but
    # for the layout (sparse COO reports strides (0, 0), as an expanded scalar
    # does; alpha's strides are not read): a cached check must not pass them.
    forward(torch.randn(()).expand(4, 3), torch.rand(3))
    forward(torch.randn(4, 3), torch.rand(1).expand(3))
    cases = [
        (torch.randn(4, 3).to_sparse(), torch.rand(3), "x", "layout torch.sparse_coo"),
        (torch.randn(4, 3).to_sparse_csr(), torch.rand(3), "x", "layout torch.sparse_csr"),
        (torch.randn(4, 3), torch.rand(3).to_sparse(), "alpha", "layout torch.sparse_coo"),
        (
            torch.nested.nested_tensor([torch.randn(2, 3), torch.randn(4, 3)]),
            torch.rand(3),
            "x",
            "a nested tensor",
        ),
    ]
    for x, alpha, name, given in cases:
        with pytest.raises(
            TypeError, match=rf"{name} must be a dense \(strided\) tensor, got {given}"
        ):
            forward(x, alpha)


def test_devices_differ(forward):
    with pytest.raises(ValueError, match=r"same device, got x on cpu and alpha on meta"):
        forward(torch.zeros(2, 3), torch.ones(3, device="meta"))


def test_backward_grad_output_shape():
    with pytest.raises(ValueError, match=r"grad_output must have x's shape \(2, 3\), got \(3, 2\)"):
        torch.ops.elu_triton.backward(torch.ones(3, 2), torch.zeros(2, 3), torch.ones(3), True)


@pytest.mark.parametrize("count", [0, -3])
def test_module_channel_count(count):
    with pytest.raises(ValueError, match=f"num_channels must be at least 1, got {count}"):
        LearnableELU(count)


def test_module_channel_count_type():
    with pytest.raises(TypeError, match="num_channels must be an int, got float"):
        LearnableELU(2.0)


def test_module_input_channels_mismatch():
    expected = (
        r"4 alphas, one per channel on dim 1 of its input, but x of shape \(2, 8, 3, 3\) has 8"
    )
    with pytest.raises(ValueError, match=expected) as error:
        LearnableELU(4)(torch.randn(2, 8, 3, 3))
    assert "channel_dim=-1" not in str(error.value)  # the last dim would not fit either


@pytest.mark.parametrize(
    "count", [np.int64(3), np.int32(3), torch.tensor(3)], ids=["np.int64", "np.int32", "tensor"]
)
def test_module_channel_count_any_integer(count):
    act = LearnableELU(count)
    assert type(act.num_channels) is int and act.num_channels == 3
    assert act.alpha.shape == (3,)
    assert repr(act) == "LearnableELU(num_channels=3, init=1.0)"


@pytest.mark.parametrize("count", [True, np.True_], ids=["bool", "np.bool_"])
def test_module_channel_count_bool(count):
    with pytest.raises(TypeError, match="num_channels must be an int, got bool"):
        LearnableELU(count)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.complex64], ids=str)
def test_module_dtype_not_float(dtype):
    with pytest.raises(
        TypeError, match=f"alpha's dtype must be a floating-point torch.dtype or None, got {dtype}"
    ):
        LearnableELU(3, dtype=dtype)


def test_module_dtype_not_a_dtype():
    with pytest.raises(TypeError, match="floating-point torch.dtype or None, got 'float32'"):
        LearnableELU(3, dtype="float32")
