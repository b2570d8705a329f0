"""The tuning candidates' switches (elu_triton/switches.py): unset they change nothing; set, what they claim.

Each candidate is checked twice: its launch configuration (what the switch
claims to change) and, under the interpreter or on a GPU, the results
against float64 math. Switches are read once at import, so the tests set
what the import would have read (``switches.TUNING``, the backend's finish
flag) on fresh launch caches, and one child process checks the import itself.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from elu_triton import backends, function, reference, switches
from elu_triton.layout import MemoryView

triton_config = pytest.importorskip("elu_triton.backends.triton_config")
triton_kernels = pytest.importorskip("elu_triton.backends.triton_kernels")
GPU = triton_config.TUNING["cuda"]


def test_parse_tuning_by_element_size():
    assert switches.parse_tuning("") == {}
    assert switches.parse_tuning(" 2:num_warps=4, tile_elements=2048 ; column_min_rows=64;") == {
        2: {"num_warps": 4, "tile_elements": 2048},
        None: {"column_min_rows": 64},
    }
    overrides = switches.parse_tuning("whole_row_max=256;4:whole_row_max=0")
    assert switches.tuning_overrides(overrides, 4) == {"whole_row_max": 0}
    assert switches.tuning_overrides(overrides, 2) == {"whole_row_max": 256}


@pytest.mark.parametrize(
    "text, message",
    [
        ("3:num_warps=4", "element size '3'"),
        ("num_warps=3", "num_warps=3 must be a power of two"),
        ("column_min_rows=0", "column_min_rows=0 must be a power of two"),
        ("whole_row_max=-1", "whole_row_max=-1 must be an integer >= 0"),
        ("tile=4096", "unknown field 'tile'"),
        ("tile_elements=4k", "tile_elements='4k' is not an integer"),
    ],
)
def test_parse_tuning_rejects_with_the_variable_named(text, message):
    with pytest.raises(ValueError, match="ELU_TRITON_TUNING") as error:
        switches.parse_tuning(text)
    assert message in str(error.value)


@pytest.mark.skipif(bool(switches.SET), reason="a switch is set in this environment")
def test_unset_switches_leave_todays_rows_finish_and_route():
    for kind in triton_config.TUNING:
        for size in switches.ELEMENT_SIZES:
            assert triton_config.tuning_for(kind, size) is triton_config.TUNING[kind]
    assert GPU.column_min_rows == 32 and GPU.whole_row_max == 0
    assert triton_kernels._FINISH_BY_SUM
    assert function._traced is reference.learnable_elu


@pytest.fixture
def tuned(monkeypatch, fresh_caches):
    """tuned(text): ELU_TRITON_TUNING=text as the import would have read it, on fresh caches."""

    def tune(text: str) -> None:
        monkeypatch.setattr(switches, "TUNING", switches.parse_tuning(text))
        backends.clear_caches()

    return tune


def _config(view: MemoryView, element_size: int, kind: str = "cuda"):
    return triton_config.launch_config_for(
        view, element_size, triton_config.tuning_for(kind, element_size)
    )


def test_tiles_and_warps_per_element_size(tuned):
    # (a): the GPU row's tile and warps, for 16-bit inputs only.
    view = MemoryView(1 << 20, 4096, 4096, True)
    default16, default32 = _config(view, 2), _config(view, 4)
    tuned("2:tile_elements=2048,num_warps=4")
    tuned16, tuned32 = _config(view, 2), _config(view, 4)
    assert tuned32 == default32 and default16.num_warps == 8
    assert tuned16.num_warps == 4 and tuned16.block_r * tuned16.block_k == 2048
    assert default16.block_r * default16.block_k == 4096
    tuned("4:tile_elements=8192")  # 8192 fp32 elements exceed tile_max_bytes: no change
    assert _config(view, 4) == default32
    tuned("4:tile_elements=8192,tile_max_bytes=32768")
    assert _config(view, 4).block_r * _config(view, 4).block_k == 8192


def test_rows_per_channel_per_column_tile(tuned):
    # (b): channels_last (R = N*H*W rows of K = C): rows per tile set the
    # tile's shape and the dalpha partials per channel.
    rows = 32 * 128 * 128
    view = MemoryView(rows, 256, 256, True)
    default = _config(view, 4)
    assert (default.block_r, default.block_k) == (32, 128)
    assert default.dalpha_partials_shape == (256, rows // 32)
    tuned("column_min_rows=128")
    fewer = _config(view, 4)
    assert (fewer.block_r, fewer.block_k) == (128, 32)
    assert fewer.dalpha_partials_shape == (256, rows // 128)
    # Channel-per-row views do not depend on it.
    nchw = MemoryView(4096, 16384, 256, False)
    assert _config(nchw, 4) == triton_config.launch_config_for(nchw, 4, GPU)


@pytest.mark.parametrize(
    "cols, element_size, default_block_k, whole_block_k",
    [(196, 4, 16, 256), (196, 2, 16, 256), (49, 4, 4, 64), (49, 2, 8, 64), (784, 4, 64, 1024)],
)
def test_whole_rows_for_small_maps(tuned, cols, element_size, default_block_k, whole_block_k):
    # (c): 14x14, 7x7 and 28x28 maps: rows the padding rule splits, kept whole.
    view = MemoryView(256 * 512, cols, 512, False)
    default = _config(view, element_size)
    assert default.block_k == default_block_k
    tuned("whole_row_max=1024")
    whole = _config(view, element_size)
    assert whole.block_k == whole_block_k >= cols  # one column block: rows whole
    assert whole.dalpha_partials_shape == (512, 256)  # one partial per row of each channel
    big = MemoryView(64 * 64, 112 * 112, 64, False)  # rows wider than 1024: as before
    assert _config(big, element_size) == triton_config.launch_config_for(big, element_size, GPU)


# Small enough for several tiles on the interpreter's small inputs; each with
# the inputs whose launch it changes.
CANDIDATES = {
    "tiles per size": ("4:tile_elements=256;2:tile_elements=128,num_warps=4", "all"),
    "few rows per column tile": ("tile_elements=512,column_min_rows=2", "channels_last (N, C)"),
    "many rows per column tile": ("tile_elements=512,column_min_rows=64", "channels_last (N, C)"),
    "whole rows": ("tile_elements=1024,whole_row_max=256", "14x14 7x7"),
}
INPUTS = {
    "channels_last": lambda: torch.randn(4, 20, 5, 7).to(memory_format=torch.channels_last),
    "(N, C)": lambda: torch.randn(300, 20),
    "14x14": lambda: torch.randn(4, 10, 14, 14),
    "7x7": lambda: torch.randn(8, 12, 7, 7),
}


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize("candidate", CANDIDATES)
def test_candidates_launch_as_configured_and_match_reference(
    tuned, launched_kernel_kwargs, check_against_reference, make_alpha, candidate, inputs, dtype
):
    x = INPUTS[inputs]().to(dtype)
    default_launch = triton_config.kernel_args_for(x.shape, x.stride(), dtype, "cpu", x.shape[1])
    setting, targets = CANDIDATES[candidate]
    tuned(setting)
    args = triton_config.kernel_args_for(x.shape, x.stride(), dtype, "cpu", x.shape[1])
    check_against_reference(x, make_alpha(x.shape[1]))
    assert launched_kernel_kwargs == [args.constants, {**args.constants, "COMPUTE_DALPHA": True}]
    assert args.config.grid[0] > 1  # several tiles: their seams are checked too
    if targets == "all" or inputs in targets:
        assert args.config != default_launch.config


@pytest.mark.kernels
@pytest.mark.parametrize("candidate", CANDIDATES)
def test_batch_norm_takes_the_same_tiles(tuned, candidate):
    # The fused batch norm's kernels take their tiles from the same rows.
    from elu_triton import BatchNormLearnableELU

    x = torch.randn(6, 20, 7, 7).to(memory_format=torch.channels_last).requires_grad_()
    layer = BatchNormLearnableELU(20)
    tuned(CANDIDATES[candidate][0])
    y = layer(x)
    grads = torch.autograd.grad(y, (x, *layer.parameters()), torch.ones_like(y))
    with backends.use_backend("torch"):
        y_ref = layer(x)
        grads_ref = torch.autograd.grad(y_ref, (x, *layer.parameters()), torch.ones_like(y))
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


FINISH_INPUTS = {**INPUTS, "shared alpha": INPUTS["14x14"], "fp64": INPUTS["7x7"]}


@pytest.mark.kernels
@pytest.mark.parametrize("inputs", ["channels_last", "(N, C)", "14x14", "shared alpha", "fp64"])
def test_dalpha_finish_by_mv(
    monkeypatch, fresh_caches, check_against_reference, make_alpha, inputs
):
    # (d): ELU_TRITON_DALPHA_FINISH=mv sums the partials with torch.mv, reproducibly.
    monkeypatch.setattr(triton_kernels, "_FINISH_BY_SUM", False)
    summed = []
    mv = torch.mv
    monkeypatch.setattr(torch, "mv", lambda m, v: summed.append(m.shape) or mv(m, v))
    x = FINISH_INPUTS[inputs]().to(torch.float64 if inputs == "fp64" else torch.float32)
    alpha = make_alpha(1 if inputs == "shared alpha" else x.shape[1])
    dy = torch.randn_like(x)
    first = check_against_reference(x, alpha, dy)[2]
    assert torch.equal(first, check_against_reference(x, alpha, dy)[2])  # bitwise, run to run
    partials = triton_config.kernel_args_for(x.shape, x.stride(), x.dtype, "cpu", alpha.numel())
    assert summed == [partials.config.dalpha_partials_shape] * 2


def test_switches_are_read_at_import():
    env = {
        **{k: v for k, v in os.environ.items() if k not in switches.VARIABLES},
        "ELU_TRITON_TUNING": "2:num_warps=4;column_min_rows=64",
        "ELU_TRITON_DALPHA_FINISH": "mv",
        "ELU_TRITON_COMPILED_BACKWARD": "triton_op",
    }
    probe = (
        "import json, elu_triton\n"
        "from elu_triton import function, switches\n"
        "from elu_triton.backends import triton_config, triton_kernels\n"
        "print(json.dumps({'set': switches.SET,\n"
        "  'warps': [triton_config.tuning_for('cuda', s).num_warps for s in (2, 4)],\n"
        "  'rows': triton_config.tuning_for('cuda', 4).column_min_rows,\n"
        "  'sum': triton_kernels._FINISH_BY_SUM, 'traced': function._traced.__module__}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["set"] == {k: env[k] for k in switches.VARIABLES}
    assert seen["warps"] == [4, 8] and seen["rows"] == 64 and seen["sum"] is False
    assert seen["traced"] == "elu_triton.compiled_backward"
    env["ELU_TRITON_DALPHA_FINISH"] = "atomic"  # read when elu_triton is imported
    failed = subprocess.run([sys.executable, "-c", "import elu_triton"], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert failed.returncode != 0 and "ELU_TRITON_DALPHA_FINISH='atomic'" in failed.stderr
