"""--fused-batchnorm: fuse the network's BatchNorm -> LearnableELU, and show what it saves.

The activation memory of one training batch is what autograd keeps for the
backward, counted by saved-tensor hooks (each distinct tensor once).
"""

import copy

import torch
from torch import nn

from ..fuse import fuse_batchnorm


def activation_bytes(model: nn.Module, images: torch.Tensor) -> int:
    """Bytes autograd saves during one training forward of model on images (nothing is kept)."""
    seen = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        seen[key] = t.numel() * t.element_size()
        return t

    # A copy runs, so that the real model's running statistics stay as they are.
    probe = copy.deepcopy(model).train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        probe(images)
    return sum(seen.values())


def fuse_and_report(model: nn.Module, images: torch.Tensor, show: bool = True) -> nn.Module:
    """fuse_batchnorm(model), after printing (if show) the activation memory of one batch,
    unfused and fused."""
    unfused = activation_bytes(model, images)
    fuse_batchnorm(model)
    fused = activation_bytes(model, images)
    if show:
        print(
            f"fused BatchNorm -> LearnableELU: activation memory of one batch of {len(images)}: "
            f"{fused / 2**20:.2f} MiB fused, {unfused / 2**20:.2f} MiB unfused "
            f"({fused / unfused:.2f}x), by saved-tensor hooks"
        )
    return model


def unfused_state_dict(model: nn.Module) -> dict:
    """model's state_dict with alpha under the activation's name (``elu.alpha``), as unfused.

    Saved weights then load into the network as ``digit_net`` builds it
    (``--load``), fused or not when trained.
    """
    state = model.state_dict()
    if "batchnorm.alpha" in state:
        state["elu.alpha"] = state.pop("batchnorm.alpha")
    return state
