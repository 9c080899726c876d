"""The autoencoder's ceiling: ground-truth clips through encode and decode, scored with the harness.

    python -m distill.autoencoder_eval --data corpus/test --data corpus/openset --clips 16 \\
        --autoencoder fada_stream/assets/student/autoencoder --out out/ae/bundled

Every video a teacher or student makes is decoded by its autoencoder, so no model can score better than the
ground truth does after one trip through it: this measures that bound on the first N `high` clips of each
split (Sync-C, mouth correlation, identity, PSNR and SSIM against the ground truth), and the decoder's time per
16-frame window. Writes OUT/teacher_eval.json in teacher_eval's layout (one "default" setting per split), so
`python -m distill.compare_evals` sets two autoencoders side by side and pairs them clip by clip, and
OUT/autoencoder_eval.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.data.video_io import atomic_path, read_mp4
from distill.eval.experts import DEFAULT_DIR, Experts
from distill.eval.score import ScoreConfig, score_videos
from distill.teacher_eval import high_ids, score_ground_truth
from fada_stream.model.audio_encoder import mel_window, stream_mel
from fada_stream.model.autoencoder import images_to_unit, load_autoencoder, unit_to_images
from fada_stream.model.config import AudioConfig
from fada_stream.reference import load_reference
from fada_stream.video import SAMPLE_RATE, read_audio, write_mp4

WINDOW = 16  # frames per window of the bundled models: the decoder's unit of work in the runtime
COLUMNS = (("sync_c", "Sync-C"), ("mouth_corr", "mouth corr"), ("identity_sim", "identity"), ("psnr", "PSNR"),
           ("ssim", "SSIM"))


@dataclass(frozen=True)
class AutoencoderEvalConfig:
    data: tuple[Path, ...]  # corpus split folders
    autoencoder: Path  # checkpoint stem, e.g. fada_stream/assets/student/autoencoder
    out: Path
    clips: int = 16  # first N high clips per split
    skip: int = 0
    experts: Path = DEFAULT_DIR
    threads: int = 2


def decoder_audio(ae: torch.nn.Module) -> AudioConfig:
    """The mel geometry an audio-aware decoder hears: the tiny preset's audio encoder's, which it was trained with."""
    ac = AudioConfig()
    if not ae.cfg.hears(ac):
        raise ValueError("this autoencoder's decoder hears another mel window than the tiny preset's audio encoder")
    return ac


@torch.no_grad()
def round_trip(ae: torch.nn.Module, frames: np.ndarray, reference: np.ndarray | None = None,
               audio: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """((T, H, W, 3) uint8 through encode and decode, seconds spent decoding), one window of frames at a time.
    `reference` (S, S, 3) uint8, the clip's reference image, is what a reference-aware decoder decodes with;
    `audio` (N,) float 16 kHz, the clip's sound, what an audio-aware one hears."""
    out, decode_s = [], 0.0
    ref = None if reference is None else images_to_unit(torch.from_numpy(reference))[None]  # (1, 3, H, W)
    ac = decoder_audio(ae) if getattr(ae, "audio_aware", False) else None
    if ac is not None and audio is None:
        raise ValueError("this autoencoder's decoder is audio-aware: the round trip needs the clip's audio")
    mel = None if ac is None else stream_mel(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), ac)  # (n_mels, T)
    for i in range(0, len(frames), WINDOW):
        z = ae.encode(images_to_unit(torch.from_numpy(frames[i : i + WINDOW])))  # (w, C, h, w)
        span = None if mel is None else mel_window(mel, i, len(z), ac)  # (n_mels, mel_span(w))
        t0 = time.perf_counter()
        rec = ae.decode(z, ref, span)  # (w, 3, H, W)
        decode_s += time.perf_counter() - t0
        out.append(unit_to_images(rec).numpy())
    return np.concatenate(out), decode_s


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"# Autoencoder round trip: {doc['config']['autoencoder']}", "",
             "| split | clips | " + " | ".join(h for _, h in COLUMNS) + " | identity / GT | Sync-C / GT | decode ms / 16 frames |",
             "|" + "---|" * (len(COLUMNS) + 5)]
    for sp in doc["splits"]:
        s, g = sp["settings"][0]["summary"], sp["ground_truth"]["summary"]
        cells = [f"{s[k]:.3f}" if s.get(k) is not None else "-" for k, _ in COLUMNS]
        gt_cells = [f"{g[k]:.3f}" if g.get(k) is not None else "-" for k, _ in COLUMNS]
        share = [f"{s[k] / g[k]:.3f}" if s.get(k) is not None and g.get(k) else "-" for k in ("identity_sim", "sync_c")]
        lines.append(f"| {sp['split']} | {len(sp['ids'])} | " + " | ".join(cells) + f" | {share[0]} | {share[1]} | "
                     f"{sp['settings'][0]['ms_per_window']:.1f} |")
        lines.append(f"| {sp['split']}, ground truth | {len(sp['ids'])} | " + " | ".join(gt_cells) + " | 1.000 | 1.000 | - |")
    lines += ["", "Each clip's ground-truth frames encoded and decoded once, with its own audio and reference image; "
              "PSNR and SSIM against the ground truth (the ground truth's own are not defined).", ""]
    return "\n".join(lines)


def main(cfg: AutoencoderEvalConfig) -> dict[str, Any]:
    from tqdm import tqdm

    from distill.eval.experts import load_experts

    split_ids = {d: high_ids(d, cfg.clips, cfg.skip) for d in cfg.data}  # a bad set fails before any loading
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)
    ae = load_autoencoder(str(cfg.autoencoder)).eval()
    experts: Experts = load_experts(cfg.experts)
    doc: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
                           "kind": "autoencoder round trip", "splits": []}
    cfg.out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=sum(len(v) for v in split_ids.values()), desc="round trip", unit="clip", dynamic_ncols=True) as bar:
        for data_dir, ids in split_ids.items():
            paths, decode_s, windows = [], 0.0, 0
            for cid in ids:
                clip = read_mp4(data_dir / f"{cid}.mp4")
                wav = data_dir / f"{cid}.wav"  # the sound as synthesised, as the runtime hears it (the mp4's is AAC)
                sound = read_audio(wav, SAMPLE_RATE) if wav.is_file() else clip.audio
                frames, secs = round_trip(ae, clip.frames, load_reference(data_dir / f"{cid}.png", ae.cfg.image_size), sound)
                decode_s += secs
                windows += -(-len(frames) // WINDOW)
                path = cfg.out / "videos" / data_dir.name / f"{cid}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_mp4(path, frames, clip.audio, fps=round(clip.fps))
                paths.append(path)
                bar.update(1)
            report, _ = score_videos(paths, experts, ScoreConfig(ground_truth=data_dir))
            doc["splits"].append({
                "split": data_dir.name, "data": str(data_dir), "ids": ids,
                "ground_truth": score_ground_truth(data_dir, ids, experts, WINDOW),
                "settings": [{"name": "default", "nfe_per_window": 0, "ms_per_window": 1000 * decode_s / max(1, windows),
                              "summary": report["summary"], "clips": report["clips"]}],
            })
    with atomic_path(cfg.out / "teacher_eval.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    with atomic_path(cfg.out / "autoencoder_eval.md") as tmp:
        tmp.write_text(markdown(doc))
    return doc


def parse_args(argv: list[str] | None = None) -> AutoencoderEvalConfig:
    d = AutoencoderEvalConfig(data=(), autoencoder=Path("."), out=Path("."))
    p = argparse.ArgumentParser(prog="python -m distill.autoencoder_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, action="append", required=True, help="corpus split folder; repeat for more splits")
    p.add_argument("--autoencoder", type=Path, required=True, help="checkpoint stem: <dir>/autoencoder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--clips", type=int, default=d.clips, help="first N high clips per split")
    p.add_argument("--skip", type=int, default=d.skip, help="leave out the first N high clips")
    p.add_argument("--experts", type=Path, default=d.experts)
    p.add_argument("--threads", type=int, default=d.threads)
    a = p.parse_args(argv)
    return AutoencoderEvalConfig(data=tuple(a.data), autoencoder=a.autoencoder, out=a.out, clips=a.clips, skip=a.skip,
                                 experts=a.experts, threads=a.threads)


def cli(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        doc = main(cfg)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
