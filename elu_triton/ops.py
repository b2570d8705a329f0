"""torch.library custom ops: elu_triton::forward and elu_triton::backward.

Each op validates its arguments, then runs the backend that serves the
device (``backends/``): the Triton kernels on CUDA (and on the CPU under
TRITON_INTERPRET=1), the same math in eager PyTorch ops elsewhere. Fake
(meta) implementations let torch.compile and torch.export trace the ops;
forward's autograd formula calls backward, which saves only x (and alpha),
never y. Backward has an autograd formula of its own (``second_order.py``),
recorded only under create_graph=True, for second-order gradients.
"""

import torch

from . import backends
from .checks import check_grad_output, check_inputs
from .routes import batched_grads, is_batched_gradient
from .second_order import double_backward, save_for_double_backward

PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
is_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


def can_skip_dispatcher(
    a: torch.Tensor, b: torch.Tensor | None = None, c: torch.Tensor | None = None
) -> bool:
    """Whether eager code may call the op bodies directly on a (b, c), by this thread's state.

    Only for plain tensors outside any tracing: fake, functional and other
    subclass tensors (torch.compile, torch.export, opcheck), dispatch modes
    (a FlopCounterMode, make_fx) and functorch's wrappers must meet the op,
    whose fake implementation they need or whose dispatch they watch.
    (Spelled out for up to three tensors: every eager call runs this.)
    """
    if torch.compiler.is_dynamo_compiling() or torch._C._len_torch_dispatch_stack():
        return False
    return (
        type(a) in PLAIN_TENSOR_TYPES
        and not is_functorch_wrapped(a)
        and (b is None or (type(b) in PLAIN_TENSOR_TYPES and not is_functorch_wrapped(b)))
        and (c is None or (type(c) in PLAIN_TENSOR_TYPES and not is_functorch_wrapped(c)))
    )


def run_forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The forward op's body, also called directly by the eager path.

    Going through the dispatcher costs tens of microseconds a call, more than
    the kernel itself on activations of a few MB, so eager code skips it.
    """
    backend, plan = backends.prepare(x, alpha)  # checks the inputs
    return backend.forward(x, alpha, plan)


def run_backward(
    grad_output: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward op's body: dalpha is an empty (0,) tensor without compute_dalpha."""
    backend, plan = backends.prepare(x, alpha)  # checks the inputs
    check_grad_output(grad_output, x)
    dx, dalpha = backend.backward(grad_output, x, alpha, compute_dalpha, plan)
    return dx, dalpha if dalpha is not None else alpha.new_empty(0)


@torch.library.custom_op("elu_triton::forward", mutates_args=())
def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y = x if x > 0 else alpha[c] * expm1(x); y has x's dtype and memory format."""
    return run_forward(x, alpha)


@forward.register_fake
def _forward_fake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    check_inputs(x, alpha)
    return torch.empty_like(x)


@torch.library.custom_op("elu_triton::backward", mutates_args=())
def backward(
    grad_output: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dx, dalpha) of the forward at (x, alpha) for upstream gradient grad_output.

    grad_output is read in x's dtype (autograd passes it in y's, which is
    x's). dalpha is (alpha.numel(),) in alpha's dtype; it is an empty (0,) tensor when
    compute_dalpha is False (custom ops cannot return None).
    """
    return run_backward(grad_output, x, alpha, compute_dalpha)


@backward.register_fake
def _backward_fake(grad_output, x, alpha, compute_dalpha):
    check_inputs(x, alpha)
    check_grad_output(grad_output, x)
    # (alpha.numel(),): a 0-D alpha's dalpha is (1,), which autograd sums to ().
    dalpha = alpha.new_empty(alpha.numel() if compute_dalpha else 0)
    return torch.empty_like(x), dalpha


torch.library.register_autograd(
    "elu_triton::backward", double_backward, setup_context=save_for_double_backward
)


def grads_for_inputs(
    grad_output: torch.Tensor,
    x: torch.Tensor,
    alpha: torch.Tensor,
    needs_input_grad: tuple[bool, ...],
    prepared: backends.Prepared | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(dx, dalpha) as autograd wants them: None for inputs that need no gradient.

    prepared: what ran the forward (so that use_backend reaches a backward
    that runs after its block, or on autograd's device threads); None to
    prepare now.
    """
    needs_dx, needs_dalpha = needs_input_grad[:2]  # (the Function's has a third: _plain)
    if not (needs_dx or needs_dalpha):
        return None, None
    if is_batched_gradient(grad_output):  # is_grads_batched=True, jacobian(vectorize=True)
        return batched_grads(grad_output, x, alpha, needs_dx, needs_dalpha)
    # Under create_graph=True (grad mode on) the op records its second-order
    # formula. A forward that was prepared found x and alpha plain already.
    if not torch.is_grad_enabled() and (
        can_skip_dispatcher(grad_output)
        if prepared is not None
        else can_skip_dispatcher(grad_output, x, alpha)
    ):
        # x and alpha were checked by the forward, and autograd hands over a
        # gradient of y's shape, device and dtype; but grad_fn.apply(dy) does not.
        if grad_output.shape != x.shape:
            check_grad_output(grad_output, x)
        backend, plan = prepared if prepared is not None else backends.prepare(x, alpha)
        dx, dalpha = backend.backward(grad_output, x, alpha, bool(needs_dalpha), plan)
    else:
        dx, dalpha = torch.ops.elu_triton.backward(grad_output, x, alpha, bool(needs_dalpha))
    return (dx if needs_dx else None), (dalpha if needs_dalpha else None)


def save_for_backward(ctx, inputs, output) -> None:
    """Autograd setup: keep x and alpha, never y (no more memory than nn.ELU)."""
    x, alpha = inputs
    ctx.save_for_backward(x, alpha)


def backward_formula(ctx, grad_output):
    """Autograd backward of the forward: runs elu_triton::backward."""
    x, alpha = ctx.saved_tensors
    return grads_for_inputs(grad_output, x, alpha, ctx.needs_input_grad)


torch.library.register_autograd(
    "elu_triton::forward", backward_formula, setup_context=save_for_backward
)
