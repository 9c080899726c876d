"""One browser = one RTCPeerConnection + one AvatarSession, and the tasks that connect them.

    session --pump--> SessionVideoTrack / SessionAudioTrack --aiortc--> browser
    browser microphone --aiortc--> mic reader --push_audio--> session          ("mirror" mode)
    control websocket --Peer.handle--> session (interrupt, guidance, reference, sample, upload)

A peer closes (freeing its session slot) when its connection fails or closes, when ICE never
completes, or when its control socket is gone and the browser has sent nothing for MEDIA_TIMEOUT_S.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any, Awaitable, Callable, Protocol

from aiohttp import web
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from fada_stream.frames import AudioFrame, SegmentEnd, VideoFrame
from fada_stream.serve import control
from fada_stream.serve.media import AudioInputError, bundled_samples, decode_audio, mono_int16
from fada_stream.serve.tracks import AUDIO_RATE, MediaClock, SessionAudioTrack, SessionVideoTrack

log = logging.getLogger(__name__)

GUIDANCE_KEYS = ("s_ref", "s_audio", "audio_boost")  # control.Guidance's fields, as the session's stats name them
EVENT_QUEUE = 64  # events kept for a control socket that is slow or not yet open
CONNECT_TIMEOUT_S = 30.0  # a peer whose ICE never completes is closed, freeing its session slot
# A receiving browser sends RTCP receiver reports about every second (aiortc every 0.5-1.5 s), so
# seconds without a packet mean it is gone; ICE consent (RFC 7675) would take ~30 s to say so. Only
# applied once the control socket is closed too: a socket still answering pings (app.HEARTBEAT_S)
# means a live client whose media merely stalls.
MEDIA_TIMEOUT_S = 4.0
LIVENESS_PERIOD_S = 0.5


class Session(Protocol):
    """The part of AvatarSession a peer uses."""

    fps: int
    output_sample_rate: int

    async def start(self) -> None: ...
    async def push_audio(self, pcm: Any, sample_rate: int) -> None: ...
    async def flush(self) -> None: ...
    def clear_buffer(self) -> None: ...
    def set_guidance(self, s_ref: float | None = None, s_audio: float | None = None,
                     audio_boost: float | None = None) -> None: ...
    async def set_reference(self, image: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def __aiter__(self) -> Any: ...
    async def aclose(self) -> None: ...


class Peer:
    def __init__(self, pc: RTCPeerConnection, session: Session, on_close: Callable[[Peer], None], ordinal: int = 0) -> None:
        if session.output_sample_rate != AUDIO_RATE:
            raise ValueError(f"the session must emit {AUDIO_RATE} Hz audio (output_sample_rate), not {session.output_sample_rate}")
        self.id = secrets.token_urlsafe(16)  # a capability: it opens the control socket
        self.ordinal = ordinal  # a public name for logs and metrics
        self.pc, self.session = pc, session
        self.clock = MediaClock()
        self.video = SessionVideoTrack(self.clock)
        self.audio = SessionAudioTrack(self.clock)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(EVENT_QUEUE)
        self.samples = bundled_samples()
        self.mirror = True
        self.speaking = False  # between the first AudioFrame of an utterance and its SegmentEnd
        self.guidance = {k: v for k, v in session.stats().items() if k in GUIDANCE_KEYS}
        self.websocket: web.WebSocketResponse | None = None  # the control socket, while one is open
        self._on_close = on_close
        self._tasks: set[asyncio.Task] = set()
        self._feeder: asyncio.Task | None = None
        self._closing: asyncio.Task | None = None

    # ---- wiring -------------------------------------------------------------------------------

    def attach(self) -> None:
        """Call after setRemoteDescription(offer) and before createAnswer(): adds our tracks."""
        transceivers = self.pc.getTransceivers()
        self.pc.addTrack(self.video)
        if any(t.kind == "audio" for t in transceivers):
            self.pc.addTrack(self.audio)
        # setRemoteDescription has already fired "track": the offer's sending tracks are on the receivers.
        for t in transceivers:
            if t.kind == "audio" and t.receiver.track is not None:
                self._spawn(self._read_microphone(t.receiver.track))
        self.pc.on("connectionstatechange", self._on_state)
        self._spawn(self._pump())
        self._spawn(self._connect_deadline())
        self._spawn(self._watch_media())

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_state(self) -> None:
        log.info("peer #%d: connection %s", self.ordinal, self.pc.connectionState)
        if self.pc.connectionState in ("failed", "closed"):
            self.close_soon()

    async def _connect_deadline(self) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        if self.pc.connectionState != "connected":
            log.info("peer #%d: not connected after %.0f s", self.ordinal, CONNECT_TIMEOUT_S)
            self.close_soon()

    async def _packets_received(self) -> int:
        """Datagrams received on the (bundled) DTLS transport: RTP, RTCP and DTLS alike."""
        report = await self.pc.getStats()
        return sum(s.packetsReceived for s in report.values() if s.type == "transport")

    async def _watch_media(self) -> None:
        loop = asyncio.get_running_loop()
        received, last = -1, loop.time()
        while True:
            await asyncio.sleep(LIVENESS_PERIOD_S)
            if self.pc.connectionState != "connected":
                last = loop.time()  # CONNECT_TIMEOUT_S and the state callback cover the other states
                continue
            n = await self._packets_received()
            if n != received:
                received, last = n, loop.time()
            elif self.websocket is None and loop.time() - last > MEDIA_TIMEOUT_S:
                log.info("peer #%d: no control socket and no packets for %.0f s", self.ordinal, MEDIA_TIMEOUT_S)
                self.close_soon()
                return

    # ---- media --------------------------------------------------------------------------------

    async def _pump(self) -> None:
        """Iterate the paced session: frames to the tracks, utterance boundaries to the events."""
        try:
            async for item in self.session:
                if isinstance(item, VideoFrame):
                    self.video.put(item.image, self.clock.observe(item.pts))
                elif isinstance(item, AudioFrame):
                    self.audio.write(item.pcm, self.clock.observe(item.pts))
                    if not self.speaking:
                        self.speaking = True
                        self._event("playback_started", interrupted=False, pts=item.pts)
                elif isinstance(item, SegmentEnd):
                    self.speaking = False
                    self._event("playback_finished", interrupted=item.interrupted, position=item.playback_position)
        except Exception:
            log.exception("peer #%d: session failed", self.ordinal)
            self.close_soon()

    async def _read_microphone(self, track: MediaStreamTrack) -> None:
        """Always drain the track (aiortc queues unread frames); push only while mirroring."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self.mirror:
                await self.session.push_audio(mono_int16(frame), sample_rate=frame.sample_rate)

    async def _play(self, source: bytes | Any) -> None:
        try:
            pcm = await asyncio.to_thread(decode_audio, source, AUDIO_RATE)  # (n,) int16
        except AudioInputError as e:
            self._post({"type": "error", "message": str(e)})
            return
        # One second per push: push_audio's backpressure then paces a long file.
        for i in range(0, len(pcm), AUDIO_RATE):
            await self.session.push_audio(pcm[i : i + AUDIO_RATE], sample_rate=AUDIO_RATE)
        await self.session.flush()

    def _start_playing(self, source: bytes | Any) -> None:
        """A new clip cuts off whatever is being said or still being pushed."""
        if self.speaking or (self._feeder is not None and not self._feeder.done()):
            self._interrupt()
        self._feeder = self._spawn(self._play(source))

    def _interrupt(self) -> None:
        if self._feeder is not None:
            self._feeder.cancel()
        self.session.clear_buffer()

    # ---- control ------------------------------------------------------------------------------

    def _event(self, name: str, **fields: Any) -> None:
        self._post({"type": "event", "name": name, **fields})

    def _post(self, msg: dict[str, Any]) -> None:
        if self.events.full():
            self.events.get_nowait()
        self.events.put_nowait(msg)

    def hello_message(self) -> dict[str, Any]:
        return {"type": "hello", "session_id": self.id, "samples": sorted(self.samples), "guidance": self.guidance,
                "fps": self.session.fps, "mirror": self.mirror}

    def stats_message(self) -> dict[str, Any]:
        return {**self.session.stats(), "type": "stats", "outbound_fps": round(self.video.meter.fps(), 2),
                "audio_late_ms": round(self.audio.late_ms, 1), "clock_slips": self.clock.slips}

    async def handle(self, cmd: control.Command) -> dict[str, Any]:
        """Apply one control command; the reply to send. ValueError (with a message for the client) if refused."""
        if isinstance(cmd, control.Interrupt):
            self._interrupt()
            return {"type": "ack", "of": "interrupt"}
        if isinstance(cmd, control.Guidance):
            given = {k: v for k in GUIDANCE_KEYS if (v := getattr(cmd, k)) is not None}
            self.session.set_guidance(**given)
            self.guidance.update(given)
            return {"type": "ack", "of": "guidance", "guidance": self.guidance}
        if isinstance(cmd, control.Reference):
            await self.session.set_reference(cmd.image)
            return {"type": "ack", "of": "reference"}
        if isinstance(cmd, control.Sample):
            if cmd.name not in self.samples:
                raise control.ControlError(f"sample: unknown name {cmd.name!r}; expected one of {sorted(self.samples)}")
            self._start_playing(self.samples[cmd.name])
            return {"type": "ack", "of": "sample", "name": cmd.name}
        if isinstance(cmd, control.Audio):
            self._start_playing(cmd.data)
            return {"type": "ack", "of": "audio", "bytes": len(cmd.data)}
        self.mirror = cmd.enabled
        return {"type": "ack", "of": "mirror", "enabled": self.mirror}

    # ---- teardown -----------------------------------------------------------------------------

    def close_soon(self) -> None:
        """Start closing, from a callback or a task that must not wait for it."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())

    async def close(self) -> None:
        """Idempotent; returns once the session is closed."""
        self.close_soon()
        await asyncio.shield(self._closing)

    async def _close_socket(self) -> None:
        if self.websocket is not None:
            await self.websocket.close(code=1001, message=b"session closed")

    async def _close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.video.stop()
        self.audio.stop()
        # Each step runs whatever the one before raised (aiortc's close can trip over a half-negotiated
        # connection): the session slot must be freed.
        for what, step in (("connection", self.pc.close), ("control socket", self._close_socket),
                           ("session", self.session.aclose)):
            try:
                await step()
            except Exception:
                log.exception("peer #%d: closing the %s failed", self.ordinal, what)
        self._on_close(self)
        log.info("peer #%d: closed", self.ordinal)
