"""The aiohttp application: signaling, the control websocket, the static browser demo, health, metrics.

    GET  /                 web_client/index.html (its files under /static/)
    POST /offer            {"sdp", "type": "offer"} -> {"sdp", "type": "answer", "session_id"}   token, Origin
    GET  /ws/{session_id}  the control websocket of that session (see control.py)                 token, Origin
    GET  /healthz          {"status": "ok", "sessions", "max_sessions", "accepting", "uptime_s"}  (/health: alias)
    GET  /metrics          Prometheus text (see metrics.py)                                       token

Refusals: 400 a malformed offer, 401 token (access.py), 403 Origin, 413 a body over MAX_OFFER_BYTES,
503 the session cap (before the body is read or a model is touched), with a JSON {"error": ...}.

Everything is on one port through aiohttp, rather than a second port for the `websockets`
library: one listener to bind, secure and proxy, and the token check is one function for both.
"""
from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription, sdp

import fada_stream
from fada_stream.serve import access, control, ice, metrics
from fada_stream.serve.peer import Peer, Session
from fada_stream.serve.tracks import AUDIO_RATE
from fada_stream.session import AvatarSession

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024  # an SDP offer is a few KB; this is the body limit for every route
# aiohttp pings the control socket this often and closes it when no pong comes within half of it;
# the peer then frees its session once media has stopped too (peer.MEDIA_TIMEOUT_S).
HEARTBEAT_S = 5.0
RETRY_AFTER_S = 5  # a 503's hint: sessions come and go on the scale of seconds


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"  # loopback unless asked: the demo has no accounts, only an optional token
    port: int = 8080
    reference: str | None = None  # face image for every new session; None = the bundled face
    checkpoint: str | None = None  # None = the bundled checkpoint
    sampler: str = "auto"  # auto | teacher | student (generator.load_window_model)
    backend: str = "auto"  # auto | torch | onnx (generator.resolve_backend)
    device: str = "auto"
    token: str | None = None  # secret for /offer, /ws and /metrics (itself or tokens minted from it); mandatory off loopback
    allow_origins: tuple[str, ...] = ()  # browser origins besides the server's own, e.g. "https://app.example.com"
    # On 2 CPU cores one teacher session takes ~70% at its live steps (docs/runtime.md); a second one makes the
    # step controller drop both to 1-2 steps; a third would stall. On a GPU raise it.
    max_sessions: int = 2


class ConfigError(ValueError):
    """A server configuration that must not start."""


STATE = web.AppKey("state", "ServerState")


@dataclass
class ServerState:
    config: ServerConfig
    new_session: Callable[[], Session]
    peers: dict[str, Peer]
    reserved: int = 0  # slots held by offers still being answered, so concurrent offers respect the cap
    counters: metrics.Counters = field(default_factory=metrics.Counters)
    ordinals: itertools.count = field(default_factory=lambda: itertools.count(1))

    def retire(self, peer: Peer) -> None:
        """Peer.on_close: free the slot first, whatever reading its last figures does."""
        self.peers.pop(peer.id, None)
        try:
            self.counters.retire(metrics.peer_figures(peer))
        except Exception:
            log.exception("peer #%d: could not read its final figures", peer.ordinal)

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


def _json_error(status: type[web.HTTPException], message: str, headers: dict[str, str] | None = None) -> web.HTTPException:
    return status(text=json.dumps({"error": message}), content_type="application/json", headers=headers)


def _check_access(request: web.Request, browser: bool = True) -> ServerState:
    """403 for a foreign Origin (`browser` routes), 401 for a missing, wrong or expired token."""
    state = request.app[STATE]
    if browser and not access.origin_ok(request, state.config.allow_origins):
        raise _json_error(web.HTTPForbidden, f"origin {request.headers.get('Origin')!r} is not allowed (see --allow-origin)")
    if not access.token_ok(access.request_token(request), state.config.token):
        raise _json_error(web.HTTPUnauthorized, "missing, wrong or expired token")
    return state


def _parse_offer(body: bytes) -> RTCSessionDescription:
    try:
        msg = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise _json_error(web.HTTPBadRequest, "body is not valid JSON") from e
    if not isinstance(msg, dict) or not isinstance(msg.get("sdp"), str) or msg.get("type") != "offer":
        raise _json_error(web.HTTPBadRequest, 'expected {"sdp": "<offer sdp>", "type": "offer"}')
    return RTCSessionDescription(sdp=msg["sdp"], type="offer")


def _check_bundle(text: str) -> None:
    """aiortc gives every bundled section the transport of the group's first mid, and a None one
    (which its answer and close() then trip over) when no section has that mid."""
    parsed = sdp.SessionDescription.parse(text)
    bundle = next((g for g in parsed.group if g.semantic == "BUNDLE"), None)
    if bundle and bundle.items and bundle.items[0] not in {m.rtp.muxId for m in parsed.media}:
        raise ValueError(f"a=group:BUNDLE starts with mid {bundle.items[0]!r}, which no media section has")


_REFUSALS = {401: "unauthorized", 403: "origin", 503: "capacity"}  # any other 4xx: "bad_request"


async def offer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        return await _answer(request, state)
    except web.HTTPException as e:
        if 400 <= e.status < 500 or e.status == 503:  # not a 500: that one is ours
            state.counters.refused[_REFUSALS.get(e.status, "bad_request")] += 1
        raise


async def _answer(request: web.Request, state: ServerState) -> web.Response:
    _check_access(request)
    if len(state.peers) + state.reserved >= state.config.max_sessions:
        raise _json_error(web.HTTPServiceUnavailable, f"all {state.config.max_sessions} sessions are in use",
                          headers={"Retry-After": str(RETRY_AFTER_S)})
    description = _parse_offer(await request.read())
    state.reserved += 1
    pc = RTCPeerConnection(ice.rtc_configuration(state.loopback))
    session, peer = None, None
    try:
        try:
            _check_bundle(description.sdp)
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
        peer = Peer(pc, session, on_close=state.retire, ordinal=next(state.ordinals))
        state.peers[peer.id] = peer
        peer.attach()
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:  # an offer aiortc parsed but cannot answer (no common codec, odd directions)
            raise _json_error(web.HTTPBadRequest, f"cannot answer this offer: {e}") from e
    except BaseException:
        if peer is not None:
            await peer.close()
        else:
            try:
                await pc.close()
            except Exception:  # the client still gets the refusal it earned, not a 500
                log.exception("closing a refused offer's connection failed")
            if session is not None:
                await session.aclose()
        raise
    finally:
        state.reserved -= 1
    state.counters.started += 1
    log.info("peer #%d: answered (%d/%d sessions)", peer.ordinal, len(state.peers), state.config.max_sessions)
    return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "session_id": peer.id})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    state = _check_access(request)
    peer = state.peers.get(request.match_info["session_id"])
    if peer is None:
        raise _json_error(web.HTTPNotFound, "no such session")
    if peer.websocket is not None:
        raise _json_error(web.HTTPConflict, "this session already has a control socket")
    ws = web.WebSocketResponse(max_msg_size=control.MAX_MESSAGE_BYTES, heartbeat=HEARTBEAT_S)
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


async def healthz(request: web.Request) -> web.Response:
    """Open to all, like a load balancer's probe: counts only."""
    state = request.app[STATE]
    return web.json_response(metrics.health(state.counters, len(state.peers), state.config.max_sessions))


async def prometheus(request: web.Request) -> web.Response:
    state = _check_access(request, browser=False)
    text = metrics.prometheus_text(state.counters, list(state.peers.values()), state.config.max_sessions)
    return web.Response(text=text, headers={"Content-Type": metrics.CONTENT_TYPE})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(web_client_dir() / "index.html")


async def _pin_ice(app: web.Application) -> Any:
    if app[STATE].loopback:
        with ice.loopback_only():
            yield
    else:
        yield


async def _freeze_heap(app: web.Application) -> Any:
    """While serving, leave what was alive at startup out of every garbage collection.

    torch, aiortc and the rest make ~200k long-lived objects; a full (generation 2) collection walks
    them all and holds the event loop for ~120 ms on this 2-core CPU, three frames at 25 fps, which
    a burst of requests (a flood of refused offers, say) is enough to set off. Frozen, they are never
    walked again and a full collection sees only what came after. Garbage goes first, so nothing
    collectable is frozen; at shutdown they are handed back, for a process that goes on without us."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


async def _close_peers(app: web.Application) -> None:
    peers = list(app[STATE].peers.values())
    if peers:
        log.info("closing %d session(s)", len(peers))
    await asyncio.gather(*(p.close() for p in peers))


def avatar_session_factory(config: ServerConfig) -> Callable[[], Session]:
    def new_session() -> Session:
        return AvatarSession(reference=config.reference, checkpoint=config.checkpoint, device=config.device,
                             sampler=config.sampler, backend=config.backend, paced=True, output_sample_rate=AUDIO_RATE)

    return new_session


def create_app(config: ServerConfig, new_session: Callable[[], Session] | None = None) -> web.Application:
    """The server as an aiohttp app; `new_session` builds an unstarted session (default: AvatarSession)."""
    if not ice.is_loopback(config.host) and not config.token:
        raise ConfigError(f"refusing to serve on {config.host!r} without a token: anyone who can reach it could "
                          "open sessions. Pass --token (or set FADA_STREAM_TOKEN), or bind 127.0.0.1.")
    if config.max_sessions < 1:
        raise ConfigError("max_sessions must be at least 1")
    for origin in config.allow_origins:
        if not access.is_origin(origin):
            raise ConfigError(f"--allow-origin {origin!r}: expected scheme://host[:port], e.g. https://app.example.com")
    app = web.Application(client_max_size=MAX_OFFER_BYTES)
    app[STATE] = ServerState(config, new_session or avatar_session_factory(config), {})
    app.cleanup_ctx.append(_pin_ice)
    app.cleanup_ctx.append(_freeze_heap)
    app.on_shutdown.append(_close_peers)
    app.router.add_get("/", index)
    app.router.add_static("/static/", web_client_dir())
    app.router.add_post("/offer", offer)
    app.router.add_get("/ws/{session_id}", websocket)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/health", healthz)
    app.router.add_get("/metrics", prometheus)
    return app
