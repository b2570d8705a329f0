"""The networks the training bench builds, one registry, the demo's network among them.

``NETWORKS``: the demo network (built by the demo's own ``digit_net``), a
ResNet-18-sized CNN and a small MLP, each at full size (the GPU run) and at
smoke size (a CPU check in seconds). Each is built with an activation of
bench's one registry (``activations.ACTIVATIONS``); ``TRAINED`` names the
ones the training bench compares. An entry with a fused batch norm +
activation module (``bn_fused``) replaces each BatchNorm2d -> activation
pair with it.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from elu_triton.demo.model import digit_net

from .activations import BY_NAME, Activation

TRAINED = tuple(BY_NAME[name] for name in ("elu_triton", "prelu", "elu_fixed", "bn_fused"))


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
        self.act = activation.module(c_out)

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


def demo_net(activation: Activation) -> nn.Sequential:
    """The demo's classifier (``digit_net``, zero mean image) with this activation."""
    if activation.norm_act is not None:  # laid out as the demo's --fused-batchnorm leaves it
        return digit_net(activation=lambda c: nn.Identity(), batchnorm=activation.norm_act)
    return digit_net(activation=activation.module)


def mlp(activation: Activation, features: int, hidden: int) -> nn.Sequential:
    """Two hidden layers, the activation on (N, C) features."""
    return nn.Sequential(
        nn.Linear(features, hidden), activation.module(hidden),
        nn.Linear(hidden, hidden), activation.module(hidden),
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
