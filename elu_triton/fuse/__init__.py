"""fuse_batchnorm: each BatchNorm followed by a LearnableELU (nn.PReLU) becomes one
BatchNormLearnableELU (BatchNormPReLU).

The fused layer keeps one activation-sized tensor for the backward instead
of two (``elu_triton.batch_norm``). "Followed" means wherever the pair sits:
consecutive modules of an ``nn.Sequential``, two calls inside a
``forward()`` (found by tracing with ``torch.fx``), or timm's
``BatchNormAct2d``.

A pair is fused only where the swap provably keeps what the model computes;
each candidate left unfused is logged at INFO with its reason, and
``batchnorm_fusion_plan`` gives the same account as data.

Files:
    kinds.py        the table of activation classes and their fused layers; norm-act classes
    rules.py        the rules on the pair itself (class, hooks, state, shapes, device)
    tracing.py      pairs inside forward(): the torch.fx tracer and the graph's rules
    plan.py         the candidates from the three places, one verdict each, and the swap
    checkpoints.py  unfused keys load into a fused model; ``unfused_state_dict``
"""

import logging

from torch import nn

from .checkpoints import unfused_state_dict
from .kinds import CANDIDATE_ACTIVATIONS, FUSED_KINDS, FusedKind
from .plan import FusionCandidate, plan, swap
from .rules import reason_not_fusable

logger = logging.getLogger(__name__)

__all__ = [
    "CANDIDATE_ACTIVATIONS",
    "FUSED_KINDS",
    "FusedKind",
    "FusionCandidate",
    "batchnorm_fusion_plan",
    "fuse_batchnorm",
    "reason_not_fusable",
    "unfused_state_dict",
]


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fuse each BatchNorm{1,2,3}d that feeds a LearnableELU or nn.PReLU, wherever the pair sits.

    The BatchNorm's attribute takes a ``BatchNormLearnableELU`` (a
    ``BatchNormPReLU`` for nn.PReLU, its weight as ``prelu_weight``) that reuses
    both modules' Parameter and buffer objects (an optimizer built before
    keeps working; a shared ``LearnableELU(1)`` alpha stays shared) and the
    BatchNorm's training flag, eps and momentum; the activation's attribute
    takes an ``nn.Identity``. A timm ``BatchNormAct2d`` is replaced whole.
    The model keeps its class and its ``forward()``.

    A pair is found as consecutive modules of an ``nn.Sequential``, as a
    BatchNorm call whose output goes only to an activation call (through
    ``nn.Identity`` modules) in ``forward()`` traced in training and in eval
    mode, or as a ``BatchNormAct2d`` whose ``.drop`` is an ``nn.Identity``.
    It is fused only where the swap keeps the model's function: see
    docs/batch-norm.md for every rule. Each fused pair, and each candidate
    left unfused with its reason, is logged at INFO on ``elu_triton.fuse``.

    A checkpoint saved before fusing loads into the fused model (a load
    hook takes the old keys); ``unfused_state_dict(model)`` gives the keys
    back for the unfused code.

    Args:
        model: changed in place.

    Returns:
        ``model``.
    """
    for candidate, norm, activation in plan(model):
        if not candidate.fuses:
            logger.info(
                "fuse_batchnorm: left %s unfused: %s", candidate.describe(), candidate.reason
            )
            continue
        fused = swap(model, candidate, norm, activation)
        logger.info("fuse_batchnorm: %s -> %s", candidate.describe(), type(fused).__name__)
    return model


def batchnorm_fusion_plan(model: nn.Module) -> list[FusionCandidate]:
    """What ``fuse_batchnorm(model)`` would do, as data; the model is not changed.

    Args:
        model: any module.

    Returns:
        One ``FusionCandidate`` per BatchNorm -> LearnableELU or nn.PReLU
        candidate, in the order found: the BatchNorm's and the activation's
        qualified names and classes, where it was found, and ``reason``
        (None where it would fuse; ``.fuses`` says the same).
    """
    return [candidate for candidate, _, _ in plan(model)]
