"""The rules a BatchNorm and its activation must pass to become one layer.

The swap drops the BatchNorm's output, both modules' own code and anything
attached to them, so each of those must be absent or known. Each rule is a
function ``(norm, activation) -> reason | None``; ``pair_reason`` runs them
in order. Where the pair sits (a Sequential, a traced forward, a norm-act
module) has rules of its own, in ``plan.py`` and ``tracing.py``.
"""

from collections.abc import Callable

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.utils import parametrize

from .kinds import activation_base, display_name, fused_kind, is_norm_act

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)  # not SyncBatchNorm
# What the swap replaces: the code a call runs.
CALL = ("__call__", "forward")
_NORM_TENSORS = ({"weight", "bias"}, {"running_mean", "running_var", "num_batches_tracked"})
# The submodules of a norm-act module: what runs between the norm and the act, and the act.
_NORM_ACT_PARTS = {"drop", "act"}
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


def overridden(module: nn.Module, base: type, methods: tuple[str, ...]) -> str | None:
    """The first of methods that module's class defines otherwise than base."""
    for method in methods:
        if getattr(type(module), method) is not getattr(base, method):
            return method
    return None


def hooks_reason(role: str, module: nn.Module) -> str | None:
    """'<role> has forward hooks' (or another kind) where module has hooks of its own."""
    for kind, attributes in _HOOKS.items():
        if any(getattr(module, attribute, None) for attribute in attributes):
            return f"{role} has {kind}"
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
    if is_norm_act(norm):  # timm's BatchNormAct2d: the one subclass known by its class
        return None
    base = next((cls for cls in _BATCH_NORMS if isinstance(norm, cls)), None)
    if base is None:
        return f"{type(norm).__name__} is not a BatchNorm1d/2d/3d"
    method = overridden(norm, base, (*CALL, "_check_input_dim"))
    if method is not None:
        return f"BatchNorm subclass {type(norm).__name__} overrides {method}"
    return None


def _activation_class(norm: nn.Module, activation: nn.Module) -> str | None:
    base = activation_base(activation)
    method = overridden(activation, base, CALL)
    if method is not None:
        return f"{display_name(base)} subclass {type(activation).__name__} overrides {method}"
    return None


def _fused_layer(norm: nn.Module, activation: nn.Module) -> str | None:
    # After the class rules, so that a subclass with its own forward says so.
    if fused_kind(activation) is None:
        return f"no fused layer for {display_name(activation_base(activation))} yet"
    return None


def _extra_state(norm: nn.Module, activation: nn.Module) -> str | None:
    # The fused layer takes over the pair's known tensors; anything else would be lost.
    parts = _NORM_ACT_PARTS if is_norm_act(norm) else set()
    for role, module, (parameters, buffers), modules in (
        ("BatchNorm", norm, _NORM_TENSORS, parts),
        ("activation", activation, (set(fused_kind(activation).parameters), set()), set()),
    ):
        extra = (set(module._parameters) - parameters) | (set(module._buffers) - buffers)
        extra |= set(module._modules) - modules
        if extra:
            return f"{role} has tensors or submodules of its own: {', '.join(sorted(extra))}"
    return None


def _norm_act_drop(norm: nn.Module, activation: nn.Module) -> str | None:
    # What runs between timm's norm and act: fusing drops it, so it must be a no-op.
    if not is_norm_act(norm):
        return None
    drop = norm.drop
    if type(drop) is not nn.Identity:
        return f"its drop is {type(drop).__name__}, not nn.Identity"
    return hooks_reason("its drop", drop)


def _hooks(norm: nn.Module, activation: nn.Module) -> str | None:
    for role, module in _roles(norm, activation):
        reason = hooks_reason(role, module)
        if reason is not None:
            return reason
    return None


def _first_parameter(activation: nn.Module) -> nn.Parameter:
    return getattr(activation, next(iter(fused_kind(activation).parameters)))


def _parameter_count(norm: nn.Module, activation: nn.Module) -> str | None:
    count = _first_parameter(activation).numel()
    if count in (1, norm.num_features):
        return None
    name = next(iter(fused_kind(activation).parameters))
    return f"activation has {count} {name}s for {norm.num_features} channels"


def _channel_dim(norm: nn.Module, activation: nn.Module) -> str | None:
    # The fused layer's channels are dim 1, BatchNorm's: an activation on
    # another dim (features-last) would get its parameters on the wrong one.
    dim = fused_kind(activation).channel_dim(activation)
    if dim == 1 or _first_parameter(activation).numel() == 1:
        return None
    name = next(iter(fused_kind(activation).parameters))
    return f"activation's {name}s are on another channel dim ({dim}) than 1"


def _device(norm: nn.Module, activation: nn.Module) -> str | None:
    tensors = list(norm.parameters(recurse=False)) + list(norm.buffers(recurse=False))
    device = _first_parameter(activation).device
    if not tensors or tensors[0].device == device:
        return None
    return f"BatchNorm on {tensors[0].device}, activation on {device}"


Rule = Callable[[nn.Module, nn.Module], str | None]
# In order: a later rule may rely on an earlier one (the class rules on
# _parametrized, parameter shapes on _lazy, every rule after _fused_layer on
# the activation's row).
PAIR_RULES: tuple[Rule, ...] = (
    _sync,
    _lazy,
    _parametrized,
    _norm_class,
    _activation_class,
    _fused_layer,
    _extra_state,
    _norm_act_drop,
    _hooks,
    _parameter_count,
    _channel_dim,
    _device,
)


def reason_not_fusable(norm: nn.Module, activation: nn.Module) -> str | None:
    """Why swapping this BatchNorm and activation for one layer could change the model.

    Only the pair itself is judged here: where it sits (a Sequential, a
    traced forward) and the places its modules are registered at are
    ``fuse_batchnorm``'s to check.

    Args:
        norm: a ``_BatchNorm`` (any subclass; timm's ``BatchNormAct2d`` with
            ``activation`` its ``.act``).
        activation: an instance of a class in ``kinds.CANDIDATE_ACTIVATIONS``.

    Returns:
        The first rule's reason that refuses the pair, or None if it is fusable.

    Raises:
        TypeError: norm is not a BatchNorm, or activation not a candidate.
    """
    if not isinstance(norm, _BatchNorm) or activation_base(activation) is None:
        raise TypeError(
            f"expected a BatchNorm and a LearnableELU or nn.PReLU, got "
            f"{type(norm).__name__} and {type(activation).__name__}"
        )
    for rule in PAIR_RULES:
        reason = rule(norm, activation)
        if reason is not None:
            return reason
    return None
