"""replace_activations: put LearnableELU layers into a model that is already built.

For models whose code creates its activations itself (``nn.ReLU(inplace=True)``
inside a block) instead of taking an activation class. A module does not know
its channel count until it is called, so one dry run of the model, under
``torch.no_grad()`` and in eval mode, records with forward pre-hooks the
channel count every activation instance sees; each instance then gives way to
a ``LearnableELU`` of that size.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .checks import channel_count, check_channel_dim
from .module import LearnableELU

DEFAULT_KINDS: tuple[type[nn.Module], ...] = (nn.ELU, nn.ReLU, nn.PReLU)


@dataclass
class _Calls:
    """What one activation instance saw in the dry run."""

    channel_counts: list[int] = field(default_factory=list)  # distinct, in call order
    device: torch.device | None = None  # of its first input
    dtype: torch.dtype | None = None


def replace_activations(
    model: nn.Module,
    example_input: torch.Tensor | Sequence[object],
    *,
    kinds: tuple[type[nn.Module], ...] = DEFAULT_KINDS,
    init: float = 1.0,
    channel_dim: int = 1,
) -> nn.Module:
    """Replace every ``kinds`` instance in ``model`` with a fresh ``LearnableELU(C, init)``.

    C is the channel count (the size on channel_dim, or 1 for inputs of fewer than 2 dims) of
    the input the instance gets in one dry run of ``model`` on
    ``example_input``; alpha lives on that input's device, in its dtype. The
    dry run runs in eval mode without gradients, so that batch-norm
    statistics stay as they were and dropout draws nothing; every module gets
    its own training flag back afterwards. The new layers are ready for an
    optimizer, DDP or ``torch.compile``.

    An instance that the model calls at several places with the same C (or
    registers under several names) becomes one layer: those places then share
    alpha. An instance the dry run does not call stays as it is. The old
    modules' own parameters (``nn.PReLU``'s weight, ``nn.ELU``'s alpha) are
    not carried over: every alpha starts at ``init``.

    Args:
        model: changed in place.
        example_input: a tensor, or a tuple or list of the positional
            arguments, for one call of ``model``.
        kinds: the module classes to replace (subclasses included).
        init: initial value of every alpha.
        channel_dim: the dim of the activations that holds the channels: 1,
            or -1 for features-last models (ViT MLPs, Swin); the new layers
            take it too.

    Returns:
        ``model``; or, if ``model`` itself is one of ``kinds``, its replacement.

    Raises:
        TypeError: channel_dim is not an integer.
        ValueError: the model calls one instance on inputs of different
            channel counts (as ResNet's Bottleneck calls one ``nn.ReLU`` on
            width and 4 * width channels); the message names the first such
            instance and the fix. Nothing is replaced then.
    """
    channel_dim = check_channel_dim(channel_dim)
    names = _names_of_instances(model, kinds)
    calls = _record_calls(model, example_input, list(names), channel_dim)
    _refuse_mixed_channel_counts(names, calls)
    for instance, seen in calls.items():
        # The dry run has seen C: this is what a LazyLearnableELU becomes on its first call.
        layer = LearnableELU(
            seen.channel_counts[0], init, channel_dim=channel_dim,
            device=seen.device, dtype=seen.dtype,
        )  # fmt: skip
        for name in names[instance]:
            if name == "":
                return layer  # the model is the activation itself
            model.set_submodule(name, layer)
    return model


def _names_of_instances(
    model: nn.Module, kinds: tuple[type[nn.Module], ...]
) -> dict[nn.Module, list[str]]:
    """Every instance of kinds in model, with all the qualified names it is registered under."""
    names: dict[nn.Module, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, kinds) and not isinstance(module, LearnableELU):
            names.setdefault(module, [])
            if name not in names[module]:
                names[module].append(name)
    return names


def _record_calls(
    model: nn.Module,
    example_input: torch.Tensor | Sequence[object],
    instances: list[nn.Module],
    channel_dim: int,
) -> dict[nn.Module, _Calls]:
    """Run model once, in eval mode and without gradients; return what each called instance saw."""
    args = (example_input,) if isinstance(example_input, torch.Tensor) else tuple(example_input)
    calls: dict[nn.Module, _Calls] = {}

    def record(module: nn.Module, module_args: tuple, module_kwargs: dict) -> None:
        x = module_args[0] if module_args else next(iter(module_kwargs.values()))
        seen = calls.setdefault(module, _Calls(device=x.device, dtype=x.dtype))
        channels = channel_count(x, channel_dim)
        if channels not in seen.channel_counts:
            seen.channel_counts.append(channels)

    handles = [m.register_forward_pre_hook(record, with_kwargs=True) for m in instances]
    training_flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(*args)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in training_flags.items():
            module.training = training
    return calls


def _refuse_mixed_channel_counts(
    names: dict[nn.Module, list[str]], calls: dict[nn.Module, _Calls]
) -> None:
    mixed = [
        (names[instance][0], seen.channel_counts)
        for instance, seen in calls.items()
        if len(seen.channel_counts) > 1
    ]
    if mixed:
        name, counts = mixed[0]
        others = f" (and {len(mixed) - 1} more)" if len(mixed) > 1 else ""
        raise ValueError(
            f"cannot replace {name}{others}: the model calls it on {counts} channels, and a "
            "LearnableELU has one count. Build the model with act_layer=LazyLearnableELU if it "
            "takes one (timm), or give each call its own activation module"
        )
