"""python -m distill.data {synth,ingest,bench,samples}: make or import a talking-head corpus; write the runtime's sample clips."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm


def _synth(args: argparse.Namespace) -> int:
    from distill.data.corpus import synth_corpus
    from distill.data.synth import SynthConfig

    if args.clips_per_identity < 1:
        raise SystemExit(f"--clips-per-identity must be at least 1, got {args.clips_per_identity}")
    cfg = SynthConfig(size=args.size, moderate_fraction=args.moderate_fraction, clips_per_identity=args.clips_per_identity)
    with tqdm(total=args.clips, desc=f"synth {args.split}", unit="clip") as bar:
        rows = synth_corpus(args.out, args.split, args.clips, args.seed, cfg, workers=args.workers, progress=bar.update)
    seconds = sum(r["duration"] for r in rows)
    moderate = sum(r["tier"] == "moderate" for r in rows)
    print(f"wrote {len(rows)} clips ({seconds:.0f} s, {moderate} moderate) to {args.out}")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from distill.data.ingest import IngestConfig, ingest_folder

    cfg = IngestConfig(size=args.size, tier=args.tier)
    with tqdm(desc="ingest", unit="video") as bar:
        rows, errors = ingest_folder(args.src, args.out, cfg, progress=bar.update)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    print(f"ingested {len(rows)} clips into {args.out}; {len(errors)} failed")
    return 0 if rows or not errors else 1


def _bench(args: argparse.Namespace) -> int:
    import torch

    from distill.data.synth import SynthConfig, make_clip, write_clip

    torch.set_num_threads(1)
    cfg = SynthConfig()
    made, cpu0, wall0 = 0.0, time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, tqdm(total=args.seconds, unit="s", desc="bench") as bar:
        i = 0
        while made < args.seconds:
            clip = make_clip("train", args.seed, i, cfg)
            write_clip(tmp, clip)
            made += clip.meta["duration"]
            bar.update(clip.meta["duration"])
            i += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result = {
        "corpus_seconds": round(made, 2),
        "clips": i,
        "cpu_seconds": round(cpu, 2),
        "wall_seconds": round(wall, 2),
        "corpus_seconds_per_cpu_second": round(made / cpu, 3),
        "cpu_seconds_per_corpus_minute": round(60 * cpu / made, 2),
    }
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


# The runtime's bundled sample clips (fada_stream/assets/samples), made by `python -m distill.data samples`.
SAMPLES = {
    "greeting": ("Hello! I am a talking avatar, rendered in real time from your speech.", "en-us+f3", 165, 55),
    "weather": ("Tomorrow will be sunny in the morning, <break time=\"300ms\"/> with a little rain by the evening.", "en+m3", 150, 45),
    "numbers": ("One, two, three, four, five. <break time=\"400ms\"/> Peter picked a peck of purple peppers.", "en-gb-x-rp+f2", 140, 60),
}


def _samples(args: argparse.Namespace) -> int:
    from distill.data.speech import Voice, synthesize
    from distill.data.video_io import write_wav

    args.out.mkdir(parents=True, exist_ok=True)
    for name, (text, voice, rate, pitch) in SAMPLES.items():
        utt = synthesize(text, Voice(voice, rate, pitch, 50))
        write_wav(args.out / f"{name}.wav", utt.audio)
        print(f"{args.out / name}.wav: {len(utt.audio) / 16000:.2f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m distill.data", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("synth", help="generate procedural talking-head clips")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--clips", type=int, default=100)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--split", choices=["train", "test", "openset"], default="train")
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--moderate-fraction", type=float, default=0.4)
    s.add_argument("--clips-per-identity", type=int, default=4,  # SynthConfig.clips_per_identity
                   help="clips of each face; 1 gives an evaluation split whose clips are independent faces")
    s.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    s.set_defaults(fn=_synth)
    i = sub.add_parser("ingest", help="import a folder of real talking-head videos with audio")
    i.add_argument("src", type=Path)
    i.add_argument("--out", required=True, type=Path)
    i.add_argument("--tier", choices=["high", "moderate"], default="high")
    i.add_argument("--size", type=int, default=128)
    i.set_defaults(fn=_ingest)
    b = sub.add_parser("bench", help="corpus seconds generated per CPU second (one process, one thread)")
    b.add_argument("--seconds", type=float, default=60.0)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=_bench)
    m = sub.add_parser("samples", help="write the runtime's bundled sample speech clips (16 kHz wav)")
    m.add_argument("--out", type=Path, default=Path("fada_stream/assets/samples"))
    m.set_defaults(fn=_samples)
    args = p.parse_args(argv)
    from distill.data.speech import EspeakUnavailable

    try:
        return args.fn(args)
    except EspeakUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
