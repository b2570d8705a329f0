"""torch.func over models that hold LearnableELU: grad, vmap, jacrev, functional_call.

Under a transform ``learnable_elu`` takes the reference composite, whose
plain PyTorch ops the transforms compose with; functional_call alone is no
transform, so it keeps the eager path (the Triton kernels or the PyTorch
backend). Every result is compared with the reference computed without
transforms, in float64 where the comparison is exact enough to mean it.
"""

import copy
import dataclasses

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, stack_module_state, vmap

from elu_triton import LearnableELU, backends, learnable_elu, reference


def _model(device, dtype=torch.float64):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), LearnableELU(6, init=0.7), nn.Linear(6, 2))
    return model.to(device=device, dtype=dtype)


def _reference_twin(model):
    """The same network with the activation written as the reference composite."""
    twin = copy.deepcopy(model)
    twin[1] = reference.ReferenceELU(twin[1].alpha)
    return twin


def test_functional_call_keeps_the_eager_path(device):
    model = _model(device, torch.float32)
    x = torch.randn(4, 5, device=device)
    params = {name: p.detach() * 1.5 for name, p in model.named_parameters()}
    ran = []
    default = backends.backend_for(device)
    spy = dataclasses.replace(
        default, forward=lambda *a: ran.append("eager") or default.forward(*a)
    )
    with backends.use_backend(spy):
        y = functional_call(model, params, (x,))
    assert ran == ["eager"]
    torch.testing.assert_close(y, functional_call(_reference_twin(model), params, (x,)))


def test_grad_of_the_loss(device):
    model = _model(device)
    x, target = (
        torch.randn(8, 5, device=device, dtype=torch.float64),
        torch.randn(8, 2, device=device, dtype=torch.float64),
    )
    params = dict(model.named_parameters())

    def loss(p, net):
        return ((functional_call(net, p, (x,)) - target) ** 2).mean()

    grads = grad(loss)(params, model)
    expected = torch.autograd.grad(loss(params, _reference_twin(model)), list(params.values()))
    for (name, g), e in zip(grads.items(), expected):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-14, msg=name)


def test_per_sample_gradients_dp_sgd_idiom(device):
    """vmap(grad(loss)) over a batch: each sample's gradient, alpha's included."""
    model = _model(device)
    params = {k: v.detach() for k, v in model.named_parameters()}
    xs = torch.randn(7, 5, device=device, dtype=torch.float64)

    def loss(p, x):
        return functional_call(model, p, (x[None],)).pow(2).sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0))(params, xs)
    assert per_sample["1.alpha"].shape == (7, 6)
    twin = _reference_twin(model)
    for i in range(len(xs)):
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        out = functional_call(twin, leaves, (xs[i : i + 1],)).pow(2).sum()
        for name, g in zip(leaves, torch.autograd.grad(out, list(leaves.values()))):
            torch.testing.assert_close(per_sample[name][i], g, rtol=1e-12, atol=1e-14)


def test_jacobian(device):
    x = torch.randn(3, 4, device=device, dtype=torch.float64)
    alpha = torch.rand(4, device=device, dtype=torch.float64) + 0.5
    jac_x, jac_alpha = jacrev(learnable_elu, argnums=(0, 1))(x, alpha)
    assert jac_x.shape == (3, 4, 3, 4) and jac_alpha.shape == (3, 4, 4)
    # The activation is elementwise: d y_ij / d x_ij on the diagonal, zero elsewhere.
    diagonal = torch.where(x > 0, 1.0, alpha * x.exp())
    torch.testing.assert_close(jac_x.reshape(12, 12), torch.diag(diagonal.reshape(-1)))
    expected = torch.where(x > 0, 0.0, x.expm1())[..., None] * torch.eye(
        4, device=device, dtype=torch.float64
    )
    torch.testing.assert_close(jac_alpha, expected)


def test_ensemble_by_stacked_state(device):
    models = [_model(device) for _ in range(3)]
    for i, m in enumerate(models):
        with torch.no_grad():
            m[1].alpha.mul_(i + 1)
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    x = torch.randn(4, 5, device=device, dtype=torch.float64)

    def run(p, b):
        return functional_call(base, (p, b), (x,))

    ys = vmap(run)(params, buffers)
    for y, m in zip(ys, models):
        torch.testing.assert_close(y, _reference_twin(m)(x))
