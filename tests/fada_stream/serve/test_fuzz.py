"""Hypothesis against the signaling and control inputs: whatever arrives, a 4xx or an error message, never a 5xx,
a crash or a closed control socket. Sync tests that drive one server on their own loop, so examples share it."""
from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fada_stream.serve import ServerConfig, control
from fada_stream.serve.app import STATE

# derandomize: CI sees the same examples every run (a fuzzer that flakes blocks landing); widen by hand with
# HYPOTHESIS settings when hunting.
SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_subnormal=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


class Live:
    """A server (FakeSession) on a private loop, an HTTP client, and a real offer's SDP to mutate."""

    def __init__(self, serving) -> None:
        self.loop = asyncio.new_event_loop()
        self._serving = serving(ServerConfig(max_sessions=1000))
        self.server = self.run(self._serving.__aenter__())
        self.http = self.run(self._client())
        self.sdp_lines = self.run(self._offer_sdp()).split("\r\n")

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    async def _client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    async def _offer_sdp(self) -> str:
        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        await pc.close()
        return pc.localDescription.sdp

    async def post(self, body: bytes) -> tuple[int, dict]:
        async with self.http.post(f"{self.server.url}/offer", data=body) as res:
            reply = await res.json(content_type=None)
        for peer in list(self.server.app[STATE].peers.values()):  # an answered offer: free it for the next example
            await peer.close()
        return res.status, reply

    def close(self) -> None:
        self.run(self.http.close())
        self.run(self._serving.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture
def live(serving, samples_dir):
    live = Live(serving)
    yield live
    live.close()


@st.composite
def mutated_sdp(draw, lines: list[str]) -> str:
    """A real offer with lines dropped, repeated, rewritten or cut short: what a buggy or hostile client sends."""
    lines = list(lines)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "repeat", "replace", "retype", "number"]))
        if op == "drop":
            del lines[i]
        elif op == "repeat":
            lines.insert(i, lines[i])
        elif op == "replace":
            lines[i] = draw(st.text(max_size=60))
        elif op == "retype":
            lines[i] = draw(st.sampled_from("vosctmabkiu")) + lines[i][1:]
        else:
            lines[i] = " ".join(str(draw(st.integers(-2**63, 2**64))) if w.isdigit() else w for w in lines[i].split(" "))
    sdp = "\r\n".join(lines)
    return sdp[: draw(st.integers(0, len(sdp)))] if draw(st.booleans()) else sdp


def check_refusal(status: int, reply: dict) -> None:
    assert status < 500, reply
    if status != 200:
        assert 400 <= status < 500 and isinstance(reply.get("error"), str) and reply["error"], reply


def test_offer_bodies_never_get_a_5xx(live):
    @SETTINGS
    @given(st.one_of(
        st.binary(max_size=2000),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"sdp": st.text(max_size=300), "type": st.sampled_from(["offer", "answer", "rollback", ""])})
        .map(lambda v: json.dumps(v).encode()),
    ))
    def check(body):
        check_refusal(*live.run(live.post(body)))

    check()
    assert live.server.app[STATE].reserved == 0


def test_mutated_sdp_offers_never_get_a_5xx(live):
    @SETTINGS
    @given(mutated_sdp(live.sdp_lines))
    def check(sdp):
        check_refusal(*live.run(live.post(json.dumps({"sdp": sdp, "type": "offer"}).encode())))

    check()
    assert live.run(live.post(json.dumps({"sdp": "\r\n".join(live.sdp_lines), "type": "offer"}).encode()))[0] == 200
    state = live.server.app[STATE]
    assert state.peers == {} and state.reserved == 0 and all(s.closed for s in live.server.sessions)


control_messages = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.builds(lambda kind, fields: json.dumps({"type": kind, **fields}),
              st.sampled_from(["interrupt", "guidance", "reference", "sample", "audio", "mirror", "other"]),
              st.dictionaries(st.sampled_from(["s_ref", "s_audio", "audio_boost", "image", "name", "data", "enabled", "x"]),
                              json_values | st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
                              max_size=3)),
)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(control_messages)
def test_parse_command_returns_a_command_or_a_control_error(text):
    try:
        command = control.parse_command(text)
    except control.ControlError as e:
        assert str(e)
    else:
        assert isinstance(command, (control.Interrupt, control.Guidance, control.Reference, control.Sample,
                                    control.Audio, control.Mirror))


def test_control_socket_answers_every_message_and_stays_open(live):
    async def open_socket():
        status, answer = await live.post(b"")  # a refused offer: the server is up
        assert status == 400
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with live.http.post(f"{live.server.url}/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as res:
            session_id = (await res.json())["session_id"]
        ws = await live.http.ws_connect(f"{live.server.url}/ws/{session_id}")
        assert (await ws.receive_json())["type"] == "hello"
        return pc, ws

    async def exchange(ws, text: str) -> dict:
        await ws.send_str(text)
        while True:
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg  # never closed on the client
            reply = json.loads(msg.data)
            if reply["type"] in ("ack", "error"):
                return reply

    pc, ws = live.run(open_socket())

    @SETTINGS
    @given(control_messages)
    def check(text):
        reply = live.run(exchange(ws, text))
        assert reply["type"] == "ack" or reply["message"]

    check()
    assert live.run(exchange(ws, '{"type": "guidance", "s_ref": 1.5}'))["type"] == "ack"
    live.run(ws.close())
    live.run(pc.close())
