"""Write tests/data/cuda_checkpoint.pt on a machine with a CUDA GPU.

    python tests/data/make_cuda_checkpoint.py

The checkpoint is ``make_cuda_checkpoint()`` of tests/test_serialization.py,
saved as it is, CUDA tensors and all; that test loads it on the CPU.
"""

import importlib.util
from pathlib import Path

import torch

HERE = Path(__file__).parent


def main() -> None:
    spec = importlib.util.spec_from_file_location(
        "test_serialization", HERE.parent / "test_serialization.py"
    )
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    checkpoint = tests.make_cuda_checkpoint()
    torch.save(checkpoint, HERE / "cuda_checkpoint.pt")
    print(f"wrote {HERE / 'cuda_checkpoint.pt'} with torch {torch.__version__}")


if __name__ == "__main__":
    main()
