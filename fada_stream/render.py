"""Render an audio file to a talking-head mp4 with the teacher (or later the student).

    python -m fada_stream.render --audio speech.wav --reference face.png --out out.mp4 --checkpoint runs/teacher

Any audio length, through the live session's own window scheduler (fada_stream.stream): windows of
F latent frames overlap by M motion frames, carried in latent space; each window adds F - M frames. The mp4's
video lasts as long as its audio (to within one frame) and carries that audio.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from fada_stream.generator import DEFAULT_CHECKPOINT, TeacherModel
from fada_stream.model import ModelConfig, load_teacher
from fada_stream.model.autoencoder import LatentCodec
from fada_stream.reference import ReferenceError, load_reference
from fada_stream.sampling import SAMPLERS, TeacherSampling
from fada_stream.stream import StreamConfig, render_offline, window_count


def n_frames_for(n_samples: int, cfg: ModelConfig) -> int:
    """Video frames for audio of n_samples: the video lasts as long as the audio, to within one frame."""
    return max(1, math.ceil(n_samples / (cfg.audio.sample_rate // cfg.fps)))


def render_audio(
    model: torch.nn.Module,
    codec: LatentCodec,
    cfg: ModelConfig,
    audio: np.ndarray,
    reference: np.ndarray,
    sampling: TeacherSampling,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(T, H, W, 3) uint8 frames for (N,) float audio at cfg.audio.sample_rate and an (S, S, 3) uint8 reference:
    the live session's windows (fada_stream.stream), with fixed steps and the audio ungated."""
    teacher = TeacherModel(model, codec, cfg, next(model.parameters()).device, sampling.method)
    stream = StreamConfig(steps=sampling.steps, s_ref=sampling.s_ref, s_audio=sampling.s_audio, adaptive=False,
                          vad=False, seed=seed, method=sampling.method)
    frames, _ = render_offline(teacher, reference, audio, cfg.audio.sample_rate, stream, progress)
    return frames  # (T, H, W, 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Render an audio file to a talking-head mp4.")
    p.add_argument("--audio", required=True, help="speech audio, any format and rate ffmpeg reads")
    p.add_argument("--reference", default=None, help="face image, any size (centre-cropped to a square); default: the bundled face")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--sampler", choices=["teacher"], default="teacher")
    p.add_argument("--checkpoint", default=None, help="folder with teacher.* and autoencoder.* (default: the bundled one)")
    d = TeacherSampling()
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--method", choices=sorted(SAMPLERS), default=d.method)
    p.add_argument("--s-ref", type=float, default=d.s_ref)
    p.add_argument("--s-audio", type=float, default=d.s_audio)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from tqdm import tqdm

    from fada_stream.checkpoint import CheckpointError
    from fada_stream.video import MediaError, read_audio, write_mp4

    ckpt = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT
    try:
        model, codec, cfg = load_teacher(ckpt)
        audio = read_audio(args.audio, cfg.audio.sample_rate)  # (N,)
        ref_img = load_reference(args.reference, cfg.ae.image_size)  # (S, S, 3)
    except (CheckpointError, MediaError, ReferenceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sampling = TeacherSampling(steps=args.steps, method=args.method, s_ref=args.s_ref, s_audio=args.s_audio)
    if len(audio) == 0:
        print(f"error: {args.audio}: no audio samples", file=sys.stderr)
        return 2
    n_windows = window_count(n_frames_for(len(audio), cfg), cfg.dit.frames, cfg.dit.motion_frames)
    with tqdm(total=n_windows, desc=f"rendering ({n_windows} windows x {sampling.steps * 3} NFE)", unit="window") as bar:
        frames = render_audio(model, codec, cfg, audio, ref_img, sampling, args.seed, bar.update)  # (T, H, W, 3)
    write_mp4(args.out, frames, audio, fps=cfg.fps, sample_rate=cfg.audio.sample_rate)
    print(f"wrote {args.out}: {len(frames)} frames, {len(audio) / cfg.audio.sample_rate:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
