"""fuse_batchnorm: BatchNorm -> LearnableELU pairs of nn.Sequential become one layer."""

import copy
import logging

import pytest
import torch
from torch import nn

from elu_triton import (
    BatchNormLearnableELU,
    LazyLearnableELU,
    LearnableELU,
    fuse_batchnorm,
    replace_activations,
)


class ConvNormActivation(nn.Sequential):
    """The shape of torchvision's Conv2dNormActivation: a Sequential subclass."""

    def __init__(self, cin, cout, activation):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), activation
        )


def _network(device="cpu"):
    torch.manual_seed(0)
    shared = LearnableELU(1, init=0.9)
    return nn.Sequential(
        ConvNormActivation(3, 6, LearnableELU(6, init=0.8)),
        ConvNormActivation(6, 6, shared),
        nn.Conv2d(6, 4, 1),
        nn.BatchNorm2d(4),
        shared,
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
        nn.BatchNorm1d(5, momentum=None),
        LearnableELU(5, init=1.1),
        nn.Linear(5, 3),
    ).to(device)


def _fused_layers(model):
    return [m for m in model.modules() if isinstance(m, BatchNormLearnableELU)]


def test_fuses_pairs_in_place_reusing_their_tensors(caplog):
    model = _network()
    tensors = {name: t for name, t in model.state_dict(keep_vars=True).items()}
    with caplog.at_level(logging.INFO, logger="elu_triton.fuse"):
        assert fuse_batchnorm(model) is model
    assert len(_fused_layers(model)) == 4
    assert isinstance(model[0][2], nn.Identity) and isinstance(model[4], nn.Identity)
    assert isinstance(model[9], nn.Identity) and isinstance(model[8], BatchNormLearnableELU)
    assert len([r for r in caplog.records if "BatchNormLearnableELU" in r.getMessage()]) == 4
    assert "0.1 (BatchNorm2d) and 0.2 (LearnableELU)" in caplog.text
    # BatchNorm's Parameter and buffer objects under BatchNorm's names; alpha joins them.
    fused = model.state_dict(keep_vars=True)
    assert fused["0.1.weight"] is tensors["0.1.weight"]
    assert fused["0.1.running_var"] is tensors["0.1.running_var"]
    assert fused["0.1.alpha"] is tensors["0.2.alpha"]
    assert fused["8.num_batches_tracked"] is tensors["8.num_batches_tracked"]
    assert model[8].momentum is None
    # The shared LearnableELU(1) after two BatchNorms: still one alpha.
    assert model[1][1].alpha is model[3].alpha and model[3].alpha.shape == (1,)


@pytest.mark.parametrize("steps", [3])
def test_trains_like_the_unfused_model_with_the_optimizer_built_before(steps, device):
    unfused = _network(device).double()
    model = copy.deepcopy(unfused)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (unfused, model)]
    fuse_batchnorm(model)  # after the optimizer: it must hold the same Parameters
    for step in range(steps):
        x = torch.randn(6, 3, 5, 5, dtype=torch.float64, device=device)
        target = torch.randint(0, 3, (6,), device=device)
        losses = []
        for net, optimizer in zip((unfused, model), optimizers):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(x), target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-10, abs=1e-12), step
    expected = unfused.state_dict()
    renamed = {"0.2.alpha": "0.1.alpha", "1.2.alpha": "1.1.alpha", "4.alpha": "3.alpha"}
    renamed["9.alpha"] = "8.alpha"
    for name, value in expected.items():
        torch.testing.assert_close(
            model.state_dict()[renamed.get(name, name)], value, rtol=1e-9, atol=1e-10, msg=name
        )
    unfused.eval(), model.eval()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64, device=device)
    torch.testing.assert_close(model(x), unfused(x), rtol=1e-9, atol=1e-10)


def test_keeps_the_training_flag_and_settings():
    model = nn.Sequential(
        nn.BatchNorm2d(3, eps=1e-3, momentum=0.3, affine=False), LearnableELU(3)
    ).eval()
    fuse_batchnorm(model)
    layer = model[0]
    assert isinstance(layer, BatchNormLearnableELU) and not layer.training
    assert (layer.eps, layer.momentum, layer.affine, layer.weight) == (1e-3, 0.3, False, None)


def test_leaves_what_it_must_not_fuse():
    shared_norm = nn.BatchNorm2d(3)
    model = nn.Sequential(
        nn.SyncBatchNorm(3),
        LearnableELU(3),
        shared_norm,
        LearnableELU(3),
        shared_norm,  # registered twice: fusing one place would split it
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.BatchNorm2d(4),  # channel mismatch with the next alpha: not a pair
        LearnableELU(3),
    )
    before = [type(m) for m in model]
    fuse_batchnorm(model)
    assert [type(m) for m in model] == before


def test_after_replace_activations():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
    replace_activations(model, torch.randn(2, 3, 6, 6), init=0.6)
    fuse_batchnorm(model)
    assert isinstance(model[1], BatchNormLearnableELU) and isinstance(model[2], nn.Identity)
    assert model[1].alpha.eq(0.6).all()


def test_unfused_checkpoint_loads_before_fusing():
    source, target = _network(), _network()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.rand_like(p))
    target.load_state_dict(source.state_dict())
    fuse_batchnorm(target)
    assert torch.equal(target[0][1].alpha, source[0][2].alpha)
    with pytest.raises(RuntimeError, match="alpha"):
        _network().load_state_dict(target.state_dict())  # the fused names are not the pair's


def test_activation_on_another_channel_dim_is_left_alone():
    """BatchNorm normalizes dim 1; a channel_dim=-1 LearnableELU scales the last: not one layer."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(4), LearnableELU(4, channel_dim=-1)).train()
    with torch.no_grad():
        model[1].alpha.copy_(torch.tensor([0.2, 0.5, 1.0, 2.0]))
    twin = copy.deepcopy(model)
    x = torch.randn(2, 4, 3, 4)  # the last dim has C's size too
    fuse_batchnorm(model)
    assert isinstance(model[0], nn.BatchNorm2d) and isinstance(model[1], LearnableELU)
    torch.testing.assert_close(model(x), twin(x))
    # A single alpha has no channel dim to get wrong: fused.
    shared = fuse_batchnorm(nn.Sequential(nn.BatchNorm2d(4), LearnableELU(1, channel_dim=-1)))
    assert isinstance(shared[0], BatchNormLearnableELU)


class Skip(nn.Sequential):
    """Uses the BatchNorm's output twice: fusing would hand the skip the activation's."""

    def forward(self, x):
        h = self[0](x)
        return self[1](h) + h


class UntraceableSkip(nn.Sequential):
    """Skip, with a branch on a value: torch.fx cannot trace it, so the container rule decides."""

    def forward(self, x):
        h = self[0](x)
        if h.sum() > 0:
            return self[1](h) + h
        return self[1](h)


class ClampedBatchNorm(nn.BatchNorm2d):
    def forward(self, x):
        return super().forward(x).clamp(max=0.5)


class ScaledELU(LearnableELU):
    def forward(self, x):
        return 2 * super().forward(x)


class Doubled(nn.Module):
    def forward(self, weight):
        return 2 * weight


def _pair(norm=None, activation=None, container=nn.Sequential):
    return container(norm or nn.BatchNorm2d(4), activation or LearnableELU(4, init=0.7))


def _assert_fusing_keeps_the_output(model):
    """Fuse in eval mode (a forward then changes no statistic) and compare with before."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 3)
    model.eval()
    with torch.no_grad():
        expected = model(x)
        fuse_batchnorm(model)
        torch.testing.assert_close(model(x), expected)


def test_a_sequential_subclass_with_its_own_forward_keeps_its_output():
    model = _pair(container=Skip)
    _assert_fusing_keeps_the_output(model)
    assert isinstance(model[0], nn.BatchNorm2d) and isinstance(model[1], LearnableELU)


def test_a_sequential_subclass_without_its_own_forward_still_fuses():
    class Block(nn.Sequential):
        pass

    model = _pair(container=Block)
    _assert_fusing_keeps_the_output(model)
    assert isinstance(model[0], BatchNormLearnableELU) and isinstance(model[1], nn.Identity)


def test_a_batchnorm_subclass_overriding_forward_stays_unfused_and_keeps_its_output():
    model = _pair(norm=ClampedBatchNorm(4))
    _assert_fusing_keeps_the_output(model)
    assert type(model[0]) is ClampedBatchNorm


def test_a_batchnorm_subclass_keeping_forward_still_fuses():
    class NamedBatchNorm(nn.BatchNorm2d):
        pass

    model = _pair(norm=NamedBatchNorm(4))
    _assert_fusing_keeps_the_output(model)
    assert isinstance(model[0], BatchNormLearnableELU)


def test_a_learnable_elu_subclass_with_its_own_forward_stays_unfused():
    model = _pair(activation=ScaledELU(4))
    _assert_fusing_keeps_the_output(model)
    assert type(model[1]) is ScaledELU


@pytest.mark.parametrize("hooked", [0, 1], ids=["on-batchnorm", "on-activation"])
@pytest.mark.parametrize("kind", ["forward", "forward-pre"])
def test_a_forward_hook_keeps_the_pair_unfused_and_still_fires(kind, hooked):
    calls = []

    def doubling_hook(module, args, output=None):
        calls.append(module)
        return 2 * output if kind == "forward" else (2 * args[0],)

    model = _pair()
    register = model[hooked].register_forward_hook
    if kind == "forward-pre":
        register = model[hooked].register_forward_pre_hook
    register(doubling_hook)
    _assert_fusing_keeps_the_output(model)
    assert isinstance(model[1], LearnableELU)
    assert calls == [model[hooked]] * 2  # once before fusing, once after


def test_a_parametrized_batchnorm_weight_stays_unfused_without_crashing():
    model = _pair()
    nn.utils.parametrize.register_parametrization(model[0], "weight", Doubled())
    _assert_fusing_keeps_the_output(model)
    assert nn.utils.parametrize.is_parametrized(model[0], "weight")


def _hooked(register_name):
    def build():
        model = _pair()
        getattr(model[1], register_name)(lambda *args: None)
        return model

    return build


def _parametrized():
    model = _pair()
    nn.utils.parametrize.register_parametrization(model[0], "weight", Doubled())
    return model


def _with_extra_parameter():
    model = _pair()
    model[0].extra = nn.Parameter(torch.ones(1))
    return model


def _registered_twice():
    norm = nn.BatchNorm2d(4)
    return nn.Sequential(norm, LearnableELU(4), norm)


UNFUSED = {
    "BatchNorm's output has another user (add)": lambda: _pair(container=Skip),
    "container nn.Sequential subclass UntraceableSkip has its own forward": lambda: _pair(
        container=UntraceableSkip
    ),
    "BatchNorm subclass ClampedBatchNorm overrides forward": lambda: _pair(ClampedBatchNorm(4)),
    "LearnableELU subclass ScaledELU overrides forward": lambda: _pair(activation=ScaledELU(4)),
    "activation has forward hooks": _hooked("register_forward_hook"),
    "activation has forward pre-hooks": _hooked("register_forward_pre_hook"),
    "activation has backward hooks": _hooked("register_full_backward_hook"),
    "activation has state-dict hooks": _hooked("register_state_dict_post_hook"),
    "BatchNorm's weight is parametrized": _parametrized,
    "BatchNorm has tensors or submodules of its own: extra": _with_extra_parameter,
    "SyncBatchNorm": lambda: _pair(nn.SyncBatchNorm(4)),
    "lazy module not yet initialized": lambda: _pair(activation=LazyLearnableELU()),
    "another channel dim": lambda: _pair(activation=LearnableELU(4, channel_dim=-1)),
    "3 alphas for 4 channels": lambda: _pair(activation=LearnableELU(3)),
    "BatchNorm on meta, activation on cpu": lambda: _pair(nn.BatchNorm2d(4, device="meta")),
    "registered at several places": _registered_twice,
}


@pytest.mark.parametrize("reason", UNFUSED)
def test_each_pair_left_unfused_logs_its_reason_at_info(reason, caplog):
    model = UNFUSED[reason]()
    before = [type(m) for m in model]
    with caplog.at_level(logging.INFO, logger="elu_triton.fuse"):
        fuse_batchnorm(model)
    assert [type(m) for m in model] == before
    logged = [r for r in caplog.records if reason in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.INFO]
    assert "0 (" in logged[0].getMessage() and "unfused" in logged[0].getMessage()
