"""Speed of the six providers, every case, dtype and mode (pytest-benchmark).

Each test builds one provider's callable, checks its outputs once against
float64, then times it as ``report.py`` does (``measure.time_into``: on
CUDA ``triton.testing.do_bench``'s median, L2 flushed; on the CPU the
minimum of whole calls), and puts that record, GB/s and percent of the
measured copy bandwidth included, in ``extra_info``. pytest-benchmark's own
rounds (each CUDA call ending in a synchronize) fill its table beside it.
Under ``--benchmark-disable`` the callable runs once, checked, untimed. On a
shared CPU, ``OMP_NUM_THREADS=1`` keeps other jobs from stalling every op.
"""

import functools
import time

import pytest
import torch

from . import cases, measure, providers, timing

# Seconds of timed calls per benchmark, and bounds on their number.
_SECONDS_PER_BENCHMARK = 0.5
_MIN_ROUNDS, _MAX_ROUNDS = 3, 100

_DEVICE = timing.pick_device()
_CASE_DTYPES = cases.case_dtypes(_DEVICE)


@functools.lru_cache(maxsize=1)
def _inputs(case: cases.Case, dtype: torch.dtype, device: torch.device) -> cases.Inputs:
    # One (case, dtype) at a time: its tests run one after another (it is the
    # outermost parametrization), and a GPU holds one set of large tensors.
    return cases.make_inputs(case, dtype, device)


def _rounds(fn, device: torch.device) -> int:
    start = time.perf_counter()
    fn()
    timing.sync(device)
    seconds = time.perf_counter() - start
    return max(_MIN_ROUNDS, min(_MAX_ROUNDS, int(_SECONDS_PER_BENCHMARK / max(seconds, 1e-6))))


def _synchronized(fn, device: torch.device):
    if device.type != "cuda":
        return fn

    def call():
        fn()
        torch.cuda.synchronize(device)

    return call


@pytest.mark.parametrize("provider", providers.PROVIDERS, ids=lambda p: p.name)
@pytest.mark.parametrize("mode", cases.MODES)
@pytest.mark.parametrize(
    "case,dtype", _CASE_DTYPES, ids=[f"{c.name}-{cases.DTYPE_NAMES[d]}" for c, d in _CASE_DTYPES]
)
def test_speed(benchmark, device, copy_bandwidth, case, dtype, mode, provider):
    if not providers.runs(provider, case, mode):
        pytest.skip(f"{provider.name} is not measured in {mode} mode for {case.name}")
    inputs = _inputs(case, dtype, device)
    fn = providers.build_checked(provider, inputs, mode)
    record = measure.new_record(case, dtype, mode, provider)
    if not benchmark.disabled:
        measure.time_into(record, fn, inputs, device, copy_bandwidth["GBps"])
    benchmark.extra_info.update(
        device=timing.device_name(device), copy_GBps=copy_bandwidth["GBps"], **record
    )
    target = _synchronized(fn, device)
    benchmark.pedantic(target, rounds=_rounds(target, device), iterations=1, warmup_rounds=1)
