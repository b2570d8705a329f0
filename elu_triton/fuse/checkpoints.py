"""Checkpoints both ways: unfused keys load into a fused model, and a fused model gives them.

Fusing moves the activation's parameters under the BatchNorm's name
(``layer1.0.bn2.alpha`` instead of ``layer1.0.act2.alpha``; ``bn.alpha``
instead of ``bn.act.alpha`` for a norm-act module). ``fuse_batchnorm``
registers a ``RenamedKeys`` load-state-dict pre-hook on the lowest module
holding both names, since ``load_state_dict`` hands each module only the
keys under its own prefix. The hooks are also the record that
``unfused_state_dict`` reads back.
"""

import torch
from torch import nn


class RenamedKeys:
    """Load-state-dict pre-hook: accept checkpoint keys saved before fusing.

    Attributes:
        renames: unfused key -> fused key, both relative to the module the
            hook is registered on.
    """

    def __init__(self, renames: dict[str, str]):
        self.renames = dict(renames)

    def __call__(self, state_dict: dict, prefix: str, *args) -> None:
        for unfused, fused in self.renames.items():
            # A checkpoint with the fused key (saved after fusing) is left as it is.
            if prefix + unfused in state_dict and prefix + fused not in state_dict:
                state_dict[prefix + fused] = state_dict.pop(prefix + unfused)


def register_renames(holder: nn.Module, renames: dict[str, str]) -> None:
    """Let holder's load_state_dict take the unfused keys of renames (relative to holder)."""
    holder._register_load_state_dict_pre_hook(RenamedKeys(renames))


def _renames(module: nn.Module) -> list[RenamedKeys]:
    hooks = module._load_state_dict_pre_hooks.values()
    return [h.hook for h in hooks if isinstance(getattr(h, "hook", None), RenamedKeys)]


def unfused_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """model's state_dict with the keys it had before ``fuse_batchnorm``.

    The activation's parameters go back under the activation's name
    (``act2.alpha``, ``bn.act.alpha``), so that a model trained fused can be
    evaluated or exported with its original, unfused code.

    Args:
        model: a model that ``fuse_batchnorm`` changed (or any model: one
            with nothing fused gives its own state_dict).

    Returns:
        A new dict of the same tensors (detached, as ``state_dict()`` gives them).
    """
    state = model.state_dict()
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        for hook in _renames(module):
            for unfused, fused in hook.renames.items():
                if prefix + fused in state:
                    state[prefix + unfused] = state.pop(prefix + fused)
    return state
