"""Benchmarks of elu_triton, run from the repository root as ``python -m bench.<script>``.

Scripts (each ``python -m bench.<name> --help``): report, training_cuda,
profile_step, host_overhead, demo_epoch_time, batch_norm, second_order and
gpu_check (all of them in one GPU session); fusion (whole networks fused, on
the CPU or a GPU). The rest are helpers the scripts and the
pytest-benchmark suite share; README.md lists which is which.
"""
