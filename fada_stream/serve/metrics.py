"""Server figures for `GET /healthz` (JSON) and `GET /metrics` (Prometheus text format 0.0.4).

The text format is written here rather than through prometheus_client: a dozen families, no
dependency, and nothing registered process-wide (several servers in one test process stay apart).

Totals are monotonic over the server's life: a session adds its figures to `Counters` when it
closes, and live sessions are added at scrape time. Per-session gauges are labelled with the
session's ordinal, never its id: the id is what opens its control socket.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from fada_stream.serve.peer import Peer

CONTENT_TYPE = "text/plain; version=0.0.4"
# Why /offer said no: 401 token, 403 origin, 400 / 413 the request, 503 the session cap.
REFUSAL_REASONS = ("unauthorized", "origin", "bad_request", "capacity")

_TOTALS = ("frames", "video_sent", "video_dropped", "stalls")


def peer_figures(peer: Peer) -> dict[str, Any]:
    """What one live session contributes: its totals and its current gauges (missing keys are skipped)."""
    stats = peer.session.stats()
    return {"frames": stats.get("frames", 0), "stalls": stats.get("stalls", 0),
            "video_sent": peer.video.sent, "video_dropped": peer.video.dropped,
            "fps": stats.get("fps"), "rtf": stats.get("rtf"), "queued_frames": stats.get("queued_frames"),
            "queued_audio_s": stats.get("queued_audio_s"), "video_queue": peer.video.queued,
            "events_queue": peer.events.qsize(), "outbound_fps": peer.video.meter.fps()}


@dataclass
class Counters:
    started_at: float = field(default_factory=time.monotonic)
    started: int = 0  # sessions answered
    refused: Counter[str] = field(default_factory=Counter)  # reason -> offers refused
    totals: Counter[str] = field(default_factory=Counter)  # _TOTALS of sessions already closed

    def retire(self, figures: dict[str, Any]) -> None:
        """A session closed with these figures (peer_figures, read after it stopped)."""
        for k in _TOTALS:
            self.totals[k] += int(figures[k])


def health(counters: Counters, active: int, max_sessions: int) -> dict[str, Any]:
    return {"status": "ok", "sessions": active, "max_sessions": max_sessions, "accepting": active < max_sessions,
            "uptime_s": round(time.monotonic() - counters.started_at, 1)}


# name -> (type, help); per-session families take their value from peer_figures under the given key.
_SESSION_GAUGES = {
    "fada_session_fps": ("fps", "frames generated per second over recent windows"),
    "fada_session_realtime_factor": ("rtf", "generation time / media time over recent windows; above 1 falls behind"),
    "fada_session_queued_frames": ("queued_frames", "frames generated and waiting for their time"),
    "fada_session_queued_audio_seconds": ("queued_audio_s", "input audio waiting to be animated"),
    "fada_session_video_queue_frames": ("video_queue", "frames waiting for the video encoder"),
    "fada_session_event_queue": ("events_queue", "events waiting for the control socket"),
    "fada_session_outbound_fps": ("outbound_fps", "frames sent to the encoder per second"),
}


def _value(v: Any) -> str:
    v = float(v)
    return "NaN" if math.isnan(v) else ("+Inf" if v == math.inf else "-Inf" if v == -math.inf else repr(v))


def _family(name: str, kind: str, help_: str, samples: Iterable[tuple[str, Any]]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    return lines + [f"{name}{labels} {_value(v)}" for labels, v in samples]


def prometheus_text(counters: Counters, peers: Iterable[Peer], max_sessions: int) -> str:
    live = [(p.ordinal, peer_figures(p)) for p in peers]
    totals = Counter(counters.totals)
    for _, f in live:
        totals.update({k: int(f[k]) for k in _TOTALS})
    out = _family("fada_sessions_active", "gauge", "sessions open now", [("", len(live))])
    out += _family("fada_sessions_max", "gauge", "the --max-sessions cap", [("", max_sessions)])
    out += _family("fada_sessions_started_total", "counter", "sessions answered", [("", counters.started)])
    out += _family("fada_sessions_refused_total", "counter", "offers refused, by reason",
                   [(f'{{reason="{r}"}}', counters.refused[r]) for r in REFUSAL_REASONS])
    out += _family("fada_frames_generated_total", "counter", "video frames the sessions generated", [("", totals["frames"])])
    out += _family("fada_video_frames_sent_total", "counter", "video frames handed to the encoder", [("", totals["video_sent"])])
    out += _family("fada_video_frames_dropped_total", "counter", "video frames dropped because the encoder was not ready",
                   [("", totals["video_dropped"])])
    out += _family("fada_stalls_total", "counter", "times generation fell behind and the session clock slipped",
                   [("", totals["stalls"])])
    for name, (key, help_) in _SESSION_GAUGES.items():
        out += _family(name, "gauge", help_, [(f'{{session="{n}"}}', f[key]) for n, f in live if f[key] is not None])
    out += _family("fada_uptime_seconds", "gauge", "seconds since the server started",
                   [("", round(time.monotonic() - counters.started_at, 1))])
    return "\n".join(out) + "\n"
