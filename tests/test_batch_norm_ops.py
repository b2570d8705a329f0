"""The fused layer's custom ops and its routes: opcheck, dispatch modes, compile, export, torch.func.

Eager plain tensors run the passes directly; subclass tensors and dispatch
modes meet the custom ops; torch.compile, torch.export, torch.func
transforms and forward AD get the composite (F.batch_norm then the
reference), as ``learnable_elu`` does. Tests of the routes run for every
fused layer (the ``act`` fixture).
"""

import copy
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from elu_triton import (
    BatchNormLearnableELU,
    BatchNormPReLU,
    LearnableELU,
    batch_norm_learnable_elu,
    batch_norm_prelu,
    reference,
)


@dataclass(frozen=True)
class Act:
    """A fused layer: its ops' activation name, functional, reference, module and parameter."""

    name: str
    functional: object
    reference: object
    module: object  # (channels, init, device) -> the fused module
    parameter: str


ACTS = {
    "learnable_elu": Act(
        "learnable_elu", batch_norm_learnable_elu, reference.learnable_elu,
        lambda c, init, device: BatchNormLearnableELU(c, init=init, device=device), "alpha",
    ),
    "prelu": Act(
        "prelu", batch_norm_prelu, F.prelu,
        lambda c, init, device: BatchNormPReLU(c, num_parameters=c, init=init, device=device),
        "prelu_weight",
    ),
}  # fmt: skip


@pytest.fixture(params=list(ACTS))
def act(request) -> Act:
    return ACTS[request.param]


def _sample(device, shape=(4, 3, 5, 5), dtype=torch.float32, memory_format=None, affine=True):
    x = torch.randn(shape, device=device, dtype=dtype)
    if memory_format is not None:
        x = x.contiguous(memory_format=memory_format)
    channels = shape[1]
    params = [torch.rand(channels, device=device) + 0.5 for _ in range(3)]
    weight, bias, alpha = params if affine else (None, None, params[2])
    return (
        x,
        torch.zeros(channels, device=device),
        torch.ones(channels, device=device),
        weight,
        bias,
        alpha,
    )


SAMPLES = {
    "nchw": dict(),
    "channels-last": dict(memory_format=torch.channels_last),
    "bf16-2d": dict(shape=(6, 4), dtype=torch.bfloat16),
    "no-affine-3d": dict(shape=(3, 2, 7), affine=False),
}


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", list(SAMPLES))
def test_opcheck_forward(name, training, device, act):
    x, rm, rv, weight, bias, alpha = _sample(device, **SAMPLES[name])
    grads = [t.requires_grad_() for t in (weight, bias, alpha) if t is not None]
    assert grads
    torch.library.opcheck(
        torch.ops.elu_triton.batch_norm_elu_forward,
        (x, rm, rv, weight, bias, alpha, training, 1e-5, act.name),
    )
    torch.library.opcheck(
        torch.ops.elu_triton.batch_norm_elu_forward,
        (x.requires_grad_(), None, None, weight, bias, alpha, True, 1e-5, act.name),
    )


@pytest.mark.parametrize(
    "needs", [(True, True, True, True), (True, False, False, False), (False, True, True, True)]
)
@pytest.mark.parametrize("training", [True, False])
def test_opcheck_backward(training, needs, device, act):
    x, rm, rv, weight, bias, alpha = _sample(device, memory_format=torch.channels_last)
    _, mean, var = torch.ops.elu_triton.batch_norm_elu_forward(
        x, rm, rv, weight, bias, alpha, training, 1e-5, act.name
    )
    args = (torch.randn_like(x), x, mean, var, weight, bias, alpha, training, 1e-5, list(needs))
    args = (*args, act.name)
    torch.library.opcheck(torch.ops.elu_triton.batch_norm_elu_backward, args)
    dx, dweight, dbias, dalpha = torch.ops.elu_triton.batch_norm_elu_backward(*args)
    assert [g.numel() > 0 for g in (dx, dweight, dbias, dalpha)] == list(needs)


class _OpsSeen(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


def test_dispatch_mode_meets_the_ops_and_matches_eager(device, act):
    torch.manual_seed(0)
    layer = act.module(3, 0.7, device)
    twin = copy.deepcopy(layer)
    x = torch.randn(4, 3, 5, 5, device=device, requires_grad=True)
    dy = torch.randn_like(x)
    expected_y = twin(x)
    expected = torch.autograd.grad(expected_y, (x, *twin.parameters()), dy)
    with _OpsSeen() as seen:
        y = layer(x)
        grads = torch.autograd.grad(y, (x, *layer.parameters()), dy)
    assert "elu_triton.batch_norm_elu_forward.default" in seen.names
    assert "elu_triton.batch_norm_elu_backward.default" in seen.names
    torch.testing.assert_close(y, expected_y, rtol=0, atol=0)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(layer.running_var, twin.running_var, rtol=0, atol=0)


def _functional(x, weight, bias, alpha, running=None, training=False, act=ACTS["learnable_elu"]):
    rm, rv = running if running is not None else (None, None)
    return act.functional(x, rm, rv, weight, bias, alpha, training, 0.1, 1e-5)


def _composite(x, weight, bias, alpha, running=None, training=False, act=ACTS["learnable_elu"]):
    rm, rv = running if running is not None else (None, None)
    return act.reference(F.batch_norm(x, rm, rv, weight, bias, training, 0.1, 1e-5), alpha)


@pytest.mark.parametrize("training", [True, False])
def test_func_grad_and_jvp(training, device, act):
    x, rm, rv, weight, bias, alpha = (t.double() for t in _sample(device, shape=(4, 2, 3)))
    running = None if training else (rm, rv)

    def loss(params, fn):
        return fn(x, *params, running, training, act).square().sum()

    params = (weight, bias, alpha)
    got = torch.func.grad(loss)(params, _functional)
    want = torch.func.grad(loss)(params, _composite)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    tangent = torch.randn_like(x)
    _, jvp_got = torch.func.jvp(
        lambda x: _functional(x, *params, running, training, act), (x,), (tangent,)
    )
    _, jvp_want = torch.func.jvp(
        lambda x: _composite(x, *params, running, training, act), (x,), (tangent,)
    )
    torch.testing.assert_close(jvp_got, jvp_want, rtol=1e-12, atol=1e-12)


def test_vmap_over_training_running_statistics_is_refused_as_batchnorm_refuses(device):
    x, rm, rv, weight, bias, alpha = _sample(device, shape=(5, 4, 3))
    batched = x.unsqueeze(0).expand(2, *x.shape).clone()

    def run(fn):
        return torch.func.vmap(lambda x: fn(x, weight, bias, alpha, (rm, rv), True))(batched)

    with pytest.raises(RuntimeError) as bn_error:
        run(_composite)
    with pytest.raises(RuntimeError) as fused_error:
        run(_functional)
    assert str(fused_error.value) == str(bn_error.value)
    # Without running statistics vmap works, per example.
    got = torch.func.vmap(lambda x: _functional(x, weight, bias, alpha, None, True))(batched)
    torch.testing.assert_close(
        got[1], _functional(x, weight, bias, alpha, None, True), rtol=1e-5, atol=1e-5
    )


def test_forward_ad_dual_input(device, act):
    import torch.autograd.forward_ad as fwAD

    x, rm, rv, weight, bias, alpha = (t.double() for t in _sample(device))
    tangent = torch.randn_like(x)
    with fwAD.dual_level():
        y = _functional(fwAD.make_dual(x, tangent), weight, bias, alpha, None, True, act)
        jvp = fwAD.unpack_dual(y).tangent
    _, expected = torch.func.jvp(
        lambda x: _composite(x, weight, bias, alpha, None, True, act), (x,), (tangent,)
    )
    torch.testing.assert_close(jvp, expected, rtol=1e-12, atol=1e-12)


def test_backward_op_and_its_fake_check_grad_output(device):
    x, rm, rv, weight, bias, alpha = _sample(device)
    _, mean, var = torch.ops.elu_triton.batch_norm_elu_forward(
        x, rm, rv, weight, bias, alpha, True, 1e-5
    )
    args = (x[:1].clone(), x, mean, var, weight, bias, alpha, True, 1e-5, [True] * 4)
    with pytest.raises(ValueError, match=r"grad_output must have x's shape"):
        torch.ops.elu_triton.batch_norm_elu_backward(*args)
    with FakeTensorMode() as mode:
        fake_args = tuple(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args)
        with pytest.raises(ValueError, match=r"grad_output must have x's shape"):
            torch.ops.elu_triton.batch_norm_elu_backward(*fake_args)


def _params64(device, channels=3):
    torch.manual_seed(0)
    return [(torch.rand(channels, device=device, dtype=torch.float64) + 0.5).requires_grad_()
            for _ in range(3)]  # fmt: skip


@pytest.mark.parametrize("momentum", [0.1, None])
def test_fx_symbolic_trace_records_one_call(momentum, device):
    """symbolic_trace of a model holding the fused layer: one node, and the model's results."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 1), BatchNormLearnableELU(3, momentum=momentum, init=0.6)
    ).to(device)
    twin = copy.deepcopy(model)
    traced = torch.fx.symbolic_trace(model)
    calls = [(n.op, n.target) for n in traced.graph.nodes if n.op.startswith("call")]
    assert calls == [("call_module", "0"), ("call_module", "1")]  # a leaf, as nn.BatchNorm2d is
    for step in range(2):
        x = torch.randn(4, 2, 3, 3, device=device)
        y = traced(x)
        z = F.batch_norm(
            twin[0](x), twin[1].running_mean, twin[1].running_var, twin[1].weight,
            twin[1].bias, True, 0.1 if momentum is not None else 1 / (step + 1), 1e-5,
        )  # fmt: skip
        torch.testing.assert_close(y, reference.learnable_elu(z, twin[1].alpha))
    torch.testing.assert_close(model[1].running_var, twin[1].running_var)
    assert int(model[1].num_batches_tracked) == 2


def test_fx_traced_model_switches_to_eval_as_the_pair_does(device):
    """model.eval() after symbolic_trace: running statistics, and no batch counted."""
    torch.manual_seed(0)
    fused = torch.nn.Sequential(BatchNormLearnableELU(4, init=0.6)).to(device)
    pair = torch.nn.Sequential(torch.nn.BatchNorm2d(4), LearnableELU(4, init=0.6)).to(device)
    traced_fused, traced_pair = torch.fx.symbolic_trace(fused), torch.fx.symbolic_trace(pair)
    for mode in ("eval", "train", "eval"):
        traced_fused.train(mode == "train")
        traced_pair.train(mode == "train")
        x = torch.randn(2, 4, 3, 3, device=device) * 5 + 3
        torch.testing.assert_close(traced_fused(x), traced_pair(x), rtol=1e-5, atol=1e-5)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(getattr(fused[0], name), getattr(pair[0], name))
    assert int(fused[0].num_batches_tracked) == 1


def test_fx_trace_of_the_layer_itself_records_one_call(device):
    """The traced root is traced through (no module path to call), into one wrapped call."""
    torch.manual_seed(0)
    layer = BatchNormLearnableELU(4, init=0.6).to(device)
    traced = torch.fx.symbolic_trace(layer)
    calls = [n.target.__name__ for n in traced.graph.nodes if n.op == "call_function"]
    assert calls == ["batch_norm_forward"]
    x = torch.randn(2, 4, 3, 3, device=device) * 5 + 3
    torch.testing.assert_close(traced(x), BatchNormLearnableELU(4, init=0.6).to(device)(x))


@pytest.mark.parametrize("empty", [False, True])
def test_opcheck_with_a_0d_alpha(empty, device):
    """dalpha is (alpha.numel(),) in the body and the fake alike; autograd sums it to ()."""
    x, rm, rv, weight, bias, _ = _sample(device)
    if empty:
        x = x[:0]
    alpha = torch.tensor(0.7, device=device, requires_grad=True)
    if not empty:  # (an empty x's statistics are NaN, which opcheck's comparison refuses)
        torch.library.opcheck(
            torch.ops.elu_triton.batch_norm_elu_forward,
            (x, rm, rv, weight, bias, alpha, False, 1e-5),
        )
    _, mean, var = torch.ops.elu_triton.batch_norm_elu_forward(
        x, rm, rv, weight, bias, alpha, False, 1e-5
    )
    args = (
        torch.randn_like(x),
        x,
        mean,
        var,
        weight,
        bias,
        alpha.detach(),
        False,
        1e-5,
        [True] * 4,
    )
    torch.library.opcheck(torch.ops.elu_triton.batch_norm_elu_backward, args)
    assert torch.ops.elu_triton.batch_norm_elu_backward(*args)[3].shape == (1,)
    y = _functional(x.requires_grad_(), weight, bias, alpha, (rm, rv), False)
    (dalpha,) = torch.autograd.grad(y.sum(), alpha)
    want = _composite(x, weight, bias, alpha, (rm, rv), False)
    assert dalpha.shape == ()
    torch.testing.assert_close(dalpha, torch.autograd.grad(want.sum(), alpha)[0])


def _op_gradients(x, running, weight, bias, alpha, dy, change_bias, create_graph):
    """Gradients through the forward op's own autograd formula (x, weight, bias, alpha)."""
    y, _, _ = torch.ops.elu_triton.batch_norm_elu_forward(
        x, *running, weight, bias, alpha, True, 1e-5
    )
    if change_bias:
        with torch.no_grad():
            bias.add_(0.5)
    grads = torch.autograd.grad(y, (x, weight, bias, alpha), dy, create_graph=create_graph)
    if change_bias:
        with torch.no_grad():
            bias.sub_(0.5)
    if not create_graph:
        return grads
    return grads + torch.autograd.grad(sum(g.sum() for g in grads), (x, weight, bias, alpha))


@pytest.mark.parametrize("create_graph", [False, True])
def test_the_forward_ops_gradients_ignore_a_bias_changed_in_place(create_graph, device):
    """The op's autograd formula saves a copy of bias, as the Function does."""
    x = torch.randn(4, 3, 5, device=device, dtype=torch.float64, requires_grad=True)
    running = (None, None)
    weight, bias, alpha = _params64(device)
    dy = torch.randn_like(x)
    want = _op_gradients(x, running, weight, bias, alpha, dy, False, create_graph)
    got = _op_gradients(x, running, weight, bias, alpha, dy, True, create_graph)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
