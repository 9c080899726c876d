"""HTTP surface: static demo, health, the frozen startup heap, bad offers, unknown sessions, binding rules, the CLI's refusals."""
from __future__ import annotations

import gc
import json

import aiohttp
import pytest

from fada_stream.serve import ConfigError, ServerConfig, create_app
from fada_stream.serve.__main__ import main
from fada_stream.serve.app import MAX_OFFER_BYTES, STATE


async def test_serves_the_demo_and_health(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/") as res:
            assert res.status == 200 and "<video" in await res.text()
        for name in ("app.js", "style.css"):
            async with http.get(f"{server.url}/static/{name}") as res:
                assert res.status == 200
        for path in ("/healthz", "/health"):  # /health: the name before /healthz
            async with http.get(f"{server.url}{path}") as res:
                body = await res.json()
                assert body.pop("uptime_s") >= 0
                assert body == {"status": "ok", "sessions": 0, "max_sessions": 2, "accepting": True}


async def test_while_serving_the_startup_heap_is_left_out_of_garbage_collection(serving):
    """A full collection walking torch's ~200k objects would hold the event loop for frames at a time."""
    alive = [object() for _ in range(10)], {"a": []}  # tracked, long-lived containers
    assert gc.get_freeze_count() == 0
    async with serving():
        assert gc.get_freeze_count() > 1000
        assert not any(o is alive for o in gc.get_objects())  # frozen objects are in no generation
    assert gc.get_freeze_count() == 0 and any(o is alive for o in gc.get_objects())  # handed back at shutdown


@pytest.mark.parametrize("body", [
    b"not json",
    b"\xff\xfe",
    b"[1, 2]",
    json.dumps({"sdp": 5, "type": "offer"}).encode(),
    json.dumps({"sdp": "v=0", "type": "answer"}).encode(),
    json.dumps({"sdp": "garbage\r\nm=nonsense\r\n", "type": "offer"}).encode(),
    json.dumps({"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "type": "offer"}).encode(),  # no video
])
async def test_bad_offers_get_400_with_a_json_error(server, body):
    async with aiohttp.ClientSession() as http, http.post(f"{server.url}/offer", data=body) as res:
        assert res.status == 400
        assert (await res.json())["error"]
    assert server.app[STATE].peers == {} and server.app[STATE].reserved == 0
    assert server.sessions == [] or all(s.closed for s in server.sessions)


async def test_oversized_offer_is_refused(server):
    body = json.dumps({"sdp": "x" * MAX_OFFER_BYTES, "type": "offer"})
    async with aiohttp.ClientSession() as http, http.post(f"{server.url}/offer", data=body) as res:
        assert res.status == 413


async def test_unknown_session_websocket_is_404(server):
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/ws/nope") as res:
        assert res.status == 404


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_non_loopback_bind_needs_a_token(host):
    with pytest.raises(ConfigError, match="token"):
        create_app(ServerConfig(host=host))
    create_app(ServerConfig(host=host, token="t"))


def test_cli_refuses_a_public_bind_without_token(monkeypatch, capsys):
    monkeypatch.delenv("FADA_STREAM_TOKEN", raising=False)
    assert main(["--webrtc", "--host", "0.0.0.0"]) == 2
    assert "without a token" in capsys.readouterr().err
    assert main(["--webrtc", "--reference", "/no/such/face.png"]) == 2
    with pytest.raises(SystemExit):
        main([])  # no transport chosen


def test_cli_loads_the_model_before_serving_and_reports_a_bad_one(tmp_path, capsys):
    assert main(["--webrtc", "--checkpoint", str(tmp_path), "--backend", "torch"]) == 2  # a folder without a model
    assert "teacher.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--webrtc", "--backend", "tensorrt"])
