"""Turning one report (the dict ``report.py`` stores as JSON) into tables and a chart.

``markdown`` gives the text that ``report.py`` prints and puts in
RESULTS.md; ``chart`` draws the PNG; ``update_results_md`` replaces the
device type's section of RESULTS.md between its two marker comments.
"""

import re
from pathlib import Path

from .activations import label
from .cases import MODES, TENSORS_MOVED
from .providers import PROVIDERS

_MODE_TITLES = {
    "fwd": "Forward",
    "bwd": "Backward (dx and dalpha)",
    "fwd+bwd": "Forward + backward",
}
_OTHERS = [p for p in PROVIDERS if p.name != "elu_triton"]


def _environment_lines(report: dict) -> list[str]:
    env = report["environment"]
    copy = report["copy_bandwidth"]
    lines = [
        f"- date: {env['date']}",
        f"- device: {env['device']}"
        + (
            f", driver {env['driver']}, {env.get('toolkit') or 'CUDA ' + str(env['cuda'])}"
            if env["device_type"] == "cuda"
            else ""
        ),
        f"- torch {env['torch']}, triton {env['triton']}, Python {env['python']}",
        f"- host CPU: {env['cpu']}, torch threads: {env['cpu_threads']}; load average at start "
        f"{env.get('load_average', 'unknown')} (other jobs share the machine when above 0)",
        f"- measured copy bandwidth: {copy['GBps']:.1f} GB/s (read + write, clone of "
        f"{copy['bytes'] / 2**20:.0f} MiB)",
        f"- command: `{report['command']}` ({report['elapsed_s']:.0f} s)",
    ]
    if env["device_type"] == "cpu":
        # Reports before the backends seam named the CPU path "cpu_path".
        path = env.get("backend") or env.get("cpu_path", "the PyTorch path")
        lines.append(f"- CPU run: elu_triton runs {path}, no Triton interpreter")
    return lines


def _cell(record) -> str:
    if record is None:
        return "-"
    if record.get("ms") is None:
        return record.get("error", "skipped").split(":")[0]
    return f"{record['ms']:.3g}"


def _mode_table(report: dict, mode: str) -> list[str]:
    index = {(r["case"], r["dtype"], r["mode"], r["provider"]): r for r in report["results"]}
    pairs = list(dict.fromkeys((r["case"], r["dtype"]) for r in report["results"]))
    shapes = {r["case"]: r for r in report["results"]}
    moved = TENSORS_MOVED[mode]
    head = ["case", "shape, layout, #alpha", "dtype", "elu_triton ms", "GB/s", "% copy"]
    head += [f"{p.label} ms (speedup)" for p in _OTHERS if mode in p.modes]
    lines = [
        f"### {_MODE_TITLES[mode]} ({moved} tensor reads + writes per element)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for case, dtype in pairs:
        info = shapes[case]
        ours = index.get((case, dtype, mode, "elu_triton"))
        row = [case, f"{tuple(info['shape'])} {info['layout']}, {info['num_alpha']}", dtype]
        if ours is not None and ours.get("ms") is not None:
            row += [f"{ours['ms']:.3g}", f"{ours['GBps']:.3g}", f"{ours['pct_copy']:.0f}%"]
        else:
            row += [_cell(ours), "-", "-"]
        for p in _OTHERS:
            if mode not in p.modes:
                continue
            other = index.get((case, dtype, mode, p.name))
            cell = _cell(other)
            if other is not None and other.get("ms") is not None and ours and ours.get("ms"):
                cell += f" ({other['ms'] / ours['ms']:.2f}x)"
            row.append(cell)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _extras_lines(report: dict) -> list[str]:
    lines = []
    memory = report.get("activation_memory")
    if memory and "bytes" in memory:
        lines += ["### Activation memory (bytes autograd keeps, parameters excluded)", ""]
        lines += [f"{memory['case']}:", ""]
        lines += ["| activation | saved bytes | per element |", "|---|---|---|"]
        for name, nbytes in memory["bytes"].items():
            lines.append(f"| {label(name)} | {nbytes} | {nbytes / memory['numel']:.2f} |")
        lines.append("")
    model = report.get("model")
    if model and "ms" in model:
        lines += [
            "### Small conv net, one training step (forward + backward)", "",
            f"Input {tuple(model['input'])}; three 1x1 convs, two batch norms, three activations. "
            f"Graph breaks compiling the LearnableELU net: {model['graph_breaks_learnable']}; "
            f"dynamo captured the same graph from both nets: {model.get('same_graph')}; "
            f"losses and gradients of the four nets agree: {model['outputs_agree']}.", "",
            "| net | ms, median of 3 rounds | ms, best round |", "|---|---|---|",
        ]  # fmt: skip
        for name, ms in model["ms"].items():
            lines.append(f"| {name} | {ms:.3g} | {model['min_ms'][name]:.3g} |")
        lines.append("")
    elif model:
        lines += [f"Small conv net: {model.get('error', 'not measured')}", ""]
    return lines


def markdown(report: dict) -> str:
    """The whole report as markdown: environment, one table per mode, extras, targets."""
    lines = _environment_lines(report) + [""]
    lines += [
        "Times in ms: on CUDA the median of triton.testing.do_bench (L2 flushed), on the "
        "CPU the minimum of at least 5 calls (perf_counter). "
        "GB/s counts the minimum traffic (x read, y written; backward: x and dy read, dx "
        "written); % copy is that over the measured copy bandwidth. A speedup is that "
        "provider's time over elu_triton's: above 1, elu_triton is faster.",
        "",
    ]
    for mode in MODES:
        lines += _mode_table(report, mode) + [""]
    lines += _extras_lines(report)
    lines += ["### Targets", "", "| target | status | measured |", "|---|---|---|"]
    for target in report["targets"]:
        lines.append(f"| {target['name']} | {target['status']} | {target['detail']} |")
    return "\n".join(lines) + "\n"


def _panel(ax, records: list[dict], mode: str, dtype: str, copy_gbps: float) -> None:
    """One (mode, dtype) panel: a group of bars per case, one bar per provider."""
    mine = [r for r in records if r["mode"] == mode and r["dtype"] == dtype]
    cases = list(dict.fromkeys(r["case"] for r in records if r["dtype"] == dtype))
    width = 0.8 / len(PROVIDERS)
    for k, p in enumerate(PROVIDERS):
        got = {r["case"]: r["GBps"] for r in mine if r["provider"] == p.name}
        offset = (k - len(PROVIDERS) / 2 + 0.5) * width
        xs = [i + offset for i, c in enumerate(cases) if c in got]
        ax.bar(xs, [got[c] for c in cases if c in got], width, label=p.label)
    ax.axhline(copy_gbps, color="black", ls="--", lw=1, label="measured copy bandwidth")
    ax.set_title(f"{mode}, {dtype}")
    ax.set_xticks(range(len(cases)), cases, rotation=30, fontsize=8)
    ax.set_ylabel("effective GB/s")


def chart(report: dict, path: Path) -> None:
    """Effective GB/s of every provider: one panel per (mode, dtype), cases along x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in report["results"] if r.get("ms") is not None]
    dtypes = list(dict.fromkeys(r["dtype"] for r in records))
    fig, axes = plt.subplots(
        len(MODES), len(dtypes), figsize=(6 * len(dtypes), 3.6 * len(MODES)), squeeze=False
    )
    for row, mode in enumerate(MODES):
        for col, dtype in enumerate(dtypes):
            _panel(axes[row][col], records, mode, dtype, report["copy_bandwidth"]["GBps"])
    axes[0][0].legend(fontsize=7)
    env = report["environment"]
    fig.suptitle(f"elu_triton and the other providers on {env['device']}, {env['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def update_results_md(path: Path, device_type: str, text: str) -> bool:
    """Replace the device type's section of RESULTS.md; False if its markers are missing."""
    start, end = f"<!-- results:{device_type}:start -->", f"<!-- results:{device_type}:end -->"
    content = path.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(content):
        return False
    path.write_text(pattern.sub(lambda _: f"{start}\n{text}{end}", content))
    return True
