"""fuse_batchnorm: BatchNorm followed by LearnableELU becomes one BatchNormLearnableELU.

The fused layer keeps one activation-sized tensor for the backward instead
of two (``elu_triton.batch_norm``). "Followed" means consecutive modules of
an ``nn.Sequential`` (torchvision's ``Conv2dNormActivation`` is one): a pair
written as two calls inside some ``forward()`` cannot be seen from the module
tree, and is left as it is.

A pair is fused only where the swap provably keeps what the model computes:
the swap drops the BatchNorm's output, both modules' own code and anything
attached to them, so each of those must be absent or known. Each rule is a
function ``(norm, activation) -> reason | None`` in ``_PAIR_RULES`` (plus the
container's and the places' rules, which need more than the pair); a
candidate pair that a rule refuses is logged at INFO with the reason.
"""

import logging
from collections import Counter
from collections.abc import Callable

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.utils import parametrize

from .batch_norm import BatchNormLearnableELU
from .module import LearnableELU

logger = logging.getLogger(__name__)

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)  # not SyncBatchNorm
# What the swap replaces: the code a call runs, and for a Sequential the
# iteration its forward runs over.
_CALL = ("__call__", "forward")
_CONTAINER_CALL = (*_CALL, "__iter__")
_NORM_TENSORS = ({"weight", "bias"}, {"running_mean", "running_var", "num_batches_tracked"})
_ACTIVATION_TENSORS = ({"alpha"}, set())
# Module attributes holding hooks, by what the log calls them. Global hooks
# (nn.modules.module.register_module_forward_hook) are not looked at: they
# apply to every module, the fused layer included.
_HOOKS = {
    "forward pre-hooks": ("_forward_pre_hooks",),
    "forward hooks": ("_forward_hooks",),
    "backward pre-hooks": ("_backward_pre_hooks",),
    "backward hooks": ("_backward_hooks",),
    "state-dict hooks": ("_state_dict_pre_hooks", "_state_dict_hooks"),
    "load-state-dict hooks": ("_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"),
}


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fuse each BatchNorm{1,2,3}d directly followed by a LearnableELU in an nn.Sequential.

    The BatchNorm's place takes a ``BatchNormLearnableELU`` that reuses both
    modules' Parameter and buffer objects (an optimizer built before keeps
    working; a shared ``LearnableELU(1)`` alpha stays shared) and the
    BatchNorm's training flag, eps and momentum; the LearnableELU's place
    takes an ``nn.Identity``. Each fused pair is logged at INFO level.

    A pair is fused only where the swap keeps the model's function:

    - the container's ``forward`` (and ``__call__``, ``__iter__``) are
      ``nn.Sequential``'s own, so the BatchNorm's output goes to the
      activation and nowhere else;
    - the BatchNorm is a ``BatchNorm1d/2d/3d`` or a subclass that overrides
      none of ``__call__``, ``forward``, ``_check_input_dim`` (not
      ``SyncBatchNorm``); the activation's ``__call__`` and ``forward`` are
      ``LearnableELU``'s (an initialized ``LazyLearnableELU`` is one);
    - neither module is lazy and uninitialized, is parametrized, holds
      tensors or submodules beyond its class's own, or has hooks of its own
      (forward, pre-forward, backward, state-dict);
    - the activation has 1 alpha or one per BatchNorm channel, on dim 1
      unless it has 1 (``channel_dim=-1`` scales another dim), on the
      BatchNorm's device; and the BatchNorm is registered at one place only.

    A candidate pair (any ``_BatchNorm`` followed by any ``LearnableELU``)
    left unfused is logged at INFO level with the reason.

    The fused layer holds alpha under the BatchNorm's name (``0.alpha``,
    say), so an unfused checkpoint loads into the model before fusing, not after.

    Args:
        model: changed in place.

    Returns:
        ``model``.
    """
    places = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    for prefix, parent in list(model.named_modules()):
        if isinstance(parent, nn.Sequential):
            _fuse_children(parent, f"{prefix}." if prefix else "", places)
    return model


def _fuse_children(parent: nn.Sequential, where: str, places: Counter) -> None:
    """Fuse the fusable candidate pairs among parent's children; log the others."""
    names = list(parent._modules)
    for first, second in zip(names, names[1:]):
        # Looked up afresh: a fused pair's second place now holds an Identity.
        norm, activation = parent._modules[first], parent._modules[second]
        if not (isinstance(norm, _BatchNorm) and isinstance(activation, LearnableELU)):
            continue
        pair = (
            f"{where}{first} ({type(norm).__name__}) and "
            f"{where}{second} ({type(activation).__name__})"
        )
        reason = (
            _container_reason(parent)
            or reason_not_fusable(norm, activation)
            or _places_reason(norm, places)
        )
        if reason is not None:
            logger.info("fuse_batchnorm: left %s unfused: %s", pair, reason)
            continue
        parent._modules[first] = _fused(norm, activation)
        parent._modules[second] = nn.Identity()
        logger.info("fuse_batchnorm: %s -> BatchNormLearnableELU", pair)


def reason_not_fusable(norm: nn.Module, activation: nn.Module) -> str | None:
    """Why swapping this BatchNorm and LearnableELU for one layer could change the model.

    Only the pair itself is judged here: the container and the places the
    BatchNorm is registered at are ``fuse_batchnorm``'s to check.

    Args:
        norm: a ``_BatchNorm`` (any subclass).
        activation: a ``LearnableELU`` (any subclass).

    Returns:
        The first rule's reason that refuses the pair, or None if it is fusable.
    """
    for rule in _PAIR_RULES:
        reason = rule(norm, activation)
        if reason is not None:
            return reason
    return None


def _container_reason(parent: nn.Sequential) -> str | None:
    method = _overridden(parent, nn.Sequential, _CONTAINER_CALL)
    if method == "forward":
        return f"container nn.Sequential subclass {type(parent).__name__} has its own forward"
    if method is not None:
        return f"container nn.Sequential subclass {type(parent).__name__} overrides {method}"
    return None


def _places_reason(norm: nn.Module, places: Counter) -> str | None:
    # Fusing one place would split the BatchNorm's statistics in two.
    if places[id(norm)] > 1:
        return f"BatchNorm registered at several places ({places[id(norm)]})"
    return None


def _overridden(module: nn.Module, base: type, methods: tuple[str, ...]) -> str | None:
    """The first of methods that module's class defines otherwise than base."""
    for method in methods:
        if getattr(type(module), method) is not getattr(base, method):
            return method
    return None


def _roles(norm: nn.Module, activation: nn.Module) -> tuple[tuple[str, nn.Module], ...]:
    return (("BatchNorm", norm), ("activation", activation))


def _sync(norm: nn.Module, activation: nn.Module) -> str | None:
    # Its statistics span processes; the fused layer's span one.
    return "SyncBatchNorm" if isinstance(norm, nn.SyncBatchNorm) else None


def _lazy(norm: nn.Module, activation: nn.Module) -> str | None:
    # An initialized lazy module has become its plain class (cls_to_become).
    for role, module in _roles(norm, activation):
        if isinstance(module, LazyModuleMixin):
            return f"{role} is a lazy module not yet initialized (run one forward first)"
    return None


def _parametrized(norm: nn.Module, activation: nn.Module) -> str | None:
    # Before the class rules: parametrize swaps in a class of its own.
    for role, module in _roles(norm, activation):
        if parametrize.is_parametrized(module):
            names = ", ".join(module.parametrizations)
            return f"{role}'s {names} is parametrized"
    return None


def _norm_class(norm: nn.Module, activation: nn.Module) -> str | None:
    base = next((cls for cls in _BATCH_NORMS if isinstance(norm, cls)), None)
    if base is None:
        return f"{type(norm).__name__} is not a BatchNorm1d/2d/3d"
    method = _overridden(norm, base, (*_CALL, "_check_input_dim"))
    if method is not None:
        return f"BatchNorm subclass {type(norm).__name__} overrides {method}"
    return None


def _activation_class(norm: nn.Module, activation: nn.Module) -> str | None:
    method = _overridden(activation, LearnableELU, _CALL)
    if method is not None:
        return f"LearnableELU subclass {type(activation).__name__} overrides {method}"
    return None


def _extra_state(norm: nn.Module, activation: nn.Module) -> str | None:
    # The fused layer takes over the pair's known tensors; anything else would be lost.
    for role, module, (parameters, buffers) in (
        ("BatchNorm", norm, _NORM_TENSORS),
        ("activation", activation, _ACTIVATION_TENSORS),
    ):
        extra = (set(module._parameters) - parameters) | (set(module._buffers) - buffers)
        extra |= set(module._modules)
        if extra:
            return f"{role} has tensors or submodules of its own: {', '.join(sorted(extra))}"
    return None


def _hooks(norm: nn.Module, activation: nn.Module) -> str | None:
    for role, module in _roles(norm, activation):
        for kind, attributes in _HOOKS.items():
            if any(getattr(module, attribute, None) for attribute in attributes):
                return f"{role} has {kind}"
    return None


def _alpha_count(norm: nn.Module, activation: nn.Module) -> str | None:
    count = activation.alpha.numel()
    if count in (1, norm.num_features):
        return None
    return f"activation has {count} alphas for {norm.num_features} channels"


def _channel_dim(norm: nn.Module, activation: nn.Module) -> str | None:
    # The fused layer's channels are dim 1, BatchNorm's: an activation on
    # another dim (features-last) would get its alphas on the wrong one.
    if activation.channel_dim == 1 or activation.alpha.numel() == 1:
        return None
    return f"activation's alphas are on another channel dim ({activation.channel_dim}) than 1"


def _device(norm: nn.Module, activation: nn.Module) -> str | None:
    tensors = list(norm.parameters()) + list(norm.buffers())
    if not tensors or tensors[0].device == activation.alpha.device:
        return None
    return f"BatchNorm on {tensors[0].device}, activation on {activation.alpha.device}"


Rule = Callable[[nn.Module, nn.Module], str | None]
# In order: a later rule may rely on an earlier one (the class rules on
# _parametrized, alpha's shape on _lazy).
_PAIR_RULES: tuple[Rule, ...] = (
    _sync,
    _lazy,
    _parametrized,
    _norm_class,
    _activation_class,
    _extra_state,
    _hooks,
    _alpha_count,
    _channel_dim,
    _device,
)


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
