"""replace_activations swaps a built model's ReLU/ELU/PReLU modules for LearnableELU layers.

The models are small stand-ins for code that creates its own activations;
the Bottleneck follows torchvision's ResNet, which calls one nn.ReLU on
inputs of two channel counts.
"""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from elu_triton import LearnableELU, replace_activations


class Bottleneck(nn.Module):
    """torchvision's ResNet Bottleneck: self.relu runs on width, width and 4 * width channels."""

    def __init__(self, in_channels, width):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(in_channels, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = (
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        self.conv3, self.bn3 = nn.Conv2d(width, 4 * width, 1, bias=False), nn.BatchNorm2d(4 * width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, 4 * width, 1, bias=False), nn.BatchNorm2d(4 * width)
        )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


class SmallNet(nn.Module):
    """Model code with its own activations: one reused at two places with the same C, one unused."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.act1 = (
            nn.Conv2d(3, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(inplace=True),
        )
        self.act1_alias = self.act1  # one instance under two names
        self.conv2, self.conv3, self.act2 = (
            nn.Conv2d(6, 6, 3, padding=1),
            nn.Conv2d(6, 6, 3, padding=1),
            nn.ELU(),
        )
        self.fc, self.act3 = nn.Linear(6, 5), nn.PReLU()
        self.unused = nn.ReLU()

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.conv3(self.act2(self.conv2(x))))  # act2 twice, 6 channels both times
        return self.act3(self.fc(x.mean(dim=(2, 3))))


def _example():
    return torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(0))


def _converted_and_hand_built(init=0.6):
    torch.manual_seed(0)
    converted = replace_activations(SmallNet(), _example(), init=init)
    torch.manual_seed(0)
    hand = SmallNet()
    hand.act1 = hand.act1_alias = LearnableELU(6, init)
    hand.act2, hand.act3 = LearnableELU(6, init), LearnableELU(5, init)
    return converted, hand


def test_replaces_each_instance_with_a_layer_of_its_channel_count():
    net, _ = _converted_and_hand_built()
    assert type(net.act1) is LearnableELU and net.act1.alpha.shape == (6,)
    assert net.act1_alias is net.act1
    assert type(net.act2) is LearnableELU and net.act2.alpha.shape == (
        6,
    )  # one layer for both places
    assert type(net.act3) is LearnableELU and net.act3.alpha.shape == (5,)
    assert torch.all(net.act2.alpha == 0.6)
    assert type(net.unused) is nn.ReLU  # never called: left alone
    assert [name for name, _ in net.named_parameters()].count("act2.alpha") == 1


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_outputs_equal_the_hand_built_model(mode):
    converted, hand = _converted_and_hand_built()
    converted.train(mode == "train"), hand.train(mode == "train")
    x = torch.randn(4, 3, 6, 6)
    torch.testing.assert_close(converted(x), hand(x), rtol=0, atol=0)
    assert converted.state_dict().keys() == hand.state_dict().keys()


def test_dry_run_leaves_modes_and_statistics_alone():
    torch.manual_seed(0)
    net = SmallNet()
    net.bn1.eval()  # a mixed state, which model.train(flag) could not restore
    state_before = {name: t.clone() for name, t in net.state_dict().items()}
    replace_activations(net, _example())
    assert net.training and not net.bn1.training and net.act1.training
    for name, tensor in net.state_dict().items():
        if "act" not in name:
            assert torch.equal(tensor, state_before[name]), name


def test_kinds_and_dtype():
    net = replace_activations(SmallNet().double(), (_example().double(),), kinds=(nn.ReLU,))
    assert type(net.act1) is LearnableELU and net.act1.alpha.dtype == torch.float64
    assert type(net.act2) is nn.ELU and type(net.act3) is nn.PReLU


def test_the_model_itself_is_an_activation():
    layer = replace_activations(nn.ReLU(), torch.randn(2, 7), init=0.3)
    assert (
        type(layer) is LearnableELU and layer.alpha.shape == (7,) and torch.all(layer.alpha == 0.3)
    )


def test_refuses_one_instance_at_two_channel_counts():
    model = nn.Sequential(OrderedDict(
        stem=nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), layer1=nn.Sequential(Bottleneck(8, 4)),
    ))  # fmt: skip
    expected = r"cannot replace layer1\.0\.relu: the model calls it on \[4, 16\] channels"
    with pytest.raises(ValueError, match=expected) as refusal:
        replace_activations(model, torch.randn(2, 3, 8, 8))
    # Short, and it names the simplest fix.
    assert "act_layer=LazyLearnableELU" in str(refusal.value) and len(str(refusal.value)) < 300
    # Refused before anything changed.
    assert type(model.stem[1]) is nn.ReLU and type(model.layer1[0].relu) is nn.ReLU
