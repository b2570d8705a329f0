"""The activation inside training (pytest-benchmark): memory kept, a compiled net.

``test_activation_memory`` times elu_triton's forward+backward on the
memory case and asserts it keeps no more for the backward than nn.ELU
(the registry's ``elu_fixed``)
(saved-tensor hooks). ``test_conv_net_step`` times a training step of the
small conv net with LearnableELU and with the hand-written composite, eager
and compiled; the compiled LearnableELU net must compile without a graph
break and agree with the others.
"""

import pytest
import torch

import elu_triton

from . import activations, cases, providers, timing, training


def _synchronized(fn, device):
    def call():
        fn()
        timing.sync(device)

    return call


def test_activation_memory(benchmark, device):
    case = next(c for c in cases.cases_for(device) if c.name == cases.CPU_TARGET_CASE)
    inputs = cases.make_inputs(case, torch.float32, device)
    saved = training.activation_memory(inputs.x, inputs.alpha)
    benchmark.extra_info.update(
        device=timing.device_name(device), case=case.describe(), saved_bytes=saved
    )
    fn = providers.build_checked(providers.OURS, inputs, "fwd+bwd")
    benchmark.pedantic(_synchronized(fn, device), rounds=5, iterations=1, warmup_rounds=1)
    assert saved["elu_triton"] <= saved["elu_fixed"], saved


@pytest.fixture(scope="module")
def conv_nets(device):
    return training.conv_net_steps(device)


@pytest.mark.parametrize("net", training.NET_NAMES)
def test_conv_net_step(benchmark, device, conv_nets, net):
    steps, facts = conv_nets
    assert facts["outputs_agree"], facts
    assert facts["graph_breaks_learnable"] == 0, facts
    assert facts["same_graph"], facts
    benchmark.extra_info.update(device=timing.device_name(device), net=net, **facts)
    benchmark.pedantic(_synchronized(steps[net], device), rounds=5, iterations=1, warmup_rounds=1)


def test_same_graph_compares_operations_not_names():
    """The composite net traces to LearnableELU's operations; nn.PReLU's differ."""
    torch.manual_seed(0)
    learnable = training.small_conv_net(lambda c: elu_triton.LearnableELU(c, init=0.8), 4)
    composite = training.small_conv_net(lambda c: activations.CompositeELU(c, init=0.8), 4)
    prelu = training.small_conv_net(lambda c: torch.nn.PReLU(c), 4)
    x = torch.randn(2, 4, 6, 6)
    assert training.same_dynamo_graph(learnable, composite, x)
    assert not training.same_dynamo_graph(learnable, prelu, x)
