"""Data-parallel training of the demo network with torch.distributed.

    torchrun --nproc-per-node 2 -m elu_triton.demo --distributed

Every rank builds the same network and draws the same shuffled global
batches (same seed); each trains on its own contiguous shard of every
global batch, and DistributedDataParallel all-reduces the gradients
(alpha's among them, like any parameter) after each backward, so every
rank steps to the same weights. Backend: nccl for CUDA (one GPU per rank,
cuda:LOCAL_RANK), gloo for the CPU.

Batch norm: on CUDA the network's BatchNorm2d becomes SyncBatchNorm, so a
step uses the statistics of the whole global batch, as one process would.
PyTorch's SyncBatchNorm runs on GPUs only: on the CPU each rank normalizes
its shard with the shard's own statistics, and the run equals one process
that accumulates the gradients of the global batch's shards ("ghost" batch
norm) rather than one that normalizes the whole batch at once.
"""

import os
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .train import Batch, BatchSource


def init_process_group(device_name: str) -> torch.device:
    """Join the group that torchrun describes in the environment; return this rank's device.

    Raises:
        ValueError: not started by torchrun (no RANK / WORLD_SIZE in the
            environment), or CUDA asked for without a GPU per local rank.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ValueError(
            "--distributed needs torchrun, e.g. torchrun --nproc-per-node 2 -m elu_triton.demo --distributed"
        )
    wants_cuda = device_name.startswith("cuda") or (
        device_name == "auto" and torch.cuda.is_available()
    )
    if wants_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"--distributed on CUDA needs a GPU per rank: local rank {local_rank}, "
                f"{torch.cuda.device_count()} GPUs"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def wrap(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    """The model under DDP (with SyncBatchNorm on CUDA), on device."""
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model.to(device), device_ids=[device.index])
    return DistributedDataParallel(model.to(device))


def shard(batches: BatchSource, rank: int, world_size: int) -> BatchSource:
    """This rank's contiguous share of every global batch (sizes divisible by world_size)."""

    def epoch_batches(epoch: int):
        for images, labels in batches(epoch):
            size = labels.shape[0] // world_size
            yield images[rank * size : (rank + 1) * size], labels[rank * size : (rank + 1) * size]

    return epoch_batches


def parameters_identical(model: nn.Module) -> bool:
    """Whether every rank holds bitwise the same parameters (one all-gather)."""
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return all(torch.equal(flat, other) for other in gathered)


def wait_for_all_ranks() -> None:
    """Barrier before the group is torn down (a no-op without torch.distributed).

    Rank 0 evaluates and writes after training while the others have nothing
    left to do; a rank that tore down its gloo group then could abort
    ("terminate called without an active exception") and take the run down.
    """
    if dist.is_initialized():
        dist.barrier()


def is_main_process() -> bool:
    """Rank 0, or a run without torch.distributed: the process that prints and writes."""
    return not dist.is_initialized() or dist.get_rank() == 0


def ghost_batch_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, shards: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
) -> None:  # fmt: skip
    """One process's equivalent of a CPU DDP step over `shards` ranks.

    Each shard is normalized on its own (as each rank's batch norm does) and
    the gradients of the shards' mean losses are averaged, as DDP's all-reduce
    does. Used by the tests as the single-process reference.
    """
    images, labels = batch
    size = labels.shape[0] // shards
    optimizer.zero_grad(set_to_none=True)
    for i in range(shards):
        part = slice(i * size, (i + 1) * size)
        (loss_fn(model(images[part]), labels[part]) / shards).backward()
    optimizer.step()
