"""The layers that the contract tests (tests/test_contract_*.py) run over: one entry each.

A contract is a property every layer owes its users, whatever its math: its
backward runs on its forward's backend, it refuses a grad_output or a
parameter that changed shape, autograd's batched gradients and torch's
tracers (jit.trace, torch.compile, torch.export, compiled autograd) get its
reference composite. A contract test asks for ``layer`` (and, where it
varies them, ``mode`` or ``vector``); ``tests/conftest.py`` parametrizes it
over every entry of ``LAYERS``. A new layer is one more entry: what it is
built from, its functional form and composite, its per-channel parameters,
the settings it runs in, and how to spy on its backward pass.

This file is loaded by ``tests/conftest.py`` (pytest's importlib mode puts
no test folder on sys.path); tests reach it through the ``layer`` fixtures.
"""

import dataclasses
import importlib
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from elu_triton import (
    BatchNormLearnableELU,
    BatchNormPReLU,
    LearnableELU,
    batch_norm_learnable_elu,
    batch_norm_prelu,
    learnable_elu,
    reference,
)
from elu_triton.backends import Backend

# fn(module) -> (x, *vectors) -> y, the module's other state (channel dim,
# running statistics, training, momentum, eps) bound.
Bind = Callable[[nn.Module], Callable[..., torch.Tensor]]


@dataclass(frozen=True)
class Layer:
    """One layer, as the contract tests see it.

    Args:
        name: the module's class name (test ids; absent from a traced graph).
        module_class: the module (or a function making one), built as
            ``module_class(channels, init=0.7, device=..., dtype=..., **mode)``.
        functional: its functional form, bound to a module's state: the
            eager route under test.
        composite: its reference composite in plain PyTorch ops, bound the
            same way: what the tracers must record.
        vectors: the module's per-channel parameters, in the functional's order.
        shareable: those of them that may hold one element for every channel.
        modes: the settings every contract holds in, name -> keyword
            arguments of the module (``training`` is set with ``.train()``).
        composite_ops: aten ops by which the composite shows in a traced graph.
        spy_backward: (backend, ran) -> that backend, whose backward pass of
            this layer appends the backend's name to ran first.
        resized_vector_error: a RuntimeError message of PyTorch's own that the
            backward may raise, rather than our ValueError, for a vector
            resized after the forward (a backend that leaves the check to
            the op it calls); None where every backend checks.
        edge_values: x values where the layer's math branches, planted at
            the start of every sample.
    """

    name: str
    module_class: Callable[..., nn.Module]
    functional: Bind
    composite: Bind
    vectors: tuple[str, ...]
    shareable: tuple[str, ...]
    modes: dict[str, dict[str, Any]]
    composite_ops: tuple[str, ...]
    spy_backward: Callable[[Backend, list], Backend]
    resized_vector_error: str | None = None
    edge_values: tuple[float, ...] = ()

    def build(
        self,
        channels: int = 3,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        mode: str | None = None,
        shared: tuple[str, ...] = (),
    ) -> nn.Module:
        """The module in mode (the first by default), its parameters perturbed off their init.

        shared: names of ``shareable`` vectors to give one element.
        """
        kwargs = dict(self.modes[mode or next(iter(self.modes))])
        training = kwargs.pop("training", True)
        torch.manual_seed(0)
        module = self.module_class(channels, init=0.7, device=device, dtype=dtype, **kwargs)
        for name in shared:
            setattr(module, name, nn.Parameter(getattr(module, name).detach()[:1].clone()))
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.rand_like(p) * 0.5)
            for name, buffer in module.named_buffers():
                if name == "running_mean":
                    buffer.uniform_(-1, 1)
                elif name == "running_var":
                    buffer.uniform_(0.5, 2)
        return module.train(training)

    def sample(
        self, module: nn.Module, shape: tuple[int, ...], device: str = "cpu",
        dtype: torch.dtype = torch.float32, scale: float = 2.0,
    ) -> torch.Tensor:  # fmt: skip
        """Random x for module: shape as (N, C, *), its C moved to the module's channel dim."""
        x = torch.randn(shape, device=device, dtype=dtype) * scale
        x.view(-1)[: len(self.edge_values)] = torch.tensor(self.edge_values, dtype=dtype)
        return x.movedim(1, self.channel_dim(module, x)).contiguous()

    def channel_dim(self, module: nn.Module, x: torch.Tensor) -> int:
        """The dim of x that holds module's channels, counted from 0."""
        return getattr(module, "channel_dim", 1) % x.dim()

    def parameters(self, module: nn.Module) -> tuple[torch.Tensor, ...]:
        """The module's per-channel parameters, in the functional's order."""
        return tuple(getattr(module, name) for name in self.vectors)

    def reference_twin(self, module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        """module's composite on module's own parameters and buffers (updated as the module's)."""
        composite = self.composite(module)
        return lambda x: composite(x, *self.parameters(module))


def _activation(module):
    return lambda x, alpha: learnable_elu(x, alpha, channel_dim=module.channel_dim)


def _activation_composite(module):
    return lambda x, alpha: reference.learnable_elu(x, alpha, channel_dim=module.channel_dim)


def _spy_activation_backward(backend, ran):
    """The backend, its activation backward recording: a field of the Backend itself."""

    def backward(*args):
        ran.append(backend.name)
        return backend.backward(*args)

    return dataclasses.replace(backend, backward=backward)


def _batch_norm_args(module):
    """The module's (running_mean, running_var) and (training, momentum, eps), as it passes them."""
    momentum = 0.0 if module.momentum is None else module.momentum
    return (module.running_mean, module.running_var), (module.training, momentum, module.eps)


def _batch_norm(functional):
    """Bind: the fused functional (F.batch_norm's arguments, then the activation's parameter)."""

    def bind(module):
        def fused(x, weight, bias, param):
            running, flags = _batch_norm_args(module)
            return functional(x, *running, weight, bias, param, *flags)

        return fused

    return bind


def _batch_norm_composite(activation):
    """Bind: F.batch_norm, then the activation's reference y = activation(z, param)."""

    def bind(module):
        def composite(x, weight, bias, param):
            running, flags = _batch_norm_args(module)
            return activation(F.batch_norm(x, *running, weight, bias, *flags), param)

        return composite

    return bind


def _per_channel_prelu(channels: int, **kwargs) -> BatchNormPReLU:
    """BatchNormPReLU with one slope per channel (its default, as nn.PReLU's, is one for all)."""
    return BatchNormPReLU(channels, num_parameters=channels, **kwargs)


def _spy_batch_norm_backward(backend, ran):
    """The backend, its fused batch norm's backward recording: a module its batch_norm names.

    The spy module is a copy of the backend's module of passes, registered
    under a name of its own (a backend names its passes by module name).
    """
    passes = importlib.import_module(backend.batch_norm)
    spy = types.ModuleType(f"{passes.__name__}_spy_{len(sys.modules)}")
    spy.__dict__.update({k: v for k, v in vars(passes).items() if not k.startswith("__")})

    def backward(*args, **kwargs):
        ran.append(backend.name)
        return passes.backward(*args, **kwargs)

    spy.backward = backward
    sys.modules[spy.__name__] = spy  # (a few per test session, each a handful of names)
    return dataclasses.replace(backend, batch_norm=spy.__name__)


LAYERS = (
    Layer(
        name="LearnableELU",
        module_class=LearnableELU,
        functional=_activation,
        composite=_activation_composite,
        vectors=("alpha",),
        shareable=("alpha",),
        modes={"channels-dim-1": {}, "channels-last-dim": {"channel_dim": -1}},
        composite_ops=("expm1",),
        spy_backward=_spy_activation_backward,
        # The PyTorch backend's backward reuses the forward's checked
        # launch; its F.prelu then refuses the resized alpha itself.
        resized_vector_error="Mismatch of parameter numbers and input channel size",
        edge_values=(0.0, -1e-7, -30.0, 1e-7),  # where expm1 takes over from x, and its tail
    ),
    Layer(
        name="BatchNormLearnableELU",
        module_class=BatchNormLearnableELU,
        functional=_batch_norm(batch_norm_learnable_elu),
        composite=_batch_norm_composite(reference.learnable_elu),
        vectors=("weight", "bias", "alpha"),
        shareable=("alpha",),
        modes={"train": {"training": True}, "eval": {"training": False}},
        composite_ops=("batch_norm", "expm1"),
        spy_backward=_spy_batch_norm_backward,
    ),
    Layer(
        name="BatchNormPReLU",
        module_class=_per_channel_prelu,
        functional=_batch_norm(batch_norm_prelu),
        # F.prelu with the weight in z's dtype: F.prelu itself refuses bf16 z
        # with an fp32 weight (autocast's pairing), which the fused layer takes.
        composite=_batch_norm_composite(lambda z, w: F.prelu(z, w.to(z.dtype))),
        vectors=("weight", "bias", "prelu_weight"),
        shareable=("prelu_weight",),
        modes={"train": {"training": True}, "eval": {"training": False}},
        composite_ops=("batch_norm", "prelu"),
        spy_backward=_spy_batch_norm_backward,
    ),
)
