"""The baseline table: how the harness scores ground truth and known-bad videos.

For every split it scores ground-truth clips of each tier and three damaged
copies of the `high` ones whose right answer is known: the audio delayed by a
fixed number of frames (offset must come out at minus that), another clip's
audio (sync must collapse), and the reference image held still over the audio
(no mouth motion). A metric that does not separate these is not measuring
what it claims.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from distill.data.corrupt import shift_audio
from distill.data.manifest import read_manifest
from distill.data.video_io import SAMPLE_RATE, atomic_path, read_mp4, write_mp4
from distill.eval.experts import Experts
from distill.eval.score import ScoreConfig, score_videos
from distill.eval.selfcheck import fit_length

VARIANTS = ("gt_high", "gt_moderate", "shifted_audio", "swapped_audio", "still_image")
COLUMNS = ("n", "sync_c", "sync_d", "offset", "abs_offset", "mouth_corr", "closed_in_silence", "identity_sim")


@dataclass(frozen=True)
class BaselineConfig:
    shift_frames: int = 5  # audio delay of the shifted variant; its offset should read -shift_frames
    max_clips: int = 40  # per split and variant: enough for a stable mean, bounded time
    fps: int = 25


def _copy_sidecars(src_dir: Path, cid: str, dst_dir: Path, json_too: bool) -> None:
    """The reference image (and, where it still describes the video, the metadata) beside a variant."""
    shutil.copyfile(src_dir / f"{cid}.png", dst_dir / f"{cid}.png")
    if json_too:
        shutil.copyfile(src_dir / f"{cid}.json", dst_dir / f"{cid}.json")


def make_variants(data_dir: Path, out_dir: Path, cfg: BaselineConfig = BaselineConfig()) -> dict[str, list[Path]]:
    """Write each variant's videos under `out_dir/<variant>/`; return {variant: mp4 paths}."""
    rows = read_manifest(data_dir)
    high = [r["id"] for r in rows if r["tier"] == "high"][: cfg.max_clips]
    moderate = [r["id"] for r in rows if r["tier"] == "moderate"][: cfg.max_clips]
    spf = SAMPLE_RATE // cfg.fps
    out: dict[str, list[Path]] = {v: [] for v in VARIANTS}
    for v in VARIANTS:
        (out_dir / v).mkdir(parents=True, exist_ok=True)
    for variant, ids in (("gt_high", high), ("gt_moderate", moderate)):
        for cid in ids:
            shutil.copyfile(data_dir / f"{cid}.mp4", out_dir / variant / f"{cid}.mp4")
            _copy_sidecars(data_dir, cid, out_dir / variant, json_too=True)
            out[variant].append(out_dir / variant / f"{cid}.mp4")
    clips = {cid: read_mp4(data_dir / f"{cid}.mp4") for cid in high}
    for i, cid in enumerate(high):
        clip = clips[cid]
        n = len(clip.frames) * spf
        audio = fit_length(clip.audio, n)  # (T * spf,)
        # Delayed audio: the sound comes after the mouth, i.e. the video leads (offset -shift).
        dst = out_dir / "shifted_audio" / f"{cid}.mp4"
        write_mp4(dst, clip.frames, shift_audio(audio, -cfg.shift_frames, spf), fps=cfg.fps)
        _copy_sidecars(data_dir, cid, dst.parent, json_too=True)
        out["shifted_audio"].append(dst)
        if len(high) > 1:
            swapped = fit_length(clips[high[(i + 1) % len(high)]].audio, n)
            dst = out_dir / "swapped_audio" / f"{cid}.mp4"
            write_mp4(dst, clip.frames, swapped, fps=cfg.fps)
            _copy_sidecars(data_dir, cid, dst.parent, json_too=False)
            out["swapped_audio"].append(dst)
        with Image.open(data_dir / f"{cid}.png") as im:
            still = np.asarray(im.convert("RGB"))  # (H, W, 3)
        dst = out_dir / "still_image" / f"{cid}.mp4"
        write_mp4(dst, np.repeat(still[None], len(clip.frames), axis=0), audio, fps=cfg.fps)
        _copy_sidecars(data_dir, cid, dst.parent, json_too=False)
        out["still_image"].append(dst)
    return out


def run_baseline(
    splits: dict[str, Path],
    out_dir: Path,
    experts: Experts,
    cfg: BaselineConfig = BaselineConfig(),
    progress: Callable[[Path], None] | None = None,
) -> list[dict[str, Any]]:
    """Score every variant of every split; write per-group reports; return the table rows."""
    from distill.eval.report import write_report

    table = []
    for split, data_dir in splits.items():
        variants = make_variants(Path(data_dir), out_dir / "variants" / split, cfg)
        for variant, paths in variants.items():
            row: dict[str, Any] = {"split": split, "variant": variant, "n": len(paths)}
            if paths:
                report, curves = score_videos(paths, experts, ScoreConfig(fps=cfg.fps), progress=progress)
                write_report(report, curves, out_dir / "reports" / split / variant)
                s = report["summary"]
                row["n"] = s["n_clips"] - s["n_errors"]
                row.update({k: s.get(k) for k in COLUMNS if k != "n"})
            table.append(row)
    return table


def markdown_table(rows: list[dict[str, Any]], cfg: BaselineConfig = BaselineConfig()) -> str:
    head = "| split | variant | " + " | ".join(COLUMNS) + " |\n|" + "---|" * (len(COLUMNS) + 2) + "\n"

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    body = "".join(f"| {r['split']} | {r['variant']} | " + " | ".join(fmt(r.get(k)) for k in COLUMNS) + " |\n" for r in rows)
    note = (
        f"\nshifted_audio: audio delayed by {cfg.shift_frames} frames (expected offset -{cfg.shift_frames}); "
        "swapped_audio: another clip's audio; still_image: the reference image held over the clip's audio. "
        "offset is in frames, positive when the video lags the audio.\n"
    )
    return head + body + note


def write_table(rows: list[dict[str, Any]], out_dir: Path, cfg: BaselineConfig = BaselineConfig()) -> list[Path]:
    """baseline.json, baseline.md and a Sync-C / identity bar plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "baseline.json", out_dir / "baseline.md", out_dir / "baseline.png"]
    with atomic_path(paths[0]) as tmp:
        tmp.write_text(json.dumps(rows, indent=2) + "\n")
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(markdown_table(rows, cfg))
    splits = list(dict.fromkeys(r["split"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    width = 0.8 / max(1, len(splits))
    for ax, key in zip(axes, ("sync_c", "identity_sim")):
        for j, split in enumerate(splits):
            vals = [next((r.get(key) for r in rows if r["split"] == split and r["variant"] == v), None) for v in VARIANTS]
            ax.bar(np.arange(len(VARIANTS)) + j * width, [v if v is not None else 0.0 for v in vals], width, label=split)
        ax.set_xticks(np.arange(len(VARIANTS)) + width * (len(splits) - 1) / 2, VARIANTS, rotation=20, fontsize=8)
        ax.set_title(key)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(paths[2]) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return paths
