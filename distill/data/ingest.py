"""Bring real talking-head videos into the corpus format.

Each source video (with audio) is resampled to 25 fps and 16 kHz, centre-cropped
to a square and resized, then written like a synthetic clip. Real clips carry
no per-frame ground truth: their JSON has no `params` or `phonemes`, and
consumers that need those skip them. There is no face detector: the face is
assumed to be roughly centred, as in talking-head datasets (HDTF, CelebV-HQ
crops); crop such videos beforehand otherwise.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F

from distill.data.manifest import manifest_row, write_manifest
from distill.data.video_io import SAMPLE_RATE, ClipReadError, atomic_path, read_mp4, write_mp4, write_wav

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}


@dataclass(frozen=True)
class IngestConfig:
    fps: int = 25
    size: int = 128
    tier: Literal["high", "moderate"] = "high"
    min_frames: int = 16  # shorter clips cannot fill one training window


def square_resize(frames: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop (T, H, W, 3) uint8 frames to a square and resize to (T, size, size, 3) with antialiasing."""
    t, h, w, _ = frames.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = torch.from_numpy(frames[:, top : top + side, left : left + side].copy()).permute(0, 3, 1, 2).float()  # (T, 3, S, S)
    out = []
    for chunk in crop.split(64):
        out.append(F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(out).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()  # (T, size, size, 3)


def clip_ids(files: list[Path], root: Path) -> list[str]:
    """One id per file from its path below `root`; the extension joins in only where names would collide."""
    def safe(rel: str) -> str:
        return "real-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", rel)

    bare = [safe(str(f.relative_to(root).with_suffix(""))) for f in files]
    ids = [b if bare.count(b) == 1 else safe(str(f.relative_to(root))) for b, f in zip(bare, files)]
    if len(set(ids)) != len(ids):
        raise ValueError("ingest: two source files map to the same clip id")
    return ids


def ingest_video(src: Path, cid: str, out_dir: Path, cfg: IngestConfig) -> dict[str, Any]:
    from PIL import Image

    # Crop and resize each frame as it is decoded: a long HD video never sits in memory at full size.
    clip = read_mp4(src, fps=cfg.fps, require_audio=True, transform=lambda f: square_resize(f[None], cfg.size)[0])
    n = len(clip.frames)
    if n < cfg.min_frames:
        raise ClipReadError(f"{src}: {n} frames, need at least {cfg.min_frames}")
    spf = SAMPLE_RATE // cfg.fps
    audio = np.zeros(n * spf, np.float32)  # (T * spf,): the audio is cut or padded to the video's length
    audio[: min(len(audio), len(clip.audio))] = clip.audio[: len(audio)]
    frames = clip.frames
    meta = {
        "id": cid,
        "split": "ingest",
        "source": src.name,
        "fps": cfg.fps,
        "sample_rate": SAMPLE_RATE,
        "size": cfg.size,
        "n_frames": n,
        "duration": round(n / cfg.fps, 4),
        "identity_id": cid,
        "tier": cfg.tier,
        "corruptions": [],
        "av_offset_frames": 0,
    }
    write_mp4(out_dir / f"{cid}.mp4", frames, audio, fps=cfg.fps)
    write_wav(out_dir / f"{cid}.wav", audio)
    with atomic_path(out_dir / f"{cid}.png") as tmp:
        Image.fromarray(frames[0]).save(tmp, format="PNG")
    with atomic_path(out_dir / f"{cid}.json") as tmp:
        tmp.write_text(json.dumps(meta, sort_keys=True) + "\n")
    return manifest_row(meta)


def ingest_folder(
    src: str | Path, out_dir: str | Path, cfg: IngestConfig = IngestConfig(), progress: Callable[[int], None] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Ingest every video under `src`; return (manifest rows, per-file error messages).

    A bad file is reported and skipped; the manifest lists the clips that made it.
    """
    src, out = Path(src), Path(out_dir)
    if src.is_file():
        files, root = [src], src.parent
    elif src.is_dir():
        files, root = sorted(p for p in src.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES), src
    else:
        raise FileNotFoundError(f"{src}: no such file or folder")
    out.mkdir(parents=True, exist_ok=True)
    rows, errors = [], []
    for f, cid in zip(files, clip_ids(files, root)):
        try:
            rows.append(ingest_video(f, cid, out, cfg))
        except ClipReadError as e:
            log.warning("skipped %s", e)
            errors.append(str(e))
        if progress:
            progress(1)
    write_manifest(out, rows)
    return rows, errors
