"""Render an audio file to a talking-head mp4 with the teacher or a distilled student.

    python -m fada_stream.render --audio speech.wav --reference face.png --out out.mp4 [--sampler teacher|student] [--backend auto|torch|onnx]

Any audio length, through the live session's own window scheduler (fada_stream.stream): windows of
F latent frames overlap by M motion frames, carried in latent space; each window adds F - M frames.
The mp4's video lasts as long as its audio (to within one frame) and carries that audio. Offline, the
teacher samples with all three guidance passes and its full step count (the live session trims both
to fit real time); a student always takes its own K steps. Unset scales are the model's offline defaults:
a token student's own (what its sweeps chose; one pass whatever they are), otherwise the teacher's 1.5 / 2.5.
The teacher also samples with sampling.TEACHER_RENDER's audio interval (s_audio 6 at flow times >= 0.5) and its
reference mouth dropped at high noise (>= 0.5): the setting measured to pass issue 3's bars on both splits
(docs/models.md, "The renderer's teacher sampler"); `--s-audio-early off --mouth-drop-from off` gives the plain
three-branch formula. The mouth drop assumes a face-aligned reference (fada_stream.mouth_region).
"""
from __future__ import annotations

import argparse
import math
import sys

from fada_stream.generator import Guidance
from fada_stream.sampling import SAMPLERS, TEACHER_RENDER, TeacherSampling
from fada_stream.stream import StreamConfig, render_offline, window_count

OFF = "off"  # --s-audio-early off / --mouth-drop-from off: no interval, no mouth drop


def number_or_off(text: str) -> float | str:
    """argparse type: a number, or `off`/`none`."""
    if text.strip().lower() in (OFF, "none"):
        return OFF
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or {OFF!r}, got {text!r}") from None


def offline_guidance(model, s_ref: float | None = None, s_audio: float | None = None, audio_boost: float = 0.0,
                     s_audio_early: float | str | None = None, early_from: float | None = None,
                     mouth_drop_from: float | str | None = None) -> Guidance:
    """What to render at: the values given (OFF: none), else the model's offline defaults. A token student's are
    its own scales (a live session's too); the teacher's are TEACHER_RENDER (1.5 / 2.5 with the audio interval
    and the mouth drop); a naive student's the plain 1.5 / 2.5. A teacher's or naive student's live default
    (1 / 1, one pass to fit real time) is not wanted offline, where the three passes cost only time. ValueError
    for values out of range or a setting the model cannot sample (a student's mouth drop)."""
    cfg = getattr(model, "student_cfg", None)
    if cfg is None:
        d = TEACHER_RENDER
    elif cfg.tokens:
        g = model.default_guidance
        d = TeacherSampling(s_ref=g.s_ref, s_audio=g.s_audio)
    else:
        d = TeacherSampling()
    pick = lambda given, default: default if given is None else (None if given == OFF else given)  # noqa: E731
    g = Guidance(d.s_ref if s_ref is None else s_ref, d.s_audio if s_audio is None else s_audio, audio_boost,
                 pick(s_audio_early, d.s_audio_early), d.early_from if early_from is None else early_from,
                 pick(mouth_drop_from, d.mouth_drop_from))
    model.check_guidance(g)
    return g


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
    r = TEACHER_RENDER
    p.add_argument("--s-audio-early", type=number_or_off, default=None,
                   help=f"an audio guidance interval: this audio scale at flow times >= --early-from, or {OFF} "
                        f"(default: the teacher's {r.s_audio_early:g}, a student's none)")
    p.add_argument("--early-from", type=float, default=None, help=f"where the interval ends, a flow time in (0, 1] (default {r.early_from:g})")
    p.add_argument("--mouth-drop-from", type=number_or_off, default=None,
                   help=f"teacher only: the reference's mouth dropped at flow times >= this, in [0, 1), or {OFF} "
                        f"(default: the teacher's {r.mouth_drop_from:g}); needs a face-aligned reference")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from tqdm import tqdm

    from fada_stream.checkpoint import CheckpointError
    from fada_stream.generator import load_window_model
    from fada_stream.reference import ReferenceError, load_reference
    from fada_stream.video import MediaError, read_audio, write_mp4

    try:
        model = load_window_model(args.checkpoint, "auto", args.sampler, args.method, args.backend)
        cfg = model.cfg
        audio = read_audio(args.audio, cfg.audio.sample_rate)  # (N,)
        ref_img = load_reference(args.reference, cfg.ae.image_size)  # (S, S, 3)
        guidance = offline_guidance(model, args.s_ref, args.s_audio, args.audio_boost, args.s_audio_early, args.early_from,
                                    args.mouth_drop_from)  # bad values: a clear error
        stream = StreamConfig(steps=args.steps, s_ref=guidance.s_ref, s_audio=guidance.s_audio, audio_boost=guidance.audio_boost,
                              adaptive=False, vad=False, seed=args.seed, s_audio_early=guidance.s_audio_early,
                              early_from=guidance.early_from, mouth_drop_from=guidance.mouth_drop_from)
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
