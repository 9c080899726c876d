"""torch against onnxruntime on one checkpoint, per window, interleaved in one run (machines are noisy).

    python -m fada_stream.ort.bench [--checkpoint DIR] [--against DIR] [--windows 20] [--steps 3] [--s-ref S --s-audio S] [--json]

Times what a stream window costs: the audio encoder, one denoiser call (batched over the guidance
passes), the decoder on the window's new frames, and the whole window (sampling + decode) as the
scheduler runs it. Blocks of windows alternate between the backends, on the same inputs. `--against DIR`
adds a second folder of the same sampler and window shape (another decoder, say) to the rotation, so the
two compare in one run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch


def _ms(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1000.0


def run(args: argparse.Namespace) -> dict:
    from fada_stream.generator import Guidance, build_window_model, bundled_checkpoint, frames_mel, resolve_device
    from fada_stream.ort.parity import random_window

    folder = args.checkpoint or bundled_checkpoint(args.sampler)
    dev = resolve_device(args.device)
    models = {b: build_window_model(folder, dev, backend=b) for b in ("torch", "onnx")}
    ref_model = models["torch"]
    cfg = ref_model.cfg
    d = ref_model.default_guidance
    guidance = Guidance(d.s_ref if args.s_ref is None else args.s_ref, d.s_audio if args.s_audio is None else args.s_audio)
    steps = ref_model.steps or args.steps
    passes = ref_model.passes(guidance)
    tokens = lambda m: bool(getattr(getattr(m, "student_cfg", None), "tokens", False))  # noqa: E731
    if args.against is not None:
        # The same inputs feed both folders: they must take the same window, steps, passes and scale input.
        other = {f"against_{b}": build_window_model(args.against, dev, backend=b) for b in ("torch", "onnx")}
        o = other["against_torch"]
        if (o.name != ref_model.name or o.cfg.dit != cfg.dit or o.cfg.ae.image_size != cfg.ae.image_size
                or (o.steps or args.steps) != steps or o.passes(guidance) != passes or tokens(o) != tokens(ref_model)):
            raise ValueError(f"--against {args.against}: a {o.name} of another window shape, steps, passes or CFG input "
                             f"than {folder}'s {ref_model.name}")
        models.update(other)
    w = random_window(cfg, args.seed)
    m = cfg.dit.motion_frames
    never = lambda: False  # noqa: E731
    b = passes  # the denoiser's batch: one row per guidance pass
    x = w["noise"][None].repeat(b, 1, 1, 1, 1)  # (P, F, C, h, w)
    t = torch.full((b,), 0.5)
    cond = {"ref": w["ref"][None].expand(b, -1, -1, -1), "motion": w["motion"][None].expand(b, -1, -1, -1, -1)}
    if tokens(ref_model):
        cond["scales"] = torch.tensor([[guidance.s_ref, guidance.s_audio]]).expand(b, 2)
    times: dict[str, dict[str, list[float]]] = {k: {"audio_encoder": [], "denoiser": [], "decoder": [], "window": []} for k in models}
    with torch.inference_mode():
        # Blocks of windows per backend, alternating, with a pause between: each backend's worker threads spin
        # for a while after a call, and a call of the other backend right then would pay for it.
        for block in range(len(models) * (args.windows // args.block + 1)):
            name = list(models)[block % len(models)]
            model = models[name]
            mel = w["mel"][None]
            new_mel = frames_mel(w["mel"], m, w["noise"].shape[0] - m, model.cfg.audio)  # what the new frames hear
            time.sleep(0.3)
            for _ in range(args.block):
                audio = model.audio_encoder(mel)
                row = {
                    "audio_encoder": _ms(model.audio_encoder, mel),
                    "denoiser": _ms(lambda: model.model(x, t, audio=audio.expand(b, -1, -1, -1), **cond)),
                    "decoder": _ms(lambda: model.decode(w["noise"][m:], w["ref_image"], new_mel)),
                    "window": _ms(lambda: model.decode(model.sample(w["ref"], w["mel"], w["motion"], w["noise"], steps, guidance, never)[m:],
                                                       w["ref_image"], new_mel)),
                }
                if block >= len(models):  # each backend's first block warms caches and allocators up
                    for k, v in row.items():
                        times[name][k].append(v)
    med = {name: {k: round(statistics.median(v), 2) for k, v in parts.items()} for name, parts in times.items()}
    result = {
        "checkpoint": str(folder), "model": ref_model.name, "device": str(dev), "threads": torch.get_num_threads(),
        "steps": steps, "passes": passes,
        "s_ref": guidance.s_ref, "s_audio": guidance.s_audio, "windows": len(times["torch"]["window"]), "new_frames": cfg.dit.frames - m,
        "torch_ms": med["torch"], "onnx_ms": med["onnx"],
        "speedup": {k: round(med["torch"][k] / med["onnx"][k], 2) for k in med["torch"]},
    }
    if args.against is not None:
        result["against"] = {"checkpoint": str(args.against), "torch_ms": med["against_torch"], "onnx_ms": med["against_onnx"]}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fada_stream.ort.bench", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=None, help="teacher or student folder (default: the bundled one)")
    p.add_argument("--sampler", choices=["auto", "teacher", "student"], default="auto")
    p.add_argument("--against", default=None, help="a second folder, same sampler and window shape, timed in the same rotation")
    p.add_argument("--device", default="cpu")
    p.add_argument("--windows", type=int, default=20, help="timed windows per backend")
    p.add_argument("--block", type=int, default=5, help="windows per block; blocks alternate between the backends")
    p.add_argument("--steps", type=int, default=3, help="a teacher's steps per window (a student uses its own)")
    p.add_argument("--s-ref", type=float, default=None, help="default: the model's own (teacher 1, a student its tuned scale)")
    p.add_argument("--s-audio", type=float, default=None, help="default: the model's own")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.block < 1 or args.windows < args.block:
        p.error("need --windows >= --block >= 1")
    from fada_stream.checkpoint import CheckpointError

    try:
        result = run(args)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['model']} {result['checkpoint']} on {result['device']} ({result['threads']} threads), {result['steps']} steps x "
          f"{result['passes']} pass(es), median of {result['windows']} windows")
    print(f"{'ms':<14}{'torch':>9}{'onnx':>9}{'speedup':>9}")
    for k in result["torch_ms"]:
        print(f"{k:<14}{result['torch_ms'][k]:>9.1f}{result['onnx_ms'][k]:>9.1f}{result['speedup'][k]:>8.2f}x")
    if "against" in result:
        a = result["against"]
        print(f"against {a['checkpoint']}, same windows and rotation")
        print(f"{'ms':<14}{'torch':>9}{'onnx':>9}")
        for k in a["torch_ms"]:
            print(f"{k:<14}{a['torch_ms'][k]:>9.1f}{a['onnx_ms'][k]:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
