"""Speed of the six providers, every case, dtype and mode (pytest-benchmark).

Each test builds one provider's callable, checks its outputs once against
float64, then times it. On CUDA each timed call ends in a synchronize, and
``triton.testing.do_bench``'s median (L2 flushed), the achieved GB/s and the
percent of the measured copy bandwidth go in ``extra_info``; on the CPU the
GB/s come from pytest-benchmark's minimum (see ``timing.time_ms``). On a
shared CPU, ``OMP_NUM_THREADS=1`` keeps other jobs from stalling every op.
"""

import functools
import time

import cases
import providers
import pytest
import timing
import torch

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
    info = benchmark.extra_info
    info.update(
        device=timing.device_name(device), case=case.name, shape=list(case.shape),
        layout=case.layout, num_alpha=case.num_alpha, dtype=cases.DTYPE_NAMES[dtype],
        mode=mode, provider=provider.name, bytes=cases.bytes_moved(case, dtype, mode),
        copy_GBps=copy_bandwidth["GBps"],
    )  # fmt: skip
    if device.type == "cuda":
        info["do_bench_median_ms"] = timing.time_ms(fn, device)["ms"]
    target = _synchronized(fn, device)
    benchmark.pedantic(target, rounds=_rounds(target, device), iterations=1, warmup_rounds=1)
    stats = benchmark.stats  # None under --benchmark-disable
    ms = info.get("do_bench_median_ms") or (stats.stats.min * 1e3 if stats else None)
    if ms is None:
        return
    info["GBps"] = cases.effective_gbps(case, dtype, mode, ms)
    info["pct_copy"] = 100 * info["GBps"] / copy_bandwidth["GBps"]
