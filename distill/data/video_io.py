"""Reading and writing talking-head clips: H.264 mp4 with an AAC track, 16 kHz wav.

Writes go to a temporary name in the destination folder and are renamed into
place, so an interrupted run never leaves a half-written clip behind.
"""
from __future__ import annotations

import contextlib
import os
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

SAMPLE_RATE = 16000


class ClipReadError(ValueError):
    """A video could not be used: unreadable, no audio, no frames."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio in [-1, 1] as 16-bit PCM, atomically."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")  # (N,)
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM wav as mono float32 (channels averaged) and its sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ClipReadError(f"{path}: only 16-bit PCM wav is supported")
        n_ch, rate = w.getnchannels(), w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = pcm.reshape(-1, n_ch).astype(np.float32).mean(axis=1) / 32768.0  # (N,)
    return audio, rate


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    audio: np.ndarray | None,
    fps: int = 25,
    sample_rate: int = SAMPLE_RATE,
    crf: int = 18,
) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames and mono float audio into an mp4, atomically.

    x264 runs single-threaded so the same frames always give the same bitstream.
    """
    import av

    t, h, w, _ = frames.shape
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as box:
            vs = box.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
            vs.codec_context.time_base = Fraction(1, fps)
            aus = None
            if audio is not None:
                aus = box.add_stream("aac", rate=sample_rate)
                aus.layout = "mono"
            for i in range(t):
                vf = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                vf.pts = i
                box.mux(vs.encode(vf))
            box.mux(vs.encode())
            if aus is not None:
                pcm = np.clip(audio, -1.0, 1.0).astype(np.float32)[None, :]  # (1, N)
                af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
                af.sample_rate = sample_rate
                af.pts = 0
                box.mux(aus.encode(af))
                box.mux(aus.encode())


@dataclass
class Clip:
    """A decoded clip: frames at `fps` and mono audio at 16 kHz."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    audio: np.ndarray  # (N,) float32, 16 kHz mono
    fps: float


def read_mp4(path: str | os.PathLike, fps: float | None = None, require_audio: bool = True) -> Clip:
    """Decode an mp4 (or any container ffmpeg reads) into RGB frames and 16 kHz mono audio.

    With `fps` set, frames are resampled to that rate by nearest presentation time
    (so variable-rate real videos land on a fixed grid); otherwise every decoded
    frame is kept and the stream's average rate is reported.
    """
    import av

    try:
        box = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise ClipReadError(f"{path}: cannot open: {e}") from e
    with box:
        if not box.streams.video:
            raise ClipReadError(f"{path}: no video stream")
        vs = box.streams.video[0]
        rate = float(vs.average_rate) if vs.average_rate else 25.0
        images, times = [], []
        try:
            for frame in box.decode(vs):
                images.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.time) if frame.time is not None else len(times) / rate)
        except av.error.FFmpegError as e:
            raise ClipReadError(f"{path}: corrupt video: {e}") from e
        if not images:
            raise ClipReadError(f"{path}: no decodable video frames")
    audio = _read_audio(path)
    if audio is None:
        if require_audio:
            raise ClipReadError(f"{path}: no audio stream")
        audio = np.zeros(0, np.float32)
    frames = np.stack(images)  # (T, H, W, 3)
    if fps is not None and abs(fps - rate) > 1e-3:
        t0 = times[0]
        rel = np.asarray(times) - t0  # (T,)
        n_out = max(1, int(round((rel[-1] + 1.0 / rate) * fps)))
        want = np.arange(n_out) / fps  # (T',)
        idx = np.clip(np.searchsorted(rel, want + 0.5 / rate) - 1, 0, len(rel) - 1)
        frames, rate = frames[idx], fps
    return Clip(frames=frames, audio=audio, fps=rate)


def _read_audio(path: str | os.PathLike) -> np.ndarray | None:
    """Decode the first audio stream to 16 kHz mono float32, or None if there is none."""
    import av

    with av.open(str(path)) as box:
        if not box.streams.audio:
            return None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = []
        try:
            for frame in box.decode(box.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            raise ClipReadError(f"{path}: corrupt audio: {e}") from e
    if not chunks:
        return None
    return np.concatenate(chunks).astype(np.float32)
