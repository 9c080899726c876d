"""Render an audio file to a talking-head mp4 with the teacher (or later the student).

    python -m fada_stream.render --audio speech.wav --reference face.png --out out.mp4 --checkpoint runs/teacher

Any audio length: windows of F latent frames overlap by M motion frames, carried in latent space
(never decoded and re-encoded, which drifts colour); each window adds F - M frames. The mp4's
video lasts as long as its audio (to within one frame) and carries that audio.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from fada_stream.model import ModelConfig, load_teacher, mel_window, stream_mel
from fada_stream.model.autoencoder import LatentCodec, images_to_unit, unit_to_images
from fada_stream.sampling import SAMPLERS, TeacherSampling, get_ts, multi_cfg, window_noise

MAX_IMAGE_PIXELS = 40_000_000  # a reference is a face photo; anything larger is refused before decoding


class ReferenceError(ValueError):
    """The reference image is missing, unreadable, or unreasonably large."""


def load_reference(path: str | Path, size: int) -> np.ndarray:
    """Any image file -> (size, size, 3) uint8 RGB: centre square crop, then resize."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ReferenceError(f"{path}: reference image not found")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ReferenceError(f"{path}: {img.width}x{img.height} image is too large (max {MAX_IMAGE_PIXELS} pixels)")
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as e:
        raise ReferenceError(f"{path}: not a readable image: {e}") from e
    side = min(rgb.size)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    return np.array(rgb.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS))


@dataclass
class Windows:
    """Where window k's frames land in the output: window 0 generates frames [0, F); later windows
    start M frames before the previous window's end and generate F - M new frames."""

    frames: int
    motion: int

    def starts(self, n_frames: int) -> list[int]:
        step = self.frames - self.motion
        return [0] + [self.frames - self.motion + k * step for k in range(max(0, math.ceil((n_frames - self.frames) / step)))]


@torch.no_grad()
def render_latents(
    model: torch.nn.Module,
    cfg: ModelConfig,
    ref: torch.Tensor,
    mel: torch.Tensor,
    n_frames: int,
    sampling: TeacherSampling,
    generator: torch.Generator,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Latents (n_frames, C, h, w) for a whole stream. ref (C, h, w), mel (n_mels, T) of the whole audio."""
    f, m, c, s = cfg.dit.frames, cfg.dit.motion_frames, cfg.dit.latent_channels, cfg.dit.latent_size
    sampler, ts = SAMPLERS[sampling.method], get_ts(sampling.steps, sampling.shift)
    out: list[torch.Tensor] = []
    motion = None  # (1, M, C, h, w)
    for start in Windows(f, m).starts(n_frames):
        window_mel = mel_window(mel, start, f, cfg.audio)[None]  # (1, n_mels, span)
        fn = multi_cfg(model, sampling.s_ref, sampling.s_audio, ref=ref[None], mel=window_mel, motion=motion)
        x = sampler(fn, window_noise((1, f, c, s, s), motion, generator), ts)  # (1, F, C, h, w)
        out.append(x[0] if motion is None else x[0, m:])
        motion = x[:, f - m :]
        if progress:
            progress(1)
    return torch.cat(out)[:n_frames]  # (n_frames, C, h, w)


@torch.no_grad()
def decode(codec: LatentCodec, latents: torch.Tensor, batch: int = 32) -> Iterator[np.ndarray]:
    for i in range(0, len(latents), batch):
        yield unit_to_images(codec.decode(latents[i : i + batch])).numpy()  # (b, H, W, 3)


def n_frames_for(n_samples: int, cfg: ModelConfig) -> int:
    """Video frames for audio of n_samples: the video lasts as long as the audio, to within one frame."""
    return max(1, math.ceil(n_samples / (cfg.audio.sample_rate // cfg.fps)))


@torch.no_grad()
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
    """(T, H, W, 3) uint8 frames for (N,) float audio at cfg.audio.sample_rate and an (S, S, 3) uint8 reference."""
    ref = codec.encode(images_to_unit(torch.from_numpy(reference))[None])[0]  # (C, h, w)
    mel = stream_mel(torch.from_numpy(audio), cfg.audio)  # (n_mels, N // hop + 1)
    gen = torch.Generator().manual_seed(seed)
    latents = render_latents(model, cfg, ref, mel, n_frames_for(len(audio), cfg), sampling, gen, progress)
    return np.concatenate(list(decode(codec, latents)))  # (T, H, W, 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Render an audio file to a talking-head mp4.")
    p.add_argument("--audio", required=True, help="speech audio, any format and rate ffmpeg reads")
    p.add_argument("--reference", required=True, help="face image, any size (centre-cropped to a square)")
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

    ckpt = Path(args.checkpoint) if args.checkpoint else Path(__file__).parent / "assets" / "teacher"
    try:
        model, codec, cfg = load_teacher(ckpt)
        audio = read_audio(args.audio, cfg.audio.sample_rate)  # (N,)
        ref_img = load_reference(args.reference, cfg.ae.image_size)  # (S, S, 3)
    except (CheckpointError, MediaError, ReferenceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sampling = TeacherSampling(steps=args.steps, method=args.method, s_ref=args.s_ref, s_audio=args.s_audio)
    n_windows = len(Windows(cfg.dit.frames, cfg.dit.motion_frames).starts(n_frames_for(len(audio), cfg)))
    with tqdm(total=n_windows, desc=f"rendering ({n_windows} windows x {sampling.steps * 3} NFE)", unit="window") as bar:
        frames = render_audio(model, codec, cfg, audio, ref_img, sampling, args.seed, bar.update)  # (T, H, W, 3)
    write_mp4(args.out, frames, audio, fps=cfg.fps, sample_rate=cfg.audio.sample_rate)
    print(f"wrote {args.out}: {len(frames)} frames, {len(audio) / cfg.audio.sample_rate:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
