"""The student's speed-up over the teacher in wall time per window, both timed side by side in one run.

    python -m distill.speedup [--teacher DIR] [--student DIR] [--backend auto|torch|onnx|both] [--rounds 6] [--json]

NFE counts the denoiser's batch rows, and the student's 2 against the teacher's 75 is 37.5x; what a user waits for
is wall time, which NFE does not fix: the teacher batches its three guidance passes into one call per step (cheaper
per NFE than three calls), and both models pay the same audio encoder once a window and the same decoder on the
window's new frames. So both sample and decode the same seeded window on the same backend, in alternating rounds
(one teacher window, then `--student-windows` student windows), and the medians are compared: sampling alone (what
`teacher_eval`'s ms / window times) and the whole window (sampling + decode, what a stream pays). The target
(../shared/docs/targets.md): the student at least 30x faster per window in the same CPU run.

Each samples as `fada_stream.render` does (fada_stream.render.offline_guidance): the teacher 25 steps x 3 passes
at s_ref 1.5 / s_audio 2.5 with sampling.TEACHER_RENDER's interval and mouth drop (neither costs a pass); the
student at its own K steps and offline scales (a token student's own defaults, one pass each; a naive student the
teacher's scales over its three branches).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from fada_stream.checkpoint import CheckpointError
from fada_stream.generator import (
    Guidance, WindowModel, build_window_model, bundled_checkpoint, frames_mel, resolve_backend, resolve_device,
)
from fada_stream.ort.parity import random_window
from fada_stream.render import offline_guidance
from fada_stream.sampling import TeacherSampling

PAUSE_S = 0.3  # between the models: onnxruntime's worker threads spin for a while after a call (docs/onnx.md)


def _never() -> bool:
    return False


def time_window(model: WindowModel, w: dict[str, torch.Tensor], steps: int, guidance: Guidance) -> tuple[float, float]:
    """(sampling ms, whole-window ms) of one window: sample its F latent frames, decode the F - M new ones."""
    m = model.cfg.dit.motion_frames
    t0 = time.perf_counter()
    latents = model.sample(w["ref"], w["mel"], w["motion"], w["noise"], steps, guidance, _never)  # (F, C, h, w)
    if latents.device.type == "cuda":
        torch.cuda.synchronize()  # the kernels are queued, not done, when sample returns
    t1 = time.perf_counter()
    model.decode(latents[m:], w["ref_image"], frames_mel(w["mel"], m, len(latents) - m, model.cfg.audio))  # (F - M, H, W, 3)
    t2 = time.perf_counter()
    return (t1 - t0) * 1000.0, (t2 - t0) * 1000.0


def _window_shape(model: WindowModel) -> tuple[int, int, int]:
    d = model.cfg.dit
    return d.frames, d.motion_frames, model.cfg.ae.image_size


def measure(teacher_dir: Path, student_dir: Path, backend: str, device: torch.device, rounds: int,
            student_windows: int, teacher_steps: int, seed: int = 0) -> dict:
    """Medians over `rounds` alternating rounds (after one untimed warm-up round) of both models on one backend."""
    if not (teacher_dir / "teacher.json").is_file():
        raise CheckpointError(f"{teacher_dir}: holds no teacher (expected teacher.json and teacher.safetensors)")
    if not (student_dir / "student.json").is_file():
        raise CheckpointError(f"{student_dir}: holds no student (expected student.json and student.safetensors)")
    teacher = build_window_model(teacher_dir, device, backend=backend)
    student = build_window_model(student_dir, device, backend=backend)
    if _window_shape(teacher) != _window_shape(student):
        raise ValueError(f"the two windows differ (frames, motion frames, image size): teacher {_window_shape(teacher)}, "
                         f"student {_window_shape(student)}; a per-window ratio needs the same window")
    t_guidance, s_guidance = offline_guidance(teacher), offline_guidance(student)  # what fada_stream.render samples each with
    t_steps, s_steps = teacher_steps, student.steps
    w = random_window(teacher.cfg, seed)
    runs = {"teacher": (teacher, t_steps, t_guidance, 1), "student": (student, s_steps, s_guidance, student_windows)}
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in runs}
    for r in range(rounds + 1):
        for name, (model, steps, guidance, n) in runs.items():
            time.sleep(PAUSE_S)
            for _ in range(n):
                sample_ms, window_ms = time_window(model, w, steps, guidance)
                if r > 0:  # the first round warms caches and allocators up
                    times[name][0].append(sample_ms)
                    times[name][1].append(window_ms)
    out: dict = {}
    for name, (model, steps, guidance, _) in runs.items():
        passes = model.passes(guidance)
        out[name] = {"steps": steps, "passes": passes, "nfe": steps * passes, "s_ref": guidance.s_ref, "s_audio": guidance.s_audio,
                     "s_audio_early": guidance.s_audio_early, "mouth_drop_from": guidance.mouth_drop_from,
                     "windows": len(times[name][0]),
                     "sample_ms": round(statistics.median(times[name][0]), 1), "window_ms": round(statistics.median(times[name][1]), 1)}
    t, s = out["teacher"], out["student"]
    out["speedup"] = {"nfe": round(t["nfe"] / s["nfe"], 2), "sample": round(t["sample_ms"] / s["sample_ms"], 2),
                      "window": round(t["window_ms"] / s["window_ms"], 2)}
    return out


def table(result: dict) -> str:
    """The medians and speed-ups as a plain-text table."""
    lines = [f"teacher {result['teacher']} against student {result['student']} on {result['device']} ({result['threads']} threads), "
             f"medians of {result['rounds']} alternating rounds",
             f"{'backend':<9}{'model':<9}{'NFE':>5}{'sample ms':>11}{'window ms':>11}"]
    for b, r in result["backends"].items():
        for name in ("teacher", "student"):
            m = r[name]
            lines.append(f"{b:<9}{name:<9}{m['nfe']:>5}{m['sample_ms']:>11.1f}{m['window_ms']:>11.1f}")
        x = r["speedup"]
        lines.append(f"{b:<9}{'speed-up':<9}{x['nfe']:>4}x{x['sample']:>10.1f}x{x['window']:>10.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m distill.speedup", description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", type=Path, default=None, help="teacher folder (default: the bundled teacher)")
    p.add_argument("--student", type=Path, default=None, help="student folder (default: the bundled student)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx", "both"], default="auto",
                   help="auto: what the runtime picks (onnxruntime on the CPU); both: torch, then onnx")
    p.add_argument("--device", default="auto")
    p.add_argument("--rounds", type=int, default=6, help="timed rounds, after one warm-up round")
    p.add_argument("--student-windows", type=int, default=3, help="student windows per round (one teacher window)")
    p.add_argument("--teacher-steps", type=int, default=TeacherSampling().steps, help="the teacher's steps per window")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.student_windows < 1 or args.teacher_steps < 1:
        p.error("--rounds, --student-windows and --teacher-steps must be at least 1")
    try:
        dev = resolve_device(args.device)
        backends = ["torch", "onnx"] if args.backend == "both" else [resolve_backend(args.backend, dev)]
        teacher_dir = args.teacher or bundled_checkpoint("teacher")
        student_dir = args.student or bundled_checkpoint("student")
        result = {"teacher": str(teacher_dir), "student": str(student_dir), "device": str(dev), "threads": torch.get_num_threads(),
                  "rounds": args.rounds, "backends": {}}
        for b in backends:
            result["backends"][b] = measure(teacher_dir, student_dir, b, dev, args.rounds, args.student_windows, args.teacher_steps, args.seed)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
