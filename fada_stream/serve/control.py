"""The control websocket: strict parsing of the browser's JSON messages and the per-peer message loop.

client -> server                                  server -> client
  {"type": "interrupt"}                             {"type": "hello", "samples": [...], "guidance": {...}, "fps": 25}
  {"type": "guidance", "s_ref": f, "s_audio": f,    {"type": "stats", ...}           once a second
   "audio_boost": f}  (any of the three)
  {"type": "reference", "image": "<base64>"}        {"type": "event", "name": "playback_started" | "playback_finished", ...}
  {"type": "sample", "name": "<listed sample>"}     {"type": "error", "message": "..."}
  {"type": "audio", "data": "<base64 file>"}        {"type": "ack", "of": "<type>", ...} after each command that succeeded
  {"type": "mirror", "enabled": bool}

A message that breaks these rules gets an error reply; nothing the client sends can end the
session except closing the socket. Messages over MAX_MESSAGE_BYTES close it with 1009.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from aiohttp import WSMsgType, web

from fada_stream.serve.media import MAX_UPLOAD_BYTES
from fada_stream.session import SessionClosed

if TYPE_CHECKING:
    from fada_stream.serve.peer import Peer

log = logging.getLogger(__name__)

# An upload of MAX_UPLOAD_BYTES as base64 plus the JSON around it.
MAX_MESSAGE_BYTES = MAX_UPLOAD_BYTES * 4 // 3 + 4096
STATS_PERIOD_S = 1.0


class ControlError(ValueError):
    """A client message that is not one of the documented commands."""


@dataclass(frozen=True)
class Interrupt:
    pass


@dataclass(frozen=True)
class Guidance:
    s_ref: float | None
    s_audio: float | None
    audio_boost: float | None = None


@dataclass(frozen=True)
class Reference:
    image: bytes


@dataclass(frozen=True)
class Sample:
    name: str


@dataclass(frozen=True)
class Audio:
    data: bytes


@dataclass(frozen=True)
class Mirror:
    enabled: bool


Command = Union[Interrupt, Guidance, Reference, Sample, Audio, Mirror]

# type -> (required fields, optional fields)
_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "interrupt": (set(), set()),
    "guidance": (set(), {"s_ref", "s_audio", "audio_boost"}),
    "reference": ({"image"}, set()),
    "sample": ({"name"}, set()),
    "audio": ({"data"}, set()),
    "mirror": ({"enabled"}, set()),
}


def _number(msg: dict[str, Any], key: str) -> float | None:
    v = msg.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ControlError(f"{key} must be a finite number")
    return float(v)


def _base64(msg: dict[str, Any], key: str) -> bytes:
    v = msg[key]
    if not isinstance(v, str):
        raise ControlError(f"{key} must be a base64 string")
    if "," in v[:100]:  # a data: URL, as FileReader.readAsDataURL gives
        v = v.split(",", 1)[1]
    try:
        data = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ControlError(f"{key} is not valid base64") from e
    if not data:
        raise ControlError(f"{key} is empty")
    return data


def parse_command(text: str) -> Command:
    """One client message (JSON text) -> a command; ControlError if it is anything else."""
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ControlError("message is not valid JSON") from e
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ControlError('message must be a JSON object with a string "type"')
    kind = msg["type"]
    if kind not in _FIELDS:
        raise ControlError(f"unknown message type {kind!r}; expected one of {sorted(_FIELDS)}")
    required, optional = _FIELDS[kind]
    keys = set(msg) - {"type"}
    if missing := required - keys:
        raise ControlError(f"{kind}: missing {sorted(missing)}")
    if extra := keys - required - optional:
        raise ControlError(f"{kind}: unexpected {sorted(extra)}")
    if kind == "interrupt":
        return Interrupt()
    if kind == "guidance":
        g = Guidance(_number(msg, "s_ref"), _number(msg, "s_audio"), _number(msg, "audio_boost"))
        if g.s_ref is None and g.s_audio is None and g.audio_boost is None:
            raise ControlError("guidance: give s_ref, s_audio, audio_boost or several")
        return g
    if kind == "reference":
        return Reference(_base64(msg, "image"))
    if kind == "sample":
        if not isinstance(msg["name"], str):
            raise ControlError("sample: name must be a string")
        return Sample(msg["name"])
    if kind == "audio":
        return Audio(_base64(msg, "data"))
    if not isinstance(msg["enabled"], bool):
        raise ControlError("mirror: enabled must be true or false")
    return Mirror(msg["enabled"])


def _json(msg: dict[str, Any]) -> str:
    # session.stats() may hold numpy scalars
    return json.dumps(msg, default=lambda v: v.item() if hasattr(v, "item") else str(v))


class _Sender:
    """Serialises sends: replies and the outbound loop share one socket."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws, self._lock = ws, asyncio.Lock()

    async def __call__(self, msg: dict[str, Any]) -> None:
        async with self._lock:
            await self.ws.send_str(_json(msg))


async def _send_outbound(ws: web.WebSocketResponse, send: _Sender, peer: Peer) -> None:
    """Events as they happen, stats once a second."""
    loop = asyncio.get_running_loop()
    next_stats = loop.time()
    while not ws.closed:
        timeout = max(0.0, next_stats - loop.time())
        try:
            msg = await asyncio.wait_for(peer.events.get(), timeout)
        except asyncio.TimeoutError:
            msg = peer.stats_message()
            next_stats += STATS_PERIOD_S
        await send(msg)


async def run_control(ws: web.WebSocketResponse, peer: Peer) -> None:
    """Serve one prepared websocket for `peer` until either side closes it."""
    send = _Sender(ws)
    await send(peer.hello_message())
    sender = asyncio.create_task(_send_outbound(ws, send, peer))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    reply = await peer.handle(parse_command(msg.data))
                except ValueError as e:  # ControlError, ReferenceError, AudioInputError, bad guidance
                    reply = {"type": "error", "message": str(e)}
                except SessionClosed as e:  # the model failed; the peer is closing this socket
                    await send({"type": "error", "message": f"session closed: {e}"})
                    break
                await send(reply)
            elif msg.type == WSMsgType.BINARY:
                await send({"type": "error", "message": "send JSON text messages, not binary"})
            elif msg.type == WSMsgType.ERROR:
                log.info("control socket of peer #%d: %s", peer.ordinal, ws.exception())
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
