"""``elu-triton-demo``: train the digit classifier with LearnableELU, end to end.

One command, no arguments, no downloads: generate the built-in digits, train
the original walkthrough's network for 30 epochs, evaluate it, print the
progress table and a summary, and write weights, ``summary.json``,
``history.json`` and figures to ``--out``. ``--load`` evaluates saved weights
again. User errors (bad flags, a missing or malformed data directory, an
unavailable device) end with a one-line message and exit status 2.
"""

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..environment import resolve_device
from . import distributed
from .run import PROG, evaluate_saved, load_data, print_setup, run

DEFAULT_OUT = "elu_triton_demo"


def build_parser() -> argparse.ArgumentParser:
    """The command line; every default is the original walkthrough's setting."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--epochs", type=int, default=30, help="passes over the training set (default 30)"
    )
    p.add_argument("--batch-size", type=int, default=128, help="mini-batch size (default 128)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and the shuffling (default 0)",
    )
    p.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N"
    )
    p.add_argument(
        "--data",
        choices=("synthetic", "mnist"),
        default="synthetic",
        help="built-in synthetic digits (default) or MNIST IDX files from --data-dir",
    )
    p.add_argument(
        "--data-dir", type=Path, help="folder holding the MNIST IDX files (for --data mnist)"
    )
    p.add_argument(
        "--train-size", type=int, help="training images (default 5000 synthetic, all of MNIST)"
    )
    p.add_argument(
        "--test-size", type=int, help="test images (default 5000 synthetic, all of MNIST)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(DEFAULT_OUT),
        help=f"output folder (default ./{DEFAULT_OUT})",
    )
    p.add_argument(
        "--load",
        type=Path,
        metavar="WEIGHTS",
        help="evaluate saved weights on the test set, no training",
    )
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also fit a linear softmax classifier on raw pixels (the data's difficulty)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument(
        "--compile",
        action="store_true",
        help="train the network under torch.compile (inductor fuses the activation with "
        "its neighbours); the warm-up step then includes the compilation",
    )
    p.add_argument(
        "--fused-batchnorm",
        action="store_true",
        help="fuse BatchNorm -> LearnableELU into one layer (elu_triton.fuse_batchnorm) and "
        "print the activation memory of one batch, fused and unfused",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the ranks torchrun starts, e.g. torchrun --nproc-per-node 2 "
        "-m elu_triton.demo --distributed; rank 0 prints and writes",
    )
    return p


def _check_args(args: argparse.Namespace) -> str | None:
    """The first problem with the flags' values, or None."""
    if args.epochs < 0:
        return f"--epochs must be >= 0, got {args.epochs}"
    if args.batch_size < 1:
        return f"--batch-size must be >= 1, got {args.batch_size}"
    if not args.lr > 0:
        return f"--lr must be > 0, got {args.lr}"
    for flag, size in (("--train-size", args.train_size), ("--test-size", args.test_size)):
        if size is not None and size < 1:
            return f"{flag} must be >= 1, got {size}"
    if args.data == "mnist" and args.data_dir is None:
        return (
            "--data mnist needs --data-dir DIR "
            "(a folder with the MNIST IDX files; nothing is downloaded)"
        )
    if args.data_dir is not None and not args.data_dir.is_dir():
        return f"--data-dir {args.data_dir}: no such directory"
    if args.load is not None and not args.load.is_file():
        return f"--load {args.load}: no such file"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``elu-triton-demo`` and ``python -m elu_triton.demo``.

    Returns the exit status; user errors exit with status 2 (argparse's error).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = _check_args(args)
    if problem:
        parser.error(problem)
    try:
        if args.distributed:
            device = distributed.init_process_group(args.device)
            world_size = torch.distributed.get_world_size()
            if args.batch_size % world_size:
                raise ValueError(
                    f"--batch-size {args.batch_size} must be divisible by the {world_size} ranks"
                )
        else:
            device = resolve_device(args.device)
        start = time.perf_counter()
        train_set, test_set, data_name = load_data(args)
        data_seconds = time.perf_counter() - start
        if args.load is not None:
            evaluate_saved(args, device, test_set)
            return 0
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    if args.batch_size > len(train_set):
        parser.error(f"--batch-size {args.batch_size} exceeds the {len(train_set)} training images")
    if distributed.is_main_process():
        print_setup(args, device, train_set, test_set, data_name, data_seconds)
    try:
        run(args, device, train_set, test_set, data_name)
        distributed.wait_for_all_ranks()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0
