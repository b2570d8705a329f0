"""The fused batch norm's pass tiles (``elu_triton/batch_norm/launch.py``): host arithmetic only."""

import pytest
import torch
import triton

from elu_triton.layout import MemoryView

launch = pytest.importorskip("elu_triton.batch_norm.launch")
triton_config = pytest.importorskip("elu_triton.backends.triton_config")

PASSES = tuple(launch.PASS_TILE_ELEMENTS)
NCHW = MemoryView(32 * 256, 128 * 128, 256, False)  # (32, 256, 128, 128)
CHANNELS_LAST = MemoryView(32 * 128 * 128, 256, 256, True)


@pytest.mark.parametrize("pass_name", PASSES)
@pytest.mark.parametrize("element_size", [2, 4, 8])
def test_each_pass_takes_its_tile(pass_name, element_size):
    tuning = launch.pass_tuning(pass_name)
    elements = min(tuning.tile_elements, tuning.tile_max_bytes // element_size)
    for view in (NCHW, CHANNELS_LAST):
        cfg = launch.pass_launch_config(view, element_size, pass_name)
        assert cfg.block_r * cfg.block_k == elements and cfg.num_warps == tuning.num_warps


@pytest.mark.parametrize("pass_name", PASSES)
def test_channel_per_column_tiles_grow_in_rows(pass_name):
    cfg = launch.pass_launch_config(CHANNELS_LAST, 4, pass_name)
    assert cfg.block_k == launch.MAX_BLOCK_K
    row_blocks = triton.cdiv(CHANNELS_LAST.rows, cfg.block_r)
    assert cfg.grid == (row_blocks * CHANNELS_LAST.cols // cfg.block_k,)
    assert cfg.dalpha_partials_shape == (CHANNELS_LAST.channels, row_blocks)


@pytest.mark.parametrize("view", [MemoryView(3, 5, 5, True), MemoryView(6, 7, 3, False)])
def test_tiles_never_exceed_the_tensor(view):
    for pass_name in PASSES:
        cfg = launch.pass_launch_config(view, 4, pass_name)
        assert cfg.grid == (1,) and cfg.block_r <= triton.next_power_of_2(view.rows)


def test_pass_args_keep_the_activations_off_nvidia_gpus():
    x = torch.randn(2, 3, 4, 5)
    for pass_name in PASSES:
        assert launch.pass_args(x, pass_name) is triton_config.kernel_args(x, 3)


def test_pass_args_carry_the_pass_tile_in_their_constants():
    x = torch.randn(4, 256, 8, 8).contiguous(memory_format=torch.channels_last)
    args = triton_config.kernel_args(x, 256)
    for pass_name in PASSES:
        found = launch._with_pass_tile(args, x.element_size(), pass_name)
        cfg = found.config
        assert (found.constants["BLOCK_R"], found.constants["BLOCK_K"]) == (
            cfg.block_r,
            cfg.block_k,
        )
        assert found.constants["num_warps"] == cfg.num_warps and found.sizes == args.sizes
