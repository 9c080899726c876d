"""A test double with AvatarSession's surface, a server on an ephemeral loopback port, an aiortc client."""
from __future__ import annotations

import asyncio
import contextlib
import io
import wave
from typing import AsyncIterator

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from fada_stream.frames import AudioFrame, SegmentEnd, VideoFrame
from fada_stream.serve import ServerConfig, create_app, ice
from fada_stream.serve import media as serve_media


class FakeSession:
    """Paced 25 fps frames whose colour changes every frame; pushed audio comes back re-timed at 48 kHz."""

    fps = 25
    image_size = 64
    output_sample_rate = 48000

    def __init__(self) -> None:
        self.pending = np.zeros(0, np.int16)  # (n,) 48 kHz audio not yet emitted
        self.pushed: list[tuple[int, int]] = []  # (samples, sample_rate) of every push
        self.flushed = self.speaking = self.started = self.closed = False
        self.emitted = 0  # samples of the current utterance already emitted
        self.interrupted = False
        self.guidance = {"s_ref": 2.0, "s_audio": 4.0, "audio_boost": 0.0}
        self.reference: bytes | None = None
        self.frames = 0

    async def start(self) -> None:
        self.started = True

    async def push_audio(self, pcm, sample_rate: int) -> None:
        x = np.asarray(pcm, np.int16)
        self.pushed.append((len(x), sample_rate))
        n_out = len(x) * self.output_sample_rate // sample_rate
        self.pending = np.concatenate([self.pending, x[np.arange(n_out) * sample_rate // self.output_sample_rate]])

    async def flush(self) -> None:
        self.flushed = True

    def clear_buffer(self) -> None:
        self.pending = np.zeros(0, np.int16)
        self.interrupted = self.speaking

    def set_guidance(self, s_ref=None, s_audio=None, audio_boost=None) -> None:
        given = {k: v for k, v in (("s_ref", s_ref), ("s_audio", s_audio), ("audio_boost", audio_boost)) if v is not None}
        for k, v in given.items():
            if not 0 <= v <= (4 if k == "audio_boost" else 8):
                raise ValueError(f"{k} out of range, got {v}")
        self.guidance.update(given)

    async def set_reference(self, image) -> None:
        from PIL import Image

        from fada_stream.reference import ReferenceError

        try:
            Image.open(io.BytesIO(image)).verify()
        except Exception as e:
            raise ReferenceError(f"not a readable image: {e}") from e
        self.reference = image

    def stats(self) -> dict:
        return {"fps": 25.0, "rtf": np.float32(0.5), "window_ms_p50": 10.0, "window_ms_p95": 12.0, "steps": 2,
                "nfe_per_window": 2, "queued_audio_s": len(self.pending) / 48000, "frames": self.frames, "stalls": 0,
                **self.guidance}

    def __aiter__(self) -> AsyncIterator:
        return self._run()

    async def _run(self) -> AsyncIterator:
        loop = asyncio.get_running_loop()
        t0, per_frame = loop.time(), self.output_sample_rate // self.fps
        while not self.closed:
            pts = self.frames / self.fps
            await asyncio.sleep(max(0.0, t0 + pts - loop.time()))
            if self.interrupted or (self.speaking and self.flushed and len(self.pending) == 0):
                yield SegmentEnd(self.emitted / self.output_sample_rate, interrupted=self.interrupted)
                self.speaking = self.interrupted = self.flushed = False
                self.emitted = 0
            if len(self.pending):
                chunk, self.pending = self.pending[:per_frame], self.pending[per_frame:]
                self.speaking = True
                self.emitted += len(chunk)
                yield AudioFrame(chunk, self.output_sample_rate, pts)
            image = np.zeros((self.image_size, self.image_size, 3), np.uint8)
            image[..., 0] = self.frames * 9 % 256
            image[: self.image_size // 2, :, 1] = 200
            yield VideoFrame(image, pts)
            self.frames += 1

    async def aclose(self) -> None:
        self.closed = True


def make_wav(seconds: float = 1.0, rate: int = 16000, freq: float = 440.0) -> bytes:
    pcm = (0.5 * 32767 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate), w.writeframes(pcm.tobytes())
    return buf.getvalue()


@pytest.fixture
def wav_bytes():
    return make_wav


@pytest.fixture
def samples_dir(tmp_path, monkeypatch):
    d = tmp_path / "samples"
    d.mkdir()
    (d / "hello.wav").write_bytes(make_wav(0.6))
    monkeypatch.setattr(serve_media, "SAMPLES_DIR", d)
    return d


class Server:
    def __init__(self, app: web.Application, url: str) -> None:
        self.app, self.url = app, url
        self.sessions: list = []

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")


@contextlib.asynccontextmanager
async def _serving(config: ServerConfig | None = None, new_session=None) -> AsyncIterator[Server]:
    """The app on 127.0.0.1 and an ephemeral port; every session it creates is in server.sessions."""
    config = config or ServerConfig()

    def factory():
        s = (new_session or FakeSession)()
        server.sessions.append(s)
        return s

    app = create_app(config, factory)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = Server(app, f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
def serving():
    """serving(config=None, new_session=FakeSession): async context manager giving a running Server."""
    return _serving


@pytest.fixture
async def server(serving, samples_dir) -> AsyncIterator[Server]:
    async with serving() as s:
        yield s


class Client:
    """An aiortc browser stand-in: receives the avatar, optionally sends a microphone track."""

    def __init__(self) -> None:
        # The server's loopback pin is process-wide while it runs, so this client gathers 127.0.0.1 too.
        self.pc = RTCPeerConnection(ice.rtc_configuration(loopback=True))
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.pc.on("track", lambda t: self.tracks.__setitem__(t.kind, t))
        self.session_id: str | None = None

    async def connect(self, url: str, mic: MediaStreamTrack | None = None, headers: dict | None = None) -> aiohttp.ClientResponse:
        if mic is not None:
            self.pc.addTrack(mic)
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"sdp": self.pc.localDescription.sdp, "type": self.pc.localDescription.type}
        async with aiohttp.ClientSession() as http, http.post(f"{url}/offer", json=offer, headers=headers) as res:
            body = await res.json()
        if res.status == 200:
            self.session_id = body["session_id"]
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))
        return res

    async def close(self) -> None:
        await self.pc.close()


@pytest.fixture
async def make_client() -> AsyncIterator:
    """make_client() -> a new Client, closed at teardown (make_client.clients: those still to close)."""
    clients: list[Client] = []

    def make() -> Client:
        clients.append(Client())
        return clients[-1]

    make.clients = clients
    yield make
    for c in clients:
        await c.close()


@pytest.fixture
def client(make_client) -> Client:
    return make_client()


async def _wait_for(condition, timeout: float = 10.0) -> float:
    """Poll `condition` until it holds; the seconds it took. AssertionError after `timeout`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > timeout:
            raise AssertionError("condition not met")
        await asyncio.sleep(0.02)
    return loop.time() - start


@pytest.fixture
def wait_for():
    """await wait_for(condition, timeout=10.0) -> seconds it took."""
    return _wait_for
