"""CUDA graphs: training steps captured with torch.cuda.CUDAGraph and with
torch.compile(mode="reduce-overhead") replay with eager's results.

What makes the op capturable: its launch path (checks.py, layout.py,
backends/triton_kernels.py) reads only shapes, strides and dtypes on the host, never a
tensor's values (no .item(), no .tolist(), no bool of a tensor), allocates
through PyTorch's caching allocator (the graph's private pool during
capture), and launches plain @triton.jit kernels: no autotuner, so after one
eager warm-up per shape nothing is compiled or benchmarked during capture.

GPU only; every test skips without CUDA.
"""

import copy

import pytest
import torch
from torch import nn

from elu_triton import LearnableELU, LearnableELUFunction
from elu_triton.kernels import learnable_elu_backward_kernel, learnable_elu_forward_kernel

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), LearnableELU(8, init=0.5),
        nn.Conv2d(8, 8, 3, padding=1), LearnableELU(1, init=1.5),
        nn.Flatten(), nn.Linear(8 * 8 * 8, 4),
    ).cuda()  # fmt: skip


def _batches(steps: int):
    gen = torch.Generator(device="cuda").manual_seed(1)
    return [
        (torch.randn(16, 3, 8, 8, device="cuda", generator=gen),
         torch.randn(16, 4, device="cuda", generator=gen))
        for _ in range(steps)
    ]  # fmt: skip


def _step(model, opt, x, target) -> torch.Tensor:
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.mse_loss(model(x), target)
    loss.backward()
    opt.step()
    return loss


def _compiled_kernel_count() -> int:
    """How many specializations of our kernels Triton has compiled so far."""
    total = 0
    for kernel in (learnable_elu_forward_kernel, learnable_elu_backward_kernel):
        for cache in getattr(kernel, "device_caches", {}).values():
            total += len(cache[0])  # (kernel_cache, ...) in Triton 3.x
    return total


@pytest.fixture(autouse=True)
def deterministic_convolutions():
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
        yield


def test_layer_never_synchronizes_the_host():
    x = torch.randn(4, 8, 5, 5, device="cuda", requires_grad=True)
    act = LearnableELU(8).cuda()
    dy = torch.randn_like(x)
    inputs = [x, x.to(memory_format=torch.channels_last), x[:, :, 1:, :]]
    for xi in inputs:  # warm-up: compile every specialization first
        torch.autograd.grad(act(xi), (x, act.alpha), dy[:, :, : xi.shape[2]])
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronizing call raises
    try:
        for xi in inputs:
            torch.autograd.grad(act(xi), (x, act.alpha), dy[:, :, : xi.shape[2]])
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_cuda_graph_training_step_matches_eager():
    warmup, steps = 3, 4
    batches = _batches(warmup + steps)
    eager_model = _model()
    graph_model = copy.deepcopy(eager_model)
    eager_opt = torch.optim.SGD(eager_model.parameters(), lr=0.05, momentum=0.9)
    graph_opt = torch.optim.SGD(graph_model.parameters(), lr=0.05, momentum=0.9)
    eager_losses = [_step(eager_model, eager_opt, *b).item() for b in batches]

    static_x, static_target = (t.clone() for t in batches[0])
    # Warm up on a side stream (as torch.cuda.graphs' docs ask): compiles the
    # kernels and creates the optimizer's momentum buffers before capture.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        graph_losses = []
        for x, target in batches[:warmup]:
            graph_losses.append(_step(graph_model, graph_opt, x, target).item())
    torch.cuda.current_stream().wait_stream(side)

    compiled_before = _compiled_kernel_count()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = _step(graph_model, graph_opt, static_x, static_target)
    assert _compiled_kernel_count() == compiled_before, "a kernel was compiled during capture"

    for x, target in batches[warmup:]:
        static_x.copy_(x)
        static_target.copy_(target)
        graph.replay()
        graph_losses.append(static_loss.item())
    torch.testing.assert_close(graph_losses, eager_losses, rtol=1e-5, atol=1e-6)
    for p_graph, p_eager in zip(graph_model.parameters(), eager_model.parameters()):
        torch.testing.assert_close(p_graph, p_eager, rtol=1e-5, atol=1e-6)


def _compiled_training_matches_eager(make_model, steps: int = 4):
    batches = _batches(steps)
    eager_model = make_model()
    compiled_model = copy.deepcopy(eager_model)
    eager_opt = torch.optim.SGD(eager_model.parameters(), lr=0.05)
    compiled_opt = torch.optim.SGD(compiled_model.parameters(), lr=0.05)
    forward = torch.compile(compiled_model, mode="reduce-overhead")
    eager_losses, compiled_losses = [], []
    for x, target in batches:
        eager_losses.append(_step(eager_model, eager_opt, x, target).item())
        torch.compiler.cudagraph_mark_step_begin()
        compiled_losses.append(_step(forward, compiled_opt, x, target).item())
    # The compiled graph fuses differently from eager: fp32 rounding apart.
    torch.testing.assert_close(compiled_losses, eager_losses, rtol=1e-4, atol=1e-6)
    for p_compiled, p_eager in zip(compiled_model.parameters(), eager_model.parameters()):
        torch.testing.assert_close(p_compiled, p_eager, rtol=1e-4, atol=1e-5)


def test_reduce_overhead_compile_matches_eager():
    """learnable_elu is the reference composite under torch.compile: fused, then graphed."""
    _compiled_training_matches_eager(_model)


class _OpaqueELU(LearnableELU):
    """The autograd Function, which compiles to our custom ops rather than the composite."""

    def forward(self, x):
        return LearnableELUFunction.apply(x, self.alpha)


def test_reduce_overhead_compile_with_custom_ops_matches_eager():
    """The Triton kernels themselves inside torch.compile's CUDA graphs."""

    def make_model():
        model = _model()
        model[1] = _OpaqueELU(8, init=0.5).cuda()
        return model

    _compiled_training_matches_eager(make_model)


def test_launch_first_made_during_capture_is_not_cached():
    """A launch made in capture holds a tensor from the graph's pool: the cache must not keep it."""
    import dataclasses

    from elu_triton import backends, learnable_elu, reference

    x = torch.randn(4, 5, 6, device="cuda")
    alpha = torch.rand(5, device="cuda")
    learnable_elu(x, alpha)  # Triton compiles the kernel outside capture
    # Another backend object with the same kernels: another signature, so the
    # call in capture prepares anew, and nothing new needs compiling. Its
    # launches are counted: a signature prepare has cached gets none made again.
    default = backends.backend_for("cuda")
    launches = []
    twin = dataclasses.replace(
        default,
        name="triton twin",
        launch_for=lambda *args: launches.append(1) or default.launch_for(*args),
    )
    graph = torch.cuda.CUDAGraph()
    with backends.use_backend(twin), torch.cuda.graph(graph):
        y = learnable_elu(x, alpha)
    assert len(launches) == 1
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(y, reference.learnable_elu(x, alpha))
    with backends.use_backend(twin):
        learnable_elu(x, alpha)  # made again: the launch made in capture was not kept
        assert len(launches) == 2
        learnable_elu(x, alpha)  # outside capture the same signature is cached
        assert len(launches) == 2
