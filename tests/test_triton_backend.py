"""The Triton backend: launch configuration, the int64 path and unwritten-output detection."""

import pytest
import torch

from elu_triton.layout import MemoryView

triton_config = pytest.importorskip("elu_triton.backends.triton_config")
triton_kernels = pytest.importorskip("elu_triton.backends.triton_kernels")
GPU = triton_config.TUNING["cuda"]


def test_gpu_tiles_move_whole_vectors():
    # 16 elements per thread, 8 warps, at most 16 KiB per tile.
    for element_size, elements in [(4, 4096), (2, 4096), (8, 2048)]:
        cfg = triton_config.launch_config_for(MemoryView(1 << 20, 64, 64, True), element_size, GPU)
        assert cfg.block_r * cfg.block_k == elements and cfg.block_k == 64
        assert cfg.num_warps == 8 and not cfg.index_64


def test_tile_never_exceeds_the_tensor():
    cfg = triton_config.launch_config_for(
        MemoryView(3, 5, 3, False), 4, triton_config.TUNING["cpu"]
    )
    assert (cfg.block_r, cfg.block_k) == (4, 8) and cfg.grid == (1,)


def test_index_64_from_element_count():
    assert triton_config.launch_config_for(MemoryView(1, 2**31, 1, False), 2, GPU).index_64
    assert not triton_config.launch_config_for(MemoryView(1, 2**31 - 1, 1, False), 2, GPU).index_64


def test_every_device_kind_has_tuning():
    assert set(triton_kernels.SERVED_DEVICE_TYPES) <= set(triton_config.TUNING)
    assert "rocm" in triton_config.TUNING


def test_rocm_builds_tune_cuda_devices_as_rocm(monkeypatch):
    # PyTorch calls ROCm GPUs "cuda" devices; only torch.version.hip tells them apart.
    assert triton_config.tuning_kind("cpu") == "cpu"
    expected = "rocm" if torch.version.hip else "cuda"
    assert triton_config.tuning_kind("cuda") == expected
    monkeypatch.setattr(triton_config, "_CUDA_KIND", "rocm")
    assert triton_config.tuning_kind("cuda") == "rocm"


def test_rocm_tiles_give_each_thread_what_a_cuda_thread_gets():
    # Both: four 128-bit accesses per tensor per thread, on 32- or 64-wide warps.
    view = MemoryView(1 << 20, 64, 64, True)
    for element_size in (2, 4, 8):
        per_thread = {}
        for kind, warp_size in (("cuda", 32), ("rocm", 64)):
            tuning = triton_config.TUNING[kind]
            cfg = triton_config.launch_config_for(view, element_size, tuning)
            per_thread[kind] = cfg.block_r * cfg.block_k // (cfg.num_warps * warp_size)
        assert per_thread["cuda"] == per_thread["rocm"]


@pytest.mark.kernels
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "shared"])
def test_int64_offsets_path(
    monkeypatch, fresh_caches, layout, launched_kernel_kwargs, check_against_reference, make_alpha
):
    # 2^31 elements do not fit the CI machine's time budget in the interpreter:
    # lower the threshold so that small tensors take the 64-bit path. Launches
    # are cached per signature, and other tests launch this shape with 32-bit
    # offsets: start from empty caches (fresh_caches empties them again after,
    # so that no 64-bit launch outlives the patch), and check what each launch ran with.
    monkeypatch.setattr(triton_config, "_INT32_LIMIT", 1)
    x = torch.randn(3, 20, 5, 7)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    check_against_reference(x, make_alpha(1 if layout == "shared" else 20))
    # the forward and the backward
    assert [kwargs["INDEX_64"] for kwargs in launched_kernel_kwargs] == [True, True]


@pytest.mark.kernels
def test_every_output_element_is_written(monkeypatch, check_against_reference, make_alpha):
    """Outputs and dalpha partials start as NaN: any element left unwritten shows."""
    poisoned_count = []

    def poisoned(alloc):
        def wrapper(*args, **kwargs):
            poisoned_count.append(1)
            return alloc(*args, **kwargs).fill_(float("nan"))

        return wrapper

    # Every allocator the backend uses (y, dx: empty_like; partials: new_empty).
    monkeypatch.setattr(torch, "empty_like", poisoned(torch.empty_like))
    monkeypatch.setattr(torch.Tensor, "new_empty", poisoned(torch.Tensor.new_empty))
    for x in [
        torch.randn(3, 20, 5, 7),
        torch.randn(3, 20, 5, 7).to(memory_format=torch.channels_last),
        torch.randn(70000),  # more than one interpreter tile
        torch.randn(129, 1031),
    ]:
        before = len(poisoned_count)
        check_against_reference(x, make_alpha(x.shape[1] if x.dim() > 1 else 1))
        assert len(poisoned_count) - before >= 3  # y, dx and the partials were all poisoned
