"""Reading and writing talking-head clips: H.264 mp4 with an AAC track, 16 kHz wav.

Encoding and audio decoding are the runtime's (`fada_stream.video`); this adds what the
corpus needs on top: whole clips decoded onto a fixed frame grid, and wav files. Writes
go to a temporary name and are renamed into place, so an interrupted run never leaves a
half-written clip behind.
"""
from __future__ import annotations

import os
import wave
from dataclasses import dataclass

import numpy as np

from fada_stream.video import SAMPLE_RATE, MediaError, atomic_path, read_audio, write_mp4

__all__ = ["SAMPLE_RATE", "Clip", "ClipReadError", "atomic_path", "read_mp4", "read_wav", "write_mp4", "write_wav"]


class ClipReadError(MediaError):
    """A video could not be used: unreadable, no audio, no frames."""


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
    try:
        audio = read_audio(path, SAMPLE_RATE)
    except MediaError as e:
        if require_audio:
            raise ClipReadError(str(e)) from e
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
