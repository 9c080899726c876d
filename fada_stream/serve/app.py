"""The aiohttp application: signaling, the control websocket, the static browser demo, health.

    GET  /                 web_client/index.html (its files under /static/)
    POST /offer            {"sdp", "type": "offer"} -> {"sdp", "type": "answer", "session_id"}
    GET  /ws/{session_id}  the control websocket of that session (see control.py)
    GET  /health           {"status": "ok", "sessions": n, "max_sessions": m}

Everything is on one port through aiohttp, rather than a second port for the `websockets`
library: one listener to bind, secure and proxy, and the token check is one function for both.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription

import fada_stream
from fada_stream.serve import control, ice
from fada_stream.serve.peer import Peer, Session
from fada_stream.serve.tracks import AUDIO_RATE
from fada_stream.session import AvatarSession

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024  # an SDP offer is a few KB; this is the body limit for every route


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"  # loopback unless asked: the demo has no accounts, only an optional token
    port: int = 8080
    reference: str | None = None  # face image for every new session; None = the bundled face
    checkpoint: str | None = None  # None = the bundled checkpoint
    device: str = "auto"
    token: str | None = None  # required by /offer and /ws when set; mandatory off loopback
    max_sessions: int = 4  # the tiny model is real-time for about this many sessions on 2 CPU cores


class ConfigError(ValueError):
    """A server configuration that must not start."""


STATE = web.AppKey("state", "ServerState")


@dataclass
class ServerState:
    config: ServerConfig
    new_session: Callable[[], Session]
    peers: dict[str, Peer]
    reserved: int = 0  # slots held by offers still being answered, so concurrent offers respect the cap

    @property
    def loopback(self) -> bool:
        return ice.is_loopback(self.config.host)


def web_client_dir() -> Path:
    """The browser demo: inside the installed package, or beside it in a source checkout."""
    package = Path(fada_stream.__file__).parent
    for candidate in (package / "web_client", package.parent / "web_client"):
        if (candidate / "index.html").is_file():
            return candidate
    raise FileNotFoundError(f"web_client/index.html not found in {package} or {package.parent}")


def _json_error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}), content_type="application/json")


def _authorized(request: web.Request, token: str | None) -> bool:
    if token is None:
        return True
    header = request.headers.get("Authorization", "")
    given = header[len("Bearer ") :] if header.startswith("Bearer ") else request.query.get("token", "")
    return hmac.compare_digest(given.encode(), token.encode())


def _check_token(request: web.Request) -> ServerState:
    state = request.app[STATE]
    if not _authorized(request, state.config.token):
        raise _json_error(web.HTTPUnauthorized, "missing or wrong token")
    return state


def _parse_offer(body: bytes) -> RTCSessionDescription:
    try:
        msg = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise _json_error(web.HTTPBadRequest, "body is not valid JSON") from e
    if not isinstance(msg, dict) or not isinstance(msg.get("sdp"), str) or msg.get("type") != "offer":
        raise _json_error(web.HTTPBadRequest, 'expected {"sdp": "<offer sdp>", "type": "offer"}')
    return RTCSessionDescription(sdp=msg["sdp"], type="offer")


async def offer(request: web.Request) -> web.Response:
    state = _check_token(request)
    if len(state.peers) + state.reserved >= state.config.max_sessions:
        raise _json_error(web.HTTPServiceUnavailable, f"all {state.config.max_sessions} sessions are in use")
    description = _parse_offer(await request.read())
    state.reserved += 1
    pc = RTCPeerConnection(ice.rtc_configuration(state.loopback))
    session, peer = None, None
    try:
        try:
            await pc.setRemoteDescription(description)
        except Exception as e:  # aiortc's SDP parser raises many types on garbage
            raise _json_error(web.HTTPBadRequest, f"invalid SDP offer: {e}") from e
        if not any(t.kind == "video" for t in pc.getTransceivers()):
            raise _json_error(web.HTTPBadRequest, "the offer must receive video (add a video transceiver)")
        session = state.new_session()
        try:
            await session.start()
        except Exception as e:
            log.exception("could not start a session")
            raise _json_error(web.HTTPInternalServerError, f"could not start a session: {e}") from e
        peer = Peer(pc, session, on_close=lambda p: state.peers.pop(p.id, None))
        state.peers[peer.id] = peer
        peer.attach()
        await pc.setLocalDescription(await pc.createAnswer())
    except BaseException:
        if peer is not None:
            await peer.close()
        else:
            await pc.close()
            if session is not None:
                await session.aclose()
        raise
    finally:
        state.reserved -= 1
    log.info("peer %s: answered (%d/%d sessions)", peer.id, len(state.peers), state.config.max_sessions)
    return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "session_id": peer.id})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    state = _check_token(request)
    peer = state.peers.get(request.match_info["session_id"])
    if peer is None:
        raise _json_error(web.HTTPNotFound, "no such session")
    if peer.websocket is not None:
        raise _json_error(web.HTTPConflict, "this session already has a control socket")
    ws = web.WebSocketResponse(max_msg_size=control.MAX_MESSAGE_BYTES, heartbeat=20.0)
    await ws.prepare(request)
    peer.websocket = ws
    try:
        await control.run_control(ws, peer)
    finally:
        peer.websocket = None
        # Media without a control socket is fine (a plain viewer); once both are gone, nothing is left.
        if peer.pc.connectionState in ("closed", "failed"):
            await peer.close()
    return ws


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"status": "ok", "sessions": len(state.peers), "max_sessions": state.config.max_sessions})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(web_client_dir() / "index.html")


async def _pin_ice(app: web.Application) -> Any:
    if app[STATE].loopback:
        with ice.loopback_only():
            yield
    else:
        yield


async def _close_peers(app: web.Application) -> None:
    peers = list(app[STATE].peers.values())
    if peers:
        log.info("closing %d session(s)", len(peers))
    await asyncio.gather(*(p.close() for p in peers))


def avatar_session_factory(config: ServerConfig) -> Callable[[], Session]:
    def new_session() -> Session:
        return AvatarSession(reference=config.reference, checkpoint=config.checkpoint, device=config.device,
                             paced=True, output_sample_rate=AUDIO_RATE)

    return new_session


def create_app(config: ServerConfig, new_session: Callable[[], Session] | None = None) -> web.Application:
    """The server as an aiohttp app; `new_session` builds an unstarted session (default: AvatarSession)."""
    if not ice.is_loopback(config.host) and not config.token:
        raise ConfigError(f"refusing to serve on {config.host!r} without a token: anyone who can reach it could "
                          "open sessions. Pass --token (or set FADA_STREAM_TOKEN), or bind 127.0.0.1.")
    if config.max_sessions < 1:
        raise ConfigError("max_sessions must be at least 1")
    app = web.Application(client_max_size=MAX_OFFER_BYTES)
    app[STATE] = ServerState(config, new_session or avatar_session_factory(config), {})
    app.cleanup_ctx.append(_pin_ice)
    app.on_shutdown.append(_close_peers)
    app.router.add_get("/", index)
    app.router.add_static("/static/", web_client_dir())
    app.router.add_post("/offer", offer)
    app.router.add_get("/ws/{session_id}", websocket)
    app.router.add_get("/health", health)
    return app
