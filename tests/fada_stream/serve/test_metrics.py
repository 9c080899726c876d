"""GET /metrics is valid Prometheus text with the documented families; totals survive a session's close."""
from __future__ import annotations

import asyncio
import re

import aiohttp

from fada_stream.serve import ServerConfig
from fada_stream.serve.app import STATE

# The text format 0.0.4: comment lines, then `name{label="v",...} value`.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*",?)*\})? (\S+)$')


def parse(text: str) -> dict[str, dict[str, float]]:
    """name -> {labels: value}; asserts every line is well formed and every sample's family is typed."""
    typed, out = set(), {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge") and name not in typed
            typed.add(name)
        elif not line.startswith("# HELP "):
            m = SAMPLE.match(line)
            assert m, line
            assert m[1] in typed, line
            out.setdefault(m[1], {})[m[2] or ""] = float(m[3])
    return out


async def scrape(url: str, **kw) -> dict[str, dict[str, float]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics", **kw) as res:
        assert res.status == 200 and res.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await res.text())


async def test_metrics_count_sessions_frames_and_refusals(serving, make_client, wait_for):
    async with serving(ServerConfig(max_sessions=1)) as server:
        idle = await scrape(server.url)
        assert idle["fada_sessions_active"] == {"": 0} and idle["fada_sessions_max"] == {"": 1}
        assert idle["fada_sessions_refused_total"]['{reason="capacity"}'] == 0

        async with aiohttp.ClientSession() as http, http.post(f"{server.url}/offer", data=b"{") as res:
            assert res.status == 400
        client = make_client()
        assert (await client.connect(server.url)).status == 200
        assert (await make_client().connect(server.url)).status == 503
        await wait_for(lambda: "video" in client.tracks)
        for _ in range(5):
            await asyncio.wait_for(client.tracks["video"].recv(), 10)

        live = await scrape(server.url)
        assert live["fada_sessions_active"] == {"": 1} and live["fada_sessions_started_total"] == {"": 1}
        refused = live["fada_sessions_refused_total"]
        assert refused['{reason="capacity"}'] == 1 and refused['{reason="bad_request"}'] == 1
        assert live["fada_frames_generated_total"][""] >= 5 and live["fada_video_frames_sent_total"][""] >= 5
        assert "fada_video_frames_dropped_total" in live and "fada_stalls_total" in live
        ordinal = '{session="1"}'  # the ordinal, not the session id (which opens the control socket)
        assert live["fada_session_realtime_factor"] == {ordinal: 0.5}
        assert live["fada_session_fps"] == {ordinal: 25.0}
        assert set(live["fada_session_queued_audio_seconds"]) == set(live["fada_session_video_queue_frames"]) == {ordinal}

        await client.close()
        await wait_for(lambda: not server.app[STATE].peers)
        after = await scrape(server.url)
        assert after["fada_sessions_active"] == {"": 0} and "fada_session_fps" not in after
        # Totals are counters: the closed session's frames stay counted.
        assert after["fada_frames_generated_total"][""] >= live["fada_frames_generated_total"][""]
        assert after["fada_video_frames_sent_total"][""] >= live["fada_video_frames_sent_total"][""]


async def test_metrics_need_the_token_health_does_not(serving):
    async with serving(ServerConfig(token="s3cret")) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/metrics") as res:
                assert res.status == 401
            async with http.get(f"{server.url}/healthz") as res:
                assert res.status == 200 and (await res.json())["accepting"] is True
        assert "fada_sessions_active" in await scrape(server.url, headers={"Authorization": "Bearer s3cret"})
