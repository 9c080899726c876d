"""End to end over loopback: an aiortc client receives the avatar; the control socket drives the session."""
from __future__ import annotations

import asyncio
import base64
import json
import math

import aiohttp
import numpy as np
import pytest
from aiortc.mediastreams import AudioStreamTrack
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from fada_stream.serve import ServerConfig, control
from fada_stream.serve.app import STATE


async def recv_until(ws, predicate, limit: int = 200) -> dict:
    """The first message (skipping stats and the like) for which predicate holds."""
    for _ in range(limit):
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if predicate(msg):
            return msg
    raise AssertionError("no matching message")


async def test_client_receives_changing_video_and_audio_with_monotonic_timestamps(server, client, wait_for):
    res = await client.connect(server.url)
    assert res.status == 200
    await wait_for(lambda: {"audio", "video"} <= set(client.tracks))
    video = [await asyncio.wait_for(client.tracks["video"].recv(), 10) for _ in range(12)]
    audio = [await asyncio.wait_for(client.tracks["audio"].recv(), 10) for _ in range(20)]
    v_pts = [f.pts for f in video]
    assert all(b > a for a, b in zip(v_pts, v_pts[1:]))
    assert np.median(np.diff(v_pts)) == 90000 // 25  # one session frame per RTP frame interval
    reds = [int(f.to_ndarray(format="rgb24")[..., 0].mean()) for f in video]
    assert len(set(reds)) > 6  # the picture changes frame to frame
    a_pts = [f.pts for f in audio]
    assert all(b > a for a, b in zip(a_pts, a_pts[1:]))
    assert {f.sample_rate for f in audio} == {48000} and {f.samples for f in audio} == {960}


def rms(frames) -> float:
    pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64)
    return math.sqrt(np.mean(pcm**2))


async def test_sample_plays_through_the_audio_track_with_events(server, client, wait_for):
    await client.connect(server.url)
    await wait_for(lambda: "audio" in client.tracks)
    async with ws_connect(f"{server.ws_url}/ws/{client.session_id}") as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["samples"] == ["hello.wav"] and hello["fps"] == 25
        assert hello["guidance"] == {"s_ref": 2.0, "s_audio": 4.0, "audio_boost": 0.0}
        audio = client.tracks["audio"]
        silence = [await asyncio.wait_for(audio.recv(), 10) for _ in range(10)]
        await ws.send(json.dumps({"type": "sample", "name": "hello.wav"}))
        assert (await recv_until(ws, lambda m: m["type"] in ("ack", "error"))) == {"type": "ack", "of": "sample", "name": "hello.wav"}
        started = await recv_until(ws, lambda m: m["type"] == "event")
        assert started["name"] == "playback_started"
        speech = [await asyncio.wait_for(audio.recv(), 10) for _ in range(25)]
        finished = await recv_until(ws, lambda m: m["type"] == "event")
        assert finished["name"] == "playback_finished" and finished["interrupted"] is False
        assert finished["position"] == pytest.approx(0.6, abs=0.05)
    assert rms(silence) < 100 < rms(speech)  # the gap before the clip is silence, the clip is heard


async def test_control_messages_interrupt_guidance_and_errors(server, client, wav_bytes):
    await client.connect(server.url)
    session = server.sessions[0]
    async with ws_connect(f"{server.ws_url}/ws/{client.session_id}") as ws:
        await recv_until(ws, lambda m: m["type"] == "hello")
        reply = lambda: recv_until(ws, lambda m: m["type"] in ("ack", "error"))  # noqa: E731

        await ws.send(json.dumps({"type": "guidance", "s_ref": 3.5}))
        assert (await reply())["guidance"] == {"s_ref": 3.5, "s_audio": 4.0, "audio_boost": 0.0}
        await ws.send(json.dumps({"type": "guidance", "audio_boost": 0.5}))
        assert (await reply())["guidance"] == {"s_ref": 3.5, "s_audio": 4.0, "audio_boost": 0.5}
        await ws.send(json.dumps({"type": "guidance", "s_ref": 1.0, "s_audio": 99}))
        assert (await reply())["type"] == "error" and session.guidance["s_audio"] == 4.0

        for bad in ["not json", "[1, 2]", '{"type": "dance"}', '{"type": "interrupt", "now": true}',
                    '{"type": "sample", "name": "missing.wav"}', '{"type": "reference", "image": "***"}',
                    '{"type": "reference", "image": "aGVsbG8="}', '{"type": "mirror", "enabled": "yes"}']:
            await ws.send(bad)
            err = await reply()
            assert err["type"] == "error" and err["message"], bad
        await ws.send(b"\x00binary")
        assert (await reply())["type"] == "error"
        assert session.reference is None  # the bad image left the session unchanged

        await ws.send(json.dumps({"type": "audio", "data": base64.b64encode(wav_bytes(3.0)).decode()}))
        assert (await reply()) == {"type": "ack", "of": "audio", "bytes": len(wav_bytes(3.0))}
        assert (await recv_until(ws, lambda m: m["type"] == "event"))["name"] == "playback_started"
        await ws.send(json.dumps({"type": "interrupt"}))
        assert (await reply()) == {"type": "ack", "of": "interrupt"}
        finished = await recv_until(ws, lambda m: m["type"] == "event")
        assert finished["name"] == "playback_finished" and finished["interrupted"] is True

        stats = await recv_until(ws, lambda m: m["type"] == "stats")
        assert {"fps", "rtf", "window_ms_p50", "outbound_fps"} <= set(stats)


async def test_oversized_message_closes_with_1009(server, client):
    await client.connect(server.url)
    async with ws_connect(f"{server.ws_url}/ws/{client.session_id}", max_size=None) as ws:
        await ws.recv()
        await ws.send("x" * (control.MAX_MESSAGE_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 1009
    assert client.session_id in server.app[STATE].peers  # a closed control socket leaves the media running


class Tone(AudioStreamTrack):
    """A microphone: aiortc's paced silence source with a tone in it, stereo like a browser's."""

    async def recv(self):
        frame = await super().recv()
        n = frame.samples
        tone = (8000 * np.sin(2 * np.pi * 440 * (frame.pts + np.arange(n)) / frame.sample_rate)).astype(np.int16)
        out = frame.__class__.from_ndarray(np.repeat(tone, 2)[None], format="s16", layout="stereo")
        out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, frame.time_base
        return out


async def test_microphone_is_mirrored_into_the_session_until_disabled(server, client, wait_for):
    await client.connect(server.url, mic=Tone())
    session = server.sessions[0]
    await wait_for(lambda: len(session.pushed) > 5)
    assert {rate for _, rate in session.pushed} == {48000}
    async with ws_connect(f"{server.ws_url}/ws/{client.session_id}") as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "mirror", "enabled": False}))
        assert (await recv_until(ws, lambda m: m["type"] in ("ack", "error")))["enabled"] is False
        n = len(session.pushed)
        await asyncio.sleep(0.3)
        assert len(session.pushed) == n


async def test_session_cap_answers_503_and_closed_peers_free_their_slot(serving, make_client, wait_for):
    async with serving(ServerConfig(max_sessions=1)) as server:
        first = make_client()
        assert (await first.connect(server.url)).status == 200
        assert (await make_client().connect(server.url)).status == 503
        await wait_for(lambda: first.pc.connectionState == "connected")
        await first.close()
        await wait_for(lambda: server.sessions[0].closed)  # the server noticed and closed the session
        assert (await make_client().connect(server.url)).status == 200


async def test_shutdown_closes_every_session_and_control_socket(serving, make_client):
    async with serving() as server:
        clients = [make_client() for _ in range(2)]
        for c in clients:
            assert (await c.connect(server.url)).status == 200
        ws = await ws_connect(f"{server.ws_url}/ws/{clients[0].session_id}")
        await ws.recv()
    assert len(server.sessions) == 2 and all(s.closed for s in server.sessions)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 1001  # going away


async def test_token_is_required_when_set(serving, make_client):
    async with serving(ServerConfig(token="s3cret")) as server:
        assert (await make_client().connect(server.url)).status == 401
        assert (await make_client().connect(server.url, headers={"Authorization": "Bearer wrong"})).status == 401
        client = make_client()
        assert (await client.connect(server.url, headers={"Authorization": "Bearer s3cret"})).status == 200
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/ws/{client.session_id}") as res:
            assert res.status == 401
        async with ws_connect(f"{server.ws_url}/ws/{client.session_id}?token=s3cret") as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
