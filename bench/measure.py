"""One provider on one (case, dtype, mode): the record both report.py and test_speed.py keep.

``new_record`` names what is measured; ``time_into`` times an already built
and checked callable (``providers.build_checked``) with ``timing.time_ms``
and adds the achieved GB/s and the percent of the copy bandwidth. The
report and the pytest-benchmark suite go through these two functions, so a
figure means the same in both.
"""

import torch

from . import cases, providers, timing


def new_record(case: cases.Case, dtype: torch.dtype, mode: str, provider: providers.Provider):
    """The fields that say what is measured; "ms" stays None until it is."""
    return {
        "case": case.name, "shape": list(case.shape), "layout": case.layout,
        "num_alpha": case.num_alpha, "listed": case.listed, "roofline": case.roofline,
        "dtype": cases.DTYPE_NAMES[dtype], "mode": mode, "provider": provider.name,
        "bytes": cases.bytes_moved(case, dtype, mode), "ms": None,
    }  # fmt: skip


def time_into(record: dict, fn, inputs: cases.Inputs, device: torch.device, copy_gbps: float):
    """Time fn (built and checked, run once) into record: ms, GB/s, percent of copy."""
    record.update(timing.time_ms(fn, device))
    case, dtype, mode = inputs.case, inputs.x.dtype, record["mode"]
    record["GBps"] = cases.effective_gbps(case, dtype, mode, record["ms"])
    record["pct_copy"] = 100 * record["GBps"] / copy_gbps
