"""Writing a score report: report.json, a Markdown table, and PNG plots."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from distill.data.video_io import atomic_path
from distill.eval.score import METRICS

MAX_CURVE_PANELS = 36  # beyond this the offset-curve grid is unreadable; the JSON has every clip
NOTES = (
    "Sync-C / Sync-D / offset: SyncNet-style expert trained on the procedural corpus, offsets searched over "
    "+-15 frames; offset > 0 means the video lags the audio. Distances are between unit-length embeddings (0..2), "
    "so values are not comparable with the original SyncNet's.",
    "frechet_sync_visual: Frechet distance in the sync expert's mouth-video embedding space. It is NOT FID "
    "(no Inception network).",
    "mouth_corr: Pearson correlation of the regressor's jaw opening with the clip metadata; closed_in_silence: "
    "share of silent frames (metadata `speaking`, else audio energy with a 100 ms hangover) whose predicted jaw, "
    "minus the reference image's predicted jaw (`jaw_at_rest`, the regressor's bias for this face), is < 0.1.",
    "Videos of another size are resized to 128x128 before scoring (column `resized_from`).",
)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if math.isfinite(v) else str(v)
    return str(v)


def markdown(report: dict[str, Any]) -> str:
    cols = ["clip", *METRICS, "resized_from", "error"]
    lines = ["# Evaluation report", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in report["clips"]:
        cells = [Path(r["path"]).name, *(_fmt(r.get(k)) for k in METRICS), _fmt(r.get("resized_from")),
                 (r.get("error") or "").replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    s = report["summary"]
    lines += ["", "## Summary (mean over clips that scored)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in s.items()]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in NOTES]
    return "\n".join(lines) + "\n"


def _plot_curves(curves: dict[str, list[float | None]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = list(curves.items())[:MAX_CURVE_PANELS]
    n = len(items)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, curve) in zip(axes.flat, items):
        k = (len(curve) - 1) // 2
        shifts = list(range(-k, k + 1))
        ys = [math.nan if v is None else v for v in curve]
        offsets = [-o for o in shifts]  # plot against the reported offset (video lag), not the audio shift
        ax.plot(offsets, ys, ".-", lw=1)
        best = min(range(len(ys)), key=lambda i: ys[i] if not math.isnan(ys[i]) else math.inf)
        ax.axvline(offsets[best], color="r", lw=0.8)
        ax.set_title(f"{Path(name).stem[:28]}  off={offsets[best]}", fontsize=7)
        ax.set_xlabel("offset (frames, + = video lags)", fontsize=7)
        ax.set_ylabel("mean distance", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _plot_metrics(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in report["clips"] if r["error"] is None]
    keys = [k for k in METRICS if any(r.get(k) is not None for r in ok)]
    fig, axes = plt.subplots(len(keys), 1, figsize=(max(4, 0.35 * len(ok) + 2), 1.6 * len(keys)), squeeze=False)
    names = [Path(r["path"]).stem for r in ok]
    for ax, k in zip(axes[:, 0], keys):
        ax.bar(range(len(ok)), [r.get(k) if r.get(k) is not None else 0.0 for r in ok])
        ax.set_ylabel(k, fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_xticks(range(len(ok)), names if ax is axes[-1, 0] else [""] * len(ok), rotation=90, fontsize=5)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_report(report: dict[str, Any], curves: dict[str, list[float | None]], out_dir: str | Path) -> list[Path]:
    """Write report.json, report.md, offset_curves.png and metrics.png (plots only when a clip scored)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "report.md"]
    with atomic_path(written[0]) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    with atomic_path(written[1]) as tmp:
        tmp.write_text(markdown(report))
    if curves:
        _plot_curves(curves, out / "offset_curves.png")
        _plot_metrics(report, out / "metrics.png")
        written += [out / "offset_curves.png", out / "metrics.png"]
    return written
