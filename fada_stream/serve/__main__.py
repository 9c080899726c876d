"""python -m fada_stream.serve --webrtc [--host 127.0.0.1] [--port 8080] [--reference IMG] [--checkpoint DIR]
                                       [--sampler auto|teacher|student] [--backend auto|torch|onnx]
                                       [--token SECRET] [--allow-origin URL ...]
                                       [--max-sessions N]
python -m fada_stream.serve --mint-token SECONDS [--token SECRET]   prints a token for clients, valid that long"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from fada_stream.serve.access import mint_token
from fada_stream.serve.app import ConfigError, ServerConfig, create_app


def main(argv: list[str] | None = None) -> int:
    d = ServerConfig()
    p = argparse.ArgumentParser(prog="python -m fada_stream.serve", description="Serve live talking avatars to browsers.")
    p.add_argument("--webrtc", action="store_true", help="serve over WebRTC (the only transport so far)")
    p.add_argument("--host", default=d.host, help="address to bind; anything but loopback needs a token")
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument("--reference", default=None, help="face image for new sessions (default: the bundled face)")
    p.add_argument("--checkpoint", default=None, help="model folder (default: the bundled checkpoint)")
    p.add_argument("--sampler", choices=["auto", "teacher", "student"], default=d.sampler,
                   help="auto: the bundled student (the teacher where none ships); with --checkpoint, what the folder holds")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default=d.backend,
                   help="auto: onnxruntime on the CPU (exported once into a cache), torch on CUDA")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--token", default=None, help="secret required from clients on /offer, /ws and /metrics, itself or as "
                   "tokens minted from it with --mint-token (default: $FADA_STREAM_TOKEN)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                   help="a browser origin besides the server's own that may use it (repeatable), e.g. https://app.example.com")
    p.add_argument("--max-sessions", type=int, default=d.max_sessions, help="concurrent sessions; more get 503")
    p.add_argument("--mint-token", type=float, default=None, metavar="SECONDS",
                   help="print a client token signed with the secret, valid for SECONDS, and exit")
    args = p.parse_args(argv)
    secret = args.token or os.environ.get("FADA_STREAM_TOKEN") or None
    if args.mint_token is not None:
        if secret is None or args.mint_token <= 0:
            print("error: --mint-token needs a positive lifetime and the secret (--token or $FADA_STREAM_TOKEN)", file=sys.stderr)
            return 2
        print(mint_token(secret, args.mint_token))
        return 0
    if not args.webrtc:
        p.error("choose a transport: --webrtc")
    for flag, path, is_ok in (("--reference", args.reference, Path.is_file), ("--checkpoint", args.checkpoint, Path.is_dir)):
        if path is not None and not is_ok(Path(path)):
            print(f"error: {flag} {path}: not found", file=sys.stderr)
            return 2

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(host=args.host, port=args.port, reference=args.reference, checkpoint=args.checkpoint, sampler=args.sampler,
                          backend=args.backend, device=args.device, token=secret, allow_origins=tuple(args.allow_origin),
                          max_sessions=args.max_sessions)
    try:
        app = create_app(config)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from aiohttp import web

    from fada_stream.checkpoint import CheckpointError
    from fada_stream.generator import load_window_model

    try:  # load (and, the first time on a machine, export to ONNX) before the first visitor waits for it
        model = load_window_model(config.checkpoint, config.device, config.sampler, backend=config.backend)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logging.getLogger("fada_stream.serve").info("model: %s on %s (%s)", model.name, model.backend, model.device)
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"fada-stream: open http://{host}:{config.port}/" + ("?token=<your token>" if config.token else ""), flush=True)
    print("(Ctrl-C to stop)", flush=True)
    web.run_app(app, host=config.host, port=config.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
