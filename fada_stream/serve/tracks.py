"""Outbound aiortc tracks fed from one AvatarSession, both released on the session's clock.

The peer's pump iterates the (paced) session, maps each item's pts to event-loop time with
`MediaClock` and hands VideoFrames to `SessionVideoTrack`, AudioFrames to `SessionAudioTrack`.
Both tracks release frames one fixed delay after that time and stamp them from it, so audio and
video leave together whatever order they arrived in, and nothing drifts: a late `recv()` catches
up instead of shifting every later frame.
"""
from __future__ import annotations

import asyncio
import collections
import time
from fractions import Fraction

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_TIME_BASE = Fraction(1, 90000)  # the RTP video clock rate
AUDIO_RATE = 48000  # Opus runs at 48 kHz; anything else would be resampled by the encoder
AUDIO_CHUNK = 960  # 20 ms at 48 kHz: one Opus frame
# Everything leaves this long after its time came. The paced session releases a 40 ms audio frame
# at its start pts, so the end of a 20 ms chunk can arrive 20 ms after the chunk's own time; the
# other 40 ms absorb event-loop jitter on a busy 2-core CPU (the model shares the GIL).
OUTPUT_DELAY_S = 0.06
# An item this much later than the clock expects means the session slipped its clock (generation
# fell behind; audio and video both wait): follow it, leaving silence in the gap.
SLIP_S = 0.04
VIDEO_QUEUE = 3  # frames; a slow consumer loses the oldest frames rather than falling behind


class MediaClock:
    """Session pts (seconds) -> event-loop time, following the session when its clock slips.

    The paced session yields each item at its pts in wall time, so the first item fixes the
    offset; a stall in the session moves the offset forward, never back.
    """

    def __init__(self) -> None:
        self.start: float | None = None  # loop time of the first item: time 0 of both tracks
        self.slips = 0
        self._offset = 0.0
        self._anchored = asyncio.Event()

    def observe(self, pts: float) -> float:
        """An item stamped `pts` has just arrived: the loop time it belongs to."""
        now = asyncio.get_running_loop().time()
        if self.start is None:
            self.start, self._offset = now, now - pts
            self._anchored.set()
        elif now - (self._offset + pts) > SLIP_S:
            self._offset = now - pts
            self.slips += 1
        return self._offset + pts

    async def wait(self) -> None:
        await self._anchored.wait()


async def _sleep_until(when: float) -> None:
    delay = when - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


class FpsMeter:
    """Frames per second over the last `span` seconds."""

    def __init__(self, span: float = 2.0) -> None:
        self.span = span
        self._times: collections.deque[float] = collections.deque()

    def tick(self) -> None:
        now = time.monotonic()
        self._times.append(now)
        while self._times[0] < now - self.span:
            self._times.popleft()

    def fps(self) -> float:
        now = time.monotonic()
        while self._times and self._times[0] < now - self.span:
            self._times.popleft()
        return len(self._times) / self.span


class AudioTimeline:
    """Mono int16 samples placed by time, read back as fixed chunks; silence wherever nothing was written.

    Sample index 0 is at time `start` (seconds, any clock). Audio written behind the read position
    is late (its chunk has gone) and is dropped; `late_samples` counts it.
    """

    def __init__(self, start: float, rate: int = AUDIO_RATE, chunk: int = AUDIO_CHUNK) -> None:
        self.start, self.rate, self.chunk = start, rate, chunk
        self.read = 0  # absolute index of the next sample to be read
        self.buf = np.zeros(0, np.int16)  # samples [read, read + len(buf))
        self.late_samples = 0
        self._end = 0  # absolute index just past the last written sample

    def write(self, pcm: np.ndarray, at: float) -> None:
        """pcm (n,) int16 that starts at time `at`."""
        pos = round((at - self.start) * self.rate)
        # Session pts are rounded; a frame that starts within 1 ms of where the last one ended
        # continues it, so rounding never leaves a one-sample click or overlap.
        if abs(pos - self._end) <= self.rate // 1000:
            pos = self._end
        offset = pos - self.read
        if offset < 0:
            self.late_samples += min(len(pcm), -offset)
            pcm, offset = pcm[-offset:], 0
        if len(pcm) == 0:
            return
        if offset + len(pcm) > len(self.buf):
            self.buf = np.concatenate([self.buf, np.zeros(offset + len(pcm) - len(self.buf), np.int16)])
        self.buf[offset : offset + len(pcm)] = pcm
        self._end = self.read + offset + len(pcm)

    def read_chunk(self) -> np.ndarray:
        """The next (chunk,) int16 samples."""
        out = np.zeros(self.chunk, np.int16)
        n = min(self.chunk, len(self.buf))
        out[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        self.read += self.chunk
        return out

    def skip_to(self, index: int) -> None:
        """Drop everything before absolute sample `index` (a consumer that started late)."""
        if index > self.read:
            self.buf = self.buf[index - self.read :]
            self.read = index


class SessionVideoTrack(MediaStreamTrack):
    """rgb24 frames at the session's fps, stamped in 1/90000 from the clock."""

    kind = "video"

    def __init__(self, clock: MediaClock) -> None:
        super().__init__()
        self.clock = clock
        self.meter = FpsMeter()
        self._queue: asyncio.Queue[tuple[np.ndarray, float]] = asyncio.Queue(VIDEO_QUEUE)
        self._last_pts = -1
        self.sent = 0  # frames handed to the encoder
        self.dropped = 0  # frames the running encoder did not take in time (the event loop fell behind)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def put(self, image: np.ndarray, at: float) -> None:
        """image (H, W, 3) uint8 RGB for loop time `at` (from clock.observe); drops the oldest frame when full."""
        if self._queue.full():
            self._queue.get_nowait()
            # Before the first recv() the connection is still being set up: those frames had nowhere to go.
            self.dropped += self.sent > 0
        self._queue.put_nowait((image, at))

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        image, at = await self._queue.get()
        await _sleep_until(at + OUTPUT_DELAY_S)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        # Strictly increasing even if the session repeats a pts: encoders reject equal timestamps.
        self._last_pts = max(self._last_pts + 1, round((at - self.clock.start) / VIDEO_TIME_BASE))
        frame.pts, frame.time_base = self._last_pts, VIDEO_TIME_BASE
        self.meter.tick()
        self.sent += 1
        return frame


class SessionAudioTrack(MediaStreamTrack):
    """48 kHz mono s16 chunks of 20 ms, one every 20 ms from the clock's start: the session's audio
    where it has some, silence elsewhere."""

    kind = "audio"

    def __init__(self, clock: MediaClock) -> None:
        super().__init__()
        self.clock = clock
        self.timeline: AudioTimeline | None = None
        self._started = False

    def _line(self) -> AudioTimeline:
        if self.timeline is None:
            self.timeline = AudioTimeline(self.clock.start)
        return self.timeline

    def write(self, pcm: np.ndarray, at: float) -> None:
        """pcm (n,) int16 at 48 kHz for loop time `at` (from clock.observe)."""
        self._line().write(pcm, at)

    @property
    def late_ms(self) -> float:
        return 0.0 if self.timeline is None else 1000 * self.timeline.late_samples / AUDIO_RATE

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self.clock.wait()
        line = self._line()
        if not self._started:
            # The sender starts once ICE connects, maybe seconds after the session: begin at the
            # chunk due now rather than sending a burst of stale ones.
            behind = asyncio.get_running_loop().time() - (line.start + OUTPUT_DELAY_S)
            line.skip_to(max(0, int(behind * AUDIO_RATE) // AUDIO_CHUNK * AUDIO_CHUNK))
            self._started = True
        index = line.read
        await _sleep_until(line.start + index / AUDIO_RATE + OUTPUT_DELAY_S)
        pcm = line.read_chunk()  # (960,)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, index, Fraction(1, AUDIO_RATE)
        return frame
