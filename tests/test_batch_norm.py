"""BatchNormLearnableELU and batch_norm_learnable_elu against F.batch_norm -> the reference.

Every backend (the ``device`` fixture: the kernels in the interpreter, the
PyTorch backend, CUDA where present) is compared with the float64 composite
on the same inputs: values, the four gradients, the running statistics.
Tests about the fused layer rather than the ELU run for every fused layer
(the ``act`` fixture: BatchNormLearnableELU and BatchNormPReLU, each
against its own pair).
"""

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from elu_triton import (
    BatchNormLearnableELU,
    BatchNormPReLU,
    LearnableELU,
    backends,
    batch_norm_learnable_elu,
    batch_norm_prelu,
    reference,
)
from elu_triton.demo.memory import activation_bytes

# (rtol, atol) of y and dx against the float64 composite, for inputs of O(1):
# - fp64: a few ulps per step of a short chain (statistics, normalize, exp).
# - fp32: the statistics of a few hundred elements and the normalize step
#   each err by a few ulps of fp32 (1.2e-7); 2e-5 leaves an order of
#   magnitude. dx subtracts per-channel means of dz from dz: its error is
#   relative to |dz|, not to |dx|, hence the same atol.
# - bf16: y and dx are rounded to bf16 at the end (2^-8 relative, and the
#   interpreter truncates: 2^-7); dx's cancellation is again absolute.
TOLERANCES = {
    torch.float64: (1e-12, 1e-12),
    torch.float32: (2e-5, 2e-5),
    torch.bfloat16: (2**-7, 2**-6),
}
# dweight, dbias and dalpha are sums over the M elements of a channel, each
# term within the tolerance above (fp32 arithmetic for bf16 inputs too): the
# bound is relative to the sum of |terms|, approximated by M * max |dy|.
SUM_RTOL = {torch.float64: 1e-12, torch.float32: 2e-5, torch.bfloat16: 2e-5}


@dataclass(frozen=True)
class FusedLayer:
    """A fused layer and its unfused pair's activation, for the tests they share."""

    functional: object  # F.batch_norm's arguments, then the parameter, training, momentum, eps
    reference: object  # y = f(z, param), the pair's activation in pure PyTorch
    module: type
    activation: object  # (channels, init, device, dtype) -> the pair's activation module
    parameter: str  # the fused module's name for the activation's parameter
    unfused_parameter: str  # the activation module's


LAYERS = {
    "learnable_elu": FusedLayer(
        batch_norm_learnable_elu, reference.learnable_elu, BatchNormLearnableELU,
        lambda c, init, **kw: LearnableELU(c, init, **kw), "alpha", "alpha",
    ),
    "prelu": FusedLayer(
        batch_norm_prelu, F.prelu, BatchNormPReLU,
        lambda c, init, **kw: nn.PReLU(c, init, **kw), "prelu_weight", "weight",
    ),
}  # fmt: skip


# (Named act: ``layer`` is the contract suite's, which conftest parametrizes.)
@pytest.fixture(params=list(LAYERS))
def act(request) -> FusedLayer:
    return LAYERS[request.param]


def _fused_module(layer, channels, **kwargs):
    """layer's module with one parameter per channel (PReLU's default is one in all)."""
    if layer.module is BatchNormPReLU:
        kwargs["num_parameters"] = channels
    return layer.module(channels, **kwargs)


def _draw(shape, dtype, device, memory_format=torch.contiguous_format, mean=0.5, std=1.5):
    x = torch.randn(shape, dtype=torch.float64) * std + mean
    return x.to(device=device, dtype=dtype).contiguous(memory_format=memory_format)


def _parameters(channels, device, dtype=torch.float32):
    weight = torch.rand(channels, dtype=dtype, device=device) + 0.5
    bias = torch.randn(channels, dtype=dtype, device=device) * 0.5
    alpha = torch.rand(channels, dtype=dtype, device=device) * 1.5 + 0.5
    return weight, bias, alpha


def _composite64(
    x, running_mean, running_var, weight, bias, alpha, training, momentum, eps, dy,
    layer=LAYERS["learnable_elu"],
):  # fmt: skip
    """(y, [dx, dweight, dbias, dalpha], running_mean, running_var) of the float64 composite."""
    leaves = [t.detach().double().requires_grad_() for t in (x, weight, bias, alpha)]
    rm = None if running_mean is None else running_mean.double()
    rv = None if running_var is None else running_var.double()
    z = F.batch_norm(leaves[0], rm, rv, leaves[1], leaves[2], training, momentum, eps)
    y = layer.reference(z, leaves[3])
    return y.detach(), list(torch.autograd.grad(y, leaves, dy.double())), rm, rv


def _check(
    x, running, weight, bias, alpha, training, momentum=0.1, eps=1e-5,
    layer=LAYERS["learnable_elu"],
):  # fmt: skip
    """Run the fused functional and the float64 composite; compare everything."""
    rm64, rv64 = (None, None) if running is None else (t.clone() for t in running)
    rm, rv = (None, None) if running is None else running
    leaves = [t.detach().requires_grad_() for t in (x, weight, bias, alpha)]
    y = layer.functional(leaves[0], rm, rv, *leaves[1:], training, momentum, eps)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, leaves, dy)
    y64, grads64, rm64, rv64 = _composite64(
        x, rm64, rv64, weight, bias, alpha, training, momentum, eps, dy, layer
    )
    rtol, atol = TOLERANCES[x.dtype]
    assert y.dtype == x.dtype and y.stride() == x.stride()
    torch.testing.assert_close(y.double(), y64, rtol=rtol, atol=atol)
    assert grads[0].dtype == x.dtype and grads[0].stride() == x.stride()
    scale = grads64[0].abs().max() + dy.double().abs().max()  # dx cancels to ~|dz|
    torch.testing.assert_close(grads[0].double(), grads64[0], rtol=rtol, atol=atol * scale)
    count = x.numel() // x.shape[1]
    sum_atol = SUM_RTOL[x.dtype] * count * dy.double().abs().max() * 4
    for name, got, want in zip(("dweight", "dbias", "dalpha"), grads[1:], grads64[1:]):
        assert got.dtype == torch.float32 or got.dtype == x.dtype, name
        torch.testing.assert_close(
            got.double(),
            want,
            rtol=SUM_RTOL[x.dtype],
            atol=sum_atol,
            msg=lambda m, name=name: f"{name}: {m}",
        )
    if rm is not None:
        stats_rtol = 1e-12 if x.dtype == torch.float64 else 1e-6
        torch.testing.assert_close(rm.double(), rm64, rtol=stats_rtol, atol=stats_rtol)
        torch.testing.assert_close(rv.double(), rv64, rtol=stats_rtol, atol=stats_rtol)
    return y, grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_matches_composite(dtype, training, memory_format, device, act):
    x = _draw((4, 3, 5, 6), dtype, device, memory_format)
    param_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    weight, bias, alpha = _parameters(3, device, param_dtype)
    running = (
        torch.randn(3, dtype=param_dtype, device=device),
        torch.rand(3, dtype=param_dtype, device=device) + 0.5,
    )
    _check(x, running, weight, bias, alpha, training, layer=act)


@pytest.mark.parametrize(
    "shape, memory_format",
    [
        ((9, 4), torch.contiguous_format),
        ((3, 4, 7), torch.contiguous_format),
        ((2, 3, 5, 6), torch.channels_last),
        ((2, 3, 2, 3, 4), torch.contiguous_format),
        ((2, 3, 2, 3, 4), torch.channels_last_3d),
        ((5, 1, 6), torch.contiguous_format),
    ],
)
@pytest.mark.parametrize("training", [True, False])
def test_shapes_and_layouts(shape, memory_format, training, device, act):
    x = _draw(shape, torch.float32, device, memory_format)
    channels = shape[1]
    running = (torch.randn(channels, device=device), torch.rand(channels, device=device) + 0.5)
    _check(x, running, *_parameters(channels, device), training, layer=act)


def test_without_affine_or_running_statistics(device):
    x = _draw((4, 3, 5), torch.float32, device)
    _, _, alpha = _parameters(3, device)
    rm, rv = torch.zeros(3, device=device), torch.ones(3, device=device)
    ones, zeros = torch.ones(3, device=device), torch.zeros(3, device=device)
    y = batch_norm_learnable_elu(x, None, None, None, None, alpha, True, 0.1, 1e-5)
    expected = batch_norm_learnable_elu(x, rm, rv, ones, zeros, alpha, True, 0.1, 1e-5)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)  # weight 1, bias 0 exactly


def test_shared_alpha(device, act):
    x = _draw((4, 3, 5), torch.float64, device)
    weight, bias, _ = _parameters(3, device, torch.float64)
    alpha = torch.tensor([0.7], dtype=torch.float64, device=device)
    _check(x, None, weight, bias, alpha, True, layer=act)


def test_non_dense_input(device):
    x = _draw((4, 6, 5, 8), torch.float32, device)[:, ::2, :, 1:7]
    _check(x.contiguous(), None, *_parameters(3, device), True)  # (stride check needs dense)
    weight, bias, alpha = _parameters(3, device)
    y = batch_norm_learnable_elu(x, None, None, weight, bias, alpha, True)
    expected = batch_norm_learnable_elu(x.contiguous(), None, None, weight, bias, alpha, True)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


def test_large_mean_against_spread(device):
    """Centered sums keep fp32 statistics accurate where sum(x^2)/M - mean^2 would not."""
    x = _draw((8, 2, 16, 16), torch.float32, device, mean=1e4, std=1.0)
    weight, bias, alpha = _parameters(2, device)
    rm, rv = torch.zeros(2, device=device), torch.ones(2, device=device)
    y = batch_norm_learnable_elu(x, rm, rv, weight, bias, alpha, True, 1.0, 1e-5)
    y64, _, rm64, rv64 = _composite64(
        x, rm.new_zeros(2), rm.new_ones(2), weight, bias, alpha, True, 1.0, 1e-5,
        torch.zeros_like(x),
    )  # fmt: skip
    # The variance, which naive fp32 sums of x and x^2 would lose entirely
    # (1e8 * 2^-24 is about 6, against a variance of 1), is accurate: x minus
    # its segment's mean is exact there, and the host combines them in fp64.
    torch.testing.assert_close(rv.double(), rv64, rtol=1e-5, atol=0)
    # The mean itself is stored in fp32: ulp(1e4) / 2 = 4.9e-4, which z
    # inherits times weight * invstd (< 2): what aten's fp32 BatchNorm does too.
    ulp_bound = 2 * torch.finfo(torch.float32).eps * 1e4 * float(weight.max())
    torch.testing.assert_close(y.double(), y64, rtol=1e-5, atol=ulp_bound)


@pytest.fixture
def seeded():
    """Seed 0 for one test, in a fork: the tests after it draw what they drew before it existed."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def _one_step(fn, x, params, dtype):
    """(y, running_var) in fp64 of one training step of fn on x and params, in dtype.

    Momentum 1: running_var is then the batch's unbiased variance.
    """
    channels = x.shape[1]
    rm = torch.zeros(channels, dtype=dtype, device=x.device)
    rv = torch.ones(channels, dtype=dtype, device=x.device)
    y = fn(x.to(dtype), *(p.to(dtype) for p in params), rm, rv)
    return y.double(), rv.double()


def _batch_norm_then_reference(x, weight, bias, alpha, rm, rv):
    z = F.batch_norm(x, rm, rv, weight, bias, True, 1.0, 1e-5)  # nn.BatchNorm's function
    return reference.learnable_elu(z, alpha)


def _fused(x, weight, bias, alpha, rm, rv):
    return batch_norm_learnable_elu(x, rm, rv, weight, bias, alpha, True, 1.0, 1e-5)


def _assert_as_accurate_as_batch_norm(x, factor=10):
    """y and running_var within factor x fp32 BatchNorm's error against float64 on fp32 x."""
    params = _parameters(x.shape[1], x.device)
    with torch.no_grad():
        y64, rv64 = _one_step(_batch_norm_then_reference, x, params, torch.float64)
        errors = {}
        # BatchNorm on contiguous x: aten's channels_last CPU statistics are
        # themselves inaccurate for large means (relative var error ~1e3).
        for name, fn, x_in in (("ours", _fused, x), ("BatchNorm", _batch_norm_then_reference,
                                                     x.contiguous())):  # fmt: skip
            y, rv = _one_step(fn, x_in, params, torch.float32)
            errors[name] = ((y - y64).abs().max().item(), ((rv - rv64) / rv64).abs().max().item())
    # An fp32 ulp of the values at least, BatchNorm's own error being ~0 by
    # luck at times: of y, and of x carried through the normalization (the
    # mean is stored in fp32, as BatchNorm's is).
    eps = torch.finfo(torch.float32).eps
    scale = (params[0].double().abs() / rv64.sqrt()).max()
    floors = (eps * (y64.abs().max() + x.abs().max() * scale).item(), eps)
    for i, name in enumerate(("y", "running_var")):
        got, bound = errors["ours"][i], errors["BatchNorm"][i]
        assert got <= factor * max(bound, floors[i]), (
            f"{name}: error {got:.3g}, BatchNorm's {bound:.3g}"
        )


def _interpreted(device):
    """Whether device runs the Triton kernels in Triton's interpreter."""
    return torch.device(device).type == "cpu" and backends.backend_for("cpu").name == "triton"


OUTLIER_AT = {
    "first": (0, slice(None), 0, 0),
    "inside": (5, slice(None), 9, 20),
    "last": (-1, slice(None), -1, -1),
}


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("mean", [0.0, 1e4])
@pytest.mark.parametrize("position", list(OUTLIER_AT))
def test_an_outlier_costs_no_accuracy_wherever_it_sits(
    position, mean, memory_format, device, seeded
):
    """A sample 300 spreads from its channel's mean: the statistics stay BatchNorm's."""
    x = _draw((8, 2, 16, 32), torch.float32, device, memory_format, mean=mean, std=1.0)
    x[OUTLIER_AT[position]] = mean + 300
    # Triton's interpreter sums a tile's columns (numpy along axis 0) one row
    # after the other, where a GPU sums them as a tree: after the outlier, each
    # term rounds at its ulp (~3e-6 for a 4096-row tile).
    interpreted_columns = memory_format == torch.channels_last and _interpreted(device)
    _assert_as_accurate_as_batch_norm(x, factor=100 if interpreted_columns else 10)


@pytest.mark.parametrize("mean", [0.0, 1e4])
def test_large_means_keep_batch_norms_accuracy(mean, device, seeded):
    """x + 1e4: the statistics and y are as accurate as fp32 BatchNorm's."""
    _assert_as_accurate_as_batch_norm(_draw((16, 2, 64, 64), torch.float32, device, mean=mean))


@pytest.mark.parametrize("shape", [(1, 1, 1024, 1024), (4, 1, 512, 512)])
def test_a_million_elements_per_channel_keep_batch_norms_accuracy(shape, device, seeded):
    """The error does not grow with the elements per channel (mean 1e4, an outlier first)."""
    x = _draw(shape, torch.float32, device, mean=1e4, std=1.0)
    x[OUTLIER_AT["first"]] = 1e4 + 300
    _assert_as_accurate_as_batch_norm(x)


@pytest.mark.parametrize("training", [True, False])
def test_gradcheck(training, device, act):
    x = _draw((3, 2, 2, 2), torch.float64, device).requires_grad_()
    weight, bias, alpha = (t.requires_grad_() for t in _parameters(2, device, torch.float64))
    rm = torch.randn(2, dtype=torch.float64, device=device)
    rv = torch.rand(2, dtype=torch.float64, device=device) + 0.5

    def fn(x, weight, bias, alpha):  # running statistics refreshed: momentum 0
        return act.functional(x, rm, rv, weight, bias, alpha, training, 0.0, 1e-5)

    assert torch.autograd.gradcheck(fn, (x, weight, bias, alpha))
    assert torch.autograd.gradgradcheck(fn, (x, weight, bias, alpha))


def test_parameter_gradients_are_reproducible(device, act):
    x = _draw((4, 3, 9, 7), torch.float32, device, torch.channels_last)
    params = [t.requires_grad_() for t in _parameters(3, device)]
    dy = torch.randn_like(x)
    runs = []
    for _ in range(2):
        y = act.functional(x.requires_grad_(), None, None, *params, True)
        runs.append(torch.autograd.grad(y, [x, *params], dy))
    for first, second in zip(*runs):
        assert torch.equal(first, second)


def test_keeps_x_and_per_channel_vectors_only(device, act):
    module = _fused_module(act, 8, device=device)
    x = torch.randn(4, 8, 16, 16, device=device, requires_grad=True)
    fused = activation_bytes(module, x)  # (saved-tensor hooks)
    # x; mean, var and bias's (C,) copy (parameters themselves are not counted)
    assert fused == x.numel() * 4 + 3 * 8 * 4
    pair = nn.Sequential(nn.BatchNorm2d(8, device=device), act.activation(8, 1.0, device=device))
    assert fused < 0.55 * activation_bytes(pair, x)


def _pair_and_fused(channels, device, layer=LAYERS["learnable_elu"], **kwargs):
    bn_class = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
    init = kwargs.pop("init", 1.0)
    dims = kwargs.pop("dims")
    pair = nn.Sequential(
        bn_class[dims](channels, **kwargs, device=device, dtype=torch.float64),
        layer.activation(channels, init, device=device, dtype=torch.float64),
    )
    fused = _fused_module(layer, channels, **kwargs, init=init, device=device, dtype=torch.float64)
    return pair, fused


MODULE_FLAGS = [
    dict(),
    dict(momentum=None),
    dict(momentum=0.3, eps=1e-3),
    dict(affine=False),
    dict(track_running_stats=False),
    dict(affine=False, track_running_stats=False),
]


@pytest.mark.parametrize("flags", MODULE_FLAGS, ids=lambda f: ",".join(f) or "defaults")
@pytest.mark.parametrize("dims", [2, 4, 5])
def test_module_trains_like_the_pair(flags, dims, device, act):
    """Several steps of SGD, then eval: same outputs, parameters and buffers as BN -> activation."""
    # Seeded, so that the result does not depend on which tests ran before.
    torch.manual_seed(0)
    channels = 3
    pair, fused = _pair_and_fused(channels, device, act, dims=dims, init=0.8, **flags)
    name, unfused = act.parameter, getattr(pair[1], act.unfused_parameter)
    assert set(fused.state_dict()) == set(pair[0].state_dict()) | {name}
    fused.load_state_dict({**pair[0].state_dict(), name: unfused.detach()})
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (pair, fused)]
    shape = {2: (6, channels), 4: (3, channels, 4, 3), 5: (2, channels, 2, 3, 2)}[dims]
    for step in range(3):
        x = torch.randn(shape, dtype=torch.float64, device=device) * (step + 1) + step
        for model, optimizer in zip((pair, fused), optimizers):
            optimizer.zero_grad()
            # Weights in [0, 1): gradients of order 1, whose fp64 sums (in
            # another order in each model) round well inside the bounds below;
            # weights up to numel() made them 100x larger, and 1e-12 flaky.
            weights = torch.arange(x.numel(), device=device).reshape(shape) / x.numel()
            (model(x) * weights).sum().backward()
            optimizer.step()
        _assert_same_state(pair, fused, act)
    for model in (pair, fused):
        model.eval()
    if fused.track_running_stats:
        x = torch.randn(shape, dtype=torch.float64, device=device)
        torch.testing.assert_close(fused(x), pair(x), rtol=1e-12, atol=1e-12)


def _assert_same_state(pair, fused, layer=LAYERS["learnable_elu"]):
    expected = {**pair[0].state_dict(), layer.parameter: getattr(pair[1], layer.unfused_parameter)}
    for name, value in fused.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=1e-11, atol=1e-11, msg=name)


def test_module_resets_and_repr():
    layer = BatchNormLearnableELU(4, init=0.5)
    with torch.no_grad():
        layer.alpha.fill_(3.0)
        layer.weight.fill_(2.0)
        layer.running_mean.fill_(1.0)
    layer.num_batches_tracked.fill_(7)
    layer.reset_running_stats()
    assert layer.running_mean.eq(0).all() and layer.num_batches_tracked.item() == 0
    assert layer.weight.eq(2.0).all()  # reset_running_stats leaves the parameters
    layer.reset_parameters()
    assert layer.alpha.eq(0.5).all() and layer.weight.eq(1.0).all()
    assert "init=0.5" in repr(layer) and "eps=1e-05" in repr(layer)


def test_sync_batchnorm_conversion_leaves_it_alone():
    model = nn.Sequential(BatchNormLearnableELU(4))
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[0], BatchNormLearnableELU)


def test_bad_input():
    layer = BatchNormLearnableELU(3)
    with pytest.raises(ValueError, match="expected an input of 3 channels"):
        layer(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="running_mean must have shape \\(4,\\)"):
        batch_norm_learnable_elu(
            torch.randn(2, 4), torch.zeros(3), torch.ones(3), alpha=torch.ones(4)
        )
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        layer(torch.randn(1, 3, 1, 1))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        layer(torch.randn(1, 3))
    layer.eval()
    assert layer(torch.randn(1, 3, 1, 1)).shape == (1, 3, 1, 1)  # eval: BatchNorm allows it
    with pytest.raises(ValueError, match="expected 2D, 3D, 4D or 5D input \\(got 1D input\\)"):
        layer(torch.randn(3))
    alpha, x = torch.ones(3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="in evaluation mode"):
        batch_norm_learnable_elu(x, None, None, None, None, alpha, False)
    with pytest.raises(ValueError, match="both be tensors or both be None"):
        batch_norm_learnable_elu(x, torch.zeros(3), None, None, None, alpha, True)
    with pytest.raises(TypeError, match="needs alpha"):
        batch_norm_learnable_elu(x, None, None, None, None, None, True)
    with pytest.raises(ValueError, match="alpha must have 1 or C=3"):
        batch_norm_learnable_elu(x, None, None, None, None, torch.ones(2), True)
    with pytest.raises(TypeError, match="floating-point"):
        batch_norm_learnable_elu(x.long(), None, None, None, None, alpha, True)


@pytest.mark.parametrize("eps", [0.0, -1e-5])
def test_eps_must_be_positive_in_training_and_non_negative_in_eval(eps, device):
    """F.batch_norm's rule in torch 2.13's words, on every torch, module and functional alike."""
    layer = BatchNormLearnableELU(3, eps=eps, device=device)
    x, alpha = torch.randn(4, 3, 5, device=device), torch.ones(3, device=device)
    stats = (torch.zeros(3, device=device), torch.ones(3, device=device))
    with pytest.raises(ValueError, match=f"eps must be positive during training, but got {eps}"):
        layer(x)
    with pytest.raises(ValueError, match="eps must be positive during training"):
        batch_norm_learnable_elu(x, *stats, alpha=alpha, training=True, eps=eps)
    layer.eval()
    if eps < 0:
        with pytest.raises(ValueError, match=f"eps must be non-negative, but got {eps}"):
            layer(x)
        with pytest.raises(ValueError, match="eps must be non-negative"):
            batch_norm_learnable_elu(x, *stats, alpha=alpha, training=False, eps=eps)
    else:  # eps = 0 in eval: BatchNorm normalizes by the running variance alone
        torch.testing.assert_close(layer(x), reference.learnable_elu(x, alpha))
    untracked = BatchNormLearnableELU(3, eps=eps, track_running_stats=False, device=device).eval()
    with pytest.raises(ValueError, match="eps must be positive during training"):
        untracked(x)  # no running statistics: eval normalizes with the batch's


def test_empty_batch_leaves_running_statistics(device):
    layer = BatchNormLearnableELU(3, device=device)
    y = layer(torch.randn(0, 3, 4, 4, device=device))
    assert y.shape == (0, 3, 4, 4)
    assert layer.running_mean.eq(0).all() and layer.running_var.eq(1).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_autocast_gives_the_pairs_dtypes(dtype, device, act):
    """Under autocast, bf16 activations with fp32 parameters, as BatchNorm takes them."""
    pair, fused = _pair_and_fused(3, device, act, dims=4, init=0.7)
    pair, fused = pair.float(), fused.float()
    x = _draw((4, 3, 5, 6), dtype, device).requires_grad_()
    device_type = torch.device(device).type
    with torch.autocast(device_type, dtype=torch.bfloat16):
        expected, got = pair(x), fused(x)
    # x's dtype through BatchNorm and the ELU; autocast's for PReLU, an op on
    # autocast's lower-precision list.
    assert (
        got.dtype == expected.dtype == (torch.bfloat16 if act.module is BatchNormPReLU else dtype)
    )
    torch.testing.assert_close(got.float(), expected.float(), **_autocast_tolerance(got.dtype))
    (dx,) = torch.autograd.grad(got.float().square().sum(), x)
    (dx_expected,) = torch.autograd.grad(expected.float().square().sum(), x)
    assert dx.dtype == dtype
    torch.testing.assert_close(dx.float(), dx_expected.float(), **_autocast_tolerance(got.dtype))


def _autocast_tolerance(dtype):
    # By y's dtype. bf16: the two round z (the pair) or y (fused) to bf16 at
    # different points.
    return dict(rtol=2e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=2**-6, atol=2**-5)


@pytest.mark.parametrize("training", [True, False])
def test_negated_views_are_read_with_their_sign(training, device):
    """Lazily negated views (torch._neg_view) of every tensor: kernels read raw memory, not the sign bit."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5, device=device)
    weight, bias, alpha = (torch.rand(3, device=device) + 0.5 for _ in range(3))
    running_mean, running_var = torch.randn(3, device=device), torch.rand(3, device=device) + 0.5
    dy = torch.randn_like(x)
    tensors = (x, -running_mean, running_var, -weight, -bias, -alpha)
    negated = [torch._neg_view(-t) if t is not running_var else t for t in tensors]
    assert all(t.is_neg() for t in negated if t is not running_var)
    wanted = [t.clone() for t in tensors]
    for i in (0, 3, 4, 5):
        negated[i].requires_grad_()
        wanted[i].requires_grad_()
    y = batch_norm_learnable_elu(*negated, training, 0.1, 1e-5)
    want = reference.learnable_elu(F.batch_norm(*wanted[:5], training, 0.1, 1e-5), wanted[5])
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    got = torch.autograd.grad(y, (negated[0], *negated[3:]), torch._neg_view(-dy))
    expected = torch.autograd.grad(want, (wanted[0], *wanted[3:]), dy)
    for g, w in zip(got, expected):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def _gradients_after_bias_add_(model, bn, alpha_owner, x, dy, create_graph):
    """model's gradients (x, weight, bias, alpha) with bias changed in place after the forward.

    With create_graph, the gradients of their weighted sum too (second order).
    """
    leaves = [x.clone().requires_grad_(), bn.weight, bn.bias, alpha_owner.alpha]
    y = model(leaves[0])
    with torch.no_grad():
        bn.bias.add_(0.5)
    grads = torch.autograd.grad(y, leaves, dy, create_graph=create_graph)
    if not create_graph:
        return grads
    total = sum(
        (g * torch.linspace(0.5, 1.5, g.numel(), device=g.device).reshape(g.shape)).sum()
        for g in grads
    )
    return grads + torch.autograd.grad(total, leaves)


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_bias_changed_in_place_before_the_backward_gives_the_pairs_gradients(
    training, create_graph, device, seeded
):
    """BatchNorm's backward never reads bias; ours reads a copy of the forward's."""
    pair, fused = _pair_and_fused(3, device, dims=4, init=0.8)
    fused.load_state_dict({**pair[0].state_dict(), "alpha": pair[1].alpha.detach()})
    for model in (pair, fused):
        model.train(training)
    x = torch.randn(4, 3, 5, 6, dtype=torch.float64, device=device)
    dy = torch.randn_like(x)
    want = _gradients_after_bias_add_(pair, pair[0], pair[1], x, dy, create_graph)
    got = _gradients_after_bias_add_(fused, fused, fused, x, dy, create_graph)
    names = ["dx", "dweight", "dbias", "dalpha"] * 2
    for name, g, w in zip(names, got, want):
        torch.testing.assert_close(g, w, rtol=1e-11, atol=1e-11, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("name", ["weight", "alpha"])
def test_weight_or_alpha_changed_in_place_before_the_backward_raises(name, device):
    """The backward reads weight and alpha as they are: a change in place is autograd's error."""
    layer = BatchNormLearnableELU(3, device=device)
    y = layer(torch.randn(2, 3, 4, 4, device=device, requires_grad=True))
    with torch.no_grad():
        getattr(layer, name).mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_prelu_edges_match_f_prelu(device):
    """z = 0, +-inf and NaN, with negative, zero and positive slopes: F.prelu's values and
    aten's gradients, exactly (eval with unit statistics: z = x)."""
    edges = torch.tensor([0.0, -0.0, 1.5, -2.0, float("inf"), float("-inf"), float("nan"), 3e-39])
    x = edges.repeat(3, 1).reshape(1, 3, 8).to(device)
    slope = torch.tensor([-0.5, 0.0, 0.25], device=device)
    rm, rv = torch.zeros(3, device=device), torch.full((3,), 1.0 - 1e-5, device=device)
    ones, zeros = torch.ones(3, device=device), torch.zeros(3, device=device)
    dy = torch.tensor([1.0, -2.0, float("inf"), 0.5, 2.0, 1.0, 1.0, -1.0], device=device)
    dy = dy.repeat(3, 1).reshape(1, 3, 8)
    leaves = [t.clone().requires_grad_() for t in (x, slope)]
    y = batch_norm_prelu(leaves[0], rm, rv, ones, zeros, leaves[1], False, 0.1, 1e-5)
    grads = torch.autograd.grad(y, leaves, dy)
    ref_leaves = [t.clone().requires_grad_() for t in (x, slope)]
    ref = F.prelu(*ref_leaves)
    ref_grads = torch.autograd.grad(ref, ref_leaves, dy)
    torch.testing.assert_close(y, ref, equal_nan=True, rtol=0, atol=0)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, equal_nan=True, rtol=0, atol=0)


def test_prelu_module_maps_an_nn_prelu_checkpoint():
    """BatchNormPReLU(C, num_parameters=P, init) is BN -> nn.PReLU(P, init): act.weight
    -> prelu_weight; a shared slope (P = 1, nn.PReLU's default) stays one."""
    bn, act = nn.BatchNorm2d(4), nn.PReLU()
    fused = BatchNormPReLU(4)
    assert fused.prelu_weight.shape == act.weight.shape == (1,)
    assert fused.prelu_weight.item() == act.weight.item() == 0.25
    state = {**bn.state_dict(), "prelu_weight": act.weight.detach() * 2}
    fused.load_state_dict(state)
    assert "num_parameters=1" in repr(fused) and "init=0.25" in repr(fused)
    with pytest.raises(ValueError, match="num_parameters must be 1 or num_features=4, got 3"):
        BatchNormPReLU(4, num_parameters=3)
