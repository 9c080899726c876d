"""Media files for the runtime's CLIs: decode any audio file to 16 kHz mono, write an mp4 with audio.

The runtime must not depend on `distill`, so this is its own small `av` wrapper; `av` is imported
where it is used so the model code stays importable on machines without it.
"""
from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from typing import Iterator
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


class MediaError(ValueError):
    """An input file could not be used (unreadable, no audio, empty)."""


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


def read_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of any file ffmpeg reads (wav, mp3, mp4 ...) to mono float32 at `sample_rate`."""
    import av

    try:
        box = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot open audio: {e}") from e
    with box:
        if not box.streams.audio:
            raise MediaError(f"{path}: no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in box.decode(box.streams.audio[0]):
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
        except av.error.FFmpegError as e:
            raise MediaError(f"{path}: corrupt audio: {e}") from e
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if len(audio) == 0:
        raise MediaError(f"{path}: the audio stream is empty")
    return np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    audio: np.ndarray | None,
    fps: int = 25,
    sample_rate: int = SAMPLE_RATE,
    crf: int = 18,
) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames and mono float audio into an H.264/AAC mp4, atomically.

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
            if audio is not None and len(audio):
                aus = box.add_stream("aac", rate=sample_rate)
                aus.layout = "mono"
            for i in range(t):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
                vf.pts = i
                box.mux(vs.encode(vf))
            box.mux(vs.encode())
            if aus is not None:
                pcm = np.clip(audio, -1.0, 1.0).astype(np.float32)[None, :]  # (1, N)
                af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
                af.sample_rate, af.pts = sample_rate, 0
                box.mux(aus.encode(af))
                box.mux(aus.encode())
