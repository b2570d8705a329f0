"""--fused-batchnorm: fuse the network's BatchNorm -> LearnableELU, and show what it saves.

The activation memory of one training batch is what autograd keeps for the
backward, counted by saved-tensor hooks. ``saved_bytes`` is the one counter
the demo, the tests and bench/ use, with one rule: each saved tensor view
counted once (numel x element size; two ops saving the same view count it
once), and tensors that share storage with a Parameter or buffer excluded,
views of them included (a Linear saves ``weight.t()``): those exist whether
or not a graph does.
"""

import copy
from collections.abc import Callable, Iterable

import torch
from torch import nn

from .. import fuse
from ..fuse import fuse_batchnorm


def saved_bytes(forward: Callable[[], object], kept: Iterable[torch.Tensor] = ()) -> int:
    """Bytes autograd saves for the backward while forward() runs.

    Args:
        forward: runs the forward pass (its result is dropped after counting).
        kept: the Parameters and buffers; any saved tensor on their storage
            is not counted.

    Returns:
        The sum over distinct saved views (storage, offset, shape, strides,
        dtype) of numel x element size.
    """
    excluded = {t.untyped_storage().data_ptr() for t in kept}
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in excluded:
            key = (ptr, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
            seen[key] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()  # held until counted: no saved storage is freed and reused meanwhile
    del out
    return sum(seen.values())


def activation_bytes(model: nn.Module, images: torch.Tensor) -> int:
    """saved_bytes of one training forward of model on images, parameters and buffers excluded.

    A copy runs, so that the real model's running statistics stay as they are.
    """
    probe = copy.deepcopy(model).train()
    return saved_bytes(lambda: probe(images), [*probe.parameters(), *probe.buffers()])


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
    (``--load``), fused or not when trained. ``elu_triton.unfused_state_dict``
    does it, for this network as for any other.
    """
    return fuse.unfused_state_dict(model)
