"""One procedural talking-head clip: text -> speech with phoneme timing -> visemes -> face frames.

Everything is drawn from generators seeded by (seed, split, index), so the same
arguments always give the same clip, and identities of different splits come
from disjoint seed streams.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from distill.data import corrupt
from distill.data.face import PARAM_KEYS, render_frames, sample_identity
from distill.data.manifest import manifest_row
from distill.data.motion import sample_motion
from distill.data.speech import SAMPLE_RATE, Phoneme, sample_voice, synthesize
from distill.data.text import random_text
from distill.data.video_io import atomic_path, write_mp4, write_wav
from distill.data.visemes import mouth_tracks

Split = Literal["train", "test", "openset"]
# Distinct integers keep each split's seed stream apart: test identities never occur in train.
_SPLIT_CODE = {"train": 1, "test": 2, "openset": 3}
_IDENTITY_STREAM = 1_000_003


@dataclass(frozen=True)
class SynthConfig:
    fps: int = 25  # the runtime's frame rate
    size: int = 128  # tiny preset resolution
    clips_per_identity: int = 4  # several clips per face so identity encoders see pose/mouth variety
    moderate_fraction: float = 0.4  # share of clips that get known corruptions
    lead_silence: tuple[float, float] = (0.2, 0.7)  # seconds of silence before speech, drawn uniformly
    tail_silence: tuple[float, float] = (0.3, 0.8)
    crf: int = 18  # near-transparent H.264 for the clean tier

    @property
    def samples_per_frame(self) -> int:
        return SAMPLE_RATE // self.fps


@dataclass
class SynthClip:
    frames: np.ndarray  # (T, H, W, 3) uint8
    audio: np.ndarray  # (T * samples_per_frame,) float32, 16 kHz
    reference: np.ndarray  # (H, W, 3) uint8 neutral frontal face
    meta: dict[str, Any]
    crf: int


def clip_id(split: Split, seed: int, index: int) -> str:
    return f"{split}-{seed}-{index:06d}"


def _rounded(x: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in x]


def _pad_phonemes(phonemes: list[Phoneme], lead: float, total: float) -> list[tuple[str, float, float]]:
    """Shift the timeline by `lead` seconds and cover [0, total] with silence where speech is absent."""
    out: list[tuple[str, float, float]] = [("_", 0.0, lead)]
    for p in phonemes:
        start, end = p.start + lead, min(p.end + lead, total)
        if start >= total:
            break
        if p.symbol == "_" and out[-1][0] == "_":
            out[-1] = ("_", out[-1][1], end)
        else:
            out.append((p.symbol, start, end))
    if out[-1][2] < total:
        if out[-1][0] == "_":
            out[-1] = ("_", out[-1][1], total)
        else:
            out.append(("_", out[-1][2], total))
    return [(s, round(a, 4), round(b, 4)) for s, a, b in out if b > a]


def speaking_frames(timeline: list[tuple[str, float, float]], n_frames: int, fps: float) -> np.ndarray:
    """Per-frame flag: a phoneme other than silence covers the frame's centre."""
    centres = (np.arange(n_frames) + 0.5) / fps  # (T,)
    flag = np.zeros(n_frames, bool)
    for sym, start, end in timeline:
        if sym != "_":
            flag |= (centres >= start) & (centres < end)
    return flag


def make_clip(split: Split, seed: int, index: int, cfg: SynthConfig = SynthConfig()) -> SynthClip:
    """Draw and render clip `index` of `split` for `seed`."""
    code = _SPLIT_CODE[split]
    rng = np.random.default_rng([seed, code, index])
    identity_index = index // cfg.clips_per_identity
    id_rng = np.random.default_rng([seed, code, _IDENTITY_STREAM, identity_index])
    identity = sample_identity(id_rng, style="openset" if split == "openset" else "train")

    text = random_text(rng)
    voice = sample_voice(rng)
    utt = synthesize(text, voice)
    lead = float(rng.uniform(*cfg.lead_silence))
    tail = float(rng.uniform(*cfg.tail_silence))
    spf = cfg.samples_per_frame
    n_frames = int(np.ceil((lead + len(utt.audio) / SAMPLE_RATE + tail) * cfg.fps))
    audio = np.zeros(n_frames * spf, np.float32)  # (T * spf,)
    start = int(round(lead * SAMPLE_RATE))
    speech = utt.audio[: len(audio) - start]
    audio[start : start + len(speech)] = speech
    timeline = _pad_phonemes(utt.phonemes, start / SAMPLE_RATE, n_frames / cfg.fps)

    speaking = speaking_frames(timeline, n_frames, cfg.fps)  # (T,)
    params = mouth_tracks([Phoneme(*p) for p in timeline], n_frames, fps=cfg.fps)
    params.update(sample_motion(rng, n_frames, fps=cfg.fps, speaking=speaking))
    params = {k: params[k].astype(np.float32) for k in PARAM_KEYS}

    tier = "moderate" if rng.random() < cfg.moderate_fraction else "high"
    corr = corrupt.sample_corruptions(rng) if tier == "moderate" else corrupt.Corruptions()
    if (c := corr.get("damped_mouth")) is not None:
        params = corrupt.damp_mouth(params, c["factor"])
    if (c := corr.get("jitter")) is not None:
        idx = corrupt.jitter_indices(rng, n_frames, c["rate"])
        params = {k: v[idx] for k, v in params.items()}
    frames = render_frames(identity, params, size=cfg.size)  # (T, H, W, 3)
    zeros = {k: np.zeros(1, np.float32) for k in PARAM_KEYS}
    reference = render_frames(identity, zeros, size=cfg.size)[0]  # (H, W, 3)
    if (c := corr.get("blur")) is not None:
        frames = corrupt.gaussian_blur(frames, c["sigma"])
    if (c := corr.get("audio_noise")) is not None:
        audio = corrupt.add_noise(rng, audio, c["snr_db"])
    offset = 0
    if (c := corr.get("av_offset")) is not None:
        offset = c["frames"]
        audio = corrupt.shift_audio(audio, offset, spf)
    crf = corr.get("compression")["crf"] if corr.get("compression") else cfg.crf

    meta = {
        "id": clip_id(split, seed, index),
        "split": split,
        "seed": seed,
        "index": index,
        "fps": cfg.fps,
        "sample_rate": SAMPLE_RATE,
        "size": cfg.size,
        "n_frames": n_frames,
        "duration": round(n_frames / cfg.fps, 4),
        "identity_id": f"{split}-{seed}-id{identity_index:05d}",
        "identity": identity.to_dict(),
        "voice": {"name": voice.name, "rate": voice.rate, "pitch": voice.pitch, "pitch_range": voice.pitch_range},
        "text": text,
        "tier": tier,
        "corruptions": corr.items,
        "av_offset_frames": offset,
        "phonemes": [list(p) for p in timeline],
        "speaking": [int(s) for s in speaking],
        "params": {k: _rounded(v) for k, v in params.items()},
    }
    return SynthClip(frames=frames, audio=audio, reference=reference, meta=meta, crf=crf)


def write_clip(out_dir: str | Path, clip: SynthClip) -> dict[str, Any]:
    """Write `<id>.mp4/.wav/.png/.json`; the JSON goes last, so its presence marks a whole clip.

    Returns the clip's manifest row.
    """
    from PIL import Image

    out = Path(out_dir)
    cid = clip.meta["id"]
    write_mp4(out / f"{cid}.mp4", clip.frames, clip.audio, fps=clip.meta["fps"], crf=clip.crf)
    write_wav(out / f"{cid}.wav", clip.audio)
    with atomic_path(out / f"{cid}.png") as tmp:
        Image.fromarray(clip.reference).save(tmp, format="PNG")
    with atomic_path(out / f"{cid}.json") as tmp:
        tmp.write_text(json.dumps(clip.meta, sort_keys=True) + "\n")
    return manifest_row(clip.meta)

