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
from typing import Callable

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


def read_mp4(
    path: str | os.PathLike,
    fps: float | None = None,
    require_audio: bool = True,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Clip:
    """Decode an mp4 (or any container ffmpeg reads) into RGB frames and 16 kHz mono audio.

    With `fps` set, frames are resampled to that rate by presentation time (so variable-rate
    real videos land on a fixed grid); otherwise every decoded frame is kept and the stream's
    average rate is reported. `transform` is applied to each (H, W, 3) frame as it is decoded,
    so a long high-resolution video is never held in memory at full size. The audio is
    aligned to the first video frame: a stream that starts later is padded, earlier is cut.
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
        audio_start = 0.0
        if box.streams.audio and box.streams.audio[0].start_time is not None:
            a = box.streams.audio[0]
            audio_start = float(a.start_time * a.time_base)
        images, times = [], []
        try:
            for frame in box.decode(vs):
                image = frame.to_ndarray(format="rgb24")
                images.append(transform(image) if transform else image)
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
    lag = int(round((audio_start - times[0]) * SAMPLE_RATE))  # samples by which the audio starts after the video
    audio = np.concatenate([np.zeros(lag, np.float32), audio]) if lag > 0 else audio[-lag:]
    frames = np.stack(images)  # (T, H, W, 3)
    if fps is not None:
        rel = np.asarray(times) - times[0]  # (T,)
        n_out = max(1, int(round((rel[-1] + 1.0 / rate) * fps)))
        want = np.arange(n_out) / fps  # (T',)
        # The frame on screen at each output time: the last one presented within half a frame of it.
        idx = np.clip(np.searchsorted(rel, want + 0.5 / fps, side="right") - 1, 0, len(rel) - 1)
        frames, rate = frames[idx], fps
    return Clip(frames=frames, audio=audio, fps=rate)
