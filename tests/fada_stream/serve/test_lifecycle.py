"""Sessions end without a trace: connect/close cycles leak nothing, a killed client frees its slot in
seconds, a full server refuses fast while running sessions keep their frame rate."""
from __future__ import annotations

import asyncio
import gc
import os
import resource
import signal
import subprocess
import sys
import threading
import time

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from websockets.asyncio.client import connect as ws_connect

from fada_stream.serve import ServerConfig
from fada_stream.serve.app import HEARTBEAT_S, STATE
from fada_stream.serve.peer import MEDIA_TIMEOUT_S


def footprint() -> dict[str, int]:
    """What a leak would grow: tasks, threads, open fds, live peer connections, resident KB.

    Threads of asyncio's default executor are a pool that grows to its bound on demand, not a leak."""
    gc.collect()
    with open("/proc/self/statm") as f:
        rss_kb = int(f.read().split()[1]) * resource.getpagesize() // 1024
    return {"tasks": len(asyncio.all_tasks()), "threads": sum(not t.name.startswith("asyncio_") for t in threading.enumerate()), "fds": len(os.listdir("/proc/self/fd")),
            "pcs": sum(type(o) is RTCPeerConnection for o in gc.get_objects()), "rss_kb": rss_kb}


async def cycle(server, make_client, wait_for, with_socket: bool) -> None:
    """One browser visit: connect, see a frame, (open the control socket,) leave."""
    client = make_client()
    assert (await client.connect(server.url)).status == 200
    await wait_for(lambda: "video" in client.tracks)
    await asyncio.wait_for(client.tracks["video"].recv(), 10)
    if with_socket:
        async with ws_connect(f"{server.ws_url}/ws/{client.session_id}") as ws:
            await ws.recv()
    await client.close()
    make_client.clients.remove(client)  # closed: let it be collected, so a leaked peer connection is the server's
    await wait_for(lambda: not server.app[STATE].peers)


async def check_cycles(serving, make_client, wait_for, n: int) -> None:
    async with serving(ServerConfig(max_sessions=1)) as server:
        for i in range(3):  # warm up: the executor's threads, aiortc's codecs and caches come into being
            await cycle(server, make_client, wait_for, with_socket=i % 2 == 0)
        before = footprint()
        for i in range(n):
            await cycle(server, make_client, wait_for, with_socket=i % 2 == 0)
        after = footprint()
        state = server.app[STATE]
        assert state.peers == {} and state.reserved == 0
        assert len(server.sessions) == n + 3 and all(s.closed for s in server.sessions)  # every model slot released
    assert after["pcs"] == 0, after
    assert after["tasks"] <= before["tasks"] and after["threads"] <= before["threads"], (before, after)
    assert after["fds"] <= before["fds"], (before, after)
    assert after["rss_kb"] <= before["rss_kb"] * 1.05, (before, after)


async def test_connect_close_cycles_leak_nothing(serving, make_client, wait_for):
    await check_cycles(serving, make_client, wait_for, n=20)


@pytest.mark.slow
async def test_200_connect_close_cycles_leak_nothing(serving, make_client, wait_for):
    await check_cycles(serving, make_client, wait_for, n=200)


# A browser stand-in in its own process, so it can be killed (no goodbye: no DTLS close, no websocket
# close frame; the kernel just drops its sockets) or frozen (sockets stay open, nothing answers).
VISITOR = r"""
import asyncio, sys
import aiohttp, aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

aioice.ice.get_host_addresses = lambda *a, **k: ["127.0.0.1"]  # pair with the server's loopback-only candidate

async def main(url):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks = []
    pc.on("track", tracks.append)
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as res:
            answer = await res.json()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        async with http.ws_connect(url.replace("http", "ws") + "/ws/" + answer["session_id"], autoping=True) as ws:
            await ws.receive()
            while not tracks:
                await asyncio.sleep(0.02)
            await tracks[0].recv()
            print("ready", flush=True)
            while True:
                await tracks[0].recv()

asyncio.run(main(sys.argv[1]))
"""


async def visitor(url: str) -> subprocess.Popen:
    """A subprocess that holds a session with media flowing and its control socket open."""
    proc = subprocess.Popen([sys.executable, "-c", VISITOR, url], stdout=subprocess.PIPE)
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
    assert line.strip() == b"ready"
    return proc


async def test_killed_client_frees_its_session_within_5_s(serving, wait_for):
    async with serving(ServerConfig(max_sessions=1)) as server:
        proc = await visitor(server.url)
        assert len(server.app[STATE].peers) == 1
        proc.kill()
        proc.wait()
        seconds = await wait_for(lambda: not server.app[STATE].peers, timeout=10)
        assert seconds <= MEDIA_TIMEOUT_S + 1.0 <= 5.0
        assert server.sessions[0].closed


@pytest.mark.slow
async def test_frozen_client_frees_its_session_once_the_ping_goes_unanswered(serving, wait_for):
    """SIGSTOP: the sockets stay open, so only the websocket heartbeat and media silence can tell."""
    async with serving(ServerConfig(max_sessions=1)) as server:
        proc = await visitor(server.url)
        proc.send_signal(signal.SIGSTOP)
        try:
            # Heartbeat: a ping within HEARTBEAT_S, its pong awaited HEARTBEAT_S / 2; then MEDIA_TIMEOUT_S.
            seconds = await wait_for(lambda: not server.app[STATE].peers, timeout=20)
        finally:
            proc.kill()
            proc.wait()
        assert seconds <= 1.5 * HEARTBEAT_S + MEDIA_TIMEOUT_S + 1.0


async def test_full_server_refuses_fast_without_a_model_and_running_sessions_keep_their_fps(serving, make_client, wait_for):
    async with serving(ServerConfig(max_sessions=1)) as server:
        client = make_client()
        assert (await client.connect(server.url)).status == 200
        await wait_for(lambda: "video" in client.tracks)
        video = client.tracks["video"]
        await asyncio.wait_for(video.recv(), 10)

        async def refused(http: aiohttp.ClientSession) -> float:
            start = time.monotonic()
            async with http.post(f"{server.url}/offer", data=b"x" * 4000) as res:  # the body is never read
                assert res.status == 503 and res.headers["Retry-After"]
                assert "sessions are in use" in (await res.json())["error"]
            return time.monotonic() - start

        async def frames(seconds: float) -> list[int]:
            pts, end = [], time.monotonic() + seconds
            while time.monotonic() < end:
                pts.append((await asyncio.wait_for(video.recv(), 5)).pts)
            return pts

        async with aiohttp.ClientSession() as http:
            stamped = asyncio.create_task(frames(2.0))
            latencies = []
            while not stamped.done():  # ~500 offers/s; an unthrottled flood on the same core does cost frames
                latencies += (await asyncio.gather(asyncio.sleep(0.02), *(refused(http) for _ in range(10))))[1:]
            pts = await stamped
        peer = next(iter(server.app[STATE].peers.values()))
        assert len(server.sessions) == 1  # no session built, so no model loaded, for any refused offer
        assert len(latencies) >= 500 and sorted(latencies)[len(latencies) // 2] < 0.05
        # The running session kept its 25 fps: two seconds of frames, none skipped, none dropped by the server.
        assert (pts[-1] - pts[0]) / 3600 >= 0.9 * 25 * 2.0 and len(pts) == (pts[-1] - pts[0]) // 3600 + 1
        assert peer.video.dropped == 0
