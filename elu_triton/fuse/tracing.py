"""Pairs inside ``forward()``: a BatchNorm call whose output goes to one activation call.

The model is traced with ``torch.fx`` (a tracer that keeps BatchNorms and
the candidate activations as leaf modules, so each is one ``call_module``
node), once in training mode and once in eval mode, since a forward may
branch on ``self.training``. Where a module does not trace, each child that
holds a BatchNorm and an activation is traced instead, recursively.

A traced pair is a BatchNorm node whose output's only user is a call of a
candidate activation, directly or through ``nn.Identity`` modules (timm's
``drop_block``). Only a pair found in both modes can fuse; so can it only
where each module is called at that one place and its tensors are not read
elsewhere in the forward (a direct ``.forward`` call would read them).
"""

import warnings
from collections import Counter
from dataclasses import dataclass, field

from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .kinds import FUSED_KINDS, activation_base, is_norm_act
from .rules import hooks_reason


class LeafTracer(fx.Tracer):
    """torch.fx's tracer, with every BatchNorm, candidate activation and fused layer a leaf.

    torch.fx keeps torch.nn's modules as leaves already; LearnableELU would
    be traced into its ``learnable_elu`` call, and a BatchNorm subclass of
    the user's into ``F.batch_norm``: neither would then be a module call.
    """

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        fused_layers = tuple(kind.layer for kind in FUSED_KINDS.values())
        if isinstance(m, (_BatchNorm, *fused_layers)) or activation_base(m) is not None:
            return True
        return super().is_leaf_module(m, module_qualified_name)


@dataclass
class TracedPair:
    """A BatchNorm -> activation pair of a traced forward, with names from the model's root."""

    norm: nn.Module
    activation: nn.Module
    norm_name: str
    activation_name: str
    reason: str | None  # why its place keeps it unfused; the pair rules come after
    # Each module registered at one place: the trace's calls are that place's
    # (torch.fx names a module registered twice by its first name only).
    attributable: bool


@dataclass
class Traced:
    """What tracing found: the pairs, the modules called, the modules that did not trace."""

    pairs: dict[tuple[int, int], TracedPair] = field(default_factory=dict)
    called: set[int] = field(default_factory=set)  # id() of each module a graph calls
    failures: list[tuple[str, nn.Module, str]] = field(default_factory=list)  # name, module, error


def trace_pairs(model: nn.Module, places: Counter) -> Traced:
    """Trace model (or, where it does not trace, its children) and collect its pairs.

    Args:
        model: the model; its modules' training flags are left as they were.
        places: id(module) -> how many places it is registered at in model.

    Returns:
        The pairs keyed by (id(norm), id(activation)), the modules called, the failures.
    """
    traced = Traced()
    _visit(model, "", places, traced)
    return traced


def _may_hold_pairs(module: nn.Module) -> bool:
    if LeafTracer().is_leaf_module(module, ""):
        return False
    modules = list(module.modules())
    has_norm = any(isinstance(m, _BatchNorm) and not is_norm_act(m) for m in modules)
    return has_norm and any(activation_base(m) is not None for m in modules)


def _visit(module: nn.Module, prefix: str, places: Counter, traced: Traced) -> None:
    if not _may_hold_pairs(module):
        return
    try:
        graphs = [_trace(module, training) for training in (True, False)]
    except Exception as error:  # noqa: BLE001 (any failure: trace the children instead)
        traced.failures.append((prefix.rstrip("."), module, _one_line(error)))
        for name, child in module.named_children():
            _visit(child, f"{prefix}{name}.", places, traced)
        return
    found = [_graph_pairs(graph, module, prefix, places) for graph in graphs]
    for graph in graphs:
        traced.called |= {
            id(module.get_submodule(n.target)) for n in graph.nodes if n.op == "call_module"
        }
    training, evaluating = found
    for key in training.keys() | evaluating.keys():
        pair = training.get(key) or evaluating[key]
        reasons = [mode[key].reason for mode in found if key in mode]
        if len(reasons) == 1:  # a forward that branches on self.training
            only = "training" if key in training else "eval"
            reasons.append(f"a pair in {only} mode only (forward branches on self.training)")
        pair.reason = next((r for r in reasons if r is not None), None)
        traced.pairs.setdefault(key, pair)


def _trace(module: nn.Module, training: bool) -> fx.Graph:
    """module's forward traced with every submodule's training flag set to training."""
    flags = {m: m.training for m in module.modules()}
    try:
        for m in flags:
            m.training = training  # what train() does, without a subclass's own train()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracing-time warnings are not the user's
            return LeafTracer().trace(module)
    finally:
        for m, flag in flags.items():
            m.training = flag


def _one_line(error: Exception) -> str:
    lines = str(error).strip().splitlines() or [""]
    text = f"{type(error).__name__}: {lines[0]}"
    return text if len(text) <= 160 else text[:157] + "..."


def _graph_pairs(
    graph: fx.Graph, root: nn.Module, prefix: str, places: Counter
) -> dict[tuple[int, int], TracedPair]:
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    reads = [n.target for n in graph.nodes if n.op == "get_attr"]
    pairs = {}
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        norm = root.get_submodule(node.target)
        if not isinstance(norm, _BatchNorm) or is_norm_act(norm):
            continue
        activation_node, others = _activation_after(node, root)
        if activation_node is None:
            continue
        activation = root.get_submodule(activation_node.target)
        reason = (
            _users_reason(activation_node, others)
            or _calls_reason(node.target, activation_node.target, calls)
            or _reads_reason(node.target, activation_node.target, reads)
        )
        attributable = places[id(norm)] == 1 and places[id(activation)] == 1
        pairs[(id(norm), id(activation))] = TracedPair(
            norm, activation, prefix + node.target, prefix + activation_node.target,
            reason, attributable,
        )  # fmt: skip
    return pairs


def _is_call_of(node: fx.Node, root: nn.Module, test) -> bool:
    return node.op == "call_module" and test(root.get_submodule(node.target))


def _is_activation(module: nn.Module) -> bool:
    return activation_base(module) is not None


def _plain_identity(module: nn.Module) -> bool:
    return type(module) is nn.Identity and hooks_reason("", module) is None


def _activation_after(node: fx.Node, root: nn.Module) -> tuple[fx.Node | None, list[fx.Node]]:
    """The activation call node's output reaches through identities, and its other users."""
    others: list[fx.Node] = []
    current = node
    while True:
        users = list(current.users)
        activations = [u for u in users if _is_call_of(u, root, _is_activation)]
        if activations:
            return activations[0], others + [u for u in users if u is not activations[0]]
        identities = [u for u in users if _is_call_of(u, root, _plain_identity)]
        if not identities:
            return None, []
        others += [u for u in users if u is not identities[0]]
        current = identities[0]


def _users_reason(activation_node: fx.Node, others: list[fx.Node]) -> str | None:
    if others:
        return f"BatchNorm's output has another user ({others[0].name})"
    if len(activation_node.args) != 1 or activation_node.kwargs:
        return "activation is called with more than the BatchNorm's output"
    return None


def _calls_reason(norm: str, activation: str, calls: Counter) -> str | None:
    # Fusing swaps the module at every place it is called from.
    for role, target in (("BatchNorm", norm), ("activation module", activation)):
        if calls[target] > 1:
            return f"{role} is called at several places ({calls[target]})"
    return None


def _reads_reason(norm: str, activation: str, reads: list[str]) -> str | None:
    for role, target in (("BatchNorm", norm), ("activation", activation)):
        read = next((r for r in reads if r.startswith(f"{target}.")), None)
        if read is not None:
            return f"forward reads the {role}'s {read} outside its call"
    return None
