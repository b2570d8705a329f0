"""What fuses with a BatchNorm: one row per activation class, and the norm-act modules.

``FUSED_KINDS`` maps an activation class to its fused layer: adding a fused
layer for another activation is one row (BatchNorm + PReLU was). An
activation of ``CANDIDATE_ACTIVATIONS`` without a row is still found, and
reported unfused ("no fused layer for nn.X yet").
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..batch_norm import BatchNormLearnableELU, BatchNormPReLU
from ..module import LearnableELU

_NORM_PARAMETERS = ("weight", "bias")
_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class FusedKind:
    """How a BatchNorm and one activation class become one layer.

    Attributes:
        layer: the fused layer's class.
        build: (norm, activation) -> the fused layer, holding the pair's own
            Parameter and buffer objects, with the BatchNorm's training flag.
        parameters: the activation's parameter name -> the fused layer's.
            BatchNorm's tensors keep their names. Checkpoint keys move by it.
        channel_dim: the dim of the input the activation's parameters scale.
    """

    layer: type[nn.Module]
    build: Callable[[_BatchNorm, nn.Module], nn.Module]
    parameters: Mapping[str, str]
    channel_dim: Callable[[nn.Module], int]


def take_norm_state(fused: nn.Module, norm: _BatchNorm) -> None:
    """Hand the fused layer the BatchNorm's own Parameter and buffer objects and flag."""
    for name in _NORM_PARAMETERS:
        fused._parameters[name] = norm._parameters[name]
    for name in _NORM_BUFFERS:
        fused._buffers[name] = norm._buffers[name]
    fused.train(norm.training)


def _batch_norm_learnable_elu(norm: _BatchNorm, activation: LearnableELU) -> nn.Module:
    fused = BatchNormLearnableELU(
        norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats,
        init=activation.init, device="meta",
    )  # fmt: skip
    take_norm_state(fused, norm)
    fused._parameters["alpha"] = activation.alpha
    return fused


def _batch_norm_prelu(norm: _BatchNorm, activation: nn.PReLU) -> nn.Module:
    fused = BatchNormPReLU(
        norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats,
        num_parameters=activation.num_parameters, init=activation.init, device="meta",
    )  # fmt: skip
    take_norm_state(fused, norm)
    fused._parameters["prelu_weight"] = activation.weight
    return fused


FUSED_KINDS: dict[type[nn.Module], FusedKind] = {
    LearnableELU: FusedKind(
        BatchNormLearnableELU,
        _batch_norm_learnable_elu,
        {"alpha": "alpha"},
        channel_dim=lambda activation: activation.channel_dim,
    ),
    # nn.PReLU's weight is on dim 1 (its only channel dim); BatchNorm's weight keeps its name.
    nn.PReLU: FusedKind(
        BatchNormPReLU, _batch_norm_prelu, {"weight": "prelu_weight"}, channel_dim=lambda a: 1
    ),
}

# Activation classes whose pairs are looked for (subclasses included), with
# or without a row above. A subclass counts as its base's kind.
CANDIDATE_ACTIVATIONS: tuple[type[nn.Module], ...] = (LearnableELU, nn.PReLU)

# Norm-act modules (a BatchNorm subclass holding .drop then .act), matched
# by exact class without importing their package: (module, qualname).
NORM_ACT_CLASSES = frozenset({("timm.layers.norm_act", "BatchNormAct2d")})


def activation_base(activation: nn.Module) -> type[nn.Module] | None:
    """The candidate class activation is an instance of, or None."""
    return next((c for c in CANDIDATE_ACTIVATIONS if isinstance(activation, c)), None)


def fused_kind(activation: nn.Module) -> FusedKind | None:
    """The row activation fuses by (a subclass by its base's), or None."""
    return FUSED_KINDS.get(activation_base(activation))


def display_name(cls: type) -> str:
    """A class as the log names it: ``nn.PReLU`` for torch.nn's, else its name."""
    return f"nn.{cls.__name__}" if cls.__module__.startswith("torch.nn") else cls.__name__


def is_norm_act(module: nn.Module) -> bool:
    """Whether module's class is exactly one of NORM_ACT_CLASSES (not a subclass)."""
    cls = type(module)
    return (cls.__module__, cls.__qualname__) in NORM_ACT_CLASSES
