"""Training windows over a corpus: a compact cache file, and a Dataset of aligned frame/audio windows.

`build_cache` decodes a corpus folder once (this needs `av`) into one safetensors file: frames as
raw uint8 or JPEG bytes, 16-bit audio, per-frame face parameters, one neutral reference per
identity, and index arrays; the clip list goes in the header as JSON. No pickle anywhere, and
reading it needs only torch, safetensors and (for JPEG frames) Pillow: a GPU machine without
video decoding trains from it.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from fada_stream.model.audio_encoder import mel_window, stream_mel
from fada_stream.model.config import AudioConfig

FORMAT = "fada-windows"
FORMAT_VERSION = 1
FrameFormat = Literal["raw", "jpeg"]


#################################################################################
#                                    Cache file                                 #
#################################################################################


@dataclass
class Cache:
    """A corpus tier in memory. Clip c owns frames[frame_start[c]:frame_start[c+1]] and the matching audio."""

    frames: torch.Tensor  # (N, H, W, 3) uint8
    audio: torch.Tensor  # (S,) float32, 16 kHz
    params: torch.Tensor  # (N, P) float32 per-frame face parameters
    speaking: torch.Tensor  # (N,) bool
    references: torch.Tensor  # (I, H, W, 3) uint8 neutral face per identity
    frame_start: torch.Tensor  # (C+1,) int64
    audio_start: torch.Tensor  # (C+1,) int64
    clip_identity: torch.Tensor  # (C,) int64 into references
    clip_ids: list[str]
    identity_ids: list[str]
    param_keys: list[str]
    fps: int
    sample_rate: int
    tier: str  # "high", "moderate", or "None" for every tier

    @property
    def n_clips(self) -> int:
        return len(self.clip_ids)

    def clip_frames(self, c: int) -> int:
        return int(self.frame_start[c + 1] - self.frame_start[c])


def _encode_jpeg(img: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def _decode_jpeg(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def build_cache(
    data_dir: str | Path,
    out_path: str | Path,
    tier: str | None = "high",
    frame_format: FrameFormat = "jpeg",
    quality: int = 90,
    max_clips: int | None = None,
    max_per_identity: int | None = None,
    max_mb: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Decode the clips of `tier` (None: all) in a corpus folder into one cache file; return its path.

    JPEG frames (4:4:4) shrink a procedural 128x128 frame ~11x (4.4 KB at quality 90, 3.7 KB at 85,
    measured on corpus faces; mean error 1.4/255 at 85) for the trip to a GPU machine, far below
    what the autoencoder itself loses. Audio stays 16-bit (1.3 KB per frame). `max_mb` stops adding
    clips before the file would exceed that size; `max_per_identity` spreads a capped cache over
    more faces (identity variety matters more than more clips of one face).
    """
    from PIL import Image
    from safetensors.torch import save_file

    from distill.data.face import PARAM_KEYS
    from distill.data.manifest import read_manifest
    from distill.data.video_io import atomic_path, read_mp4, read_wav

    data_dir = Path(data_dir)
    rows = [r for r in read_manifest(data_dir) if tier is None or r.get("tier") == tier]
    if max_per_identity:
        kept, seen = [], {}
        for r in rows:
            ident = r.get("identity_id", r["id"])
            if seen.get(ident, 0) < max_per_identity:
                kept.append(r)
                seen[ident] = seen.get(ident, 0) + 1
        rows = kept
    rows = rows[:max_clips] if max_clips else rows
    if not rows:
        raise ValueError(f"{data_dir}: no clips of tier {tier!r}")
    frames, jpegs, audio, params, speaking, refs = [], [], [], [], [], []
    frame_start, audio_start, clip_identity, identity_ids, clip_ids, param_keys = [0], [0], [], [], [], None
    fps = sr = None
    size = 0
    for row in rows:
        cid = row["id"]
        meta = json.loads((data_dir / f"{cid}.json").read_text())
        clip = read_mp4(data_dir / f"{cid}.mp4", fps=meta.get("fps", 25), require_audio=False)
        wav, rate = read_wav(data_dir / f"{cid}.wav")
        fps, sr = int(meta.get("fps", 25)), rate
        keys = param_keys = sorted(PARAM_KEYS)
        given = meta.get("params", {})
        n = min([len(clip.frames)] + [len(v) for v in given.values()])
        # Missing face parameters are NaN (ingested real clips have none): training does not read them.
        p = np.stack([np.asarray(given[k], np.float32)[:n] if k in given else np.full(n, np.nan, np.float32) for k in keys], axis=1)  # (n, P)
        spk = np.asarray(meta.get("speaking", [0] * n), bool)[:n]  # (n,)
        encoded = [_encode_jpeg(f, quality) for f in clip.frames[:n]] if frame_format == "jpeg" else []
        size += sum(len(j) for j in encoded) or clip.frames[:n].nbytes
        size += 2 * n * sr // fps + p.nbytes + spk.nbytes
        if max_mb and size > max_mb * 1e6 - 200_000 and clip_ids:  # 200 kB for references and the header
            break
        if frame_format == "jpeg":
            jpegs += encoded
        else:
            frames.append(clip.frames[:n])
        pcm = np.round(np.clip(wav, -1, 1) * 32767).astype(np.int16)[: n * sr // fps]  # (n * spf,)
        audio.append(np.pad(pcm, (0, n * sr // fps - len(pcm))))
        clip_ids.append(cid)
        params.append(p)
        speaking.append(spk)
        ident = row.get("identity_id", meta.get("identity_id", cid))
        if ident not in identity_ids:
            identity_ids.append(ident)
            refs.append(np.asarray(Image.open(data_dir / f"{cid}.png").convert("RGB")))
        clip_identity.append(identity_ids.index(ident))
        frame_start.append(frame_start[-1] + n)
        audio_start.append(audio_start[-1] + n * sr // fps)
        if progress:
            progress(1)

    tensors: dict[str, torch.Tensor] = {
        "audio": torch.from_numpy(np.concatenate(audio)),
        "params": torch.from_numpy(np.concatenate(params)),
        "speaking": torch.from_numpy(np.concatenate(speaking).astype(np.uint8)),
        "frame_start": torch.tensor(frame_start, dtype=torch.int64),
        "audio_start": torch.tensor(audio_start, dtype=torch.int64),
        "clip_identity": torch.tensor(clip_identity, dtype=torch.int64),
    }
    if frame_format == "jpeg":
        sizes = np.array([len(j) for j in jpegs], np.int64)
        tensors["jpeg"] = torch.from_numpy(np.frombuffer(b"".join(jpegs), np.uint8).copy())
        tensors["jpeg_offsets"] = torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)]))
        ref_jpegs = [_encode_jpeg(r, 95) for r in refs]
        tensors["ref_jpeg"] = torch.from_numpy(np.frombuffer(b"".join(ref_jpegs), np.uint8).copy())
        tensors["ref_jpeg_offsets"] = torch.from_numpy(np.concatenate([[0], np.cumsum([len(j) for j in ref_jpegs])]))
    else:
        tensors["frames"] = torch.from_numpy(np.concatenate(frames))
        tensors["references"] = torch.from_numpy(np.stack(refs))
    header = {
        "format": FORMAT, "format_version": str(FORMAT_VERSION), "frame_format": frame_format,
        "clip_ids": json.dumps(clip_ids), "identity_ids": json.dumps(identity_ids),
        "param_keys": json.dumps(param_keys), "fps": str(fps), "sample_rate": str(sr), "tier": str(tier),
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=header)
    return out_path


def _unpack_jpegs(data: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    buf, off = data.numpy().tobytes(), offsets.tolist()
    return torch.from_numpy(np.stack([_decode_jpeg(buf[a:b]) for a, b in zip(off[:-1], off[1:])]))  # (N, H, W, 3)


def load_cache(path: str | Path) -> Cache:
    """Read a cache file written by build_cache (JPEG frames are decoded here, once)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} cache file")
        t = {k: f.get_tensor(k) for k in f.keys()}
    if meta["frame_format"] == "jpeg":
        frames = _unpack_jpegs(t["jpeg"], t["jpeg_offsets"])
        refs = _unpack_jpegs(t["ref_jpeg"], t["ref_jpeg_offsets"])
    else:
        frames, refs = t["frames"], t["references"]
    return Cache(
        frames=frames,
        audio=t["audio"].float() / 32768.0,
        params=t["params"],
        speaking=t["speaking"].bool(),
        references=refs,
        frame_start=t["frame_start"],
        audio_start=t["audio_start"],
        clip_identity=t["clip_identity"],
        clip_ids=json.loads(meta["clip_ids"]),
        identity_ids=json.loads(meta["identity_ids"]),
        param_keys=json.loads(meta["param_keys"]),
        fps=int(meta["fps"]),
        sample_rate=int(meta["sample_rate"]),
        tier=meta.get("tier", "None"),
    )


#################################################################################
#                                    Windows                                    #
#################################################################################


class WindowDataset(Dataset):
    """Windows of F consecutive frames with their mel span (past context + look-ahead) and a reference.

    With `latents` (N, C, h, w) and `ref_latents` (I, C, h, w) given (the teacher pre-encodes the
    cache once), items carry latents instead of pixels. The reference is the identity's neutral
    face, or with probability `p_other_frame` a random frame of another clip of the same identity,
    so the model also learns to copy from a non-neutral pose and expression (open-set references
    are rarely neutral). A frame of the same clip is never used: it would leak the target's mouth.

    With `alt_latents` and `alt_ref_latents` (the same frames in another look, `distill.data.restyle`),
    a share `p_alt` of items takes its window and its reference from them, both in the same look.
    """

    def __init__(
        self,
        cache: Cache,
        n_frames: int,
        audio_cfg: AudioConfig,
        stride: int = 4,
        p_other_frame: float = 0.5,
        latents: torch.Tensor | None = None,
        ref_latents: torch.Tensor | None = None,
        seed: int = 0,
        alt_latents: torch.Tensor | None = None,
        alt_ref_latents: torch.Tensor | None = None,
        p_alt: float = 0.0,
    ):
        if p_alt and (latents is None or alt_latents is None or alt_ref_latents is None):
            raise ValueError("p_alt needs latents and alt_latents/alt_ref_latents")
        self.cache, self.f, self.audio_cfg = cache, n_frames, audio_cfg
        self.p_other_frame = p_other_frame
        self.latents, self.ref_latents = latents, ref_latents
        self.alt_latents, self.alt_ref_latents, self.p_alt = alt_latents, alt_ref_latents, p_alt
        self.rng = np.random.default_rng(seed)
        self.mels = [stream_mel(cache.audio[cache.audio_start[c] : cache.audio_start[c + 1]], audio_cfg) for c in range(cache.n_clips)]  # (n_mels, T*4+1) each
        self.index = [(c, s) for c in range(cache.n_clips) for s in range(0, cache.clip_frames(c) - n_frames + 1, stride)]
        if not self.index:
            raise ValueError(f"no clip has {n_frames} frames")
        ids = cache.clip_identity.tolist()
        self.same_identity = [[o for o in range(cache.n_clips) if ids[o] == ids[c] and o != c] for c in range(cache.n_clips)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        c, s = self.index[i]
        cache = self.cache
        a = int(cache.frame_start[c]) + s
        item: dict[str, Any] = {
            "mel": mel_window(self.mels[c], s, self.f, self.audio_cfg),  # (n_mels, mel_span(F))
            "params": cache.params[a : a + self.f],  # (F, P)
            "speaking": cache.speaking[a : a + self.f],  # (F,)
            "clip": c,
            "start": s,
        }
        others = self.same_identity[c]
        if others and self.rng.random() < self.p_other_frame:
            o = others[self.rng.integers(len(others))]
            j = int(cache.frame_start[o]) + int(self.rng.integers(cache.clip_frames(o)))
            ref_frame, ref_index = j, None
        else:
            ref_frame, ref_index = None, int(cache.clip_identity[c])
        if self.latents is not None:
            alt = self.p_alt > 0 and self.rng.random() < self.p_alt
            lat, ref_lat = (self.alt_latents, self.alt_ref_latents) if alt else (self.latents, self.ref_latents)
            item["x"] = lat[a : a + self.f].float()  # (F, C, h, w)
            item["ref"] = (lat[ref_frame] if ref_frame is not None else ref_lat[ref_index]).float()  # (C, h, w)
        else:
            item["x"] = cache.frames[a : a + self.f].permute(0, 3, 1, 2)  # (F, 3, H, W) uint8
            item["ref"] = (cache.frames[ref_frame] if ref_frame is not None else cache.references[ref_index]).permute(2, 0, 1)  # (3, H, W) uint8
        return item


def main(argv: list[str] | None = None) -> None:
    import argparse

    from tqdm import tqdm

    p = argparse.ArgumentParser(description="Decode a corpus folder into one training cache file (safetensors).")
    p.add_argument("--data", required=True, help="corpus folder with manifest.jsonl")
    p.add_argument("--out", required=True, help="cache file to write (.safetensors)")
    p.add_argument("--tier", choices=["high", "moderate", "all"], default="high")
    p.add_argument("--format", choices=["raw", "jpeg"], default="jpeg", dest="frame_format")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality")
    p.add_argument("--max-clips", type=int, default=None)
    p.add_argument("--max-per-identity", type=int, default=None)
    p.add_argument("--max-mb", type=float, default=None, help="stop adding clips before the file exceeds this size")
    a = p.parse_args(argv)
    with tqdm(desc="decoding clips", unit="clip") as bar:
        path = build_cache(a.data, a.out, None if a.tier == "all" else a.tier, a.frame_format, a.quality, a.max_clips, a.max_per_identity, a.max_mb, bar.update)
    c = load_cache(path)
    print(f"{path}: {c.n_clips} clips, {len(c.frames)} frames, {len(c.identity_ids)} identities, {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
