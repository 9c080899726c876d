"""Who may open a session: the server's secret, expiring tokens signed with it, and the browser's Origin.

The operator starts the server with a secret (`--token`). Clients present either the secret itself
or a token minted from it (`python -m fada_stream.serve --mint-token SECONDS`):

    v1.<expiry, unix seconds>.<hex HMAC-SHA256(secret, "v1.<expiry>")>

so a token handed to a user stops working at its expiry without the server keeping a list, and
rotating the secret revokes every token at once. Both forms are compared in constant time.

Origin: a browser sends the page's origin with every websocket handshake and cross-site POST. A
request carrying one is accepted only from the server's own origin or an `--allow-origin` entry, so
another site open in the user's browser cannot spend session slots (a text/plain POST to /offer
needs no CORS preflight) or drive a control socket. Requests without an Origin (non-browser
clients) are left to the token.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

from aiohttp import web

PREFIX = "v1"


def _signature(secret: str, expiry: int) -> str:
    return hmac.new(secret.encode(), f"{PREFIX}.{expiry}".encode(), hashlib.sha256).hexdigest()


def mint_token(secret: str, ttl_s: float, now: float | None = None) -> str:
    """A token that `token_ok(_, secret)` accepts for `ttl_s` seconds from `now` (default: the wall clock)."""
    expiry = int((time.time() if now is None else now) + ttl_s)
    return f"{PREFIX}.{expiry}.{_signature(secret, expiry)}"


def token_ok(given: str, secret: str | None, now: float | None = None) -> bool:
    """True without a secret; else for the secret itself or an unexpired token minted from it."""
    if secret is None:
        return True
    if hmac.compare_digest(given.encode(), secret.encode()):
        return True
    parts = given.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not (parts[1].isascii() and parts[1].isdigit()) or len(parts[1]) > 12:
        return False
    expiry = int(parts[1])
    # The signature is checked before the expiry so timing says nothing about which of the two failed.
    valid = hmac.compare_digest(parts[2].encode(), _signature(secret, expiry).encode())
    return valid and (time.time() if now is None else now) < expiry


def request_token(request: web.Request) -> str:
    """`Authorization: Bearer <token>`, else `?token=` (a browser cannot set headers on a websocket)."""
    header = request.headers.get("Authorization", "")
    return header[len("Bearer ") :] if header.startswith("Bearer ") else request.query.get("token", "")


def is_origin(text: str) -> bool:
    """scheme://host[:port] and nothing else, as browsers send it."""
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not (parts.path or parts.query or parts.fragment)


def origin_ok(request: web.Request, allowed: tuple[str, ...]) -> bool:
    """No Origin header, the server's own host, or an exact entry of `allowed` ("https://app.example.com")."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin in allowed:
        return True
    # Same origin by host:port only: behind a TLS-terminating proxy the scheme we see is http while the page's is https.
    return origin != "null" and urlsplit(origin).netloc.lower() == request.host.lower()
