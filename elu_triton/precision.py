"""The arithmetic dtype, the same for every backend and the reference.

16- and 32-bit inputs are computed in fp32 and rounded once to their own
dtype at the end; fp64 inputs in fp64. The kernels accumulate dalpha in
that dtype too (tree sums per tile, then a sum over tiles); the PyTorch
backend sums one dim at a time in it (aten's cascade sums) and finishes in
fp64. dalpha is then rounded to alpha's dtype.
"""

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 for fp64 inputs, else fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32
