"""What an AvatarSession yields: video frames, the re-timed audio, and the end of each utterance."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VideoFrame:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    pts: float  # seconds on the session clock


@dataclass(frozen=True)
class AudioFrame:
    pcm: np.ndarray  # (n,) int16 mono: the audio pushed, resampled to the session's output rate
    sample_rate: int
    pts: float  # seconds on the session clock; equal to the pts of the video frame it plays with


@dataclass(frozen=True)
class SegmentEnd:
    playback_position: float  # seconds of this utterance's audio that were emitted
    interrupted: bool  # True when clear_buffer() cut the utterance short


Item = VideoFrame | AudioFrame | SegmentEnd
