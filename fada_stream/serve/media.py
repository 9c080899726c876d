"""Audio the browser can drive the avatar with: bundled samples, uploaded files, microphone frames."""
from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

import fada_stream

MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # a few minutes of compressed speech; bounds the websocket message too
MAX_UPLOAD_SECONDS = 300.0  # decoded length cap: a small compressed file can expand to hours of PCM
SAMPLES_DIR = Path(fada_stream.__file__).parent / "assets" / "samples"


class AudioInputError(ValueError):
    """Uploaded bytes that are not usable speech audio."""


def bundled_samples() -> dict[str, Path]:
    """Sample clips shipped with the package, by file name."""
    if not SAMPLES_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(SAMPLES_DIR.glob("*.wav")) if p.is_file()}


def decode_audio(data: bytes | Path, rate: int) -> np.ndarray:
    """Any audio file ffmpeg reads, as bytes in memory or a path -> (n,) int16 mono at `rate`."""
    if isinstance(data, bytes) and len(data) > MAX_UPLOAD_BYTES:
        raise AudioInputError(f"audio file is {len(data)} bytes (max {MAX_UPLOAD_BYTES})")
    max_samples = int(MAX_UPLOAD_SECONDS * rate)
    chunks, n = [], 0
    try:
        with av.open(io.BytesIO(data) if isinstance(data, bytes) else str(data)) as box:
            if not box.streams.audio:
                raise AudioInputError("the file has no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            for frame in box.decode(box.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))  # (samples,)
                    n += out.samples
                if n > max_samples:
                    raise AudioInputError(f"audio is longer than {MAX_UPLOAD_SECONDS:.0f} s")
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except (av.error.FFmpegError, OSError) as e:
        raise AudioInputError(f"not a readable audio file: {e}") from e
    pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    if len(pcm) == 0:
        raise AudioInputError("the audio stream is empty")
    return pcm


def mono_int16(frame: av.AudioFrame) -> np.ndarray:
    """A decoded WebRTC audio frame (any layout, s16 or float) -> (samples,) int16, channels averaged."""
    channels = len(frame.layout.channels)
    x = frame.to_ndarray()  # planar (channels, samples); packed (1, samples * channels)
    x = x.reshape(channels, -1) if frame.format.is_planar else x.reshape(-1, channels).T  # (channels, samples)
    if x.dtype.kind == "f":
        x = x * 32767.0
    return np.clip(x.mean(axis=0), -32768, 32767).astype(np.int16)
