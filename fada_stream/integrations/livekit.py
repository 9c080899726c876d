"""fada-stream as a LiveKit Agents avatar: a `VideoGenerator` for the self-hosted avatar runner.

    from livekit.agents.voice.avatar import AvatarOptions, AvatarRunner, QueueAudioOutput
    from fada_stream.integrations.livekit import FadaVideoGenerator

    generator = FadaVideoGenerator(reference="face.png", output_sample_rate=24000)
    await generator.start()
    runner = AvatarRunner(room, audio_recv=audio_receiver, video_gen=generator, options=generator.options(fps=25))
    await runner.start()

The runner reads the agent's TTS audio from its `AudioReceiver` (in-process `QueueAudioOutput`, or
`DataStreamAudioReceiver` when the avatar runs as its own participant/process) and pushes it here; the
frames come back on one clock (each video frame with exactly its 40 ms of that audio), and the
runner's `AVSynchronizer` publishes them to the room. This is also the way out past one machine:
LiveKit rooms fan the media out. Needs `pip install "fada-stream[livekit]"`.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from fada_stream.frames import AudioFrame, SegmentEnd, VideoFrame
from fada_stream.session import AvatarSession

try:
    from livekit import rtc
    from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarOptions, VideoGenerator
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError('fada_stream.integrations.livekit needs livekit-agents: pip install "fada-stream[livekit]"') from e


class FadaVideoGenerator(VideoGenerator):
    """The avatar for LiveKit's AvatarRunner. Pass an unstarted AvatarSession, or AvatarSession's arguments."""

    def __init__(self, session: AvatarSession | None = None, **session_kwargs: Any):
        if session is not None and session_kwargs:
            raise ValueError("pass either a session or AvatarSession arguments, not both")
        session_kwargs.setdefault("paced", True)  # idle frames between utterances; the runner's synchroniser paces too
        # LiveKit's audio source takes one fixed rate: the session must emit at it, whatever rate the TTS pushes.
        session_kwargs.setdefault("output_sample_rate", 24000)
        self.session = session or AvatarSession(**session_kwargs)
        if self.session.output_sample_rate is None:
            raise ValueError("give the AvatarSession an output_sample_rate: LiveKit's audio source needs a fixed rate")
        self._rate: int | None = None

    async def start(self) -> "FadaVideoGenerator":
        await self.session.start()
        return self

    def options(self, fps: float | None = None, audio_sample_rate: int | None = None) -> AvatarOptions:
        """The runner's AvatarOptions matching this avatar's frames (call after start()); other rates are refused,
        since LiveKit's sources would reject the frames mid-stream."""
        rate = self.session.output_sample_rate
        if audio_sample_rate is not None and audio_sample_rate != rate:
            raise ValueError(f"the avatar emits audio at {rate} Hz (its session's output_sample_rate), not {audio_sample_rate}")
        if fps is not None and fps != self.session.fps:
            raise ValueError(f"the avatar renders {self.session.fps} fps, not {fps}")
        size = self.session.image_size
        return AvatarOptions(video_width=size, video_height=size, video_fps=self.session.fps, audio_sample_rate=rate,
                             audio_channels=1)

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        if isinstance(frame, AudioSegmentEnd):
            await self.session.flush()
            return
        pcm = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels)  # (n, channels)
        mono = pcm[:, 0] if frame.num_channels == 1 else pcm.mean(axis=1).astype(np.int16)  # the avatar speaks mono
        await self.session.push_audio(mono, frame.sample_rate)

    def clear_buffer(self) -> None:
        self.session.clear_buffer()

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        async for item in self.session:
            if isinstance(item, VideoFrame):
                yield to_rtc_video(item)
            elif isinstance(item, AudioFrame):
                yield rtc.AudioFrame(item.pcm.astype(np.int16).tobytes(), item.sample_rate, 1, len(item.pcm))
            elif isinstance(item, SegmentEnd):
                # An interrupted segment was already reported by the runner's clear_buffer handling.
                if not item.interrupted:
                    yield AudioSegmentEnd()

    async def aclose(self) -> None:
        await self.session.aclose()


def to_rtc_video(frame: VideoFrame) -> rtc.VideoFrame:
    """(H, W, 3) uint8 RGB -> an RGBA rtc.VideoFrame (the buffer type LiveKit's video sources take without conversion)."""
    h, w, _ = frame.image.shape
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = frame.image
    rgba[..., 3] = 255
    return rtc.VideoFrame(w, h, rtc.VideoBufferType.RGBA, rgba.tobytes())
