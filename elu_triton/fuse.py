"""fuse_batchnorm: BatchNorm followed by LearnableELU becomes one BatchNormLearnableELU.

The fused layer keeps one activation-sized tensor for the backward instead
of two (``elu_triton.batch_norm``). "Followed" means consecutive modules of
an ``nn.Sequential`` (torchvision's ``Conv2dNormActivation`` is one): a pair
written as two calls inside some ``forward()`` cannot be seen from the module
tree, and is left as it is.
"""

import logging
from collections import Counter

from torch import nn
from torch.nn.parameter import UninitializedParameter

from .batch_norm import BatchNormLearnableELU
from .module import LearnableELU

logger = logging.getLogger(__name__)

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)  # not SyncBatchNorm


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fuse each BatchNorm{1,2,3}d directly followed by a LearnableELU in an nn.Sequential.

    The BatchNorm's place takes a ``BatchNormLearnableELU`` that reuses both
    modules' Parameter and buffer objects (an optimizer built before keeps
    working; a shared ``LearnableELU(1)`` alpha stays shared) and the
    BatchNorm's training flag, eps and momentum; the LearnableELU's place
    takes an ``nn.Identity``. ``SyncBatchNorm``, lazy modules not yet
    initialized, a LearnableELU of several alphas on another channel dim than
    1 (``channel_dim=-1``), and a BatchNorm registered at more than one place
    are left alone. Each fused pair is logged at INFO level.

    The fused layer holds alpha under the BatchNorm's name (``0.alpha``,
    say), so an unfused checkpoint loads into the model before fusing, not after.

    Args:
        model: changed in place.

    Returns:
        ``model``.
    """
    places = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    for prefix, parent in list(model.named_modules()):
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            norm, activation = parent._modules[first], parent._modules[second]
            if _fusable(norm, activation) and places[id(norm)] == 1:
                parent._modules[first] = _fused(norm, activation)
                parent._modules[second] = nn.Identity()
                where = f"{prefix}." if prefix else ""
                logger.info(
                    "fuse_batchnorm: %s%s (%s) and %s%s (LearnableELU) -> BatchNormLearnableELU",
                    where, first, type(norm).__name__, where, second,
                )  # fmt: skip
    return model


def _fusable(norm: nn.Module | None, activation: nn.Module | None) -> bool:
    return (
        isinstance(norm, _BATCH_NORMS)
        and isinstance(activation, LearnableELU)
        and not isinstance(activation.alpha, UninitializedParameter)
        and activation.alpha.numel() in (1, norm.num_features)
        # The fused layer's channels are dim 1, BatchNorm's: an activation on
        # another dim (features-last) would get its alphas on the wrong one.
        and (activation.channel_dim == 1 or activation.alpha.numel() == 1)
        and activation.alpha.device == _device_of(norm, activation.alpha.device)
    )


def _device_of(norm: nn.Module, default):
    tensors = list(norm.parameters()) + list(norm.buffers())
    return tensors[0].device if tensors else default


def _fused(
    norm: nn.modules.batchnorm._BatchNorm, activation: LearnableELU
) -> BatchNormLearnableELU:
    """The fused layer around the pair's own Parameter and buffer objects."""
    fused = BatchNormLearnableELU(
        norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats,
        init=activation.init, device="meta",
    )  # fmt: skip
    for name in ("weight", "bias"):
        fused._parameters[name] = norm._parameters[name]
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        fused._buffers[name] = norm._buffers[name]
    fused._parameters["alpha"] = activation.alpha
    fused.train(norm.training)
    return fused
