"""python -m fada_stream.serve --webrtc [--host 127.0.0.1] [--port 8080] [--reference IMG] [--checkpoint DIR]
                                       [--token TOKEN] [--max-sessions N]"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from fada_stream.serve.app import ConfigError, ServerConfig, create_app


def main(argv: list[str] | None = None) -> int:
    d = ServerConfig()
    p = argparse.ArgumentParser(prog="python -m fada_stream.serve", description="Serve live talking avatars to browsers.")
    p.add_argument("--webrtc", action="store_true", help="serve over WebRTC (the only transport so far)")
    p.add_argument("--host", default=d.host, help="address to bind; anything but loopback needs a token")
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument("--reference", default=None, help="face image for new sessions (default: the bundled face)")
    p.add_argument("--checkpoint", default=None, help="model folder (default: the bundled checkpoint)")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--token", default=None, help="required from clients on /offer and /ws (default: $FADA_STREAM_TOKEN)")
    p.add_argument("--max-sessions", type=int, default=d.max_sessions, help="concurrent sessions; more get 503")
    args = p.parse_args(argv)
    if not args.webrtc:
        p.error("choose a transport: --webrtc")
    for flag, path, is_ok in (("--reference", args.reference, Path.is_file), ("--checkpoint", args.checkpoint, Path.is_dir)):
        if path is not None and not is_ok(Path(path)):
            print(f"error: {flag} {path}: not found", file=sys.stderr)
            return 2

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(host=args.host, port=args.port, reference=args.reference, checkpoint=args.checkpoint,
                          device=args.device, token=args.token or os.environ.get("FADA_STREAM_TOKEN") or None,
                          max_sessions=args.max_sessions)
    try:
        app = create_app(config)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from aiohttp import web

    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"fada-stream: open http://{host}:{config.port}/" + ("?token=<your token>" if config.token else ""), flush=True)
    print("(Ctrl-C to stop)", flush=True)
    web.run_app(app, host=config.host, port=config.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
