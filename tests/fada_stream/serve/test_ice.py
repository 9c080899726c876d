"""Loopback pinning: what counts as loopback, and the aioice patch is scoped and nests."""
import aioice.ice
import pytest

from fada_stream.serve import ice


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("10.0.0.1", False), ("example.com", False),
])
def test_is_loopback(host, loopback):
    assert ice.is_loopback(host) is loopback


def test_loopback_only_is_scoped_and_nests():
    original = aioice.ice.get_host_addresses
    with ice.loopback_only():
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
        with ice.loopback_only():
            pass
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses is original


def test_no_stun_on_loopback():
    assert ice.rtc_configuration(loopback=True).iceServers == []
    assert ice.rtc_configuration(loopback=False).iceServers is None  # aiortc's default STUN server
