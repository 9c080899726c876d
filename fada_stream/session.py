"""AvatarSession: push speech in, iterate synced video frames, the re-timed audio and utterance ends.

Shaped after LiveKit Agents' avatar VideoGenerator / AudioOutput and pipecat's video services:

    async with AvatarSession(reference="face.png") as session:
        await session.push_audio(pcm, sample_rate=24000)   # any rate, bursts are fine
        await session.flush()                              # end of the utterance
        async for item in session:                         # VideoFrame | AudioFrame | SegmentEnd
            ...

Generation runs on one worker thread per session (torch releases the GIL), planned and committed
under one lock with `stream.StreamScheduler`; the event loop only converts audio and paces output.
Iteration is paced to real time by default: an item is released at its pts on the session clock.
When generation falls behind anyway, the clock slips (audio and video wait together, counted in
`stats()["stalls"]`) rather than letting them drift apart.
"""
from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fada_stream.audio import SAMPLE_RATES, to_float_mono
from fada_stream.frames import AudioFrame, Item, SegmentEnd, VideoFrame
from fada_stream.generator import Cancelled, Guidance, WindowModel, load_window_model
from fada_stream.reference import ImageLike, load_reference
from fada_stream.stream import StreamConfig, StreamScheduler, render_offline

log = logging.getLogger(__name__)

EVENTS = ("playback_started", "playback_finished")
PUSH_CHUNK_S = 0.5  # a burst is converted in pieces so the event loop is never held for long
LATE_S = 0.08  # an item this late (two frames) re-anchors the playback clock: a stall


async def _wait(event: asyncio.Event, timeout: float = 0.5) -> None:
    """Wait for a wake-up, re-checking at least every `timeout` s (a missed wake-up costs a delay, never a hang)."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        pass


class SessionClosed(RuntimeError):
    """The session was closed, or its worker failed."""


class AvatarSession:
    def __init__(
        self,
        reference: ImageLike | None = None,
        checkpoint: str | Path | None = None,
        device: str = "auto",
        *,
        sampler: str = "auto",
        backend: str = "auto",
        paced: bool = True,
        output_sample_rate: int | None = None,
        config: StreamConfig | None = None,
    ):
        if output_sample_rate is not None:
            to_float_mono(b"", output_sample_rate)  # the same rate check as the input's
        self._reference, self._checkpoint, self._device, self._sampler = reference, checkpoint, device, sampler
        self._backend = backend
        self.paced = paced
        self.config = config or StreamConfig()
        c = self.config
        Guidance(1.0 if c.s_ref is None else c.s_ref, 1.0 if c.s_audio is None else c.s_audio, c.audio_boost,
                 c.s_audio_early, c.early_from, c.mouth_drop_from)  # validate early (the model checks its own part at start)
        self._out_rate = output_sample_rate
        self._model: WindowModel | None = None
        self._sched: StreamScheduler | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._callbacks: dict[str, list[Callable]] = {e: [] for e in EVENTS}
        self._started_segments: set[int] = set()
        self._t0: float | None = None  # loop time at which the session clock read 0
        self._stalls = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> "AvatarSession":
        """Load the model (once per process) and the reference off the event loop; start the worker."""
        if self._sched is not None:
            return self
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._ready = asyncio.Event()  # the iterator's wake-up: set by the worker after each window, and on close
        self._space = asyncio.Event()  # push_audio's wake-up under backpressure
        self._sched = await loop.run_in_executor(None, self._build)
        self._thread = threading.Thread(target=self._work, name="fada-stream-session", daemon=True)
        self._thread.start()
        return self

    def _build(self) -> StreamScheduler:
        self._model = load_window_model(self._checkpoint, self._device, self._sampler, backend=self._backend)
        image = load_reference(self._reference, self._model.cfg.ae.image_size)
        return StreamScheduler(self._model, image, self.config, paced=self.paced, out_rate=self._out_rate)

    async def aclose(self) -> None:
        """Stop generating, end iteration, join the worker. Safe to call twice."""
        with self._cond:
            self._closed = True
            if self._sched is not None:
                self._sched.epoch += 1  # cancel the window in flight
            self._cond.notify_all()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10.0)
            self._thread = None
        if self._sched is not None:
            self._wake()

    async def __aenter__(self) -> "AvatarSession":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def _require(self) -> StreamScheduler:
        if self._closed:
            raise SessionClosed("session is closed") from self._error
        if self._sched is None:
            raise RuntimeError("call `await session.start()` (or use `async with`) first")
        return self._sched

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        sched = self._sched
        while True:
            with self._cond:
                while not self._closed and (job := sched.plan()) is None:
                    self._cond.wait(0.5)
                if self._closed:
                    return
            try:
                result = sched.run(job)
            except Cancelled:
                with self._cond:
                    sched.abandon(job)
                continue
            except BaseException as e:  # a model failure ends the session with its error, not a hang
                log.exception("window generation failed")
                with self._cond:
                    sched.abandon(job)
                    self._error, self._closed = e, True
                self._loop.call_soon_threadsafe(self._wake)
                return
            with self._cond:
                sched.commit(job, *result)
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._ready.set()
        self._space.set()

    # ------------------------------------------------------------------ input
    async def push_audio(self, pcm: bytes | np.ndarray, sample_rate: int) -> None:
        """Queue speech: s16le bytes, or an int16 / float mono ndarray, at any rate in 8-192 kHz.

        Bursts faster than real time are fine; beyond `config.max_buffered_seconds` of audio not yet
        turned into frames this waits (backpressure), so memory stays bounded and nothing is dropped.
        """
        sched = self._require()
        x = to_float_mono(pcm, sample_rate)
        step = int(PUSH_CHUNK_S * sample_rate)
        for i in range(0, len(x), step):
            while True:
                with self._cond:
                    sched = self._require()
                    if sched.buffered_seconds() < self.config.max_buffered_seconds:
                        sched.push(x[i : i + step], int(sample_rate))
                        self._cond.notify_all()
                        break
                self._space.clear()
                await _wait(self._space)
            await asyncio.sleep(0)

    async def flush(self) -> None:
        """End of an utterance: its last frames are generated without waiting for more audio."""
        with self._cond:
            self._require().flush()
            self._cond.notify_all()

    def clear_buffer(self) -> None:
        """Interruption: drop queued audio and frames; a SegmentEnd(interrupted=True) is yielded next
        for each utterance cut short, and the avatar returns to idle from where it was."""
        with self._cond:
            self._require().clear()
            self._cond.notify_all()
        self._ready.set()

    def set_guidance(self, s_ref: float | None = None, s_audio: float | None = None,
                     audio_boost: float | None = None) -> None:
        """Change the guidance from the next window on; None keeps a value. ValueError for scales outside
        [0, 8] or a boost outside [0, 4] (a token student's extra audio pass; the teacher ignores it)."""
        with self._cond:
            sched = self._require()
            old = sched.guidance
            g = dataclasses.replace(old, s_ref=old.s_ref if s_ref is None else float(s_ref),
                                    s_audio=old.s_audio if s_audio is None else float(s_audio),
                                    audio_boost=old.audio_boost if audio_boost is None else float(audio_boost))  # an interval, a mouth drop stay
            sched.set_guidance(g)

    @property
    def guidance(self) -> Guidance:
        return self._require().guidance

    async def set_reference(self, image: ImageLike) -> None:
        """Swap the face from the next window on; a bad image raises ReferenceError and changes nothing."""
        sched = self._require()
        loop = asyncio.get_running_loop()
        size = sched.model.cfg.ae.image_size

        def load() -> tuple[np.ndarray, Any]:  # (picture, its (C, h, w) latent)
            picture = load_reference(image, size)  # (S, S, 3) uint8
            return picture, sched.model.encode_reference(picture)

        picture, latent = await loop.run_in_executor(None, load)
        with self._cond:
            self._require().set_reference(latent, picture)

    def on(self, event: str, callback: Callable) -> None:
        """Call `callback(segment_id)` on "playback_started" and `callback(segment_end)` on
        "playback_finished", when the item is released to the iterator. Coroutines are scheduled."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; one of {EVENTS}")
        self._callbacks[event].append(callback)

    def _emit(self, event: str, arg: Any) -> None:
        for cb in self._callbacks[event]:
            r = cb(arg)
            if inspect.isawaitable(r):
                asyncio.ensure_future(r)

    # ------------------------------------------------------------------ output
    def __aiter__(self) -> "AvatarSession":
        return self

    async def __anext__(self) -> Item:
        sched = self._sched
        if sched is None:
            raise RuntimeError("call `await session.start()` (or use `async with`) first")
        waited = False
        while True:
            self._ready.clear()
            with self._cond:
                if self._closed:
                    if self._error is not None:
                        raise SessionClosed("window generation failed") from self._error
                    raise StopAsyncIteration
                entry = sched.pop()
                if entry is not None:
                    self._cond.notify_all()  # the worker may be waiting for queue space
            if entry is not None:
                break
            waited = True
            await _wait(self._ready)
        if self.paced:
            # Without idle frames an empty queue between utterances is a pause, not a stall: the clock just moves on.
            await self._pace(entry.due, count_stall=self.config.idle or not waited)
        if isinstance(entry.item, SegmentEnd):
            if entry.segment in self._started_segments:  # an utterance cut before it played was never started
                self._started_segments.discard(entry.segment)
                self._emit("playback_finished", entry.item)
        elif entry.segment is not None and entry.segment not in self._started_segments:
            self._started_segments.add(entry.segment)
            self._emit("playback_started", entry.segment)
        return entry.item

    async def _pace(self, due: float, count_stall: bool = True) -> None:
        now = self._loop.time()
        if self._t0 is None:
            self._t0 = now - due
        wait = self._t0 + due - now
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -LATE_S:
            self._t0 -= wait  # generation fell behind: the clock slips for audio and video alike
            self._stalls += count_stall

    def stats(self) -> dict:
        """Generation figures over recent windows: fps, rtf, window_ms_p50/p95, steps, nfe_per_window,
        queued_frames, queued_audio_s, frames (played), stalls, sampler, backend, s_ref, s_audio, audio_boost;
        also after aclose()."""
        if self._sched is None:
            raise RuntimeError("call `await session.start()` (or use `async with`) first")
        with self._cond:
            sched = self._sched  # still readable after aclose(): the last figures
            d = sched.stats()
            g = sched.guidance
            d.update(stalls=self._stalls, s_ref=g.s_ref, s_audio=g.s_audio, audio_boost=g.audio_boost)
        return d

    @property
    def fps(self) -> int:
        return self._require().fps

    @property
    def image_size(self) -> int:
        return self._require().model.cfg.ae.image_size

    @property
    def output_sample_rate(self) -> int | None:
        return self._require().out_rate if self._sched is not None else self._out_rate

    # ------------------------------------------------------------------ scripts
    def render(self, audio: np.ndarray | bytes, sample_rate: int) -> np.ndarray:
        """Synchronous: a whole utterance -> (T, H, W, 3) uint8 frames, as fast as the model goes.

        Uses its own scheduler (the live stream, if any, is untouched); call it from scripts or a
        thread, not from a running event loop's thread.
        """
        model = self._model or load_window_model(self._checkpoint, self._device, self._sampler, backend=self._backend)
        image = load_reference(self._reference, model.cfg.ae.image_size)
        fixed = dataclasses.replace(self.config, adaptive=False)  # scripts want the configured steps, every time
        frames, _ = render_offline(model, image, to_float_mono(audio, sample_rate), sample_rate, fixed)
        return frames


__all__ = ["AvatarSession", "AudioFrame", "SegmentEnd", "SessionClosed", "VideoFrame", "SAMPLE_RATES"]
