"""Mixed precision: the layer under torch.autocast, and with torch.amp.GradScaler.

Under autocast a convolution hands the layer bf16 (or fp16) activations while
alpha stays an fp32 parameter. The custom ops have no autocast rule, so
autocast passes the mixed pair through untouched: y and dx come back in x's
dtype, dalpha in alpha's (fp32), as nn.PReLU's do.

Stated tolerance for alpha.grad: the kernels upcast the exact bf16/fp16
values of x and dy to fp32 and accumulate dy * expm1(min(x, 0)) in fp32, so
against float64 math on the same inputs
    |alpha.grad - dalpha_64| <= 1e-5 * sum |dy * expm1(min(x, 0))|   per channel.
y and dx are within one ulp of x's dtype of the float64 values (or within
the smallest normal number, where fp16 results are subnormal).
"""

import pytest
import torch
from torch import nn

from elu_triton import LearnableELU, reference

_NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CASES = [
    pytest.param("cpu", torch.bfloat16, id="cpu-bf16"),
    pytest.param("cuda", torch.bfloat16, id="cuda-bf16", marks=_NEEDS_CUDA),
    pytest.param("cuda", torch.float16, id="cuda-fp16", marks=_NEEDS_CUDA),
]
ULP = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}
DALPHA_SUM_RTOL = 1e-5


def _conv_model(device: str) -> nn.Sequential:
    torch.manual_seed(0)
    act = LearnableELU(4)
    with torch.no_grad():
        act.alpha.copy_(torch.tensor([0.3, 0.7, 1.1, 1.6]))
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), act, nn.Conv2d(4, 2, 1)).to(device)


def _capture_layer_io(act: nn.Module) -> dict:
    """Record the layer's x, y, and the gradients dy (of y) and dx (of x) it sees."""
    seen = {}

    def hook(module, inputs, output):
        seen["x"], seen["y"] = inputs[0].detach(), output.detach()
        inputs[0].register_hook(lambda g: seen.__setitem__("dx", g.detach()))
        output.register_hook(lambda g: seen.__setitem__("dy", g.detach()))

    act.register_forward_hook(hook)
    return seen


@pytest.mark.parametrize("device,dtype", CASES)
def test_training_step_matches_float64(device, dtype):
    model = _conv_model(device)
    act = model[1]
    seen = _capture_layer_io(act)
    x = torch.randn(2, 3, 6, 6, device=device)
    with torch.autocast(device, dtype=dtype):
        loss = model(x).float().square().mean()
    loss.backward()

    assert seen["x"].dtype == dtype and seen["y"].dtype == dtype and seen["dx"].dtype == dtype
    assert act.alpha.dtype == torch.float32 and act.alpha.grad.dtype == torch.float32

    x64 = seen["x"].double().requires_grad_()
    a64 = act.alpha.detach().double().requires_grad_()
    y64 = reference.learnable_elu(x64, a64)
    dx64, dalpha64 = torch.autograd.grad(y64, (x64, a64), seen["dy"].double())
    # Below the smallest normal number the relative error grows: fp16 subnormals.
    tiny = torch.finfo(dtype).tiny
    torch.testing.assert_close(seen["y"].double(), y64, rtol=ULP[dtype], atol=tiny)
    torch.testing.assert_close(seen["dx"].double(), dx64, rtol=ULP[dtype], atol=tiny)

    terms = (seen["dy"].double() * torch.expm1(x64.detach().clamp(max=0))).abs()
    bound = DALPHA_SUM_RTOL * terms.sum(dim=(0, 2, 3))
    error = (act.alpha.grad.double() - dalpha64).abs()
    assert bool((error <= bound).all()), f"alpha.grad error {error.tolist()} over {bound.tolist()}"


@pytest.mark.parametrize("device,dtype", CASES)
def test_conv_model_trains(device, dtype):
    model = _conv_model(device)
    x = torch.randn(8, 3, 6, 6, device=device)
    target = torch.randn(8, 2, 6, 6, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        with torch.autocast(device, dtype=dtype):
            out = model(x)
            assert out.dtype == dtype
            loss = nn.functional.mse_loss(out.float(), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    alpha = model[1].alpha
    assert alpha.dtype == torch.float32 and torch.isfinite(alpha).all()
    assert not torch.equal(alpha.detach().cpu(), torch.tensor([0.3, 0.7, 1.1, 1.6]))
    assert losses[-1] < 0.95 * losses[0], losses


SCALER_CASES = [
    pytest.param("cpu", torch.bfloat16, id="cpu-bf16"),
    pytest.param("cuda", torch.float16, id="cuda-fp16", marks=_NEEDS_CUDA),
]


def _grads(model, x, target, device, dtype, scaler=None):
    model.zero_grad()
    with torch.autocast(device, dtype=dtype):
        loss = nn.functional.mse_loss(model(x).float(), target)
    (loss if scaler is None else scaler.scale(loss)).backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("device,dtype", SCALER_CASES)
def test_grad_scaler_unscales(device, dtype):
    model = _conv_model(device)
    x = torch.randn(4, 3, 6, 6, device=device)
    target = torch.randn(4, 2, 6, 6, device=device)
    plain = _grads(model, x, target, device, dtype)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scale = 2.0**12
    scaler = torch.amp.GradScaler(device, init_scale=scale)
    scaled = _grads(model, x, target, device, dtype, scaler)
    alpha_index = 2  # conv weight, conv bias, alpha, ...
    # A power-of-two scale is exact: the scaled alpha gradient is the plain one times it.
    torch.testing.assert_close(scaled[alpha_index], plain[alpha_index] * scale, rtol=1e-3, atol=0.0)
    scaler.unscale_(opt)
    for p, want in zip(model.parameters(), plain):
        torch.testing.assert_close(p.grad, want, rtol=1e-3, atol=1e-7)
    alpha_before = model[1].alpha.detach().clone()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == scale  # no inf or NaN was found
    torch.testing.assert_close(model[1].alpha.detach(), alpha_before - 0.1 * plain[alpha_index])


@_NEEDS_CUDA
def test_grad_scaler_skips_overflowing_step():
    """fp16 dy overflows at a huge scale; the scaler sees inf, skips the step, backs off."""
    model = _conv_model("cuda")
    x = torch.randn(4, 3, 6, 6, device="cuda")
    target = torch.randn(4, 2, 6, 6, device="cuda")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**40)
    _grads(model, x, target, "cuda", torch.float16, scaler)
    alpha_before = model[1].alpha.detach().clone()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() < 2.0**40
    assert torch.equal(model[1].alpha.detach(), alpha_before)
