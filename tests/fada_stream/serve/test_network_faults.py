"""Network faults between a client and the server: 5% loss with 100 +- 20 ms delay, then a 10 s blackout.

The kernel here has no netem qdisc (`tc qdisc add ... netem` answers "unknown qdisc"), so the faults are made in
the client's UDP layer instead: every datagram its ICE sockets send or receive passes a fault gate (drop with a
probability, hold for a random delay, or drop everything during a blackout). The server and its sockets are
untouched; to them it is the same as a lossy, slow, then dead network path. The control websocket (TCP) is not
faulted: a client whose socket still answers is a live one whose media stalls, and its session must stay.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from fada_stream.serve import ServerConfig
from fada_stream.serve.app import STATE
from fada_stream.serve.peer import MEDIA_TIMEOUT_S

RECOVERY_S = 30.0  # the bound on video resuming after the blackout (measured: 18 s with the lossy link still on)

FAULTY_VISITOR = r"""
import asyncio, random, sys, threading
import aiohttp, aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

aioice.ice.get_host_addresses = lambda *a, **k: ["127.0.0.1"]
FAULT = {"loss": 0.0, "delay": 0.0, "jitter": 0.0, "blackout": False}
rng = random.Random(7)

def gate(deliver):
    # Call deliver() now, later, or never, as the current faults say.
    if FAULT["blackout"] or rng.random() < FAULT["loss"]:
        return
    delay = max(0.0, FAULT["delay"] + rng.uniform(-FAULT["jitter"], FAULT["jitter"]))
    if delay:
        asyncio.get_running_loop().call_later(delay, deliver)
    else:
        deliver()

class FaultyTransport:
    def __init__(self, inner):
        self._inner = inner
    def sendto(self, data, addr=None):
        gate(lambda: None if self._inner.is_closing() else self._inner.sendto(data, addr))
    def __getattr__(self, name):
        return getattr(self._inner, name)

made, received = aioice.ice.StunProtocol.connection_made, aioice.ice.StunProtocol.datagram_received
aioice.ice.StunProtocol.connection_made = lambda self, t: made(self, FaultyTransport(t))
aioice.ice.StunProtocol.datagram_received = lambda self, data, addr: gate(lambda: received(self, data, addr))

def commands():
    # stdin lines: "loss 0.05", "delay 0.1", "jitter 0.02", "blackout 1" / "blackout 0"
    for line in sys.stdin:
        key, value = line.split()
        FAULT[key] = bool(int(value)) if key == "blackout" else float(value)

async def _drain(ws):
    async for _ in ws:
        pass

async def main(url, with_socket):
    threading.Thread(target=commands, daemon=True).start()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks = []
    pc.on("track", tracks.append)
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as res:
            answer = await res.json()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        if with_socket:  # read it, so aiohttp answers the server's heartbeat pings
            ws = await http.ws_connect(url.replace("http", "ws") + "/ws/" + answer["session_id"], autoping=True)
            reader = asyncio.ensure_future(_drain(ws))
        while not tracks:
            await asyncio.sleep(0.02)
        frames = 0
        async def count():
            nonlocal frames
            while True:
                await tracks[0].recv()
                frames += 1
        counter = asyncio.ensure_future(count())
        while not frames:
            await asyncio.sleep(0.02)
        print("ready", flush=True)
        while True:  # the frame count, twice a second
            await asyncio.sleep(0.5)
            print("frames", frames, pc.connectionState, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2] == "ws"))
"""


class Visitor:
    """The faulty client in its own process; `frames` is its latest count of received video frames."""

    def __init__(self, url: str, with_socket: bool):
        self.proc = subprocess.Popen([sys.executable, "-c", FAULTY_VISITOR, url, "ws" if with_socket else "media-only"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.frames, self.state = 0, "new"

    async def ready(self) -> None:
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 30)
        assert line.strip() == "ready", line
        asyncio.get_running_loop().run_in_executor(None, self._read)

    def _read(self) -> None:
        for line in self.proc.stdout:
            _, n, self.state = line.split()
            self.frames = int(n)

    def fault(self, **faults: float) -> None:
        for key, value in faults.items():
            self.proc.stdin.write(f"{key} {value}\n")
        self.proc.stdin.flush()

    async def frames_over(self, seconds: float) -> int:
        start = self.frames
        await asyncio.sleep(seconds)
        return self.frames - start

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.mark.slow
async def test_lossy_slow_link_then_blackout_keeps_the_session_and_recovers(serving, wait_for):
    async with serving(ServerConfig(max_sessions=1)) as server:
        v = Visitor(server.url, with_socket=True)
        try:
            await v.ready()
            clean = await v.frames_over(3.0)
            v.fault(loss=0.05, delay=0.1, jitter=0.02)
            await asyncio.sleep(1.0)  # the delay line fills
            lossy = await v.frames_over(4.0) / 4.0
            assert lossy >= 0.6 * clean / 3.0, (clean, lossy)  # frames keep coming; a lost packet costs a frame, not the stream

            v.fault(blackout=1)
            await asyncio.sleep(1.0)
            assert await v.frames_over(9.0) <= 2  # nothing gets through (a frame or two still in the delay line)
            assert len(server.app[STATE].peers) == 1  # the socket answers: a stalled client, not a gone one
            v.fault(blackout=0)
            # Recovered: a full second at >= 60% of the clean rate. aiortc's receiver drops the frames around the
            # gap until it overflows and a key frame decodes: measured 17-18 s (docs/reliability.md).
            loop = asyncio.get_running_loop()
            start = loop.time()
            while (per_s := await v.frames_over(1.0)) < 0.6 * clean / 3.0:
                assert loop.time() - start < RECOVERY_S, f"no recovery {RECOVERY_S} s after the blackout"
            recovered_after = loop.time() - start
            assert len(server.app[STATE].peers) == 1 and not server.sessions[0].closed and v.state == "connected"
            print(f"frames/s clean {clean / 3:.1f}, lossy {lossy:.1f}; {per_s} frames/s again {recovered_after:.1f} s after the blackout")
        finally:
            v.kill()


@pytest.mark.slow
async def test_blackout_of_a_media_only_client_ends_its_session_cleanly(serving, wait_for):
    """Without a control socket the server cannot tell a blackout from a gone client: it frees the slot within
    MEDIA_TIMEOUT_S, and a new visitor is served right away."""
    async with serving(ServerConfig(max_sessions=1)) as server:
        v = Visitor(server.url, with_socket=False)
        try:
            await v.ready()
            v.fault(blackout=1)
            seconds = await wait_for(lambda: not server.app[STATE].peers, timeout=MEDIA_TIMEOUT_S + 3)
            assert seconds <= MEDIA_TIMEOUT_S + 1.5
            assert server.sessions[0].closed and server.app[STATE].reserved == 0
        finally:
            v.kill()
        again = Visitor(server.url, with_socket=False)
        try:
            await again.ready()  # the server took a new session after the failed one
            assert len(server.app[STATE].peers) == 1
        finally:
            again.kill()
