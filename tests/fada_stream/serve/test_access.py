"""Tokens (the secret, or expiring ones signed with it) and the browser Origin guard /offer and the websocket."""
from __future__ import annotations

import json

import aiohttp
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from fada_stream.serve import ConfigError, ServerConfig, create_app
from fada_stream.serve.__main__ import main
from fada_stream.serve.access import mint_token, token_ok

NOW = 1_800_000_000.0


def test_minted_tokens_expire_and_are_bound_to_the_secret():
    token = mint_token("s3cret", 60, now=NOW)
    assert token_ok(token, "s3cret", now=NOW) and token_ok(token, "s3cret", now=NOW + 59)
    assert not token_ok(token, "s3cret", now=NOW + 61)
    assert not token_ok(token, "other secret", now=NOW)  # rotating the secret revokes every token
    prefix, expiry, sig = token.split(".")
    assert not token_ok(f"{prefix}.{int(expiry) + 3600}.{sig}", "s3cret", now=NOW)  # a pushed-back expiry
    assert token_ok("s3cret", "s3cret") and token_ok("anything", None)


@pytest.mark.parametrize("given", ["", "s3cre", "s3cret ", "v1..", "v1.x.y", "v1.²³.ab", "v1.9" * 40, "é", "v1.1.é"])
def test_anything_else_is_refused(given):
    assert not token_ok(given, "s3cret", now=NOW)


def test_cli_mints_a_token_the_server_accepts(monkeypatch, capsys):
    monkeypatch.delenv("FADA_STREAM_TOKEN", raising=False)
    assert main(["--mint-token", "600", "--token", "s3cret"]) == 0
    assert token_ok(capsys.readouterr().out.strip(), "s3cret")
    assert main(["--mint-token", "600"]) == 2  # no secret to sign with
    assert "secret" in capsys.readouterr().err


async def test_expired_or_foreign_tokens_get_401_minted_ones_connect(serving, make_client):
    async with serving(ServerConfig(token="s3cret")) as server:
        expired = mint_token("s3cret", -1)
        foreign = mint_token("another server", 600)
        for token in (expired, foreign):
            assert (await make_client().connect(server.url, headers={"Authorization": f"Bearer {token}"})).status == 401
        client = make_client()
        token = mint_token("s3cret", 600)
        assert (await client.connect(server.url, headers={"Authorization": f"Bearer {token}"})).status == 200
        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(f"{server.ws_url}/ws/{client.session_id}?token={expired}")
        assert refused.value.response.status_code == 401
        async with ws_connect(f"{server.ws_url}/ws/{client.session_id}?token={token}") as ws:
            assert json.loads(await ws.recv())["type"] == "hello"


async def test_websocket_and_offer_check_the_origin(serving, make_client):
    async with serving(ServerConfig(allow_origins=("https://app.example.com",))) as server:
        evil = {"Origin": "https://evil.example"}
        # A cross-site text/plain POST needs no CORS preflight: the Origin check is what stops it.
        async with aiohttp.ClientSession() as http, http.post(f"{server.url}/offer", data=b"{}", headers=evil) as res:
            assert res.status == 403 and "origin" in (await res.json())["error"]
            assert "Access-Control-Allow-Origin" not in res.headers
        client = make_client()
        assert (await client.connect(server.url, headers={"Origin": server.url})).status == 200
        ws_url = f"{server.ws_url}/ws/{client.session_id}"
        for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
            with pytest.raises(InvalidStatus) as refused:
                await ws_connect(ws_url, origin=origin)
            assert refused.value.response.status_code == 403, origin
        for origin in (server.url, "https://app.example.com", None):  # own origin, allowed, a non-browser client
            async with ws_connect(ws_url, origin=origin) as ws:
                assert json.loads(await ws.recv())["type"] == "hello"


async def test_no_route_sends_cors_headers(server):
    async with aiohttp.ClientSession() as http:
        for method, path in (("GET", "/"), ("GET", "/healthz"), ("GET", "/metrics"), ("OPTIONS", "/offer"), ("POST", "/offer")):
            async with http.request(method, f"{server.url}{path}", headers={"Origin": "https://evil.example"}) as res:
                assert not any(h.lower().startswith("access-control-") for h in res.headers), (method, path)


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/", "https://app.example.com/x", "ftp://a"])
def test_allow_origin_entries_must_be_origins(origin):
    with pytest.raises(ConfigError, match="allow-origin"):
        create_app(ServerConfig(allow_origins=(origin,)))
