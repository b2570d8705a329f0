"""The network of the original walkthrough, with LearnableELU as its activation.

    28x28x1 image, zero-centred (minus the mean training image)
    -> Conv2d(1, 20, 5) -> BatchNorm2d(20) -> LearnableELU(20)
    -> Linear(20*24*24, 10) -> (softmax cross-entropy in the loss)

The mean image is a buffer of the first module, so a saved state_dict holds
everything needed to evaluate the network again. ``activation="elu"`` swaps
in torch.nn.ELU, the same network with a fixed alpha, for timing comparisons.
"""

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from .. import LearnableELU
from .digits import IMAGE_SIZE, NUM_CLASSES

NUM_FILTERS = 20
KERNEL_SIZE = 5
ACTIVATIONS = ("learnable", "elu")


class ZeroCenter(nn.Module):
    """Subtract a fixed mean image: the original's 'zerocenter' input normalization.

    Shape: input (N, 1, 28, 28); mean (1, 28, 28); output as input.
    """

    def __init__(self, mean_image: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean_image.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.mean


def _activation(kind: str | Callable[[int], nn.Module]) -> nn.Module:
    if callable(kind):
        return kind(NUM_FILTERS)
    if kind == "learnable":
        act = LearnableELU(NUM_FILTERS)
        # As in the original: alpha drawn uniformly from [0, 1), one per channel.
        with torch.no_grad():
            act.alpha.uniform_(0.0, 1.0)
        return act
    if kind == "elu":
        return nn.ELU()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {kind!r}")


def digit_net(
    mean_image: torch.Tensor | None = None,
    activation: str | Callable[[int], nn.Module] = "learnable",
    batchnorm: Callable[[int], nn.Module] = nn.BatchNorm2d,
) -> nn.Sequential:
    """Build the classifier; its parameters are drawn from torch's global RNG.

    Args:
        mean_image: (1, 28, 28) mean training image; zeros when None (for a
            network whose state_dict is loaded next).
        activation: "learnable" (LearnableELU(20), alpha drawn from [0, 1)),
            "elu" (torch.nn.ELU), or a factory of the activation for C
            channels (the benchmarks build the network with each of theirs).
        batchnorm: a factory of the normalization for C channels; with
            BatchNormLearnableELU and an nn.Identity activation, the network
            is laid out as ``fuse_batchnorm`` leaves it.

    Returns:
        nn.Sequential mapping (N, 1, 28, 28) images to (N, 10) logits.

    Raises:
        ValueError: an unknown activation.
    """
    if mean_image is None:
        mean_image = torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE)
    features = NUM_FILTERS * (IMAGE_SIZE - KERNEL_SIZE + 1) ** 2
    net = nn.Sequential(
        OrderedDict(
            input=ZeroCenter(mean_image),
            conv=nn.Conv2d(1, NUM_FILTERS, KERNEL_SIZE),
            batchnorm=batchnorm(NUM_FILTERS),
            elu=_activation(activation),
            flatten=nn.Flatten(),
            fc=nn.Linear(features, NUM_CLASSES),
        )
    )
    # The original's initializers: Glorot (Xavier) uniform weights, zero biases.
    for layer in (net.conv, net.fc):
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return net


def learned_alphas(model: nn.Sequential) -> list[float]:
    """The activation's alpha per channel (a single 1.0 for nn.ELU)."""
    # A Parameter for LearnableELU, a float for nn.ELU; fused (--fused-batchnorm),
    # the BatchNorm's place holds it.
    alpha = model.batchnorm.alpha if hasattr(model.batchnorm, "alpha") else model.elu.alpha
    if isinstance(alpha, torch.Tensor):
        return alpha.detach().cpu().tolist()
    return [float(alpha)]
