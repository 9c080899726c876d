"""python -m kernels.bench_plot: the speed-up columns of several kernels.bench tables as one bar chart.

    python -m kernels.bench_plot --out docs/kernels_bench.png "H200, previous=docs/kernels_bench_previous.md" \
        "H200=docs/kernels_bench.md" "H100=docs/kernels_bench_h100.md"

Each LABEL=FILE is a Markdown file that `python -m kernels.bench` wrote. The chart has one panel per preset
and one bar per (op, file): the table's "triton / baseline" ratio (SDPA-flash for attention, eager torch for
the fused ops, the torch backend for the whole denoiser), on a log axis with 1x marked, so a bar left of
the line is a kernel slower than what it replaces.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

SECTION = re.compile(r"^## ([^:]+): (.+)$")
RATIO = re.compile(r"^([0-9]+(?:\.[0-9]+)?)x$")


def speedups(text: str) -> dict[str, dict[str, float]]:
    """{preset: {op: triton / baseline}} from one bench Markdown file; sweep tables and unmeasured rows are skipped."""
    out: dict[str, dict[str, float]] = {}
    preset = None
    for line in text.splitlines():
        if m := SECTION.match(line):
            preset = None if "sweep" in m.group(2) else m.group(1)
            continue
        if preset is None or not line.startswith("| ") or line.startswith("| op |"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        ratio = next((RATIO.match(c) for c in reversed(cells) if RATIO.match(c)), None)
        if ratio:
            out.setdefault(preset, {})[cells[0]] = float(ratio.group(1))
    return out


def plot(runs: dict[str, dict[str, dict[str, float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    presets = list(dict.fromkeys(p for run in runs.values() for p in run))
    fig, axes = plt.subplots(1, len(presets), figsize=(6.5 * len(presets), 4.8), squeeze=False)
    height = 0.8 / len(runs)
    for ax, preset in zip(axes[0], presets):
        ops = list(dict.fromkeys(op for run in runs.values() for op in run.get(preset, {})))
        for i, (label, run) in enumerate(runs.items()):
            vals = [run.get(preset, {}).get(op, float("nan")) for op in ops]
            ax.barh([k + i * height for k in range(len(ops))], vals, height=height, label=label)
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_xscale("log")
        ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16) if t <= 2 * max(max(r.get(preset, {}).values(), default=1) for r in runs.values())]
        ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_yticks([k + height * (len(runs) - 1) / 2 for k in range(len(ops))], ops)
        ax.invert_yaxis()
        ax.set_xlabel("Triton / baseline (log; > 1 is faster)")
        ax.set_title(f"{preset} preset")
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kernels.bench_plot", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="LABEL=FILE")
    p.add_argument("--out", type=Path, default=Path("docs/kernels_bench.png"))
    args = p.parse_args(argv)
    runs = {}
    for item in args.runs:
        label, sep, path = item.rpartition("=")  # labels may hold "=", file names rarely do
        if not sep or not label or not Path(path).is_file():
            print(f"expected LABEL=FILE with an existing file, got {item!r}", file=sys.stderr)
            return 2
        if label in runs:
            print(f"label {label!r} is given twice", file=sys.stderr)
            return 2
        runs[label] = speedups(Path(path).read_text())
        if not runs[label]:
            print(f"{path}: no speed-up column found (not a kernels.bench table?)", file=sys.stderr)
            return 2
    plot(runs, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
