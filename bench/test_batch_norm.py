"""bench/batch_norm.py runs, checks its answers and meets the memory target (small shape)."""

import torch

from . import batch_norm, targets


def test_fused_layer_keeps_half_the_memory(device):
    result = batch_norm.measure(
        (4, 8, 12, 12), torch.float32, torch.contiguous_format, device, False
    )
    assert result["memory_ratio"] <= targets.BATCH_NORM_MEMORY
    assert result["fused ms"] > 0 and result["pair (eager) ms"] > 0
