"""The recipes of docs/existing-models.md on real models: timm and torchvision, features-last.

Needs timm and torchvision (the ``timm`` and ``torchvision`` fixtures of
conftest.py); skips cleanly without them (CI need not install them). The
docs' snippets themselves run in ``test_docs.py``, at their full sizes; these
tests check what the recipes promise, at small ones. Each model runs on the
PyTorch backend: the Triton interpreter would take minutes over these
activations, and the kernels have their own tests.
"""

from functools import partial

import pytest
import torch
from torch import nn

from elu_triton import LazyLearnableELU, LearnableELU, replace_activations
from elu_triton.backends import use_backend


@pytest.fixture(autouse=True)
def _torch_backend():
    with use_backend("torch"):
        yield


def _layers(model: nn.Module) -> list[LearnableELU]:
    return [m for m in model.modules() if isinstance(m, LearnableELU)]


def _trains(model: nn.Module, x: torch.Tensor) -> None:
    """One backward reaches every alpha, with finite gradients."""
    model.train()
    model(x).square().mean().backward()
    for layer in _layers(model):
        assert layer.alpha.grad is not None and torch.isfinite(layer.alpha.grad).all()


def test_timm_convnext_features_last(timm):
    # convnext_tiny and up apply the MLP to (B, H, W, C) (conv_mlp=False)
    model = timm.create_model(
        "convnext_tiny", act_layer=partial(LazyLearnableELU, init=0.5, channel_dim=-1)
    )
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 64, 64))  # sizes every alpha
    assert model.stages[0].blocks[0].mlp.act.alpha.shape == (384,)  # 4 x 96 channels
    with torch.no_grad():
        model(torch.randn(1, 3, 96, 96))  # another resolution: the same channels
    _trains(model, torch.randn(2, 3, 64, 64))


def test_timm_convnext_on_dim_1_suggests_channel_dim(timm):
    """The issue's trap: without channel_dim, alpha is sized on the height."""
    model = timm.create_model("convnext_tiny", act_layer=LazyLearnableELU).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
        with pytest.raises(ValueError, match="channel_dim=-1"):
            model(torch.randn(1, 3, 96, 96))


def test_timm_vit_mlp_features_last(timm):
    model = timm.create_model(
        "vit_tiny_patch16_224", img_size=32, patch_size=8,
        act_layer=partial(LazyLearnableELU, channel_dim=-1),
    )  # fmt: skip
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 32, 32))
    hidden = model.blocks[0].mlp.fc1.out_features
    assert all(layer.alpha.shape == (hidden,) for layer in _layers(model))
    _trains(model, torch.randn(2, 3, 32, 32))


def test_torchvision_swin_replace_activations_features_last(torchvision):
    model = torchvision.models.swin_t()
    model = replace_activations(model, torch.randn(1, 3, 64, 64), kinds=(nn.GELU,), channel_dim=-1)
    layers = _layers(model)
    assert len(layers) == 12 and not any(isinstance(m, nn.GELU) for m in model.modules())
    assert layers[0].alpha.shape == (4 * 96,) and layers[0].channel_dim == -1
    _trains(model, torch.randn(1, 3, 64, 64))


def test_torchvision_vgg_and_timm_resnet_on_dim_1(timm, torchvision):
    vgg = replace_activations(torchvision.models.vgg11(), torch.randn(1, 3, 32, 32))
    assert _layers(vgg)[0].alpha.shape == (64,)
    resnet = timm.create_model("resnet18", act_layer=partial(LazyLearnableELU, init=0.5))
    with torch.no_grad():
        resnet.eval()(torch.randn(1, 3, 64, 64))
    assert resnet.act1.alpha.shape == (64,)
    _trains(resnet, torch.randn(2, 3, 64, 64))


def test_torchvision_resnet_refusal_names_the_fix(torchvision):
    with pytest.raises(ValueError, match="act_layer=LazyLearnableELU") as refusal:
        replace_activations(torchvision.models.resnet50(), torch.randn(1, 3, 64, 64))
    assert len(str(refusal.value)) < 300
