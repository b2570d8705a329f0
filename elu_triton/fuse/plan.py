"""The candidates of a model, each with its verdict, and the swap that fuses one.

Three places hold a candidate (a BatchNorm and a LearnableELU or nn.PReLU):

- consecutive modules of an ``nn.Sequential`` (found from the module tree,
  so also where tracing fails);
- a BatchNorm call feeding an activation call in a traced ``forward()``
  (``tracing.py``);
- a timm ``BatchNormAct2d`` with its ``.act`` (by exact class, no tracing).

Where a Sequential's pair is also seen by a trace, the trace decides: it
sees every call, the Sequential's own and any other.
"""

from collections import Counter
from dataclasses import dataclass

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .checkpoints import register_renames
from .kinds import activation_base, fused_kind, is_norm_act
from .rules import CALL, overridden, reason_not_fusable
from .tracing import Traced, trace_pairs

_CONTAINER_CALL = (*CALL, "__iter__")  # a Sequential's forward runs over __iter__


@dataclass(frozen=True)
class FusionCandidate:
    """One BatchNorm -> activation candidate and what ``fuse_batchnorm`` does with it.

    Attributes:
        norm: the BatchNorm's qualified name (the norm-act module's, for one).
        activation: the activation's qualified name.
        norm_type, activation_type: their class names.
        found_in: "sequential", "forward" (traced), "norm-act", or "untraced"
            (inside a module that does not trace).
        reason: why it stays unfused; None where it fuses.
    """

    norm: str
    activation: str
    norm_type: str
    activation_type: str
    found_in: str
    reason: str | None

    @property
    def fuses(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        """'<norm> (<type>) and <activation> (<type>)', as the log names the pair."""
        return f"{self.norm} ({self.norm_type}) and {self.activation} ({self.activation_type})"


@dataclass(frozen=True)
class _Found:
    norm: nn.Module
    activation: nn.Module
    norm_name: str
    activation_name: str
    found_in: str
    place_reason: str | None


def plan(model: nn.Module) -> list[tuple[FusionCandidate, nn.Module, nn.Module]]:
    """Every candidate of model with its verdict, and its two modules; model is unchanged."""
    places = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    traced = trace_pairs(model, places)
    found = _merge(
        _norm_act_pairs(model, places, traced), traced, _sequential_pairs(model, places), places
    )
    found += _untraced_pairs(traced, {id(m) for f in found for m in (f.norm, f.activation)})
    order = {id(m): i for i, (_, m) in enumerate(model.named_modules())}
    result = []
    for f in sorted(found, key=lambda f: order[id(f.norm)]):
        reason = f.place_reason or reason_not_fusable(f.norm, f.activation)
        candidate = FusionCandidate(
            f.norm_name, f.activation_name, type(f.norm).__name__,
            type(f.activation).__name__, f.found_in, reason,
        )  # fmt: skip
        result.append((candidate, f.norm, f.activation))
    return result


def _registered_reason(role: str, module: nn.Module, places: Counter) -> str | None:
    # Fusing one place would split the module's state (or leave it called elsewhere).
    if places[id(module)] > 1:
        return f"{role} registered at several places ({places[id(module)]})"
    return None


def _sequential_pairs(model: nn.Module, places: Counter) -> list[_Found]:
    pairs = []
    for prefix, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        where = f"{prefix}." if prefix else ""
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            norm, activation = parent._modules[first], parent._modules[second]
            if not isinstance(norm, _BatchNorm) or activation_base(activation) is None:
                continue
            # A shared activation may sit at several places: each is a call of its own.
            reason = _container_reason(parent) or _registered_reason("BatchNorm", norm, places)
            pairs.append(
                _Found(norm, activation, where + first, where + second, "sequential", reason)
            )
    return pairs


def _container_reason(parent: nn.Sequential) -> str | None:
    method = overridden(parent, nn.Sequential, _CONTAINER_CALL)
    if method == "forward":
        return f"container nn.Sequential subclass {type(parent).__name__} has its own forward"
    if method is not None:
        return f"container nn.Sequential subclass {type(parent).__name__} overrides {method}"
    return None


def _norm_act_pairs(model: nn.Module, places: Counter, traced: Traced) -> list[_Found]:
    pairs = []
    for name, module in model.named_modules():
        # Any BatchNorm holding an .act: the rules refuse all but the known classes.
        act = module._modules.get("act")
        if not isinstance(module, _BatchNorm) or act is None or activation_base(act) is None:
            continue
        reason = (
            ("the model itself is the norm-act module: nothing holds it" if not name else None)
            or _registered_reason("norm-act module", module, places)
            or _registered_reason("its act", module.act, places)
            or ("its act is also called on its own" if id(module.act) in traced.called else None)
        )
        pairs.append(_Found(module, module.act, name, f"{name}.act", "norm-act", reason))
    return pairs


def _merge(
    norm_acts: list[_Found], traced: Traced, sequential: list[_Found], places: Counter
) -> list[_Found]:
    """One verdict per (norm, activation): the norm-act's, else the trace's, else the Sequential's."""
    found = {(id(f.norm), id(f.activation)): f for f in norm_acts}
    for key, p in traced.pairs.items():
        if p.attributable:
            found.setdefault(key, _Found(*_names(p), "forward", p.reason))
    for f in sequential:
        key = (id(f.norm), id(f.activation))
        if key in found:
            continue
        if key not in traced.pairs and {id(f.norm), id(f.activation)} & traced.called:
            f = _Found(*_names(f), "sequential", "the traced forward does not call them as a pair")
        found[key] = f
    for key, p in traced.pairs.items():  # pairs of modules registered at several places
        if key not in found:
            reason = p.reason or _registered_reason("BatchNorm", p.norm, places)
            reason = reason or _registered_reason("activation", p.activation, places)
            found[key] = _Found(*_names(p), "forward", reason)
    return list(found.values())


def _names(found) -> tuple[nn.Module, nn.Module, str, str]:
    """The modules and names of a _Found or a TracedPair."""
    return found.norm, found.activation, found.norm_name, found.activation_name


def _untraced_pairs(traced: Traced, seen: set[int]) -> list[_Found]:
    """In each module that does not trace, each activation child and the BatchNorm child
    registered last before it: the pair its forward most likely makes, reported unfused."""
    pairs = []
    for name, module, error in traced.failures:
        where = f"{name}." if name else ""
        pending = None  # the last BatchNorm child not yet paired
        for child_name, child in module.named_children():
            if id(child) in seen:
                continue
            if isinstance(child, _BatchNorm) and not is_norm_act(child):
                pending = (child_name, child)
            elif activation_base(child) is not None and pending is not None:
                reason = f"{name or 'the model'} does not trace ({error})"
                norm_name, norm = pending
                pairs.append(
                    _Found(norm, child, where + norm_name, where + child_name, "untraced", reason)
                )
                seen |= {id(norm), id(child)}
                pending = None
    return pairs


def swap(model: nn.Module, candidate: FusionCandidate, norm: nn.Module, activation: nn.Module):
    """Fuse one fusable candidate in place; register its unfused keys for loading.

    Returns:
        The fused layer.
    """
    kind = fused_kind(activation)
    fused = kind.build(norm, activation)
    _set(model, candidate.norm, fused)
    if candidate.found_in == "norm-act":
        holder, norm_rel, activation_rel = fused, "", "act."
    else:
        _set(model, candidate.activation, nn.Identity())
        common = _common_prefix(candidate.norm, candidate.activation)
        holder = model.get_submodule(common)
        cut = len(common) + 1 if common else 0
        norm_rel, activation_rel = candidate.norm[cut:] + ".", candidate.activation[cut:] + "."
    renames = {activation_rel + p: norm_rel + q for p, q in kind.parameters.items()}
    register_renames(holder, renames)
    return fused


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attribute = name.rpartition(".")
    model.get_submodule(parent)._modules[attribute] = module


def _common_prefix(a: str, b: str) -> str:
    common = []
    for x, y in zip(a.split(".")[:-1], b.split(".")[:-1]):
        if x != y:
            break
        common.append(x)
    return ".".join(common)
