"""pytest-benchmark setup for bench/ (never collected by a plain `pytest`).

Run: ``pytest bench --benchmark-only``. The suite measures on the first CUDA
device if there is one, else on the CPU path with the CPU cases. Under
TRITON_INTERPRET=1 without a GPU it skips: the interpreter is not timed.
"""

import pytest

from . import timing


@pytest.fixture(scope="session")
def device():
    dev = timing.pick_device()
    if timing.interpreter_active(dev):
        pytest.skip("TRITON_INTERPRET=1 on a CPU: the interpreter is not timed; unset it")
    return dev


@pytest.fixture(scope="session")
def copy_bandwidth(device) -> dict:
    """The device's measured copy bandwidth, once per session."""
    return timing.copy_bandwidth_gbps(device)
