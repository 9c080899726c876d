"""Export a checkpoint to ONNX (denoiser with CFG tokens, audio encoder, latent decoder), check it, and
measure its parity with torch.

    python -m distill.export --out out/onnx                                   # the bundled default checkpoint
    python -m distill.export --checkpoint checkpoints/student-k2-cpu --out checkpoints/student-k2-cpu/onnx

A folder's own `onnx/` export is what the runtime's onnx backend loads first (see fada_stream/ort/runtime.py);
otherwise it exports into the user cache on first use, so running this is optional.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m distill.export", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=None, help="teacher or student folder (default: the bundled one the runtime picks)")
    p.add_argument("--out", required=True, help="folder to write denoiser.onnx, audio_encoder.onnx, decoder.onnx, onnx.json")
    p.add_argument("--no-parity", action="store_true", help="skip the torch-vs-onnxruntime comparison")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import torch

    from fada_stream.checkpoint import CheckpointError
    from fada_stream.generator import build_window_model, bundled_checkpoint
    from fada_stream.ort.export import export_checkpoint
    from fada_stream.ort.parity import compare, describe, within

    folder = Path(args.checkpoint) if args.checkpoint else bundled_checkpoint("auto")
    try:
        t0 = time.perf_counter()
        manifest = export_checkpoint(folder, args.out)
        took = time.perf_counter() - t0
    except (CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    sizes = {name: (out / f["file"]).stat().st_size / 2**20 for name, f in manifest["files"].items()}
    print(f"exported {manifest['kind']} {folder} to {out} in {took:.1f} s (opset {manifest['opset']}, onnx.checker passed): "
          + ", ".join(f"{n} {s:.1f} MB" for n, s in sizes.items()))
    if args.no_parity:
        return 0
    cpu = torch.device("cpu")
    ref = build_window_model(folder, cpu, backend="torch")
    onnx_model = build_window_model(folder, cpu, backend="onnx", export_dir=out)  # exactly the files just written
    errors = compare(ref, onnx_model, steps=ref.steps or 4)
    print(describe(errors, out))
    if not within(errors):
        print("error: parity outside the tolerances", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
