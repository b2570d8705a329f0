"""Launch configuration, the int64 path and unwritten-output detection."""

import pytest
import torch

from elu_triton.layout import MemoryView

launch = pytest.importorskip("elu_triton.launch")


def test_gpu_tiles_move_whole_vectors():
    # 16 elements per thread, 8 warps, at most 16 KiB per tile.
    for element_size, elements in [(4, 4096), (2, 4096), (8, 2048)]:
        cfg = launch.launch_config_for(MemoryView(1 << 20, 64, 64, True), element_size, on_gpu=True)
        assert cfg.block_r * cfg.block_k == elements and cfg.block_k == 64
        assert cfg.num_warps == 8 and not cfg.index_64


def test_tile_never_exceeds_the_tensor():
    cfg = launch.launch_config_for(MemoryView(3, 5, 3, False), 4, on_gpu=False)
    assert (cfg.block_r, cfg.block_k) == (4, 8) and cfg.grid == (1,)


def test_index_64_from_element_count():
    assert launch.launch_config_for(MemoryView(1, 2**31, 1, False), 2, on_gpu=True).index_64
    assert not launch.launch_config_for(MemoryView(1, 2**31 - 1, 1, False), 2, on_gpu=True).index_64


@pytest.mark.kernels
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "shared"])
def test_int64_offsets_path(monkeypatch, layout, check_against_reference, make_alpha):
    # 2^31 elements do not fit the CI machine's time budget in the interpreter:
    # lower the threshold so that small tensors take the 64-bit path.
    monkeypatch.setattr(launch, "_INT32_LIMIT", 1)
    x = torch.randn(3, 20, 5, 7)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    check_against_reference(x, make_alpha(1 if layout == "shared" else 20))


@pytest.mark.kernels
def test_every_output_element_is_written(monkeypatch, check_against_reference, make_alpha):
    """Outputs and dalpha partials start as NaN: any element left unwritten shows."""

    def poisoned(alloc):
        def wrapper(*args, **kwargs):
            return alloc(*args, **kwargs).fill_(float("nan"))

        return wrapper

    monkeypatch.setattr(launch.torch, "empty", poisoned(torch.empty))
    monkeypatch.setattr(launch.torch, "empty_like", poisoned(torch.empty_like))
    for x in [
        torch.randn(3, 20, 5, 7),
        torch.randn(3, 20, 5, 7).to(memory_format=torch.channels_last),
        torch.randn(70000),  # more than one interpreter tile
        torch.randn(129, 1031),
    ]:
        check_against_reference(x, make_alpha(x.shape[1] if x.dim() > 1 else 1))
