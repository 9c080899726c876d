"""CLI: `python -m distill.eval {score,baseline,train-experts,check-experts} ...`."""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

from distill.eval.experts import DEFAULT_DIR


def _score(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from distill.eval.experts import load_experts
    from distill.eval.report import write_report
    from distill.eval.score import ScoreConfig, find_videos, score_videos
    from fada_stream.checkpoint import CheckpointError

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormal activations slow CPU kernels many times over
    try:
        experts = load_experts(args.experts)
    except CheckpointError as e:
        print(f"error: cannot load the experts: {e}\n(train them with `python -m distill.eval train-experts --data DIR`)")
        return 2
    paths = find_videos(args.videos)
    if not paths:
        print(f"error: no videos in {args.videos}")
        return 2
    cfg = ScoreConfig(max_offset=args.max_offset, ground_truth=args.ground_truth, reference=args.reference,
                      window_stride=args.window_stride)
    t0 = time.time()
    with tqdm(total=len(paths), desc="scoring", unit="clip", dynamic_ncols=True) as bar:
        report, curves = score_videos(paths, experts, cfg, progress=lambda _: bar.update(1))
    written = write_report(report, curves, args.out)
    s = report["summary"]
    print(f"scored {s['n_clips'] - s['n_errors']}/{s['n_clips']} clips in {time.time() - t0:.1f} s -> {written[0].parent}")
    for k in ("sync_c", "sync_d", "abs_offset", "mouth_corr", "closed_in_silence", "identity_sim", "psnr", "ssim",
              "seam_jitter", "frechet_sync_visual"):
        if s.get(k) is not None:
            print(f"  {k:20s} {s[k]:.3f}")
    for r in report["clips"]:
        if r["error"]:
            print(f"  error: {r['error']}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from distill.eval.train import TrainConfig, main

    cfg = TrainConfig(data=args.data, out=args.out, sync_steps=args.sync_steps, regressor_steps=args.regressor_steps,
                      identity_steps=args.identity_steps, batch=args.batch, max_clips=args.max_clips, seed=args.seed,
                      threads=args.threads)
    command = "python -m distill.eval " + shlex.join(args.argv)
    t0 = time.time()
    main(cfg, command, only=tuple(args.only))
    print(f"trained {', '.join(args.only)} in {(time.time() - t0) / 60:.1f} min -> {args.out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    import json

    import torch
    from tqdm import tqdm

    from distill.eval.experts import load_experts
    from distill.eval.selfcheck import check_experts

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    experts = load_experts(args.experts)
    with tqdm(total=args.clips, desc="checking", unit="clip", dynamic_ncols=True) as bar:
        result = check_experts(args.data, experts, args.clips, tuple(args.shifts), progress=bar.update)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=1))
    return 0


def _baseline(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from distill.eval.baseline import BaselineConfig, markdown_table, run_baseline, write_table
    from distill.eval.experts import load_experts

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    splits = {name: path for name, path in (("test", args.test), ("openset", args.openset)) if path is not None}
    if not splits:
        from distill.data.corpus import synth_corpus
        from distill.data.synth import SynthConfig

        # No corpus given: make a small one. Half the clips moderate so both tiers appear.
        synth_cfg = SynthConfig(moderate_fraction=0.5)
        for name in ("test", "openset"):
            splits[name] = args.out / "corpus" / name
            with tqdm(total=args.clips, desc=f"synth {name}", unit="clip") as bar:
                synth_corpus(splits[name], name, args.clips, args.seed, synth_cfg, workers=1, progress=bar.update)
    cfg = BaselineConfig(shift_frames=args.shift, max_clips=args.max_clips)
    with tqdm(desc="scoring", unit="clip") as bar:
        rows = run_baseline(splits, args.out, load_experts(args.experts), cfg, progress=lambda _: bar.update(1))
    paths = write_table(rows, args.out, cfg)
    print(markdown_table(rows, cfg))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from distill.eval.train import TrainConfig

    p = argparse.ArgumentParser(prog="python -m distill.eval", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score", help="score videos: lip sync, mouth, identity, fidelity, seams")
    s.add_argument("--videos", type=Path, required=True, help="an mp4 or a folder of them")
    s.add_argument("--out", type=Path, required=True, help="report folder (report.json, report.md, plots)")
    s.add_argument("--ground-truth", type=Path, help="folder of ground-truth clips matched by file stem")
    s.add_argument("--reference", type=Path, help="reference image for clips without their own <stem>.png")
    s.add_argument("--window-stride", type=int, help="new frames per generated window (seam jitter)")
    s.add_argument("--experts", type=Path, default=DEFAULT_DIR, help="folder of expert checkpoints")
    s.add_argument("--max-offset", type=int, default=15)
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=_score)

    c = sub.add_parser("check-experts", help="known-answer checks of the experts on held-out corpus clips")
    c.add_argument("--data", type=Path, required=True, help="corpus folder (test split)")
    c.add_argument("--experts", type=Path, default=DEFAULT_DIR)
    c.add_argument("--clips", type=int, default=24)
    c.add_argument("--shifts", type=int, nargs="+", default=[-5, -3, -1, 1, 3, 5])
    c.add_argument("--out", type=Path, help="write every per-clip result to this JSON file")
    c.add_argument("--threads", type=int, default=1)
    c.set_defaults(func=_check)

    b = sub.add_parser("baseline", help="score ground truth and known-bad variants (shifted, swapped, still) per split")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--test", type=Path, help="test-split corpus folder (default: synthesise --clips clips)")
    b.add_argument("--openset", type=Path, help="openset-split corpus folder")
    b.add_argument("--clips", type=int, default=4, help="clips per split to synthesise when no folder is given")
    b.add_argument("--seed", type=int, default=1000)
    b.add_argument("--max-clips", type=int, default=40, help="clips per split and variant")
    b.add_argument("--shift", type=int, default=5, help="audio delay of the shifted variant, frames")
    b.add_argument("--experts", type=Path, default=DEFAULT_DIR)
    b.add_argument("--threads", type=int, default=2)
    b.set_defaults(func=_baseline)

    d = TrainConfig(data=Path("."))
    t = sub.add_parser("train-experts", help="train the sync expert, face regressor and identity encoder")
    t.add_argument("--data", type=Path, required=True, help="corpus folder with manifest.jsonl (train split)")
    t.add_argument("--out", type=Path, default=Path("out/experts"),
                   help="where to write; copy into distill/eval/checkpoints to ship them (default: out/experts)")
    t.add_argument("--sync-steps", type=int, default=d.sync_steps)
    t.add_argument("--regressor-steps", type=int, default=d.regressor_steps)
    t.add_argument("--identity-steps", type=int, default=d.identity_steps)
    t.add_argument("--batch", type=int, default=d.batch)
    t.add_argument("--max-clips", type=int)
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--threads", type=int, default=d.threads)
    t.add_argument("--only", nargs="+", choices=["sync", "regressor", "identity"], default=["sync", "regressor", "identity"])
    t.set_defaults(func=_train)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded in checkpoints: the exact command that made them
    from distill.data.speech import EspeakUnavailable
    from fada_stream.checkpoint import CheckpointError

    try:
        return args.func(args)
    except (CheckpointError, FileNotFoundError, EspeakUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
