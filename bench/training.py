"""The activation inside training: the memory it keeps, and a compiled model.

``activation_memory`` counts what autograd keeps for the backward of one
activation call, with the package's one counter
(``elu_triton.demo.memory.saved_bytes``: each saved view once; alpha, a
parameter, not counted: it exists whether or not a graph does).

``model_step_times`` times a training step (forward, backward) of a small
conv net whose activations are LearnableELU, against the same net with the
hand-written composite (``elu_triton.reference``), both eager and under
``torch.compile``. Under the compiler LearnableELU hands the composite to
inductor, so the two compiled nets should run the same fused code.
"""

import copy
import statistics
from collections.abc import Callable

import torch
from torch import nn

import elu_triton
from elu_triton.demo.memory import saved_bytes

from . import timing
from .activations import BY_NAME, CompositeELU

# The registry's activations whose memory is compared: copy keeps nothing for
# a backward, and what the compiled reference keeps is inductor's choice.
MEMORY_COMPARED = ("elu_triton", "elu_fixed", "eager", "prelu")


def activation_memory(x: torch.Tensor, alpha: torch.Tensor) -> dict[str, int]:
    """Bytes each activation of MEMORY_COMPARED saves for its backward (alpha not counted)."""
    x, alpha = x.detach().requires_grad_(), alpha.detach().requires_grad_()
    functions = {name: BY_NAME[name].function for name in MEMORY_COMPARED}
    return {name: saved_bytes(lambda f=f: f(x, alpha), [alpha]) for name, f in functions.items()}


def small_conv_net(activation: Callable[[int], nn.Module], channels: int) -> nn.Sequential:
    """1x1 convs with batch norm: cheap convs, so the activations' cost shows."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), activation(channels),
        nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), activation(channels),
        nn.Conv2d(channels, channels, 1), activation(channels),
    )  # fmt: skip


# Few channels: the convs cost C^2 per pixel, the activations C.
MODEL_INPUT = {"cpu": (4, 16, 112, 112), "cuda": (64, 32, 112, 112)}


def _step(model: nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def step() -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        loss = model(x).float().square().mean()
        loss.backward()
        return loss

    return step


def graph_operations(gm: torch.fx.GraphModule) -> list[tuple]:
    """The graph's nodes as (kind, target, arguments), each node named by its position.

    Two graphs that run the same operations on the same values give the same
    list, whatever names dynamo gave their variables (names follow the
    modules' code: "routed" in one, "input_3" in the other).
    """
    position = {node: i for i, node in enumerate(gm.graph.nodes)}

    def by_position(arg):
        return torch.fx.node.map_arg(arg, lambda node: f"%{position[node]}")

    return [
        (node.op, "" if node.op == "placeholder" else str(node.target),
         by_position(node.args), by_position(node.kwargs))
        for node in gm.graph.nodes
    ]  # fmt: skip


def same_dynamo_graph(net_a: nn.Module, net_b: nn.Module, x: torch.Tensor) -> bool:
    """Whether torch.compile captures graphs of the same operations from both nets."""
    graphs = []

    def capture(gm: torch.fx.GraphModule, example_inputs) -> Callable:
        graphs.append(graph_operations(gm))
        return gm.forward

    for net in (net_a, net_b):
        torch.compile(copy.deepcopy(net), backend=capture, dynamic=False)(x)
    return len(graphs) == 2 and graphs[0] == graphs[1]


def _graph_breaks() -> int:
    from torch._dynamo.utils import counters

    return sum(counters["graph_break"].values())


NET_NAMES = ("learnable, eager", "composite, eager", "learnable, compiled", "composite, compiled")


def conv_net_steps(device: torch.device) -> tuple[dict[str, Callable[[], torch.Tensor]], dict]:
    """The four nets' training steps, each run twice (compiled, warm), and facts about them.

    The nets start from the same weights: "learnable" uses LearnableELU,
    "composite" the reference composite; the compiled ones are copies under
    torch.compile. The facts: the input shape, the graph breaks dynamo saw
    compiling the LearnableELU net, whether dynamo captured the same graph
    from both nets, the first losses, and whether all four nets' parameter
    gradients agree.
    """
    torch.manual_seed(0)
    channels = MODEL_INPUT[device.type][1]
    learnable = small_conv_net(lambda c: elu_triton.LearnableELU(c, init=0.8), channels).to(device)
    composite = small_conv_net(lambda c: CompositeELU(c, init=0.8), channels).to(device)
    composite.load_state_dict(learnable.state_dict())
    x = torch.randn(MODEL_INPUT[device.type], device=device)
    nets = dict(zip(NET_NAMES, (
        learnable, composite,
        torch.compile(copy.deepcopy(learnable), dynamic=False),
        torch.compile(copy.deepcopy(composite), dynamic=False),
    )))  # fmt: skip
    steps = {name: _step(net, x) for name, net in nets.items()}
    breaks_before = _graph_breaks()
    steps["learnable, compiled"]()  # compiles the LearnableELU net alone
    graph_breaks = _graph_breaks() - breaks_before
    losses = {name: step().item() for name, step in steps.items()}  # compiles, warms up
    timing.sync(device)
    facts = {
        "input": list(MODEL_INPUT[device.type]),
        "graph_breaks_learnable": graph_breaks,
        "same_graph": same_dynamo_graph(learnable, composite, x),
        "losses": losses,
        "outputs_agree": _nets_agree(nets),
    }
    return steps, facts


def model_step_times(device: torch.device, rounds: int = 3) -> dict:
    """conv_net_steps' facts, plus each net's step time (ms) from interleaved rounds.

    "ms" holds the median of the rounds' medians per net, "min_ms" the minimum.
    """
    steps, facts = conv_net_steps(device)
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            samples[name].append(timing.time_ms(step, device, min_calls=3)["ms"])
    return {
        **facts,
        "ms": {name: statistics.median(s) for name, s in samples.items()},
        "min_ms": {name: min(s) for name, s in samples.items()},
    }


def _nets_agree(nets: dict[str, nn.Module]) -> bool:
    """Whether every net's parameter gradients match the first's (same weights, same step).

    Within 1% of each gradient's largest entry, plus 1e-5 of the largest
    entry of all (a conv bias before a batch norm has a zero gradient, made
    of rounding noise): fused kernels and TF32 convs round differently, while
    a wrong formula (a sign, a channel) is off by far more.
    """
    grads = [[p.grad for p in net.parameters()] for net in nets.values()]
    overall = max(g.abs().max() for g in grads[0])

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return bool(((a - b).abs() <= 1e-2 * a.abs().max() + 1e-5 * overall).all())

    return all(all(close(a, b) for a, b in zip(grads[0], other)) for other in grads[1:])
