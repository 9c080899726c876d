"""Render an audio file to a talking-head mp4 with the teacher or a distilled student.

    python -m fada_stream.render --audio speech.wav --reference face.png --out out.mp4 [--sampler teacher|student] [--backend auto|torch|onnx]

Any audio length, through the live session's own window scheduler (fada_stream.stream): windows of
F latent frames overlap by M motion frames, carried in latent space; each window adds F - M frames.
The mp4's video lasts as long as its audio (to within one frame) and carries that audio. Offline, the
teacher samples with all three guidance passes and its full step count (the live session trims both
to fit real time); a student always takes its own K steps. Unset scales are the model's offline defaults:
a token student's own (what its sweeps chose; one pass whatever they are), otherwise the teacher's 1.5 / 2.5.
"""
from __future__ import annotations

import argparse
import math
import sys

from fada_stream.sampling import SAMPLERS, TeacherSampling
from fada_stream.stream import StreamConfig, render_offline, window_count


def offline_guidance(model, s_ref: float | None, s_audio: float | None) -> tuple[float, float]:
    """The scales to render at: those given, else a token student's defaults (a live session's too), else the
    teacher's full-guidance ones; a teacher's or naive student's live default (1 / 1, one pass to fit real
    time) is not wanted offline, where the three passes cost only time."""
    cfg = getattr(model, "student_cfg", None)
    d = model.default_guidance if cfg is not None and cfg.tokens else TeacherSampling()
    return d.s_ref if s_ref is None else s_ref, d.s_audio if s_audio is None else s_audio


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Render an audio file to a talking-head mp4.")
    p.add_argument("--audio", required=True, help="speech audio, any format and rate ffmpeg reads")
    p.add_argument("--reference", default=None, help="face image, any size (centre-cropped to a square); default: the bundled face")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--sampler", choices=["auto", "teacher", "student"], default="auto",
                   help="auto: the bundled student (the teacher where none ships); with --checkpoint, what the folder holds")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="auto: onnxruntime on the CPU (exported once into a cache), torch on CUDA")
    p.add_argument("--checkpoint", default=None, help="folder with teacher.* or student.*, and autoencoder.* (default: bundled)")
    d = TeacherSampling()
    p.add_argument("--steps", type=int, default=d.steps, help="teacher steps (a student uses its own)")
    p.add_argument("--method", choices=sorted(SAMPLERS), default=d.method)
    p.add_argument("--s-ref", type=float, default=None,
                   help=f"default: a token student's own scales, else the teacher's offline {d.s_ref}")
    p.add_argument("--s-audio", type=float, default=None,
                   help=f"default: a token student's own scales, else the teacher's offline {d.s_audio}")
    p.add_argument("--audio-boost", type=float, default=0.0,
                   help="token students: one more pass of audio guidance on their output (0: one pass)")
    p.add_argument("--s-audio-early", type=float, default=None,
                   help="an audio guidance interval: this audio scale at flow times >= --early-from (default: none)")
    p.add_argument("--early-from", type=float, default=0.5, help="where the interval ends, a flow time in (0, 1]")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from tqdm import tqdm

    from fada_stream.checkpoint import CheckpointError
    from fada_stream.generator import Guidance, load_window_model
    from fada_stream.reference import ReferenceError, load_reference
    from fada_stream.video import MediaError, read_audio, write_mp4

    try:
        model = load_window_model(args.checkpoint, "auto", args.sampler, args.method, args.backend)
        cfg = model.cfg
        audio = read_audio(args.audio, cfg.audio.sample_rate)  # (N,)
        ref_img = load_reference(args.reference, cfg.ae.image_size)  # (S, S, 3)
        s_ref, s_audio = offline_guidance(model, args.s_ref, args.s_audio)
        stream = StreamConfig(steps=args.steps, s_ref=s_ref, s_audio=s_audio, audio_boost=args.audio_boost, adaptive=False,
                              vad=False, seed=args.seed, s_audio_early=args.s_audio_early, early_from=args.early_from)
        guidance = Guidance(s_ref, s_audio, args.audio_boost, args.s_audio_early, args.early_from)  # bad scales: a clear error
    except (CheckpointError, MediaError, ReferenceError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if len(audio) == 0:
        print(f"error: {args.audio}: no audio samples", file=sys.stderr)
        return 2
    n_frames = math.ceil(len(audio) / (cfg.audio.sample_rate // cfg.fps))
    n_windows = window_count(n_frames, cfg.dit.frames, cfg.dit.motion_frames)
    nfe = (model.steps or stream.steps) * model.passes(guidance)
    with tqdm(total=n_windows, desc=f"{model.name}: {n_windows} windows x {nfe} NFE", unit="window") as bar:
        frames, _ = render_offline(model, ref_img, audio, cfg.audio.sample_rate, stream, bar.update)  # (T, H, W, 3)
    write_mp4(args.out, frames, audio, fps=cfg.fps, sample_rate=cfg.audio.sample_rate)
    print(f"wrote {args.out}: {len(frames)} frames, {len(audio) / cfg.audio.sample_rate:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
