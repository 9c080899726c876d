"""Non-mouth motion of the procedural talking head: blinks, brow raises and small head movements.

Ranges match `distill.data.face`: blink and brow in [0, 1], yaw and pitch in [-1, 1], roll in
radians within +-MAX_ROLL, tx and ty within +-MAX_SHIFT of the image size.
"""
from __future__ import annotations

import numpy as np

from distill.data.face import MAX_ROLL, MAX_SHIFT

# (limit, drift, speech): the track is limit * tanh(drift * slow + speech * talk * fast); tanh keeps
# it inside its range without clipping corners into the motion.
_POSE = {"yaw": (1.0, 0.35, 0.25), "pitch": (1.0, 0.25, 0.35), "roll": (MAX_ROLL, 0.3, 0.2),
         "tx": (MAX_SHIFT, 0.35, 0.15), "ty": (MAX_SHIFT, 0.3, 0.15)}
BLINK_GAP = (2.0, 6.0)  # seconds between blinks
BLINK_LEN = (0.15, 0.25)  # seconds, eyes closing, shut and opening
BROW_RATE = (0.03, 0.25)  # raises per second while silent, while speaking


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _gauss_filter(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing with edge padding, sigma in samples."""
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return np.convolve(np.pad(x, r, mode="edge"), k / k.sum(), mode="valid")


def _band_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """(n,) unit-variance noise smoothed over `sigma` samples."""
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return np.convolve(rng.standard_normal(n + 2 * r), k / np.sqrt((k * k).sum()), mode="valid")


def _slow_drift(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """(n,) a sum of three low-frequency sinusoids (0.05-0.4 Hz), unit variance."""
    f = rng.uniform(0.05, 0.4, 3)
    phase = rng.uniform(0, 2 * np.pi, 3)
    amp = rng.uniform(0.5, 1.0, 3)
    return (amp[:, None] * np.sin(2 * np.pi * f[:, None] * t + phase[:, None])).sum(0) / np.sqrt(0.5 * (amp**2).sum())


def _blinks(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """(n,) eye closure: quick close, a brief shut, a slower opening."""
    out = np.zeros_like(t)
    start, end = rng.uniform(0.3, BLINK_GAP[0] + 1.0), t[-1] if len(t) else 0.0
    while start < end:
        dur = rng.uniform(*BLINK_LEN)
        s = (t - start) / dur
        out = np.maximum(out, np.where(s < 0.45, _smoothstep(s / 0.35), 1 - _smoothstep((s - 0.55) / 0.45)) * (s >= 0) * (s <= 1))
        start += rng.uniform(0.3, 0.45) if rng.random() < 0.1 else rng.uniform(*BLINK_GAP)  # occasional double blink
    return out


def _brow_raises(rng: np.random.Generator, t: np.ndarray, talk: np.ndarray, fps: float) -> np.ndarray:
    """(n,) raised-cosine brow raises, started mostly while speaking."""
    out = np.zeros_like(t)
    rate = BROW_RATE[0] + (BROW_RATE[1] - BROW_RATE[0]) * talk  # (n,) per second
    for i in np.flatnonzero(rng.random(len(t)) < rate / fps):
        s = (t - t[i]) / rng.uniform(0.4, 1.2)
        out += rng.uniform(0.3, 1.0) * 0.5 * (1 - np.cos(2 * np.pi * np.clip(s, 0, 1)))
    return np.clip(out, 0.0, 1.0)


def sample_motion(rng: np.random.Generator, n_frames: int, fps: float = 25.0,
                  speaking: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Blink, brow and head-pose tracks, each (n_frames,) float32; `speaking` (n_frames,) bool adds
    livelier head motion and brow raises where it is true."""
    t = np.arange(n_frames) / fps  # (n,) seconds
    flag = np.zeros(n_frames) if speaking is None else np.asarray(speaking, np.float64).reshape(n_frames)
    talk = np.clip(_gauss_filter(flag, 0.3 * fps), 0, 1) if n_frames else flag  # (n,) eases in and out of speech
    out = {"blink": _blinks(rng, t), "brow": _brow_raises(rng, t, talk, fps)}
    for name, (limit, drift, speech) in _POSE.items():
        slow = _slow_drift(rng, t)
        fast = _band_noise(rng, n_frames, 0.25 * fps)  # nods and turns at speech rate, below ~1 Hz
        out[name] = limit * np.tanh(drift * slow + speech * talk * fast)
    return {k: v.astype(np.float32) for k, v in out.items()}
