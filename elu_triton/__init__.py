"""elu_triton: an ELU with a learnable per-channel alpha, with fused Triton kernels.

    y = x                     if x > 0
      = alpha[c] * expm1(x)   if x <= 0

Public API: ``learnable_elu`` (functional), ``LearnableELUFunction``
(autograd Function), ``LearnableELU`` (nn.Module), ``LazyLearnableELU`` (its
channel count taken from the first input), ``replace_activations`` (swaps a
built model's ReLU/ELU/PReLU modules for LearnableELU layers), the custom ops
``torch.ops.elu_triton.forward`` / ``torch.ops.elu_triton.backward``, and
``elu_triton.reference.learnable_elu`` (pure PyTorch); and BatchNorm fused
with the activation: ``BatchNormLearnableELU``, ``batch_norm_learnable_elu``,
and with PReLU: ``BatchNormPReLU``, ``batch_norm_prelu``;
``fuse_batchnorm`` with ``batchnorm_fusion_plan`` (what it would do) and
``unfused_state_dict`` (the keys from before) (``elu_triton.batch_norm``,
``elu_triton.fuse``).

Files, one job each:

Shared core (the activation and the batch norm both use it)
    checks.py                     argument checks, raised on the host before any work
    layout.py                     how the kernels see a tensor: an (R, K) matrix
    channels.py                   another channel dim, moved to dim 1 as a view
    precision.py                  the arithmetic dtype, for every backend and the reference
    routes.py                     the questions that decide a call's route (traced, plain...)
    backends/__init__.py          the registry: which backend runs a call, and ``prepare``
    backends/base.py              the backend protocol, the empty backend, ``dalpha_shape``
    backends/device_guard.py      running on a tensor's device, with negated views resolved
    backends/triton_config.py     the Triton launch constants: tiles, warps, grid
    backends/triton_kernels.py    the Triton backend: allocation and launches
    backends/torch_ops.py         the PyTorch backend: the same math in eager ops
    switches.py                   tuning candidates' environment switches, read once at import
    kernels/                      device code only (installed as ``elu_triton.kernels``)
    _version.py                   the version, written once

The activation
    module.py                     ``LearnableELU``, the nn.Module (following nn.PReLU)
    lazy.py                       ``LazyLearnableELU``: channels from the first input
    function.py                   ``learnable_elu``, the autograd Function, the route table
    eager.py                      the bodies plain tensors run without the dispatcher
    ops.py                        the custom ops, their fakes and autograd formulas
    compiled_backward.py          a candidate: under torch.compile, the Triton backward as a triton_op
    second_order.py               the backward's own gradient (create_graph=True)
    reference.py                  the pure-PyTorch reference (tests, benchmarks, the demo)
    convert.py                    ``replace_activations``: LearnableELU into a built model

The batch norm
    batch_norm/__init__.py        ``BatchNormLearnableELU``, ``BatchNormPReLU``; its docstring tours the folder
    batch_norm/module.py          the modules, BatchNorm{1,2,3}d then LearnableELU or nn.PReLU as one
    batch_norm/activations.py     the table of fused activations: one row each (helpers, reference, name)
    batch_norm/checks.py          its argument checks
    batch_norm/function.py        its functional form, routes and autograd Function
    batch_norm/ops.py             its custom ops
    batch_norm/eager.py           its eager forward and backward (the ops' bodies), one backward seam
    batch_norm/statistics.py      per-channel host math, O(C)
    batch_norm/torch_ops.py       its passes in eager ops (the torch backend's)
    batch_norm/triton_kernels.py  its passes' allocation and kernel launches (the triton backend's)
    batch_norm/second_order.py    its composite, differentiated again
    fuse/__init__.py              ``fuse_batchnorm``: BatchNorm then LearnableELU or nn.PReLU, wherever, into one layer
    fuse/kinds.py                 the table: activation class -> fused layer; norm-act classes
    fuse/rules.py                 the rules a pair must pass to be swapped
    fuse/tracing.py               pairs inside forward(), traced with torch.fx in both modes
    fuse/plan.py                  the candidates, one verdict each (``batchnorm_fusion_plan``)
    fuse/checkpoints.py           unfused keys load into a fused model; ``unfused_state_dict``

Tools
    demo/                         the demo (``elu-triton-demo``); its docstring tours it
    codegen_cases.py              the codegen checks' cases: kernel, dtype, layout, GPU target
    codegen.py                    compiling those cases ahead of time, without a GPU
    assembly.py                   reading the PTX, cubins and AMDGCN that come out
    environment.py                the environment report for bug reports
    __main__.py                   ``python -m elu_triton [--json]``: prints that report
"""

from . import ops as _ops  # noqa: F401  (registers torch.ops.elu_triton.*)
from ._version import __version__
from .batch_norm import (
    BatchNormLearnableELU,
    BatchNormPReLU,
    batch_norm_learnable_elu,
    batch_norm_prelu,
)
from .convert import replace_activations
from .function import LearnableELUFunction, learnable_elu
from .fuse import batchnorm_fusion_plan, fuse_batchnorm, unfused_state_dict
from .lazy import LazyLearnableELU
from .module import LearnableELU

__all__ = [
    "__version__",
    "BatchNormLearnableELU",
    "BatchNormPReLU",
    "LazyLearnableELU",
    "LearnableELU",
    "LearnableELUFunction",
    "batch_norm_learnable_elu",
    "batch_norm_prelu",
    "batchnorm_fusion_plan",
    "fuse_batchnorm",
    "learnable_elu",
    "replace_activations",
    "unfused_state_dict",
]
