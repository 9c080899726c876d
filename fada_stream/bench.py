"""python -m fada_stream.bench: is the avatar real time on this machine?

Two runs of the bundled sample speech through AvatarSession, as a voice bot would drive it:

1. throughput (unpaced): `--seconds` of speech pushed as one burst; sustained fps, real-time factor
   (generation wall time / audio duration), window latency p50/p95, NFE per window; then the
   output's A/V offset and Sync-C, measured on the emitted frames and audio by the bundled lip-sync
   expert (offset > 0: the mouth lags the sound).
2. latency (paced, as a player consumes it): the avatar idles, then an utterance arrives as a TTS
   burst; first frame = time from push_audio to the release of the utterance's first frame.
   Repeated `--onsets` times; median and max reported, plus playback stalls.

3. soak (optional, `--soak SECONDS`): a long unpaced stream; identity similarity to the reference
   and the A/V offset in its first and last minute (drift).

Figures are medians of one run on a shared machine: compare configurations side by side.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import fada_stream
from fada_stream.audio import resample
from fada_stream.frames import AudioFrame, SegmentEnd, VideoFrame
from fada_stream.session import AvatarSession
from fada_stream.stream import StreamConfig

SAMPLES = Path(fada_stream.__file__).parent / "assets" / "samples"


def sample_speech(seconds: float, rate: int = 16000) -> np.ndarray:
    """The bundled samples, concatenated (repeated as needed) up to `seconds`."""
    from fada_stream.video import read_audio

    clips = [read_audio(p, rate) for p in sorted(SAMPLES.glob("*.wav"))]
    out, total = [], 0
    while total < seconds * rate:
        for c in clips:
            out.append(c)
            total += len(c)
    return np.concatenate(out)[: int(seconds * rate)].astype(np.float32)


async def throughput(session: AvatarSession, audio: np.ndarray) -> dict:
    t0 = time.perf_counter()
    await session.push_audio(audio, 16000)
    await session.flush()
    frames, pcm = [], []
    async for item in session:
        if isinstance(item, VideoFrame):
            frames.append(item.image)
        elif isinstance(item, AudioFrame):
            pcm.append(item.pcm)
        elif isinstance(item, SegmentEnd):
            break
    wall = time.perf_counter() - t0
    stats = session.stats()
    out_audio = np.concatenate(pcm).astype(np.float32) / 32768.0
    return {
        "wall_s": wall,
        "frames": len(frames),
        "fps": len(frames) / wall,
        "rtf": wall / (len(audio) / 16000),
        "stats": stats,
        "sync": output_sync(np.stack(frames), resample(out_audio, session.output_sample_rate, 16000)),
    }


def output_sync(frames: np.ndarray, audio16k: np.ndarray) -> dict:
    """Sync-C and A/V offset (frames) of the emitted stream, by the bundled lip-sync expert."""
    from distill.eval import metrics
    from distill.eval.experts import load_experts
    from distill.eval.score import sync_curve_of

    mdist, _ = sync_curve_of(frames, audio16k, load_experts())
    sync_c, _, offset = metrics.sync_scores(mdist)
    return {"sync_c": round(sync_c, 3), "av_offset_frames": offset}


async def latency(session: AvatarSession, utterance: np.ndarray, onsets: int, idle_s: float) -> dict:
    """First-frame latency of utterances arriving while a paced session idles."""
    loop = asyncio.get_running_loop()
    first: list[float] = []
    pushed_at: list[float] = []
    ended = asyncio.Event()

    async def consume() -> None:
        waiting = False
        async for item in session:
            if isinstance(item, AudioFrame) and len(first) < len(pushed_at) and not waiting:
                first.append(loop.time() - pushed_at[-1])
                waiting = True
            elif isinstance(item, SegmentEnd):
                waiting = False
                ended.set()

    task = asyncio.create_task(consume())
    try:
        for _ in range(onsets):
            await asyncio.sleep(idle_s)
            ended.clear()
            pushed_at.append(loop.time())
            await session.push_audio(utterance, 16000)
            await session.flush()
            await ended.wait()
    finally:
        task.cancel()
    return {"first_frame_ms": [1000 * f for f in first], "stats": session.stats()}


async def soak(session: AvatarSession, seconds: float, window_s: float = 60.0) -> dict:
    """Identity and A/V offset in the first and last `window_s` of a `seconds`-long stream."""
    from distill.eval.experts import load_experts
    from distill.eval.identity import embed_faces
    from fada_stream.reference import load_reference

    experts = load_experts()
    ref = embed_faces(experts.identity, load_reference(None, session.image_size)[None])[0]  # (D,)
    speech = sample_speech(seconds)
    n = int(window_s * session.fps)
    total = -(-len(speech) // (16000 // session.fps))
    keep = {"first": (0, n), "last": (total - n, total)}
    got = {k: ([], []) for k in keep}

    async def produce() -> None:
        await session.push_audio(speech, 16000)
        await session.flush()

    producer = asyncio.create_task(produce())
    frame = 0
    async for item in session:
        if isinstance(item, SegmentEnd):
            break
        for name, (lo, hi) in keep.items():
            if lo <= frame < hi:
                got[name][0 if isinstance(item, VideoFrame) else 1].append(item.image if isinstance(item, VideoFrame) else item.pcm)
        frame += isinstance(item, VideoFrame)
    await producer
    out: dict = {}
    for name, (frames, pcm) in got.items():
        frames = np.stack(frames)
        out[f"identity_{name}_minute"] = round(float((embed_faces(experts.identity, frames) @ ref).mean()), 4)
        audio = resample(np.concatenate(pcm).astype(np.float32) / 32768.0, session.output_sample_rate, 16000)
        out[f"av_offset_{name}_minute"] = output_sync(frames, audio)["av_offset_frames"]
    return out


async def run(args: argparse.Namespace) -> dict:
    cfg = StreamConfig(steps=args.steps, s_ref=args.s_ref, s_audio=args.s_audio, audio_boost=args.audio_boost,
                       adaptive=not args.fixed_steps)
    speech = sample_speech(args.seconds)
    async with AvatarSession(checkpoint=args.checkpoint, device=args.device, sampler=args.sampler, backend=args.backend, paced=False, config=cfg,
                             output_sample_rate=16000) as s:
        await s.push_audio(speech[:16000], 16000)  # warm-up: first-call allocations stay out of the figures
        await s.flush()
        async for item in s:
            if isinstance(item, SegmentEnd):
                break
        tp = await throughput(s, speech)
    utterance = sample_speech(2.0)
    async with AvatarSession(checkpoint=args.checkpoint, device=args.device, sampler=args.sampler, backend=args.backend, paced=True, config=cfg) as s:
        lat = await latency(s, utterance, args.onsets, args.idle)
    drift = {}
    if args.soak > 0:
        async with AvatarSession(checkpoint=args.checkpoint, device=args.device, sampler=args.sampler, backend=args.backend, paced=False, config=cfg,
                                 output_sample_rate=16000) as s:
            drift = await soak(s, args.soak, min(60.0, args.soak / 2))
    st = tp["stats"]
    return {
        "sampler": st["sampler"],
        "backend": st["backend"],
        "device": args.device,
        "fps": round(tp["fps"], 2),
        "rtf": round(tp["rtf"], 3),
        "nfe_per_window": st["nfe_per_window"],
        "steps": st["steps"],
        "window_ms_p50": st["window_ms_p50"],
        "window_ms_p95": st["window_ms_p95"],
        "first_frame_ms": round(statistics.median(lat["first_frame_ms"]), 1),
        "first_frame_ms_max": round(max(lat["first_frame_ms"]), 1),
        "av_offset_frames": tp["sync"]["av_offset_frames"],
        "sync_c": tp["sync"]["sync_c"],
        "stalls": lat["stats"]["stalls"],
        "audio_seconds": round(len(speech) / 16000, 2),
        "frames": tp["frames"],
        "s_ref": st["s_ref"],
        "s_audio": st["s_audio"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **drift,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fada_stream.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--sampler", choices=["auto", "teacher", "student"], default="auto",
                   help="auto: the bundled student (the teacher where none ships); with --checkpoint, what the folder holds")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="auto: onnxruntime on the CPU (exported once into a cache), torch on CUDA (Triton kernels)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    p.add_argument("--device", default="auto")
    d = StreamConfig()
    p.add_argument("--steps", type=int, default=d.steps, help="most sampler steps per window")
    p.add_argument("--fixed-steps", action="store_true", help="turn the adaptive step controller off")
    p.add_argument("--s-ref", type=float, default=d.s_ref, help="default: the model's own (teacher 1, a student its tuned scale)")
    p.add_argument("--s-audio", type=float, default=d.s_audio, help="default: the model's own")
    p.add_argument("--audio-boost", type=float, default=d.audio_boost, help="token students: one more pass of audio guidance")
    p.add_argument("--seconds", type=float, default=20.0, help="speech pushed in the throughput run")
    p.add_argument("--onsets", type=int, default=3, help="utterances timed in the latency run")
    p.add_argument("--idle", type=float, default=1.5, help="idle seconds before each timed utterance")
    p.add_argument("--soak", type=float, default=0.0, help="also stream this many seconds and compare its first and last minute")
    args = p.parse_args(argv)
    from fada_stream.checkpoint import CheckpointError

    try:
        result = asyncio.run(run(args))
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        width = max(map(len, result))
        print("\n".join(f"{k:<{width}}  {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
