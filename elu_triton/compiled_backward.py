"""Under torch.compile, the fused Triton backward as a ``torch.library.triton_op``: a candidate.

With ``ELU_TRITON_COMPILED_BACKWARD=triton_op`` (``switches.py``) a call
that dynamo traces takes ``learnable_elu`` below instead of the reference
composite (``function.py``'s route table). Its forward is still the
composite, which inductor fuses with its neighbours; its backward is the
fused Triton kernel, registered as the triton_op ``elu_triton::backward_kernel``.
Unlike a custom op, whose body the compiler never sees, a triton_op shows
inductor its body: the kernel (a user-defined Triton kernel in its graph)
and the partials' sum (an aten op it may fuse). On the H200 the composite's
compiled backward ran at 0.5-0.8x the fused kernel's speed (bench/RESULTS.md);
whether the kernel inside a compiled graph keeps its speed is what the GPU
run measures (``bench.candidates``).

Inductor compiles a user-defined kernel from its source: the kernel's and
that of every ``@triton.jit`` function it calls, with their constexpr
globals, but no other global. Our tile helpers build a ``Tile`` (a
NamedTuple, ``kernels/tiles.py``), so ``_with_tile_import`` appends its
import to the source inductor emits for our kernels (last: inductor puts
its decorators right above the source's first line). Without it the
compiled graph fails on the GPU ("Tile" is not defined); the test compiles
the emitted source for sm_90 on the CPU.

torch 2.11 and 2.13 both have ``torch.library.triton_op`` and
``wrap_triton``. Under TRITON_INTERPRET=1 the kernel is Triton's interpreted
function, which ``wrap_triton`` cannot trace (2.11 refuses it, 2.13 hands it
back unwrapped): the op then launches it directly, which eager calls can
run and a compiled graph cannot. Shapes are specialized (each distinct
layout compiles anew): the launch's tiles are constants of the kernel.
"""

import functools

import torch
from torch._inductor.codegen import wrapper as inductor_wrapper
from torch.library import triton_op, wrap_triton

from . import reference
from .backends.base import device_kind
from .backends.triton_config import COMPILE_OPTIONS, kernel_args_for
from .backends.triton_kernels import INTERPRETED
from .kernels import learnable_elu_backward_kernel
from .layout import dense, with_layout_of
from .routes import dual, transformed

# The kernels' constants, less the compile options: the traced kernel is
# compiled by inductor with its own (a launch keyword it does not know would
# reach the kernel as an argument).
_OPTIONS = frozenset(COMPILE_OPTIONS)


_TILE_IMPORT = "\nfrom elu_triton.kernels.tiles import Tile\n"


def _with_tile_import(emit):
    """inductor's source of a user-defined kernel, with tiles.Tile imported for ours."""

    @functools.wraps(emit)
    def emitted(kernel, *args, **kwargs):  # (kernel) on torch 2.11, (kernel, epilogue) on 2.13
        source = emit(kernel, *args, **kwargs)
        fn = getattr(kernel, "fn", kernel)
        if getattr(fn, "__module__", "").startswith("elu_triton.kernels") and "Tile(" in source:
            source += _TILE_IMPORT
        return source

    emitted.imports_tile = True
    return emitted


_EMIT = "user_defined_triton_kernel_transitive_closure_source_code"
if not getattr(getattr(inductor_wrapper, _EMIT), "imports_tile", False):  # once per process
    setattr(inductor_wrapper, _EMIT, _with_tile_import(getattr(inductor_wrapper, _EMIT)))


def _launchable(kernel):
    """The kernel as the op's body may launch it: wrapped for tracing, unless interpreted."""
    return kernel if INTERPRETED else wrap_triton(kernel)


@triton_op("elu_triton::backward_kernel", mutates_args=())
def backward_kernel(
    grad_output: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dx, dalpha) of learnable_elu at (x, alpha): the Triton backward kernel and the partials' sum.

    As ``elu_triton::backward``: dx in x's dtype and memory format (x copied
    first where it is not dense), dalpha of shape (alpha.numel(),) in
    alpha's dtype, or an empty (0,) tensor without compute_dalpha.
    """
    x = dense(x)
    grad_output = with_layout_of(grad_output, x)
    num_alpha = int(alpha.numel())
    # Plain ints: under tracing a size may be symbolic; int() specializes it.
    args = kernel_args_for(
        tuple(int(s) for s in x.shape), tuple(int(s) for s in x.stride()),
        x.dtype, device_kind(x), num_alpha,
    )  # fmt: skip
    partials_shape = args.config.dalpha_partials_shape if compute_dalpha else (1,)
    dalpha_partials = x.new_empty(partials_shape, dtype=args.partials_dtype)
    dx = torch.empty_like(x)
    constants = {k: v for k, v in args.constants.items() if k not in _OPTIONS}
    _launchable(learnable_elu_backward_kernel)[args.config.grid](
        grad_output, x, alpha.contiguous(), dx, dalpha_partials, *args.sizes,
        COMPUTE_DALPHA=compute_dalpha, **constants,
    )  # fmt: skip
    if not compute_dalpha:
        return dx, alpha.new_empty(0)
    return dx, dalpha_partials.sum(1).to(alpha.dtype)


class CompositeForwardKernelBackward(torch.autograd.Function):
    """The reference composite forward; the backward_kernel op as its backward. Saves x and alpha."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, alpha)
        return reference.learnable_elu(x, alpha)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, alpha = ctx.saved_tensors
        needs_dx, needs_dalpha = ctx.needs_input_grad
        dx, dalpha = torch.ops.elu_triton.backward_kernel(grad_output, x, alpha, needs_dalpha)
        return (dx if needs_dx else None), (dalpha if needs_dalpha else None)


def learnable_elu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y for a call that dynamo traces, channels on dim 1: the composite under torch.func or forward AD.

    (A torch.func transform or a tangent inside the compiled region needs
    plain ops, as it does outside one; the reference checks the inputs.)
    """
    if transformed() or dual(x, alpha):
        return reference.learnable_elu(x, alpha)
    return CompositeForwardKernelBackward.apply(x, alpha)
