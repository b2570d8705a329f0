"""A static model of the kernels on a named GPU: predicted share of the copy bandwidth, no GPU needed.

Every figure it prints is a PREDICTION. Its calibration against the one real
GPU run (an H200, commit fac9bf6) is ``results/static-model-calibration.md``
(``python -m bench.static_model_calibration`` refits it); the GPU check
(``bench.gpu_check``) prints each prediction beside its measurement.

Each kernel is compiled ahead of time for sm_90 with the installed Triton
(``elu_triton.codegen``), specialized for the real shape and launch
configuration of each case, and its SASS read (``sass.py``). The model then
bounds the kernel's time by three limits of the whole GPU (``gpus.py``):

- bandwidth: the bytes the kernel moves at the measured copy bandwidth;
- issue: instructions per thread on the busiest pipe (each scheduler issues
  one warp instruction per clock; the integer ALU runs at half that rate,
  conversions at an eighth), over every warp of the grid;
- latency: global-load round trips per program (``sass.load_round_trips``),
  each of LATENCY; the programs resident at once (occupancy: registers,
  shared memory, warps) overlap theirs, so the grid pays waves x trips x
  LATENCY.

The three combine as (bw^p + issue^p + latency^p)^(1/p): the largest binds,
the others cost a little where they are close. LATENCY (a loaded memory
round trip) and p are the two fitted constants. A case's prediction adds
what runs after the kernel on the GPU: each per-channel partial-sum
reduction (its bytes at copy bandwidth plus LAUNCH_GAP, a guess).

    python -m bench.static_model                     # H200, the large cases
    python -m bench.static_model --gpu H100 --all    # every case
    python -m bench.static_model --json out.json
"""

import argparse
import functools
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import triton

from elu_triton.codegen import CodegenCase, CompiledCase, compile_cases, example_view
from elu_triton.layout import MemoryView

from . import sass, targets
from .batch_norm import SHAPE as BATCH_NORM_SHAPE
from .cases import GPU_CASES
from .gpus import GPUS, Gpu

RESULTS = Path(__file__).parent / "results"
CALIBRATION = RESULTS / "static-model-calibration.json"
# Predictions of the code at the start of issue 29 (Triton 3.6): the "no lower" targets.
START = RESULTS / "static-model-start.json"
# Predictions when the code last landed, per Triton release: the CI's regression guard.
LANDED = RESULTS / "static-model-landed.json"


@dataclass(frozen=True)
class Constants:
    latency_ns: float  # a loaded global-memory round trip (fitted)
    smoothing: float  # p, the exponent that combines the three limits (fitted)
    launch_gap_us: float = 2.0  # per small follow-up kernel (guess)


def calibrated() -> Constants:
    """The constants fitted by ``static_model_calibration.py``."""
    return Constants(**json.loads(CALIBRATION.read_text())["constants"])


@dataclass(frozen=True)
class KernelCode:
    """What the model reads from one compiled kernel."""

    n_regs: int  # per thread
    shared_bytes: int  # per program
    num_warps: int
    programs: int  # the grid
    block_r: int  # the tile
    block_k: int
    counts: dict  # instructions per thread by pipe (sass.pipe_counts)
    conversions: int  # per thread
    trips: int  # global load round trips per thread
    bytes_per_trip: tuple  # per thread

    @classmethod
    def of(cls, compiled: CompiledCase) -> "KernelCode":
        code = sass.executed(compiled.sass)
        trips = sass.load_round_trips(code)
        return cls(
            compiled.n_regs, compiled.shared_bytes, compiled.num_warps, math.prod(compiled.grid),
            compiled.block_r, compiled.block_k, dict(sass.pipe_counts(code)),
            sass.conversions(code), trips.count, trips.bytes_per_trip,
        )  # fmt: skip

    @property
    def elements_per_thread(self) -> float:
        return self.block_r * self.block_k / (self.num_warps * 32)


def blocks_per_sm(code: KernelCode, gpu: Gpu) -> int:
    """Programs resident on one SM at once: the tightest of warps, registers, shared memory."""
    per_warp = -(-code.n_regs * 32 // gpu.register_granule) * gpu.register_granule
    by_registers = gpu.registers // (per_warp * code.num_warps)
    shared = code.shared_bytes + gpu.shared_reserved_per_block
    by_shared = gpu.shared_bytes // shared
    return max(min(gpu.max_blocks, gpu.max_warps // code.num_warps, by_registers, by_shared), 1)


@dataclass(frozen=True)
class KernelPrediction:
    us: float  # predicted time of the kernel
    limit: str  # the largest of the three: "bandwidth", "issue" or "latency"
    n_regs: int
    bandwidth_us: float
    issue_us: float
    latency_us: float
    blocks_per_sm: int
    waves: float  # programs / (blocks_per_sm x SMs)
    instructions_per_element: float
    conversions_per_element: float
    busiest_pipe: str
    trips: int
    bytes_in_flight_per_sm: float  # per trip, every resident thread asking at once


def predict_kernel(
    code: KernelCode, bytes_moved: int, gpu: Gpu, constants: Constants
) -> KernelPrediction:
    """The kernel's time on gpu, moving bytes_moved in all."""
    blocks = blocks_per_sm(code, gpu)
    waves = code.programs / (blocks * gpu.sms)
    # Clocks a scheduler spends per warp: each pipe's instructions at its rate.
    issue_rate = sass.PIPE_RATE["issue"]
    per_pipe = {p: code.counts.get(p, 0) * issue_rate / rate for p, rate in sass.PIPE_RATE.items()}
    busiest = max(per_pipe, key=per_pipe.get)
    warps = code.programs * code.num_warps
    limits = {
        "bandwidth": bytes_moved / (gpu.copy_gbps * 1e3),
        "issue": warps * per_pipe[busiest] / (gpu.sms * gpu.schedulers * gpu.clock_ghz * 1e3),
        "latency": max(waves, 1.0) * code.trips * constants.latency_ns / 1e3,
    }
    p = constants.smoothing
    us = sum(t**p for t in limits.values()) ** (1 / p)
    per_element = code.elements_per_thread
    resident_threads = min(code.programs / gpu.sms, blocks) * code.num_warps * 32
    mean_trip = sum(code.bytes_per_trip) / max(code.trips, 1)
    return KernelPrediction(
        us, max(limits, key=limits.get), code.n_regs, limits["bandwidth"], limits["issue"], limits["latency"],
        blocks, waves, code.counts["issue"] / per_element, code.conversions / per_element, busiest,
        code.trips, resident_threads * mean_trip,
    )  # fmt: skip


# Big tensors each kernel reads or writes once (x, y, dy, dx), and the
# per-channel partial-sum matrices it writes (the host reduces each after).
TENSORS = {"forward": 2, "backward": 3, "bn_statistics": 1, "bn_forward": 2, "bn_reduce": 2,
           "bn_dx": 3}  # fmt: skip
PARTIALS = {"backward": 1, "bn_statistics": 3, "bn_reduce": 3}


@dataclass(frozen=True)
class ModelCase:
    """One kernel launch the model predicts: a case of bench/cases.py or of the fused layer."""

    name: str  # the bench case's name
    kernel: str  # a key of codegen's KERNELS
    dtype: str
    layout: str  # codegen's LAYOUTS
    shape: tuple
    activation: str = "learnable_elu"

    @property
    def codegen_case(self) -> CodegenCase:
        return CodegenCase(self.kernel, self.dtype, self.layout, True, "sm_90", self.activation,
                           self.shape)  # fmt: skip

    @functools.cached_property
    def view(self) -> MemoryView:
        """The kernels' (R, K) memory view of x (elu_triton/layout.py)."""
        return example_view(self.layout, self.shape)

    @property
    def min_bytes(self) -> int:
        """The bytes the kernel must move: its big tensors, once each."""
        return TENSORS[self.kernel] * math.prod(self.shape) * getattr(torch, self.dtype).itemsize

    @property
    def calibrated(self) -> bool:
        """Of a kind the H200 run measured: the activation's kernels in fp32 or bf16. fp16
        and the fused batch norm's passes never ran on a GPU: uncalibrated predictions."""
        return self.kernel in ("forward", "backward") and self.dtype != "float16"

    @property
    def large(self) -> bool:
        """256 MB and up in every dtype: the cases the targets are judged on."""
        return math.prod(self.shape) * 2 * 2 >= 256e6

    def partial_bytes(self, block_r: int, block_k: int) -> int:
        """Bytes of one fp32 partials matrix: a sum per tile column (channel per column) or row."""
        view = self.view
        if view.channel_is_column:
            return 4 * triton.cdiv(view.rows, block_r) * view.cols
        return 4 * view.rows * triton.cdiv(view.cols, block_k)


@dataclass(frozen=True)
class CasePrediction:
    case: ModelCase
    kernel: KernelPrediction
    us: float  # the kernel and its partial sums
    share_of_copy: float  # min_bytes / us, over the copy bandwidth


def predict_case(
    case: ModelCase, code: KernelCode, gpu: Gpu, constants: Constants
) -> CasePrediction:
    """The case's kernel and the reductions of the partial sums it writes."""
    partials = case.partial_bytes(code.block_r, code.block_k)
    count = PARTIALS.get(case.kernel, 0)
    kernel = predict_kernel(code, case.min_bytes + count * partials, gpu, constants)
    sums_us = count * (partials / (gpu.copy_gbps * 1e3) + constants.launch_gap_us)
    us = kernel.us + sums_us
    return CasePrediction(case, kernel, us, case.min_bytes / (us * 1e3) / gpu.copy_gbps)


def layout_of(case) -> str:
    if case.shared_alpha:
        return "shared_alpha"
    return "channel_per_column" if case.channels_last or len(case.shape) == 2 else "channel_per_row"


ACTIVATION_DTYPES = ("float32", "bfloat16", "float16")
# bench/batch_norm.py's shape, and the activation's large (537 MB fp32) one.
BATCH_NORM_SHAPES = {
    "bn": BATCH_NORM_SHAPE,
    "bn_large": next(c.shape for c in GPU_CASES if c.name == "large"),
}
BATCH_NORM_KERNELS = ("bn_statistics", "bn_forward", "bn_reduce", "bn_dx")


def model_cases() -> list[ModelCase]:
    """Every case: the activation's (bench/cases.py's GPU cases, 3 dtypes, forward and
    backward) and the fused layer's (bench/batch_norm.py's shape and a 537 MB one, fp32
    and bf16, both layouts, its four passes, each fused activation)."""
    cases = [
        ModelCase(c.name, kernel, dtype, layout_of(c), c.shape)
        for c in GPU_CASES
        for dtype in ACTIVATION_DTYPES
        for kernel in ("forward", "backward")
    ]
    for name, shape in BATCH_NORM_SHAPES.items():
        for dtype in ("float32", "bfloat16"):
            for layout in ("channel_per_row", "channel_per_column"):
                for kernel in BATCH_NORM_KERNELS:
                    activations = ("learnable_elu",) if kernel == "bn_statistics" else (
                        "learnable_elu", "prelu")  # fmt: skip
                    cases += [ModelCase(name, kernel, dtype, layout, shape, a) for a in activations]
    return cases


def compile_codes(cases: list[ModelCase], jobs: int = 2) -> dict[ModelCase, KernelCode]:
    """Each case's kernel compiled for sm_90 by the installed Triton, read for the model."""
    compiled = compile_cases([c.codegen_case for c in cases], jobs=jobs, sass=True)
    return {case: KernelCode.of(k) for case, k in zip(cases, compiled)}


def predict_all(
    cases: list[ModelCase], gpu: Gpu, constants: Constants, jobs: int = 2
) -> list[CasePrediction]:
    """Compile each case with the installed Triton and predict it."""
    codes = compile_codes(cases, jobs)
    return [predict_case(c, codes[c], gpu, constants) for c in cases]


def key(case: ModelCase) -> str:
    """A case's name in tables and JSON, e.g. 'large/backward/bfloat16/channel_per_row'."""
    extra = "" if case.activation == "learnable_elu" else f"/{case.activation}"
    return f"{case.name}/{case.kernel}/{case.dtype}/{case.layout}{extra}"


def as_record(p: CasePrediction) -> dict:
    return {"case": key(p.case), "large": p.case.large, "calibrated": p.case.calibrated, "us": p.us,
            "share_of_copy": p.share_of_copy, **asdict(p.kernel)}  # fmt: skip


def table(predictions: list[CasePrediction]) -> str:
    lines = [
        f"{'case (PREDICTED)':<58}{'us':>8}{'%copy':>7}{'limit':>10}{'regs':>5}{'blk/SM':>7}"
        f"{'ins/el':>7}{'cvt/el':>7}{'pipe':>6}{'trips':>6}{'KB/SM':>7}"
    ]
    for p in predictions:
        k = p.kernel
        lines.append(
            f"{key(p.case) + ('' if p.case.calibrated else ' *'):<58}{p.us:>8.1f}{100 * p.share_of_copy:>7.1f}{k.limit:>10}"
            f"{k.n_regs:>5}{k.blocks_per_sm:>7}{k.instructions_per_element:>7.1f}"
            f"{k.conversions_per_element:>7.2f}{k.busiest_pipe:>6}{k.trips:>6}"
            f"{k.bytes_in_flight_per_sm / 1024:>7.1f}"
        )
    lines.append("* uncalibrated: the H200 run measured neither fp16 nor the fused batch norm")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--gpu", choices=sorted(GPUS), default="H200")
    parser.add_argument("--all", action="store_true", help="every case, not only the large ones")
    parser.add_argument("--json", type=Path, help="write every prediction here")
    parser.add_argument(
        "--targets",
        action="store_true",
        help="judge issue 29's targets (Triton 3.6, H200; every case)",
    )
    parser.add_argument(
        "--landed",
        action="store_true",
        help=f"record every case's H200 share under this Triton in {LANDED.name}",
    )
    args = parser.parse_args(argv)
    everything = args.all or args.targets or args.landed
    cases = [c for c in model_cases() if everything or c.large]
    gpu = "H200" if args.targets or args.landed else args.gpu
    predictions = predict_all(cases, GPUS[gpu], calibrated())
    print(f"PREDICTIONS for {GPUS[gpu].name}, kernels compiled by Triton "
          f"{triton.__version__}; calibration: {CALIBRATION.name}")  # fmt: skip
    print(table(predictions))
    if args.json:
        records = [as_record(p) for p in predictions]
        args.json.write_text(json.dumps({"gpu": gpu, "triton": triton.__version__,
                                         "predictions": records}, indent=1) + "\n")  # fmt: skip
    if args.landed:
        landed = json.loads(LANDED.read_text()) if LANDED.exists() else {}
        landed[triton_release()] = shares(predictions)
        LANDED.write_text(json.dumps(landed, indent=1, sort_keys=True) + "\n")
    if args.targets:
        return judge_targets(predictions)
    return 0


def triton_release() -> str:
    """The installed Triton's major.minor, the key of LANDED."""
    return ".".join(triton.__version__.split(".")[:2])


def shares(predictions: list[CasePrediction]) -> dict[str, float]:
    return {key(p.case): round(p.share_of_copy, 4) for p in predictions}


def judge_targets(predictions: list[CasePrediction]) -> int:
    if triton_release() != "3.6":
        print(f"the targets are judged with Triton 3.6 (the GPU image's); this is "
              f"{triton.__version__}: see bench/README.md")  # fmt: skip
        return 2
    start = shares_of_file(START)
    results = targets.static_model(shares(predictions), start)
    for t in results:
        print(f"{t.status}: {t.name} ({t.detail})")
    return 0 if all(t.status == "PASS" for t in results) else 1


def shares_of_file(path: Path) -> dict[str, float]:
    """{case key: share of copy} of a --json file."""
    return {r["case"]: r["share_of_copy"] for r in json.loads(path.read_text())["predictions"]}


if __name__ == "__main__":
    sys.exit(main())
