"""fada-stream as a pipecat video service: put it after the TTS, before the output transport.

    from fada_stream.integrations.pipecat import FadaVideoService

    pipeline = Pipeline([transport.input(), stt, context_aggregator.user(), llm, tts,
                         FadaVideoService(reference="face.png"), transport.output(), context_aggregator.assistant()])

Like pipecat's hosted video services it consumes the TTS audio (TTSAudioRawFrame) and emits the avatar's own
audio (TTSAudioRawFrame, re-timed to the video) plus OutputImageRawFrame RGB frames with pts, 25 fps, idle
frames between replies; TTSStoppedFrame ends an utterance, InterruptionFrame cuts it (clear_buffer). Needs
pipecat-ai (`pip install pipecat-ai`; see README for its onnxruntime clash).
"""
from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from fada_stream.checkpoint import CheckpointError
from fada_stream.frames import AudioFrame, SegmentEnd, VideoFrame
from fada_stream.reference import ReferenceError
from fada_stream.session import AvatarSession, SessionClosed

try:
    from pipecat.frames.frames import (
        CancelFrame, EndFrame, Frame, InterruptionFrame, OutputImageRawFrame, StartFrame, TTSAudioRawFrame, TTSStoppedFrame,
    )
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
except ImportError as e:  # pragma: no cover - exercised only without pipecat
    raise ImportError("fada_stream.integrations.pipecat needs pipecat-ai: pip install pipecat-ai") from e

DRAIN_TIMEOUT_S = 30.0  # an EndFrame waits this long at most for the avatar to finish speaking


class FadaVideoService(FrameProcessor):
    """The avatar as a pipecat processor. Pass an unstarted AvatarSession, or AvatarSession's arguments
    (output_sample_rate defaults to the pipeline's audio_out_sample_rate)."""

    def __init__(self, session: AvatarSession | None = None, **session_kwargs: Any):
        super().__init__()
        if session is not None and session_kwargs:
            raise ValueError("pass either a session or AvatarSession arguments, not both")
        self._session, self._kwargs = session, {"paced": True, **session_kwargs}
        self._pump: asyncio.Task | None = None
        self._open = 0  # utterances pushed and not yet played out
        self._idle = asyncio.Event()
        self._idle.set()
        self._speaking = False
        self._stops: list[TTSStoppedFrame] = []  # one per reply whose audio is still playing
        self._failed = False

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._kwargs.setdefault("output_sample_rate", setup.audio_out_sample_rate)  # play at the transport's rate

    @property
    def session(self) -> AvatarSession | None:
        return self._session

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            await self._guard(self._push(frame))  # consumed: the avatar re-emits it in time with its frames
            return
        forward = True
        try:
            if isinstance(frame, StartFrame):
                await self._start()
            elif isinstance(frame, TTSStoppedFrame):
                if self._speaking:
                    # Held back until the reply has played out (_forward): downstream, "the bot stopped speaking"
                    # must come after the bot's audio, not when the TTS finished sending it.
                    self._speaking, forward = False, False
                    self._stops.append(frame)
                    await self._guard(self._session.flush())
            elif isinstance(frame, InterruptionFrame):
                self._speaking = False
                self._open, self._stops = 0, []  # nothing pending plays out now
                self._idle.set()
                if self._session is not None:
                    await self._guard(_call(self._session.clear_buffer))
            elif isinstance(frame, EndFrame):
                if self._speaking:  # a reply without TTSStoppedFrame still gets played out
                    self._speaking = False
                    await self._guard(self._session.flush())
                try:
                    await asyncio.wait_for(self._idle.wait(), DRAIN_TIMEOUT_S)  # let the last reply play out
                except asyncio.TimeoutError:
                    pass
                await self._stop()
                while self._stops:  # replies cut by the drain timeout still end downstream
                    await self.push_frame(self._stops.pop(0))
            elif isinstance(frame, CancelFrame):
                await self._stop()
        finally:
            # Whatever happened to the avatar, the pipeline's own frames go on: a swallowed Start/End/Interruption
            # frame would hang or confuse everything downstream.
            if forward:
                await self.push_frame(frame, direction)

    async def _push(self, frame: TTSAudioRawFrame) -> None:
        if not self._speaking:
            self._speaking, self._open = True, self._open + 1
            self._idle.clear()
        pcm = np.frombuffer(frame.audio, np.int16).reshape(-1, frame.num_channels)  # (n, channels)
        await self._session.push_audio(pcm[:, 0] if frame.num_channels == 1 else pcm.mean(axis=1).astype(np.int16), frame.sample_rate)

    async def _guard(self, call) -> None:
        """Run a session call; a failed or closed session becomes a fatal ErrorFrame upstream, once."""
        try:
            await call
        except (SessionClosed, RuntimeError, ValueError, CheckpointError, ReferenceError) as e:
            self._idle.set()
            if not self._failed:
                self._failed = True
                await self.push_error(error_msg=f"fada-stream avatar: {e}", exception=e, force_treat_as_permanent=True)

    async def _start(self) -> None:
        if self._session is None:
            self._session = AvatarSession(**self._kwargs)
        await self._guard(self._session.start())
        if not self._failed:
            self._pump = self.create_task(self._forward())

    async def _forward(self) -> None:
        """The session's frames, downstream: images with pts, the audio they carry, held-back stop frames."""
        try:
            async for item in self._session:
                if isinstance(item, VideoFrame):
                    h, w, _ = item.image.shape
                    out = OutputImageRawFrame(image=item.image.tobytes(), size=(w, h), format="RGB")
                    out.pts = int(item.pts * 1e9)  # pipecat's pts are nanoseconds
                    await self.push_frame(out)
                elif isinstance(item, AudioFrame):
                    out = TTSAudioRawFrame(audio=item.pcm.astype(np.int16).tobytes(), sample_rate=item.sample_rate, num_channels=1)
                    out.pts = int(item.pts * 1e9)
                    await self.push_frame(out)
                elif isinstance(item, SegmentEnd) and not item.interrupted:
                    if self._stops:
                        await self.push_frame(self._stops.pop(0))
                    self._open = max(0, self._open - 1)
                    if self._open == 0 and not self._speaking:
                        self._idle.set()
        except SessionClosed as e:
            await self._guard(_raise(e))

    async def _stop(self) -> None:
        if self._pump is not None:
            await self.cancel_task(self._pump)
            self._pump = None
        if self._session is not None:
            await self._session.aclose()
        self._idle.set()


async def _call(fn) -> None:
    fn()


async def _raise(e: BaseException) -> None:
    raise e

