"""Known corruptions that turn a clean (`high`) clip into a `moderate` one.

Each corruption is recorded in the clip's metadata with its strength, so a
metric can be checked against the exact damage done. Corruptions that change
what is drawn (damped mouth, frame jitter) are applied to the per-frame
parameters as well, so `params` in the metadata always describes the pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("av_offset", "blur", "compression", "jitter", "audio_noise", "damped_mouth")


@dataclass
class Corruptions:
    """A drawn set of corruptions: `items` as recorded in metadata, plus derived settings."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def get(self, kind: str) -> dict[str, Any] | None:
        return next((c for c in self.items if c["kind"] == kind), None)


def sample_corruptions(rng: np.random.Generator) -> Corruptions:
    """One to three distinct corruptions with random strengths."""
    n = int(rng.integers(1, 4))
    kinds = rng.choice(len(KINDS), size=n, replace=False)
    items = []
    for k in sorted(int(i) for i in kinds):
        kind = KINDS[k]
        if kind == "av_offset":
            frames = int(rng.integers(1, 6)) * int(rng.choice([-1, 1]))
            items.append({"kind": kind, "frames": frames})
        elif kind == "blur":
            items.append({"kind": kind, "sigma": round(float(rng.uniform(0.8, 2.0)), 3)})
        elif kind == "compression":
            items.append({"kind": kind, "crf": int(rng.integers(38, 47))})
        elif kind == "jitter":
            items.append({"kind": kind, "rate": round(float(rng.uniform(0.04, 0.12)), 3)})
        elif kind == "audio_noise":
            items.append({"kind": kind, "snr_db": round(float(rng.uniform(5.0, 18.0)), 2)})
        else:
            items.append({"kind": kind, "factor": round(float(rng.uniform(0.3, 0.6)), 3)})
    return Corruptions(items)


def damp_mouth(params: dict[str, np.ndarray], factor: float) -> dict[str, np.ndarray]:
    """Shrink mouth motion towards rest: what a low-energy or poorly tracked speaker looks like."""
    out = dict(params)
    for key in ("jaw", "width", "round"):
        out[key] = (params[key] * factor).astype(np.float32)
    return out


def jitter_indices(rng: np.random.Generator, n_frames: int, rate: float) -> np.ndarray:
    """Frame indices with stutters: at random frames the previous frame is shown again (a drop)."""
    idx = np.arange(n_frames)  # (T,)
    hit = rng.random(n_frames) < rate  # (T,)
    hit[0] = False
    idx[hit] -= 1
    return idx


def shift_audio(audio: np.ndarray, frames: int, samples_per_frame: int) -> np.ndarray:
    """Shift audio so the video lags it by `frames` (positive: sound comes early), keeping length."""
    n = abs(frames) * samples_per_frame
    if n == 0:
        return audio
    pad = np.zeros(n, audio.dtype)
    if frames > 0:
        return np.concatenate([audio[n:], pad])
    return np.concatenate([pad, audio[:-n]])


def add_noise(rng: np.random.Generator, audio: np.ndarray, snr_db: float) -> np.ndarray:
    """Add white noise at `snr_db` relative to the speech power (silence excluded)."""
    loud = np.abs(audio) > 0.01
    power = float(np.mean(audio[loud] ** 2)) if loud.any() else 1e-4
    noise = rng.standard_normal(audio.shape).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


def gaussian_blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (T, H, W, 3) uint8 frames with edge padding."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()  # (2r+1,)
    f = frames.astype(np.float32)
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        p = np.pad(f, pad, mode="edge")
        n = f.shape[axis]
        f = sum(k[i] * np.take(p, np.arange(i, i + n), axis=axis) for i in range(2 * radius + 1))
    return np.clip(np.round(f), 0, 255).astype(np.uint8)
