"""fuse_batchnorm wherever the pair sits: inside forward() (traced), timm's norm-act modules;
and checkpoints both ways (unfused keys load into a fused model, unfused_state_dict).

The blocks below follow their published code at widths of 2 to 6: timm's
ResNet Bottleneck, torchvision's BasicBlock (one shared ``self.relu``),
insightface's IResNet block (which branches on ``self.training``) and timm's
``BatchNormAct2d``, written as a stand-in with timm's module and qualname.
"""

import copy
import io
import logging

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from elu_triton import (
    BatchNormLearnableELU,
    BatchNormPReLU,
    LazyLearnableELU,
    LearnableELU,
    batchnorm_fusion_plan,
    fuse_batchnorm,
    unfused_state_dict,
)

using_ckpt = False  # insightface's module global: checkpointing off


class Bottleneck(nn.Module):
    """timm's ResNet Bottleneck: bn1/act1, bn2/drop_block/act2, bn3 then the add then act3."""

    def __init__(self, c_in, width, act_layer=LazyLearnableELU, stride=1):
        super().__init__()
        c_out = 2 * width
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1, self.act1 = nn.BatchNorm2d(width), act_layer(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2, self.drop_block = nn.BatchNorm2d(width), nn.Identity()
        self.act2, self.aa = act_layer(inplace=True), nn.Identity()
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3, self.se, self.drop_path = nn.BatchNorm2d(c_out), None, None
        self.act3 = act_layer(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.aa(self.act2(self.drop_block(self.bn2(self.conv2(x)))))
        x = self.bn3(self.conv3(x))
        if self.se is not None:
            x = self.se(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return self.act3(x)


class SharedReluBlock(nn.Module):
    """torchvision's BasicBlock: one self.relu after bn1 and after the add."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = LearnableELU(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


class IBasicBlock(nn.Module):
    """insightface's IResNet block: bn1, conv1, bn2, prelu, conv2, bn3, + shortcut."""

    def __init__(self, c, activation=None):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2, self.prelu = nn.BatchNorm2d(c), activation or nn.PReLU(c)
        self.conv2, self.bn3 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward_impl(self, x):
        out = self.prelu(self.bn2(self.conv1(self.bn1(x))))
        out = self.bn3(self.conv2(out))
        out += x
        return out

    def forward(self, x):
        if self.training and using_ckpt:
            return torch.utils.checkpoint.checkpoint(self.forward_impl, x, use_reentrant=False)
        return self.forward_impl(x)


class BatchNormAct2d(nn.BatchNorm2d):
    """A stand-in for timm.layers.norm_act.BatchNormAct2d: its forward, without timm."""

    def __init__(self, num_features, act_layer=LazyLearnableELU, apply_act=True, drop=None):
        super().__init__(num_features)
        self.drop = drop or nn.Identity()
        self.act = act_layer(inplace=True) if apply_act else nn.Identity()

    def forward(self, x):
        assert x.ndim == 4, f"expected 4D input (got {x.ndim}D input)"
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_running = not self.training or self.track_running_stats
        x = F.batch_norm(
            x, self.running_mean if use_running else None,
            self.running_var if use_running else None,
            self.weight, self.bias, bn_training, factor, self.eps,
        )  # fmt: skip
        return self.act(self.drop(x))


BatchNormAct2d.__module__, BatchNormAct2d.__qualname__ = "timm.layers.norm_act", "BatchNormAct2d"


class TimmPReLU(nn.PReLU):
    """timm's PReLU wrapper: an nn.PReLU subclass with its own forward."""

    def forward(self, x):
        return F.prelu(x, self.weight)


def _network():
    """A stem pair, two Bottlenecks, a norm-act module, a Sequential pair: all fusable."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        BatchNormAct2d(4),
        Bottleneck(4, 3),
        Bottleneck(6, 3, stride=2),
        nn.Conv2d(6, 5, 1, bias=False),
        nn.BatchNorm2d(5),
        LearnableELU(5, init=0.7),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(5, 3),
    )
    with torch.no_grad():
        model(torch.randn(2, 3, 8, 8))  # sizes the lazy activations
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))  # alphas other than init
    return model


FUSED_PAIRS = ["1", "2.bn1", "2.bn2", "3.bn1", "3.bn2", "5"]


def test_fuses_pairs_inside_forward_and_norm_act_modules(caplog):
    model = _network()
    with caplog.at_level(logging.INFO, logger="elu_triton.fuse"):
        assert fuse_batchnorm(model) is model
    fused = [n for n, m in model.named_modules() if isinstance(m, BatchNormLearnableELU)]
    assert fused == FUSED_PAIRS
    assert type(model[2]) is Bottleneck and type(model[2].act1) is nn.Identity
    assert type(model[2].bn3) is nn.BatchNorm2d and type(model[2].act3) is LearnableELU
    assert "2.bn2 (BatchNorm2d) and 2.act2 (LearnableELU) -> BatchNormLearnableELU" in caplog.text
    assert "1 (BatchNormAct2d) and 1.act (LearnableELU) -> BatchNormLearnableELU" in caplog.text
    # bn3 feeds the add, not act3: not a candidate, so not reported.
    assert "bn3" not in caplog.text and "act3" not in caplog.text


def test_the_plan_reports_without_changing_the_model():
    model = _network()
    before = copy.deepcopy(model)
    plan = batchnorm_fusion_plan(model)
    assert [c.norm for c in plan if c.fuses] == FUSED_PAIRS
    assert {c.found_in for c in plan} == {"norm-act", "forward"}  # the root traces
    assert plan[1].activation == "2.act1" and plan[1].reason is None
    assert str(model) == str(before)


@pytest.mark.parametrize("steps", [3])
def test_trains_like_the_unfused_model_with_the_optimizer_built_before(steps, device):
    unfused = _network().double().to(device)
    model = copy.deepcopy(unfused)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (unfused, model)]
    by_unfused_name = dict(model.named_parameters())  # the objects the fused model keeps
    fuse_batchnorm(model)  # after the optimizer: it must hold the same Parameters
    before = {name: p.detach().clone() for name, p in by_unfused_name.items()}
    for step in range(steps):
        x = torch.randn(4, 3, 8, 8, dtype=torch.float64, device=device)
        target = torch.randint(0, 3, (4,), device=device)
        losses = []
        for net, optimizer in zip((unfused, model), optimizers):
            optimizer.zero_grad()
            loss = F.cross_entropy(net(x), target)
            loss.backward()
            losses.append(loss.item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-10), step
        for name, p in unfused.named_parameters():
            grad = by_unfused_name[name].grad
            torch.testing.assert_close(grad, p.grad, rtol=1e-8, atol=1e-10, msg=name)
        for optimizer in optimizers:
            optimizer.step()
    for name, p in by_unfused_name.items():
        assert not torch.equal(p, before[name]), f"{name} was not updated"
    expected, got = unfused.state_dict(), unfused_state_dict(model)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=1e-8, atol=1e-10, msg=name)
    unfused.eval(), model.eval()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, device=device)
    torch.testing.assert_close(model(x), unfused(x), rtol=1e-8, atol=1e-10)


def test_fusing_twice_changes_nothing():
    model = fuse_batchnorm(_network())
    layout, keys = str(model), list(model.state_dict())
    hooks = [len(m._load_state_dict_pre_hooks) for m in model.modules()]
    fuse_batchnorm(model)
    assert (str(model), list(model.state_dict())) == (layout, keys)
    assert [len(m._load_state_dict_pre_hooks) for m in model.modules()] == hooks


def test_fusing_keeps_the_output_in_both_modes():
    model = _network()
    twin = copy.deepcopy(model)
    fuse_batchnorm(model)
    for training in (True, False):
        model.train(training), twin.train(training)
        x = torch.randn(2, 3, 8, 8)
        torch.testing.assert_close(model(x), twin(x))


class TrainingOnlyPair(nn.Module):
    """In eval mode the BatchNorm's output is the result: a pair in training mode only."""

    def __init__(self):
        super().__init__()
        self.bn, self.act = nn.BatchNorm2d(4), LearnableELU(4)

    def forward(self, x):
        h = self.bn(x)
        return self.act(h) if self.training else h


class EvalSkip(TrainingOnlyPair):
    """In eval mode the BatchNorm's output also feeds a skip: another user."""

    def forward(self, x):
        h = self.bn(x)
        return self.act(h) if self.training else self.act(h) + h


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn, self.act = nn.BatchNorm2d(4), LearnableELU(4)

    def forward(self, x):
        if x.sum() > 0:  # a branch on a value: torch.fx cannot trace it
            x = x + 1
        return self.act(self.bn(x))


class CalledTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn, self.act = nn.BatchNorm2d(4), LearnableELU(4)

    def forward(self, x):
        return self.act(self.bn(x)) + self.bn(x)


class ReadsWeight(nn.Module):
    def __init__(self, norm=None, activation=None):
        super().__init__()
        self.bn, self.act = norm or nn.BatchNorm2d(4), activation or LearnableELU(4)

    def forward(self, x):
        return self.act(self.bn(x)) * self.act.alpha.mean()


class Pair(ReadsWeight):
    def forward(self, x):
        return self.act(self.bn(x))


class ClampedBatchNorm(nn.BatchNorm2d):
    def forward(self, x):
        return super().forward(x).clamp(max=0.5)


def _aliased_activation():
    model = Pair()
    model.alias = model.act  # registered twice: the swap would leave one place behind
    return model


UNFUSED = {
    "activation module is called at several places (2)": lambda: SharedReluBlock(4),
    "BatchNorm's output has another user (add)": EvalSkip,
    "a pair in training mode only": TrainingOnlyPair,
    "does not trace (TraceError: symbolically traced variables": Untraceable,
    "BatchNorm is called at several places (2)": CalledTwice,
    "forward reads the activation's act.alpha outside its call": ReadsWeight,
    "activation registered at several places (2)": _aliased_activation,
    "nn.PReLU subclass TimmPReLU overrides forward": lambda: IBasicBlock(4, TimmPReLU(4)),
    "BatchNorm subclass ClampedBatchNorm overrides forward": lambda: Pair(ClampedBatchNorm(4)),
    "SyncBatchNorm": lambda: Pair(nn.SyncBatchNorm(4)),
    "lazy module not yet initialized": lambda: Pair(activation=LazyLearnableELU()),
    "another channel dim": lambda: Pair(activation=LearnableELU(4, channel_dim=-1)),
    "its drop is Dropout, not nn.Identity": lambda: nn.Sequential(
        BatchNormAct2d(4, _sized_elu, drop=nn.Dropout(0.1))
    ),
    "BatchNorm subclass Sub overrides forward": lambda: nn.Sequential(
        type("Sub", (BatchNormAct2d,), {})(4, _sized_elu)
    ),
}


def _sized_elu(inplace=False):
    return LearnableELU(4)


@pytest.mark.parametrize("reason", UNFUSED)
def test_each_candidate_left_unfused_logs_its_reason_at_info(reason, caplog):
    model = UNFUSED[reason]()
    before = str(model)
    with caplog.at_level(logging.INFO, logger="elu_triton.fuse"):
        fuse_batchnorm(model)
    assert str(model) == before
    logged = [r for r in caplog.records if reason in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.INFO]
    assert "unfused" in logged[0].getMessage()
    (candidate,) = batchnorm_fusion_plan(model)
    assert reason in candidate.reason and not candidate.fuses


def test_a_norm_act_module_without_activation_is_no_candidate():
    model = nn.Sequential(BatchNormAct2d(4, apply_act=False), BatchNormAct2d(4, nn.ReLU))
    assert batchnorm_fusion_plan(model) == []


def test_a_norm_act_module_keeps_its_output_and_state(caplog):
    model = nn.Sequential(BatchNormAct2d(4))
    model(torch.randn(2, 4, 3, 3))
    twin = copy.deepcopy(model)
    fuse_batchnorm(model)
    assert isinstance(model[0], BatchNormLearnableELU)
    assert torch.equal(model[0].alpha, twin[0].act.alpha)
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(model(x), twin(x))
    torch.testing.assert_close(model[0].running_var, twin[0].running_var)


def test_real_timm_models(timm):
    """timm's own BatchNormAct2d and ResNet-50's Bottlenecks, with LazyLearnableELU."""
    from timm.layers import BatchNormAct2d as TimmBatchNormAct2d

    norm_act = nn.Sequential(TimmBatchNormAct2d(4, act_layer=LazyLearnableELU))
    resnet = timm.create_model("resnet26", act_layer=LazyLearnableELU, num_classes=3)
    for model in (norm_act, resnet):
        x = torch.randn(2, 4 if model is norm_act else 3, 32, 32)
        with torch.no_grad():
            model(x)
        twin = copy.deepcopy(model).eval()
        plan = batchnorm_fusion_plan(model)
        fuse_batchnorm(model.eval())
        assert sum(c.fuses for c in plan) == (1 if model is norm_act else 1 + 2 * 8)
        with torch.no_grad():
            torch.testing.assert_close(model(x), twin(x))


# Checkpoints both ways. One model holds every kind of fused pair: a
# Sequential's, a traced one (the BatchNorm and the activation in different
# children of their common parent), and a norm-act module's.


class Stem(nn.Module):
    """The BatchNorm in one child, the activation in another: the keys' holder is the root."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))
        self.act = LearnableELU(4)
        self.blocks = nn.Sequential(BatchNormAct2d(4), Bottleneck(4, 2))
        self.head = nn.Sequential(nn.BatchNorm2d(4), LearnableELU(1))

    def forward(self, x):
        return self.head(self.blocks(self.act(self.conv(x))))


def _model(seed=0):
    torch.manual_seed(seed)
    model = Stem()
    with torch.no_grad():
        model(torch.randn(2, 3, 6, 6))  # sizes the lazy activations, moves the statistics
        for p in model.parameters():
            p.add_(torch.rand_like(p))
    return model


# Each fused kind moves its activation's parameter under the BatchNorm's name.
MOVED = {
    "act.alpha": "conv.1.alpha",  # traced, across children
    "blocks.0.act.alpha": "blocks.0.alpha",  # norm-act
    "blocks.1.act1.alpha": "blocks.1.bn1.alpha",  # traced, in a block
    "blocks.1.act2.alpha": "blocks.1.bn2.alpha",
    "head.1.alpha": "head.0.alpha",  # Sequential
}


def test_fusing_moves_the_keys_as_documented():
    unfused = _model().state_dict()
    fused = fuse_batchnorm(_model()).state_dict()
    assert set(unfused) - set(fused) == set(MOVED)
    assert set(fused) - set(unfused) == set(MOVED.values())
    for old, new in MOVED.items():
        assert torch.equal(fused[new], unfused[old])


def test_a_checkpoint_saved_before_fusing_loads_into_the_fused_model():
    checkpoint = _model(seed=1).state_dict()
    model = fuse_batchnorm(_model(seed=2))
    model.load_state_dict(checkpoint)  # strict: every old key taken, none missing
    for old, new in MOVED.items():
        assert torch.equal(model.get_parameter(new), checkpoint[old])
    assert torch.equal(model.blocks[1].bn2.running_var, checkpoint["blocks.1.bn2.running_var"])
    model.load_state_dict(model.state_dict())  # its own keys still load


def test_the_unfused_state_dict_loads_into_the_original_code():
    trained = fuse_batchnorm(_model(seed=1))
    state = unfused_state_dict(trained)
    original = _model(seed=2)
    assert state.keys() == original.state_dict().keys()
    original.load_state_dict(state)  # strict
    trained.double().eval(), original.double().eval()  # fp64: the pair's roundings differ
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(original(x), trained(x))


def test_a_submodule_loads_its_own_old_keys():
    """The hook sits on the lowest module holding both names: loading that module works too."""
    checkpoint = _model(seed=1).blocks[1].state_dict()
    model = fuse_batchnorm(_model(seed=2))
    model.blocks[1].load_state_dict(checkpoint)
    assert torch.equal(model.blocks[1].bn1.alpha, checkpoint["act1.alpha"])


@pytest.mark.parametrize("how", ["deepcopy", "torch.save"])
def test_the_key_map_survives_copies_and_pickling(how):
    model = fuse_batchnorm(_model())
    if how == "deepcopy":
        copied = copy.deepcopy(model)
    else:
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        copied = torch.load(buffer, weights_only=False)
    assert unfused_state_dict(copied).keys() == _model().state_dict().keys()
    copied.load_state_dict(_model(seed=3).state_dict())


def test_a_model_with_nothing_fused_gives_its_own_state_dict():
    model = _model()
    assert list(unfused_state_dict(model)) == list(model.state_dict())


@pytest.mark.parametrize("train", [False, True])
def test_an_iresnet_block_fuses_its_prelu_pair(train):
    """BatchNorm -> nn.PReLU fuses into BatchNormPReLU holding the pair's own tensors;
    its checkpoint keys map back (act.weight <-> bn.prelu_weight)."""
    torch.manual_seed(0)
    model = IBasicBlock(4).train(train)
    with torch.no_grad():
        model.prelu.weight.uniform_(-0.5, 0.5)
    twin = copy.deepcopy(model)
    unfused_keys = set(model.state_dict())
    slope = model.prelu.weight
    fuse_batchnorm(model)
    assert type(model.bn2) is BatchNormPReLU and isinstance(model.prelu, nn.Identity)
    assert model.bn2.prelu_weight is slope and model.bn2.num_parameters == 4
    assert "bn2.prelu_weight" in model.state_dict()
    assert set(unfused_state_dict(model)) == unfused_keys
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(model(x), twin(x), rtol=1e-5, atol=1e-5)
