"""The networks and activations the training bench builds: one registry of each.

``ACTIVATIONS`` names each activation under test. An entry gives the module
for C channels (``act``) and, optionally, a fused batch norm + activation
module (``norm_act``) that the networks then use wherever a BatchNorm2d is
followed by the activation: ``BatchNormLearnableELU`` is such an entry.

``NETWORKS``: the demo network, a ResNet-18-sized CNN and a small MLP, each
at full size (the GPU run) and at smoke size (a CPU check in seconds).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import elu_triton


@dataclass(frozen=True)
class Activation:
    name: str
    act: Callable[[int], nn.Module]  # the activation for C channels
    norm_act: Callable[[int], nn.Module] | None = None  # a fused BatchNorm2d(C) + act

    def after_norm(self, channels: int) -> nn.Module:
        """BatchNorm2d then the activation: the fused module when there is one."""
        if self.norm_act is not None:
            return self.norm_act(channels)
        return nn.Sequential(nn.BatchNorm2d(channels), self.act(channels))


ACTIVATIONS = {
    a.name: a
    for a in (
        Activation("LearnableELU", lambda c: elu_triton.LearnableELU(c)),
        Activation("nn.PReLU", lambda c: nn.PReLU(c)),
        Activation("nn.ELU", lambda c: nn.ELU()),
        Activation(
            "BatchNormLearnableELU",
            lambda c: elu_triton.LearnableELU(c),
            lambda c: elu_triton.BatchNormLearnableELU(c),
        ),
    )
}


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convs with a shortcut; the activation after each norm and the add."""

    def __init__(self, c_in: int, c_out: int, stride: int, activation: Activation):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm_act1 = activation.after_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.act = activation.act(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm2(self.conv2(self.norm_act1(self.conv1(x))))
        return self.act(y + self.shortcut(x))


def resnet18(activation: Activation, width: int = 64, classes: int = 1000) -> nn.Sequential:
    """ResNet-18's layout (2, 2, 2, 2 basic blocks) with widths width * (1, 2, 4, 8)."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, width, 7, 2, 3, bias=False), activation.after_norm(width),
        nn.MaxPool2d(3, 2, 1),
    ]  # fmt: skip
    c_in = width
    for stage, c_out in enumerate(width * m for m in (1, 2, 4, 8)):
        stride = 1 if stage == 0 else 2
        layers += [
            BasicBlock(c_in, c_out, stride, activation),
            BasicBlock(c_out, c_out, 1, activation),
        ]
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes)]
    return nn.Sequential(*layers)


def demo_net(activation: Activation, channels: int = 20) -> nn.Sequential:
    """The demo's classifier: Conv2d(1, 20, 5), batch norm, activation, Linear to 10."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 5), activation.after_norm(channels),
        nn.Flatten(), nn.Linear(channels * 24 * 24, 10),
    )  # fmt: skip


def mlp(activation: Activation, features: int, hidden: int) -> nn.Sequential:
    """Two hidden layers, the activation on (N, C) features."""
    return nn.Sequential(
        nn.Linear(features, hidden), activation.act(hidden),
        nn.Linear(hidden, hidden), activation.act(hidden),
        nn.Linear(hidden, 10),
    )  # fmt: skip


@dataclass(frozen=True)
class Network:
    name: str
    make: Callable[[Activation, bool], nn.Module]  # (activation, smoke) -> model
    input_shape: dict[bool, tuple[int, ...]]  # smoke -> (N, ...) of one batch
    classes: int
    uses_norm: bool  # has BatchNorm2d + activation pairs (where a fused entry differs)
    channels_last: bool = False
    lr: float = 0.01

    def build(
        self, activation: Activation, smoke: bool, device: torch.device
    ) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
        """The model (from torch's global RNG), one input batch and its labels."""
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        model = self.make(activation, smoke).to(device, memory_format=fmt)
        gen = torch.Generator(device=device).manual_seed(1)
        shape = self.input_shape[smoke]
        x = torch.randn(shape, generator=gen, device=device).contiguous(memory_format=fmt)
        labels = torch.randint(self.classes, (shape[0],), generator=gen, device=device)
        return model, x, labels


NETWORKS = (
    Network(
        "resnet18",
        lambda act, smoke: resnet18(act, width=8 if smoke else 64),
        {False: (64, 3, 224, 224), True: (4, 3, 32, 32)},
        classes=1000,
        uses_norm=True,
        channels_last=True,
    ),
    Network(
        "demo",
        lambda act, smoke: demo_net(act),
        {False: (128, 1, 28, 28), True: (16, 1, 28, 28)},
        classes=10,
        uses_norm=True,
    ),
    Network(
        "mlp",
        lambda act, smoke: mlp(act, 64, 128) if smoke else mlp(act, 1024, 4096),
        {False: (8192, 1024), True: (64, 64)},
        classes=10,
        uses_norm=False,
    ),
)
NETWORK_NAMES = tuple(n.name for n in NETWORKS)
