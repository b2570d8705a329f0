"""The inductor-compiled CPU path: compiled for real, one graph each, and a clean fallback.

Its values are checked with every device test ("cpu-pytorch" under the
interpreter, "cpu" otherwise); these tests cover what is particular to it.
"""

import subprocess
import sys

import pytest
import torch

from elu_triton import cpu, cpu_compiled, cpu_eager


def _sample_args():
    x_rows = torch.randn(6, 5)  # (outer=2) x (C=3) rows of K=5
    dy_rows = torch.randn(6, 5)
    x_columns, dy_columns = torch.randn(4, 3), torch.randn(4, 3)
    alpha = torch.rand(3)
    x_shared, dy_shared = torch.randn(7), torch.randn(7)
    return {
        cpu_compiled._forward_channel_per_row: (x_rows, alpha),
        cpu_compiled._backward_channel_per_row: (dy_rows, x_rows, alpha),
        cpu_compiled._forward_channel_per_column: (x_columns, alpha),
        cpu_compiled._backward_channel_per_column: (dy_columns, x_columns, alpha),
        cpu_compiled._forward_shared: (x_shared, alpha[:1]),
        cpu_compiled._backward_shared: (dy_shared, x_shared, alpha[:1]),
    }


@pytest.mark.parametrize("function", list(_sample_args()), ids=lambda f: f.__name__)
def test_each_function_is_one_graph(function):
    explained = torch._dynamo.explain(function)(*_sample_args()[function])
    assert explained.graph_count == 1 and explained.graph_break_count == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_compiled_path_agrees_with_eager_path(dtype, memory_format):
    x = torch.randn(2, 5, 6, 7).to(dtype=dtype, memory_format=memory_format)
    dy = torch.randn_like(x)
    alpha = torch.rand(5)
    y = cpu_compiled.forward(x, alpha)
    dx, dalpha = cpu_compiled.backward(dy, x, alpha, True)
    y_eager = cpu_eager.forward(x, alpha)
    dx_eager, dalpha_eager = cpu_eager.backward(dy, x, alpha, True)
    # Both round the same fp32 (fp64) values once; the sums may differ in order.
    ulp = 2.0**-7 if dtype == torch.bfloat16 else 2.0**-10 if dtype == torch.float16 else 1e-6
    torch.testing.assert_close(y, y_eager, rtol=ulp, atol=1e-30)
    torch.testing.assert_close(dx, dx_eager, rtol=ulp, atol=1e-30)
    torch.testing.assert_close(dalpha, dalpha_eager, rtol=1e-5, atol=1e-5)
    assert y.stride() == x.stride() and dx.stride() == x.stride()
    assert not y._is_view() and not dx._is_view()


def test_serves_cpu_tensors_up_to_32_bits():
    assert all(cpu_compiled.serves(torch.empty(1, dtype=d)) for d in (torch.float32, torch.bfloat16))
    assert not cpu_compiled.serves(torch.empty(1, dtype=torch.float64))  # aten sums it better
    assert not cpu_compiled.serves(torch.empty(1, device="meta"))


@pytest.mark.parametrize("path", ["compiled", "eager"])
@pytest.mark.parametrize(
    "shape,channels_last,num_alpha",
    [((64, 4, 64, 64), True, 4), ((64, 4, 64, 64), False, 1), ((1 << 15, 4, 16), False, 4)],
    ids=["channels_last", "shared", "short_rows"],
)
def test_dalpha_of_equal_terms(path, shape, channels_last, num_alpha):
    # Equal terms of one sign are the worst case for a sum added one term after
    # another: fp32 accumulation over 4096 of them was 3e-5 off (compiled), over
    # 2^15 rows 2e-4 (eager). Each path now sums in fp64.
    x = torch.full(shape, -1.0)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    alpha = torch.ones(num_alpha)
    module = cpu_compiled if path == "compiled" else cpu_eager
    _, dalpha = module.backward(torch.ones_like(x), x, alpha, True)
    term = torch.expm1(torch.tensor(-1.0)).double()  # every term, exactly as rounded to fp32
    expected = term * x.numel() / num_alpha
    assert ((dalpha.double() - expected).abs() / expected.abs()).max().item() < 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_expm1_keeps_tiny_arguments(dtype):
    # inductor computes torch.expm1 as exp(x) - 1, which gives 0 for -1e-30.
    x = -torch.logspace(-30, 0, 4001, dtype=torch.float64)
    result = torch.compile(cpu_compiled._expm1, dynamic=True)(x.to(dtype))
    relative = ((result.double() - torch.expm1(x.to(dtype).double())) / x.abs()).abs()
    assert relative.max().item() < (4 * torch.finfo(dtype).eps)


def _raising(error: Exception):
    def compile_that_fails(function):
        def run(*args):
            raise error

        return run

    return compile_that_fails


# How a missing C++ compiler shows up: an exception of inductor's own.
InductorError = type("InductorError", (RuntimeError,), {"__module__": "torch._inductor.exc"})


@pytest.mark.parametrize(
    "failure",
    [
        _raising(InductorError("no C++ compiler")),
        lambda function: (_ for _ in ()).throw(cpu_compiled._CompileUnavailable("Python 3.15")),
    ],
    ids=["build_fails", "compile_unavailable"],
)
def test_a_failed_compile_warns_once_and_falls_back(failure, monkeypatch):
    monkeypatch.setattr(cpu_compiled, "ENABLED", True)
    monkeypatch.setattr(cpu_compiled, "_compile", failure)
    x, alpha = torch.randn(3, 4, 5), torch.rand(4)
    with pytest.warns(RuntimeWarning, match="torch.compile failed for the CPU path"):
        y = cpu.forward(x, alpha)
    assert cpu_compiled.ENABLED is False
    assert torch.equal(y, cpu_eager.forward(x, alpha))
    dx, dalpha = cpu.backward(torch.ones_like(x), x, alpha, True)  # no second warning
    assert torch.equal(dx, cpu_eager.backward(torch.ones_like(x), x, alpha, True)[0])


def test_other_errors_are_not_taken_for_compile_failures(monkeypatch):
    monkeypatch.setattr(cpu_compiled, "ENABLED", True)
    monkeypatch.setattr(cpu_compiled, "_compile", _raising(MemoryError("out of memory")))
    with pytest.raises(MemoryError):
        cpu.forward(torch.randn(3, 4, 5), torch.rand(4))
    assert cpu_compiled.ENABLED is True


def test_the_users_compile_stance_does_not_reach_the_library():
    x = torch.randn(3, 4, 5, dtype=torch.float16)  # a variant no other test compiled yet
    with torch.compiler.set_stance("fail_on_recompile"):
        y = cpu_compiled.forward(x, torch.rand(4))
    assert y.dtype == torch.float16


def test_environment_variable_switches_compiling_off():
    code = "import elu_triton.cpu_compiled as c; print(c.ENABLED)"
    for value, expected in (("0", "False"), ("1", "True")):
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={"ELU_TRITON_CPU_COMPILE": value, "PATH": ""},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert result.stdout.strip() == expected


def test_torch_compile_disabled_means_eager_ops():
    # Uncompiled, the torch.where formulas would run as slow scalar loops.
    code = (
        "import warnings, torch; from elu_triton import cpu, cpu_compiled\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    y = cpu.forward(torch.full((2, 3, 4), -1.0), torch.ones(3))\n"
        "ours = [w for w in caught if 'elu_triton' in str(w.message)]\n"
        "print(cpu_compiled.ENABLED, len(ours), round(y[0, 0, 0].item(), 4))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"TORCH_COMPILE_DISABLE": "1", "PATH": ""},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.split() == ["False", "1", "-0.6321"]
