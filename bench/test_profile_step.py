"""bench.profile_step's per-kernel table, from device events made by hand (no GPU here)."""

from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent

from . import profile_step


def _kernel(name: str, start_us: float, end_us: float) -> FunctionEvent:
    return FunctionEvent(0, name, 0, start_us, end_us, device_type=DeviceType.CUDA)


def test_breakdown_splits_our_kernel_the_finish_and_idle_time():
    events = []
    for call in range(2):  # two calls: kernel, then the partials' sum 10 us later
        t = 1000.0 * call
        events += [
            _kernel("learnable_elu_backward_kernel", t, t + 100),
            _kernel("void at::native::reduce_kernel<512, 1, ReduceOp<float>>", t + 110, t + 120),
        ]
    row = profile_step.breakdown(events, "cuda", calls=2, wall_us=700.0)
    kinds = {k["kind"]: (k["calls"], k["us"]) for k in row["kernels"]}
    assert kinds == {"ours": (1, 100.0), "finish": (1, 10.0)}
    assert row["busy_us"] == 110.0 and row["span_us"] == 560.0
    assert profile_step.idle_us(row) == 450.0  # 10 us between the two, and the host's wait
    line = profile_step.render_kernel_summary([{"case": "large_cl", "dtype": "bf16",
                                                "mode": "bwd", **row}], "cuda")[-1]  # fmt: skip
    assert line == "| large_cl | bf16 | bwd | 100.0 | 10.0 | 0.0 | 450.0 | 700.0 |"
