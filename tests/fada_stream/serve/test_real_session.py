"""The server with the real AvatarSession (bundled checkpoint, CPU): media flows and a bundled sample is spoken."""
from __future__ import annotations

import asyncio
import json

import numpy as np
from websockets.asyncio.client import connect as ws_connect

from fada_stream.serve import ServerConfig
from fada_stream.serve.app import avatar_session_factory


async def collect(track, into: list) -> None:
    while True:
        into.append(await track.recv())


async def next_message(ws, wanted) -> dict:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] != "error", msg
        if wanted(msg):
            return msg


async def test_bundled_sample_through_the_real_session(serving, client):
    config = ServerConfig(device="cpu")
    async with serving(config, avatar_session_factory(config)) as server:
        assert (await client.connect(server.url)).status == 200
        async with ws_connect(f"{server.ws_url}/ws/{client.session_id}") as ws:
            hello = json.loads(await ws.recv())
            assert hello["fps"] == 25 and hello["samples"], "no bundled samples in fada_stream/assets/samples"
            assert set(hello["guidance"]) == {"s_ref", "s_audio", "audio_boost"}
            while not {"audio", "video"} <= set(client.tracks):
                await asyncio.sleep(0.05)
            video, audio = [], []
            tasks = [asyncio.create_task(collect(client.tracks[k], out)) for k, out in (("video", video), ("audio", audio))]
            while len(audio) < 10:
                await asyncio.sleep(0.02)
            await ws.send(json.dumps({"type": "sample", "name": hello["samples"][0]}))
            await next_message(ws, lambda m: m.get("name") == "playback_started")
            start = len(audio)
            await asyncio.sleep(0.8)
            await ws.send(json.dumps({"type": "interrupt"}))
            finished = await next_message(ws, lambda m: m.get("name") == "playback_finished")
            stats = await next_message(ws, lambda m: m["type"] == "stats")
            for t in tasks:
                t.cancel()
    assert finished["interrupted"] is True
    assert {"fps", "rtf", "window_ms_p50", "window_ms_p95", "outbound_fps"} <= set(stats)
    pts = [f.pts for f in video]
    assert len(pts) > 10 and all(b > a for a, b in zip(pts, pts[1:]))
    pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in audio[start:]]).astype(np.float64)  # (n,)
    assert np.sqrt(np.mean(pcm**2)) > 100  # the sample is heard
    quiet = np.concatenate([f.to_ndarray().reshape(-1) for f in audio[:start]]).astype(np.float64)
    assert np.sqrt(np.mean(quiet**2)) < 100  # idle before it
