"""Scoring videos with the experts: one report row per clip, a summary over the clips that scored.

A clip that cannot be scored (unreadable, no audio, too short) gets an `error` in its row and
the others are still scored. Videos of another size are resized to 128x128 (noted per clip).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from distill.data.ingest import VIDEO_SUFFIXES, square_resize
from distill.data.video_io import ClipReadError, read_mp4
from distill.eval import metrics
from distill.eval.crops import SIZE, to_float
from distill.eval.experts import Experts
from distill.eval.identity import embed_faces
from distill.eval.regressor import predict_params
from distill.eval.sync_expert import embed_audio, embed_video, mouth_crops
from fada_stream.features import log_mel

log = logging.getLogger(__name__)

METRICS = ("sync_c", "sync_d", "offset", "mouth_corr", "closed_in_silence", "identity_sim", "psnr", "ssim", "seam_jitter")


@dataclass(frozen=True)
class ScoreConfig:
    max_offset: int = 15  # syncnet_python's search range, +-0.6 s
    fps: float = 25.0  # corpus rate: other rates are resampled to it
    ground_truth: Path | None = None  # folder of ground-truth clips matched by file stem
    reference: Path | None = None  # reference image when a clip has no `<stem>.png` of its own
    window_stride: int | None = None  # new frames per generated window, for seam jitter


@dataclass
class ClipResult:
    row: dict[str, Any]
    curve: list[float | None] = field(default_factory=list)  # mdist for offsets -K..K
    visual: torch.Tensor | None = None  # (W, D) sync-expert video embeddings, for the Frechet distance
    gt_visual: torch.Tensor | None = None


def find_videos(path: str | Path) -> list[Path]:
    """An mp4 (or other video) itself, or the videos directly inside a folder, sorted."""
    p = Path(path)
    if p.is_dir():
        return sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES and not q.name.startswith("."))
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such video or folder")
    return [p]


def load_video(path: Path, fps: float, n_min: int) -> tuple[np.ndarray, np.ndarray, list[int] | None]:
    """(frames (T, 128, 128, 3) uint8, audio (N,) float32, original [H, W] if resized else None)."""
    clip = read_mp4(path, fps=fps)
    frames = clip.frames
    if frames.shape[0] < n_min:
        raise ClipReadError(f"{path}: {frames.shape[0]} frames, fewer than one {n_min}-frame sync window")
    if clip.audio.size == 0:
        raise ClipReadError(f"{path}: empty audio track")
    resized = None
    if frames.shape[1:3] != (SIZE, SIZE):
        resized = list(frames.shape[1:3])
        frames = square_resize(frames, SIZE)  # centre crop, as ingest does: squashing would move the mouth
    return frames, clip.audio, resized


def _sibling(path: Path, suffix: str, ground_truth: Path | None) -> Path | None:
    """`<stem><suffix>` beside the video, else in the ground-truth folder, else None."""
    for folder in (path.parent, ground_truth):
        if folder is not None and (cand := Path(folder) / f"{path.stem}{suffix}").is_file():
            return cand
    return None


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        img = np.asarray(im.convert("RGB"))  # (H, W, 3)
    return square_resize(img[None], SIZE)  # a reference photo of any aspect: centre crop, like the videos


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _fidelity(frames: np.ndarray, gt: np.ndarray, chunk: int = 128) -> tuple[float, float]:
    """(PSNR, SSIM) over the frames both videos have, in chunks so long videos stay small in memory."""
    n = min(len(frames), len(gt))
    psnr_sum = ssim_sum = 0.0
    for i in range(0, n, chunk):
        j = min(i + chunk, n)
        x, y = to_float(frames[i:j]), to_float(gt[i:j])  # (c, 3, 128, 128)
        psnr_sum += (j - i) * metrics.psnr(x, y)  # both metrics are means over frames
        ssim_sum += (j - i) * metrics.ssim(x, y)
    return psnr_sum / n, ssim_sum / n


def sync_curve_of(frames: np.ndarray, audio: np.ndarray, experts: Experts, max_offset: int = 15) -> tuple[torch.Tensor, torch.Tensor]:
    """(mdist (2K + 1,), video embeddings (T - 4, D)) of (T, 128, 128, 3) uint8 frames and (N,) 16 kHz audio."""
    sync_cfg = experts.sync.cfg
    mel = log_mel(torch.from_numpy(audio))  # (80, M)
    if mel.shape[-1] < sync_cfg.mel_window:
        raise ClipReadError(f"audio shorter than one {sync_cfg.mel_window / 100:.1f} s window")
    visual = embed_video(experts.sync, mouth_crops(frames, sync_cfg))  # (T - 4, D)
    return metrics.sync_curve(visual, embed_audio(experts.sync, mel), max_offset), visual


def score_clip(path: Path, experts: Experts, cfg: ScoreConfig) -> ClipResult:
    """Every metric of one clip; raises ClipReadError (or ValueError) when the clip cannot be scored."""
    sync_cfg = experts.sync.cfg
    frames, audio, resized = load_video(path, cfg.fps, sync_cfg.n_frames)
    row: dict[str, Any] = {"path": str(path), "n_frames": int(frames.shape[0]), "resized_from": resized}

    curve, visual = sync_curve_of(frames, audio, experts, cfg.max_offset)
    row["sync_c"], row["sync_d"], row["offset"] = metrics.sync_scores(curve)

    ref_path = _sibling(path, ".png", cfg.ground_truth) or cfg.reference
    ref = _read_image(Path(ref_path)) if ref_path else frames[:1]  # (1, 128, 128, 3)
    row["reference"] = str(ref_path) if ref_path else "first frame"

    meta_path = _sibling(path, ".json", cfg.ground_truth)
    meta = json.loads(meta_path.read_text()) if meta_path else {}
    jaw = predict_params(experts.regressor, frames)["jaw"]  # (T,)
    gt_jaw = meta.get("params", {}).get("jaw")
    row["mouth_corr"] = None
    if gt_jaw is not None:
        n = min(len(gt_jaw), len(jaw))
        row["mouth_corr"] = _finite(metrics.pearson(jaw[:n], torch.tensor(gt_jaw[:n])))
    if "speaking" in meta:
        silent = torch.tensor(meta["speaking"]) == 0
        row["silence_from"] = "metadata"
    else:
        silent = metrics.energy_silence(torch.from_numpy(audio), len(frames), cfg.fps)
        row["silence_from"] = "audio energy"
    # A reference image shows this face with its mouth closed: its predicted opening is the regressor's
    # bias for the identity (a moustache reads as an open mouth), removed before thresholding.
    # A first frame proves nothing about the mouth, so without an image the raw prediction is used.
    rest = max(0.0, float(predict_params(experts.regressor, ref)["jaw"][0])) if ref_path else 0.0
    row["jaw_at_rest"] = rest
    row["closed_in_silence"] = metrics.closed_in_silence(jaw - rest, silent)

    emb = embed_faces(experts.identity, frames)  # (T, D)
    row["identity_sim"] = float((emb @ embed_faces(experts.identity, ref)[0]).mean())

    row["psnr"] = row["ssim"] = None
    gt_visual = None
    if cfg.ground_truth:
        gt_path = Path(cfg.ground_truth) / f"{path.stem}.mp4"
        try:
            gt_frames, _, _ = load_video(gt_path, cfg.fps, sync_cfg.n_frames)
        except ClipReadError as e:
            row["ground_truth_error"] = str(e)
            log.warning("%s: ground truth unusable: %s", path, e)
        else:
            row["psnr"], row["ssim"] = _fidelity(frames, gt_frames)
            gt_visual = embed_video(experts.sync, mouth_crops(gt_frames, sync_cfg))  # (T_gt - 4, D)

    row["seam_jitter"] = None
    if cfg.window_stride:
        row["seam_jitter"] = _finite(metrics.seam_jitter(torch.from_numpy(frames), cfg.window_stride))
    row["error"] = None
    return ClipResult(row=row, curve=[_finite(v) for v in curve.tolist()], visual=visual, gt_visual=gt_visual)


def score_videos(
    paths: list[Path], experts: Experts, cfg: ScoreConfig, progress: Callable[[Path], None] | None = None
) -> tuple[dict[str, Any], dict[str, list[float | None]]]:
    """(report {"clips", "summary"}, per-clip offset curves {path: mdist}) for `paths`."""
    results = []
    for path in paths:
        try:
            res = score_clip(path, experts, cfg)
        except (ClipReadError, ValueError, OSError) as e:
            log.warning("%s: %s", path, e)
            res = ClipResult(row={"path": str(path), **{k: None for k in METRICS}, "error": str(e)})
        except Exception as e:  # a scorer of many clips reports one clip's crash and goes on
            log.exception("%s: unexpected failure", path)
            res = ClipResult(row={"path": str(path), **{k: None for k in METRICS}, "error": f"{type(e).__name__}: {e}"})
        results.append(res)
        if progress:
            progress(path)
    rows = [r.row for r in results]
    ok = [r for r in rows if r["error"] is None]
    summary: dict[str, Any] = {"n_clips": len(rows), "n_errors": len(rows) - len(ok)}
    for k in METRICS:
        vals = [r[k] for r in ok if r.get(k) is not None]
        summary[k] = float(np.mean(vals)) if vals else None
    summary["abs_offset"] = float(np.mean([abs(r["offset"]) for r in ok])) if ok else None
    summary["frechet_sync_visual"] = None
    feats = [r.visual for r in results if r.gt_visual is not None]
    if feats:
        gt = [r.gt_visual for r in results if r.gt_visual is not None]
        summary["frechet_sync_visual"] = metrics.frechet_distance(torch.cat(feats), torch.cat(gt))
    curves = {r.row["path"]: r.curve for r in results if r.curve}
    return {"clips": rows, "summary": summary}, curves
