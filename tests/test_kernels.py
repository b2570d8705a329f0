"""The correctness sweep: forward, dx and dalpha against float64 math.

Through the Triton kernels on CUDA and in the interpreter (TRITON_INTERPRET=1,
as in CI); through the PyTorch backend on the CPU otherwise. Fresh random
inputs every run.
"""

import decimal

import pytest
import torch

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
CHANNELS = [1, 3, 7, 20, 129]


def shapes():
    yield (37,)  # rank 1: one channel
    for c in CHANNELS:
        yield (5, c)
        yield (3, c, 11)
        yield (2, c, 5, 7)
        yield (2, c, 3, 5, 3)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", list(shapes()), ids=str)
@pytest.mark.parametrize("shared_alpha", [False, True], ids=["per_channel", "shared"])
def test_matches_reference(shape, dtype, shared_alpha, device, check_against_reference, make_alpha):
    x = torch.randn(shape, device=device).mul_(3).to(dtype)
    channels = 1 if shared_alpha or len(shape) < 2 else shape[1]
    check_against_reference(x, make_alpha(channels, device=device))


@pytest.mark.parametrize("alpha_dtype", DTYPES, ids=str)
@pytest.mark.parametrize("x_dtype", DTYPES, ids=str)
def test_mixed_dtypes(x_dtype, alpha_dtype, device, check_against_reference, make_alpha):
    x = torch.randn(3, 20, 9, 5, device=device).to(x_dtype)
    check_against_reference(x, make_alpha(20, alpha_dtype, device))


def layouts():
    """(name, function of a random generator -> x) for each memory layout."""
    yield "contiguous", lambda d: torch.randn(4, 20, 9, 7, device=d)
    yield (
        "channels_last",
        lambda d: torch.randn(4, 20, 9, 7, device=d).to(memory_format=torch.channels_last),
    )
    yield (
        "channels_last_3d",
        lambda d: torch.randn(2, 7, 3, 5, 9, device=d).to(memory_format=torch.channels_last_3d),
    )
    # Dense permutations that are neither: channel dim outermost, and H fastest.
    yield "channel_outermost", lambda d: torch.randn(20, 4, 9, 7, device=d).transpose(0, 1)
    yield "permuted", lambda d: torch.randn(7, 4, 20, 9, device=d).permute(1, 2, 3, 0)
    yield "transposed_2d", lambda d: torch.randn(129, 33, device=d).t()
    # Not dense: slices, a step, an expanded (stride-0) batch dim.
    yield "sliced", lambda d: torch.randn(4, 40, 9, 8, device=d)[1:, ::2, :, 1:]
    yield "expanded", lambda d: torch.randn(1, 20, 9, 7, device=d).expand(3, 20, 9, 7)


LAYOUTS = dict(layouts())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_memory_layouts(layout, dtype, device, check_against_reference, make_alpha):
    x = LAYOUTS[layout](device).to(dtype)
    y, dx, _ = check_against_reference(x, make_alpha(x.shape[1], device=device))
    if layout not in ("sliced", "expanded"):
        # Dense inputs run in place: outputs come back in the input's layout.
        assert y.stride() == x.stride() and dx.stride() == x.stride()


@pytest.mark.parametrize(
    "make_dy",
    [
        lambda y: torch.ones(()).to(y).expand_as(y),  # what y.sum().backward() sends
        lambda y: torch.randn(y.shape[::-1]).to(y).permute(3, 2, 1, 0),  # other layout
        lambda y: torch.randn(*y.shape[:-1], 2 * y.shape[-1]).to(y)[..., ::2],  # strided
        lambda y: torch.randn_like(y).to(memory_format=torch.channels_last),
    ],
    ids=["expanded", "permuted", "strided", "channels_last"],
)
def test_gradient_layouts(make_dy, device, check_against_reference, make_alpha):
    x = torch.randn(3, 20, 5, 7, device=device)
    dy = make_dy(x)
    assert dy.shape == x.shape
    check_against_reference(x, make_alpha(20, device=device), dy)


def test_negated_views(device, check_against_reference, make_alpha):
    """Lazily negated views (the imaginary part of a conj(), say) are read with their sign."""
    negated = torch._neg_view  # a dense view with the neg bit: its memory holds -value
    x = negated(torch.randn(3, 20, 5, 7, device=device))
    alpha = negated(-make_alpha(20, device=device))
    assert x.is_neg() and alpha.is_neg()
    check_against_reference(x, alpha, negated(torch.randn_like(x)))
    public = torch.randn(1, 1, dtype=torch.complex64, device=device).conj().imag  # 1 element: dense
    assert public.is_neg()
    check_against_reference(public, make_alpha(1, device=device))


def test_sum_backward(device, make_alpha):
    # The stride-0 gradient of y.sum().backward(), end to end.
    x = torch.randn(2, 20, 6, 6, device=device, requires_grad=True)
    alpha = make_alpha(20, device=device).requires_grad_()
    from elu_triton import learnable_elu, reference

    learnable_elu(x, alpha).sum().backward()
    x64 = x.detach().double().requires_grad_()
    a64 = alpha.detach().double().requires_grad_()
    reference.learnable_elu(x64, a64).sum().backward()
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(alpha.grad.double(), a64.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_boundary_values(dtype, device, check_against_reference, make_alpha):
    # Exact boundaries: x = 0 takes the negative branch (dx = alpha * dy),
    # x = +-1 sit on either side of it.
    x = torch.tensor([-1.0, 0.0, -0.0, 1.0] * 5, device=device, dtype=dtype).reshape(5, 4)
    alpha = make_alpha(4, device=device)
    y, dx, _ = check_against_reference(x, alpha, torch.ones_like(x))
    assert torch.all(y[:, 1:3] == 0)
    assert torch.all(dx[:, 3] == 1) and torch.all(y[:, 3] == 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_tiny_negative_relative_error(dtype, device, log_uniform):
    """|x| from 1e-10 to 1e-3, where exp(x) - 1 loses most of its digits."""
    from elu_triton import learnable_elu

    x64 = -log_uniform(4096, 1e-10, 1e-3)
    x = x64.to(dtype).to(device)
    y = learnable_elu(x, torch.ones(1, dtype=dtype, device=device))
    expected = torch.expm1(x.double().cpu())
    rel = ((y.double().cpu() - expected) / expected).abs().max().item()
    assert rel < (1e-6 if dtype == torch.float32 else 1e-14), rel


# Where exp(x) leaves the normal numbers (ln 2^-126 = -87.34, ln 2^-1022 =
# -708.40) and where it rounds to 0 (ln 2^-150 = -103.97, ln 2^-1075 = -745.13).
UNDERFLOW_WINDOWS = {
    torch.float32: [(-88.0, -86.0), (-105.0, -103.0)],
    torch.float64: [(-709.0, -707.0), (-747.0, -744.0)],
}
# Large enough that dy * exp(x) is a normal number where exp(x) is subnormal.
LARGE_DY = {torch.float32: 1e30, torch.float64: 1e300}


def dx_error_ratios(x, dx, dy):
    """Per element, |dx - dy*exp(x)| over its bound (alpha = 1); at most 1 passes.

    bound = rtol * |dy*exp(x)| + |dy| * spacing. rtol is the dtype's relative
    promise. spacing is the smallest subnormal (2^-149, 2^-1074): below the
    smallest normal, exp(x) has that fixed spacing, so its error there is
    absolute: half a spacing for rounding s*p + s (one rounding even unfused,
    as the sum of two numbers on that grid is exact), the polynomial's error
    times s <= 2^-126 (a quarter spacing), and at worst 0.71 spacings where
    k = -150 (-1075) gives 0 for true values up to 2^-149.5. One spacing covers
    each, times |dy|: alpha = 1 keeps alpha * exp(x) exact, and the product
    with dy rounds within rtol.
    The truth: float64 math for fp32; for fp64, 40-digit decimals, as float64
    would round the subnormal results it checks.
    """
    rtol = 1e-6 if x.dtype == torch.float32 else 1e-14
    spacing = torch.finfo(x.dtype).smallest_normal * torch.finfo(x.dtype).eps
    x, dx, dy = x.detach().cpu(), dx.cpu(), dy.cpu()
    if x.dtype == torch.float32:
        truth = dy.double() * torch.exp(x.double())
        return (dx.double() - truth).abs() / (rtol * truth.abs() + dy.double().abs() * spacing)
    D = decimal.Decimal
    with decimal.localcontext(decimal.Context(prec=40)):
        truths = (D(dy_i) * D(x_i).exp() for x_i, dy_i in zip(x.tolist(), dy.tolist()))
        return torch.tensor([
            float(abs(D(dx_i) - t) / (D(rtol) * abs(t) + abs(D(dy_i)) * D(spacing)))
            for t, dx_i, dy_i in zip(truths, dx.tolist(), dy.tolist())
        ], dtype=torch.float64)  # fmt: skip


def assert_dx_is_dy_exp(x, dx, dy):
    ratios = dx_error_ratios(x, dx, dy)
    worst = int(ratios.argmax())
    assert ratios[worst] <= 1, (
        f"x = {x[worst].item()!r}, dy = {dy[worst].item()!r}: dx = {dx[worst].item()!r}, "
        f"{ratios[worst]:.3g} times the allowed error"
    )


@pytest.mark.parametrize("dy_size", ["dy_1", "dy_large"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_whole_negative_range(dtype, dy_size, device, log_uniform):
    """Every binade from -1e-30 down past the underflow of exp, and 4096 points
    across each of UNDERFLOW_WINDOWS: y relative to float64, dx to exact math."""
    from elu_triton import learnable_elu

    windows = [
        torch.empty(4096, dtype=torch.float64).uniform_(lo, hi)
        for lo, hi in UNDERFLOW_WINDOWS[dtype]
    ]
    x = torch.cat([-log_uniform(1 << 15, 1e-30, 800.0), *windows]).to(dtype).to(device)
    x.requires_grad_()
    y = learnable_elu(x, torch.ones(1, dtype=dtype, device=device))
    expected = torch.expm1(x.detach().double().cpu())
    rel = ((y.detach().double().cpu() - expected) / expected).abs().max().item()
    assert rel < (1e-6 if dtype == torch.float32 else 1e-14), rel
    dy = torch.full_like(y, LARGE_DY[dtype] if dy_size == "dy_large" else 1.0)
    (dx,) = torch.autograd.grad(y, x, dy)
    assert_dx_is_dy_exp(x, dx, dy)


@pytest.mark.parametrize(
    ("dtype", "x", "dy"), [(torch.float32, -87.2, 1e30), (torch.float64, -708.2, 1.0)], ids=str
)
def test_exp_not_flushed_above_smallest_normal(dtype, x, dy, device):
    """Issue 11 item 5: the kernels flushed exp(x) to 0 at x < -87 (-708)."""
    from elu_triton import learnable_elu

    x = torch.tensor([x], dtype=dtype, device=device, requires_grad=True)
    dy = torch.tensor([dy], dtype=dtype, device=device)
    (dx,) = torch.autograd.grad(learnable_elu(x, torch.ones(1, dtype=dtype, device=device)), x, dy)
    assert dx.item() != 0
    assert_dx_is_dy_exp(x, dx, dy)


@pytest.mark.kernels
def test_exp_near_underflow_every_float32():
    """All 2.5 million fp32 x in [-105, -86] through the kernels: dy = 2^100
    scales exp(x) into dx without rounding, so dx shows exp's own error."""
    from elu_triton import learnable_elu

    device = "cuda" if torch.cuda.is_available() else "cpu"
    first, last = torch.tensor([-86.0, -105.0]).view(torch.int32).tolist()
    x = torch.arange(first, last + 1, dtype=torch.int32).view(torch.float32).to(device)
    x.requires_grad_()
    dy = torch.full_like(x, 2.0**100)
    (dx,) = torch.autograd.grad(learnable_elu(x, torch.ones(1, device=device)), x, dy)
    assert_dx_is_dy_exp(x, dx, dy)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_special_values(dtype, device):
    from elu_triton import learnable_elu

    inf, nan = float("inf"), float("nan")
    # Column j holds channel j; channel 2 has a NaN, the others do not.
    x = torch.tensor(
        [[inf, -inf, nan, -1.0], [-inf, inf, 1.0, -200.0], [1e-30, -1e-30, 0.5, -0.5]],
        dtype=dtype, device=device, requires_grad=True,
    )  # fmt: skip
    # Alphas exact in every dtype, so -alpha can be compared bit for bit.
    alpha = torch.tensor([0.75, 1.5, 1.25, 0.5], device=device, requires_grad=True)
    y = learnable_elu(x, alpha)
    y.backward(torch.ones_like(y))
    assert y[0, 0] == inf and y[1, 1] == inf
    assert y[0, 1] == -1.5 and y[1, 0] == -0.75  # x = -inf gives -alpha
    assert y[0, 2].isnan() and not y[[0, 1, 2], [0, 1, 3]].isnan().any()
    assert x.grad[0, 1] == 0 and x.grad[1, 0] == 0  # d/dx at -inf
    assert x.grad[0, 0] == 1 and x.grad[1, 1] == 1  # d/dx at +inf
    assert x.grad[0, 2].isnan() and not x.grad[:, [0, 1, 3]].isnan().any()
    # NaN poisons its own channel's dalpha only; +-inf give expm1 = -1 and 0.
    assert alpha.grad[2].isnan()
    assert alpha.grad[0] == -1 and alpha.grad[1] == -1
    expected = torch.expm1(x.detach()[:, 3].double()).sum().float()
    torch.testing.assert_close(alpha.grad[3], expected, rtol=2.0**-7, atol=0)


def test_no_overflow_warnings(device, make_alpha, recwarn):
    from elu_triton import learnable_elu

    x = torch.tensor([-1e38, -1e5, -800.0, 80.0, 1e38, float("inf"), -float("inf")],
                     device=device, requires_grad=True)  # fmt: skip
    learnable_elu(x, make_alpha(1, device=device)).sum().backward()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)], [
        str(w.message) for w in recwarn
    ]


@pytest.mark.parametrize("shape", [(0,), (0, 3, 4), (2, 3, 0), (2, 0)], ids=str)
def test_empty(shape, device):
    from elu_triton import learnable_elu

    x = torch.randn(shape, device=device, requires_grad=True)
    channels = shape[1] if len(shape) > 1 else 1
    alpha = torch.rand(max(channels, 1) if channels else 1, device=device, requires_grad=True)
    y = learnable_elu(x, alpha)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert torch.equal(alpha.grad, torch.zeros_like(alpha))
