"""The GPU facts the static model (``static_model.py``) uses, with where each comes from.

A fact marked "guess" is not from a datasheet or a measurement; the model's
calibration absorbs some of its error, and the next GPU run checks it.
"""

from dataclasses import dataclass

KIB = 1024


@dataclass(frozen=True)
class Gpu:
    name: str
    sms: int  # streaming multiprocessors
    clock_ghz: float  # SM clock under a memory-bound load
    copy_gbps: float  # device-to-device copy bandwidth (read + write), 1e9 B/s
    copy_source: str  # "measured ..." or "guess: ..."
    # Per SM, Hopper (NVIDIA Hopper Tuning Guide; CUDA C++ Programming Guide,
    # "Technical Specifications per Compute Capability", 9.0):
    registers: int = 64 * KIB  # 32-bit registers
    max_warps: int = 64
    max_blocks: int = 32
    shared_bytes: int = 228 * KIB
    shared_reserved_per_block: int = 1 * KIB  # the driver's, per resident block
    register_granule: int = 256  # registers are allocated per warp in units of 256
    schedulers: int = 4  # warp schedulers, each issuing one instruction per clock


GPUS = {
    # The one measured card: 132 SMs (torch's multi_processor_count in that
    # run); copy bandwidth measured there (report-cuda.json: 2 GiB copies).
    # Clock: the H100 SXM's 1.98 GHz boost (NVIDIA H100 datasheet), the same
    # GH100 die; that it holds under load is a guess.
    "H200": Gpu("NVIDIA H200", 132, 1.98, 4283.6, "measured (bench/results/report-cuda.json)"),
    # H100 SXM5 80 GB: 132 SMs, 1.98 GHz boost, 3.35 TB/s HBM3 (datasheet).
    # Copy bandwidth: guess, the H200's measured share of its 4.8 TB/s spec
    # (89%) applied to 3.35 TB/s.
    "H100": Gpu(
        "NVIDIA H100 SXM",
        132,
        1.98,
        3.35e3 * 4283.6 / 4.8e3,
        "guess: 89% of the 3.35 TB/s spec, as measured on the H200",
    ),  # fmt: skip
}
