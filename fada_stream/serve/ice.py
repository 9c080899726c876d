"""Keep WebRTC media on loopback when the server itself is bound to a loopback address.

aioice gathers host candidates from every interface except 127.0.0.1, so a server bound to
127.0.0.1 would still offer (and a local browser would still use) LAN addresses: media would leave
the loopback interface the HTTP side promised to stay on, and on machines without a LAN address
there would be no candidate at all. `loopback_only()` swaps aioice's address lookup for one that
returns 127.0.0.1 while the server runs, and `rtc_configuration()` drops STUN servers, which could
only add server-reflexive candidates for a public address.

The lookup is a module global of aioice, so the swap is process-wide: it is reference counted
(several servers in one process, as in tests) and undone when the last one stops.
"""
from __future__ import annotations

import contextlib
import ipaddress
from typing import Callable, Iterator

import aioice.ice
from aiortc import RTCConfiguration

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}

_pins = 0
_original: Callable[..., list[str]] | None = None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for wildcards (0.0.0.0, ::, "") and other names."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _loopback_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
    # 127.0.0.1 even when only IPv6 is asked for: aiortc always asks for both, and an IPv6-only
    # loopback candidate would not pair with a browser's IPv4 loopback candidate.
    return ["127.0.0.1"]


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Within this block, aioice gathers only the 127.0.0.1 host candidate."""
    global _pins, _original
    if _pins == 0:
        _original = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = _loopback_addresses
    _pins += 1
    try:
        yield
    finally:
        _pins -= 1
        if _pins == 0:
            aioice.ice.get_host_addresses = _original
            _original = None


def rtc_configuration(loopback: bool) -> RTCConfiguration:
    """No STUN on loopback; otherwise aiortc's default (a public STUN server for a reflexive candidate)."""
    return RTCConfiguration(iceServers=[]) if loopback else RTCConfiguration()
