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
def test_compiled_path_agrees_with_eager_path(dtype, memory_format, monkeypatch):
    monkeypatch.setattr(cpu_compiled, "ENABLED", True)
    x = torch.randn(2, 5, 6, 7).to(dtype=dtype, memory_format=memory_format)
    dy = torch.randn_like(x)
    alpha = torch.rand(5)
    y = cpu_compiled.forward(x, alpha)
    dx, dalpha = cpu_compiled.backward(dy, x, alpha, True)
    assert cpu_compiled._FORWARD["column" if memory_format == torch.channels_last else "row"] in (
        cpu_compiled._compiled_once
    )
    y_eager = cpu_eager.forward(x, alpha)
    dx_eager, dalpha_eager = cpu_eager.backward(dy, x, alpha, True)
    # Both round the same fp32 (fp64) values once; the sums may differ in order.
    ulp = 2.0**-7 if dtype == torch.bfloat16 else 2.0**-10 if dtype == torch.float16 else 1e-6
    torch.testing.assert_close(y, y_eager, rtol=ulp, atol=1e-30)
    torch.testing.assert_close(dx, dx_eager, rtol=ulp, atol=1e-30)
    torch.testing.assert_close(dalpha, dalpha_eager, rtol=1e-5, atol=1e-5)
    assert y.stride() == x.stride() and dx.stride() == x.stride()
    assert not y._is_view() and not dx._is_view()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_expm1_keeps_tiny_arguments(dtype):
    # inductor computes torch.expm1 as exp(x) - 1, which gives 0 for -1e-30.
    x = -torch.logspace(-30, 0, 4001, dtype=torch.float64)
    result = torch.compile(cpu_compiled._expm1, dynamic=True)(x.to(dtype))
    relative = ((result.double() - torch.expm1(x.to(dtype).double())) / x.abs()).abs()
    assert relative.max().item() < (4 * torch.finfo(dtype).eps)


def test_a_failed_compile_warns_once_and_falls_back(monkeypatch):
    def broken_compile(function):
        def run(*args):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(cpu_compiled, "ENABLED", True)
    monkeypatch.setattr(cpu_compiled, "_compile", broken_compile)
    monkeypatch.setattr(cpu_compiled, "_compiled_once", set())
    x, alpha = torch.randn(3, 4, 5), torch.rand(4)
    with pytest.warns(RuntimeWarning, match="torch.compile failed for the CPU path"):
        y = cpu.forward(x, alpha)
    assert cpu_compiled.ENABLED is False
    assert torch.equal(y, cpu_eager.forward(x, alpha))
    dx, dalpha = cpu.backward(torch.ones_like(x), x, alpha, True)  # no second warning
    assert torch.equal(dx, cpu_eager.backward(torch.ones_like(x), x, alpha, True)[0])


def test_failures_after_the_first_call_are_not_swallowed(monkeypatch):
    x, alpha = torch.randn(3, 4, 5), torch.rand(4)
    monkeypatch.setattr(cpu_compiled, "ENABLED", True)
    cpu_compiled.forward(x, alpha)  # compiled once

    def failing(function):
        def run(*args):
            raise MemoryError("out of memory")

        return run

    monkeypatch.setattr(cpu_compiled, "_compile", failing)
    with pytest.raises(MemoryError):
        cpu.forward(x, alpha)
    assert cpu_compiled.ENABLED is True


def test_environment_variable_switches_compiling_off():
    code = "import elu_triton.cpu_compiled as c; print(c.ENABLED)"
    for value, expected in (("0", "False"), ("1", "True")):
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={"ELU_TRITON_CPU_COMPILE": value, "PATH": ""},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert result.stdout.strip() == expected
