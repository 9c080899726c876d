"""Serve live avatars to browsers over WebRTC: `python -m fada_stream.serve --webrtc`.

One RTCPeerConnection and one AvatarSession per browser; signaling (POST /offer), the control
websocket and the static demo in web_client/ share one aiohttp port. See app.py for the routes,
control.py for the websocket messages, peer.py for how a session is wired to a connection.
"""
from fada_stream.serve.app import ConfigError, ServerConfig, create_app

__all__ = ["ConfigError", "ServerConfig", "create_app"]
