"""A long stream over WebRTC with the real session holds steady: frame rate, memory, and audio against video.

Bounded in CI (FADA_STREAM_SOAK_S, default 90 s); the 10-minute figure in docs/reliability.md comes from
`FADA_STREAM_SOAK_S=600 pytest -q -s tests/fada_stream/serve/test_soak.py`.
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics

import pytest
from websockets.asyncio.client import connect as ws_connect

from fada_stream.serve import ServerConfig
from fada_stream.serve.app import avatar_session_factory

SOAK_S = float(os.environ.get("FADA_STREAM_SOAK_S", "90"))
BUCKET_S = 5.0
WARMUP_S = 50.0  # allocators, codec state and caches settle first (RSS flat from ~50 s on, measured)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def collect(track, into: list, loop) -> None:
    while True:
        frame = await track.recv()
        into.append((loop.time(), float(frame.pts * frame.time_base)))


async def drain(ws) -> None:
    async for message in ws:
        assert json.loads(message)["type"] != "error", message


def lag(frames: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Median of arrival time - media time over the frames that arrived in [lo, hi)."""
    return statistics.median(a - p for a, p in frames if lo <= a < hi)


@pytest.mark.slow
async def test_long_stream_keeps_flowing_memory_and_av_alignment(serving, client):
    config = ServerConfig(device="cpu")
    loop = asyncio.get_running_loop()
    async with serving(config, avatar_session_factory(config)) as server:
        assert (await client.connect(server.url)).status == 200
        async with ws_connect(f"{server.ws_url}/ws/{client.session_id}") as ws:
            hello = json.loads(await ws.recv())
            while not {"audio", "video"} <= set(client.tracks):
                await asyncio.sleep(0.05)
            video, audio, rss = [], [], []
            tasks = [asyncio.create_task(collect(client.tracks[k], out, loop)) for k, out in (("video", video), ("audio", audio))]
            tasks.append(asyncio.create_task(drain(ws)))  # stats arrive every second; unread, they would stall the socket
            start = loop.time()
            samples = hello["samples"]
            spoken = 0
            while (now := loop.time()) - start < SOAK_S:
                # Talk half the time: a bundled sample every ~4 s, idle frames between.
                if now - start >= 4.0 * spoken:
                    await ws.send(json.dumps({"type": "sample", "name": samples[spoken % len(samples)]}))
                    spoken += 1
                rss.append((now - start, rss_mb()))
                await asyncio.sleep(1.0)
            for t in tasks:
                t.cancel()
    t0 = video[0][0]
    buckets = [(lo, lo + BUCKET_S) for lo in [t0 + i * BUCKET_S for i in range(int((video[-1][0] - t0) // BUCKET_S))]]
    fps = [sum(lo <= a < hi for a, _ in video) / BUCKET_S for lo, hi in buckets]
    offsets = [lag(video, lo, hi) - lag(audio, lo, hi) for lo, hi in buckets]  # the video's lag behind the audio
    settled = [m for t, m in rss if t >= WARMUP_S]
    first, last = statistics.mean(settled[: max(1, len(settled) // 3)]), statistics.mean(settled[-max(1, len(settled) // 3):])
    print(f"\nsoak {SOAK_S:.0f} s: fps per {BUCKET_S:.0f} s min {min(fps):.1f} median {statistics.median(fps):.1f}; "
          f"A/V offset drift {1000 * (offsets[-1] - offsets[0]):+.1f} ms (range {1000 * (max(offsets) - min(offsets)):.1f} ms); "
          f"RSS {first:.0f} -> {last:.0f} MB ({100 * (last / first - 1):+.1f} %)")
    print("RSS MB every 10 s:", [round(m) for t, m in rss][::10])
    # Behaviour, not speed: how many frames a loaded 2-core runner sustains varies from run to run, so the
    # figures above are printed and the assertions say the stream never stops and its media clock only moves forward.
    assert min(fps) > 0, fps  # frames arrive in every bucket: no stall of a bucket or longer
    steps = [round((b - a) * 25) for (_, a), (_, b) in zip(video, video[1:])]
    assert all(s >= 1 for s in steps), sorted(set(steps))  # media time only moves forward
    assert abs(offsets[-1] - offsets[0]) <= 0.040, offsets  # within one frame of where it started
    assert abs(last / first - 1) <= 0.05, (first, last)
