"""LazyLearnableELU: sized by its first input, then a plain LearnableELU, as torch.nn's Lazy modules.

torchvision and timm are not dependencies: the two small stand-ins below
call the activation class the way those libraries' blocks do.
"""

import copy
import io
from collections import OrderedDict

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parameter import UninitializedParameter

from elu_triton import LazyLearnableELU, LearnableELU, reference


class ConvNormActivation(nn.Sequential):
    """As torchvision.ops.Conv2dNormActivation builds its activation_layer."""

    def __init__(
        self,
        in_channels,
        out_channels,
        norm_layer=nn.BatchNorm2d,
        activation_layer=nn.ReLU,
        inplace=True,
    ):
        layers = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm_layer is None)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            params = {} if inplace is None else {"inplace": inplace}
            layers.append(activation_layer(**params))
        super().__init__(*layers)


class ConvNormAct(nn.Module):
    """As timm's ConvNormAct builds its act_layer."""

    def __init__(self, in_chs, out_chs, act_layer=nn.ReLU):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = act_layer(inplace=True)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def factory_net(act_class):
    """A network whose blocks take the activation class, torchvision- and timm-style."""
    return nn.Sequential(
        ConvNormActivation(3, 8, activation_layer=act_class),
        ConvNormAct(8, 4, act_layer=act_class),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
    )  # fmt: skip


def hand_written_net(init):
    """factory_net(LazyLearnableELU(init)) written out: same layers, same state_dict keys."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), LearnableELU(8, init)),
        nn.Sequential(OrderedDict(
            conv=nn.Conv2d(8, 4, 3, padding=1, bias=False), bn=nn.BatchNorm2d(4), act=LearnableELU(4, init),
        )),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
    )  # fmt: skip


def lazy_net(init=0.7):
    return factory_net(lambda **kwargs: LazyLearnableELU(init, **kwargs))


def dry_run(net, x):
    with torch.no_grad():
        net(x)
    return net


def sgd_losses(net, x, target, steps=3):
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return losses


def _inputs(seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(6, 3, 5, 5, generator=generator), torch.randint(
        0, 2, (6,), generator=generator
    )


@pytest.mark.parametrize(
    "shape, channels",
    [((2, 5, 3, 3), 5), ((2, 5), 5), ((7,), 1), ((), 1)],
    ids=["NCHW", "NC", "1d", "0d"],
)
def test_first_forward_sizes_alpha_and_becomes_learnable_elu(shape, channels):
    act = LazyLearnableELU(init=0.25)
    assert isinstance(act.alpha, UninitializedParameter) and act.num_channels == 0
    assert repr(act) == "LazyLearnableELU(init=0.25)"
    x = torch.randn(shape)
    y = act(x)
    assert type(act) is LearnableELU and not isinstance(act.alpha, UninitializedParameter)
    assert act.alpha.shape == (channels,) and torch.all(act.alpha == 0.25)
    assert (
        act.num_channels == channels
        and repr(act) == f"LearnableELU(num_channels={channels}, init=0.25)"
    )
    assert not act._forward_pre_hooks and not act._load_state_dict_pre_hooks  # nothing lazy left
    torch.testing.assert_close(y, reference.learnable_elu(x, act.alpha.detach()))


def test_reset_parameters_waits_for_a_shape():
    act = LazyLearnableELU(init=0.5)
    act.reset_parameters()  # no shape yet: nothing to fill
    act(torch.randn(2, 3))
    with torch.no_grad():
        act.alpha.fill_(2.0)
    act.reset_parameters()
    assert torch.all(act.alpha == 0.5)


@pytest.mark.parametrize("inplace", [False, True])
def test_inplace_is_accepted_and_ignored(inplace):
    x = torch.randn(4, 3, 5)
    x_before = x.clone()
    y = LazyLearnableELU(0.5, inplace=inplace)(x)
    assert torch.equal(x, x_before)
    torch.testing.assert_close(y, LearnableELU(3, 0.5)(x), rtol=0, atol=0)


def test_arguments_after_init_are_keyword_only():
    with pytest.raises(TypeError):
        LazyLearnableELU(0.5, True)


@pytest.mark.parametrize("dtype", [torch.int32, torch.complex64], ids=str)
def test_dtype_not_float(dtype):
    with pytest.raises(
        TypeError, match=f"alpha's dtype must be a floating-point torch.dtype or None, got {dtype}"
    ):
        LazyLearnableELU(dtype=dtype)


def test_factory_kwargs(device):
    act = LazyLearnableELU(device=device, dtype=torch.float64)
    act(torch.randn(2, 3, device=device, dtype=torch.float64))
    assert act.alpha.device.type == device and act.alpha.dtype == torch.float64


def test_to_before_the_first_call(device):
    act = LazyLearnableELU(0.5).to(device, torch.float64)
    x = torch.randn(2, 3, 4, device=device, dtype=torch.float64)
    y = act(x)
    assert act.alpha.dtype == torch.float64 and act.alpha.device.type == device
    assert y.dtype == torch.float64
    torch.testing.assert_close(
        y, reference.learnable_elu(x, torch.full((3,), 0.5, device=device, dtype=torch.float64))
    )


def test_factory_built_net_trains_like_the_hand_written_one():
    x, target = _inputs()
    torch.manual_seed(0)
    lazy = dry_run(lazy_net(0.7), x)
    torch.manual_seed(0)
    hand = dry_run(hand_written_net(0.7), x)
    assert [type(m) for m in lazy.modules() if isinstance(m, LearnableELU)] == [
        LearnableELU,
        LearnableELU,
    ]
    assert lazy[0][2].alpha.shape == (8,) and lazy[1].act.alpha.shape == (4,)
    assert sgd_losses(lazy, x, target) == sgd_losses(hand, x, target)  # bitwise, step by step
    lazy_state, hand_state = lazy.state_dict(), hand.state_dict()
    assert list(lazy_state) == list(hand_state)
    for name in hand_state:
        assert torch.equal(lazy_state[name], hand_state[name]), name


def test_checkpoint_loads_into_an_uninitialized_model():
    x, target = _inputs()
    trained = dry_run(lazy_net(), x)
    sgd_losses(trained, x, target)
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    fresh = lazy_net(init=0.1)
    fresh.load_state_dict(
        torch.load(buffer, weights_only=True)
    )  # alpha takes the checkpoint's shape
    trained.eval(), fresh.eval()
    torch.testing.assert_close(fresh(x), trained(x), rtol=0, atol=0)
    assert type(fresh[1].act) is LearnableELU and fresh[1].act.num_channels == 4
    assert torch.equal(fresh[1].act.alpha, trained[1].act.alpha)


def test_shared_alpha_checkpoint_stays_shared():
    act = LazyLearnableELU()
    act.load_state_dict(LearnableELU(1, init=0.3).state_dict())
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(act(x), LearnableELU(1, init=0.3)(x), rtol=0, atol=0)
    assert act.alpha.shape == (1,) and act.num_channels == 1


def test_deepcopy_before_materialization_sizes_each_copy_on_its_own():
    act = LazyLearnableELU(0.5)
    twin = copy.deepcopy(act)
    act(torch.randn(2, 3))
    assert isinstance(twin.alpha, UninitializedParameter)  # the copy's hooks are its own
    twin(torch.randn(2, 5))
    assert act.alpha.shape == (3,) and twin.alpha.shape == (5,) and type(twin) is LearnableELU


def test_deepcopy_after_materialization():
    act = LazyLearnableELU(0.5)
    act(torch.randn(2, 3))
    twin = copy.deepcopy(act)
    assert type(twin) is LearnableELU and torch.equal(twin.alpha, act.alpha)
    assert twin.alpha.data_ptr() != act.alpha.data_ptr()


def test_compile_fullgraph_after_materialization(assert_compiled_matches_eager):
    x, _ = _inputs()
    torch.manual_seed(0)
    assert_compiled_matches_eager(dry_run(lazy_net(), x), x)


@pytest.fixture
def process_group(tmp_path):
    """A one-process gloo group, enough for DistributedDataParallel on the CPU."""
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    yield
    dist.destroy_process_group()


def test_ddp_after_a_dry_run(process_group):
    x, target = _inputs()
    with pytest.raises(RuntimeError, match="uninitialized parameters"):
        nn.parallel.DistributedDataParallel(lazy_net())
    torch.manual_seed(0)
    net = dry_run(lazy_net(), x)
    single = copy.deepcopy(net)
    ddp = nn.parallel.DistributedDataParallel(net)
    assert sgd_losses(ddp, x, target) == sgd_losses(single, x, target)
    for (name, p), q in zip(net.named_parameters(), single.parameters()):
        assert torch.equal(p, q), name
