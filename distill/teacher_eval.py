"""A teacher or student checkpoint measured with the harness, with a sweep of its two guidance scales.

    python -m distill.teacher_eval --data corpus/test --data corpus/openset --out out/teacher_eval_sweep

For the first N `high` clips of each split it renders every clip at the default scales, at each s_audio
(s_ref held at its default) and at each s_ref (s_audio held at its default), all from the same noise seed so
that the scales are all that differs, scores each setting against the ground truth with the harness, and
writes teacher_eval.json, teacher_eval.md and guidance_sweep.png. The model is loaded once; NFE are counted
at the denoiser and wall time is taken per window while rendering. A student folder (student.*) renders
with its own K steps whatever --steps says.

`--decoder PATH` (repeatable) also decodes every window's latents with another autoencoder of the same latent
space (a decoder fine-tune) and scores those videos under OUT/decoder_<name>/ in the same layout: decoders
compared clip by clip on the very same samples, at the cost of decoding and scoring only.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch

import fada_stream
from distill.data.manifest import read_manifest
from distill.data.video_io import atomic_path
from distill.eval.experts import DEFAULT_DIR, Experts
from distill.eval.score import ScoreConfig, score_videos
from fada_stream.generator import WindowModel, decode_images
from fada_stream.model import ModelConfig
from fada_stream.reference import load_reference
from fada_stream.sampling import TeacherSampling
from fada_stream.stream import StreamConfig, render_offline
from fada_stream.video import read_audio, write_mp4

DEFAULT_CHECKPOINT = Path(fada_stream.__file__).parent / "assets" / "teacher"  # the bundled teacher, as render uses
COLUMNS = (  # (summary key, table header)
    ("sync_c", "Sync-C"), ("sync_d", "Sync-D"), ("abs_offset", "abs offset"), ("mouth_corr", "mouth_corr"),
    ("closed_in_silence", "closed_in_silence"), ("identity_sim", "identity_sim"), ("seam_jitter", "seam_jitter"),
)
Sweep = Literal["s_audio", "s_ref"]


@dataclass(frozen=True)
class TeacherEvalConfig:
    data: tuple[Path, ...]  # corpus split folders (manifest.jsonl + <id>.wav/.png/.mp4/.json)
    out: Path
    clips: int = 4  # first N high clips per split: 9 settings x 4 clips x 2 splits fits ~20 min on 2 CPU cores
    skip: int = 0  # leave out the first `skip` high clips: a fresh set to confirm what the first ones selected
    steps: int = 10  # the first teacher's measured setting (docs/models.md); FADA's 25 costs 2.5x on CPU
    method: Literal["euler", "heun"] = "euler"
    s_audio: tuple[float, ...] = (1.0, 2.0, 4.0, 6.0)
    s_ref: tuple[float, ...] = (1.0, 2.0, 4.0, 6.0)
    center: tuple[float, float] | None = None  # (s_ref, s_audio) of the "default" row and held by each sweep; None: TeacherSampling's
    checkpoint: Path = DEFAULT_CHECKPOINT
    experts: Path = DEFAULT_DIR
    seed: int = 0  # one noise seed for every setting: common random numbers make the sweep a paired comparison
    audio_boost: float = 0.0  # token students: one more pass of audio guidance (generator.Guidance)
    threads: int = 2
    decoders: tuple[Path, ...] = ()  # more autoencoders (same encoder) that decode the same latents, scored apart
    s_audio_early: float | None = None  # every setting with an audio guidance interval (sampling.guidance_interval)
    early_from: float = 0.5
    ref_mouth_drop: bool = False  # the reference's mouth tokens (MOUTH_BOX) replaced by the null reference's (teacher only)
    mouth_drop_from: float = 0.0  # ... at flow times t >= this only (0: every step; generator.Guidance.mouth_drop_from)
    backend: Literal["torch", "onnx"] = "torch"  # torch: figures comparable across sessions; onnx: the renderer's CPU default


@dataclass(frozen=True)
class Setting:
    name: str  # "default", "s_audio=4", "s_ref=2"
    s_ref: float
    s_audio: float

    @property
    def folder(self) -> str:
        return f"s_ref{self.s_ref:g}_s_audio{self.s_audio:g}"


@dataclass
class Clip:
    id: str
    audio: np.ndarray  # (N,) float32 at the model's sample rate
    reference: np.ndarray  # (S, S, 3) uint8


@dataclass
class RenderStats:
    paths: list[Path] = field(default_factory=list)
    windows: int = 0
    nfe: int = 0  # denoiser evaluations, one per batch row (3 per step: the guidance branches)
    sampling_s: float = 0.0  # wall time inside the window loop (reference encode included, decode not)
    render_s: float = 0.0  # whole renders, decode included


#################################################################################
#                                   Settings                                    #
#################################################################################


def guidance_settings(default: TeacherSampling, s_audio: tuple[float, ...], s_ref: tuple[float, ...]) -> list[Setting]:
    """The default, then each s_audio at the default s_ref, then each s_ref at the default s_audio; no pair twice."""
    candidates = [Setting("default", default.s_ref, default.s_audio)]
    candidates += [Setting(f"s_audio={a:g}", default.s_ref, float(a)) for a in s_audio]
    candidates += [Setting(f"s_ref={r:g}", float(r), default.s_audio) for r in s_ref]
    unique: dict[tuple[float, float], Setting] = {}
    for s in candidates:
        unique.setdefault((s.s_ref, s.s_audio), s)
    return list(unique.values())


def sweep_points(rows: list[dict[str, Any]], default: TeacherSampling, sweep: Sweep, key: str) -> tuple[list[float], list[float]]:
    """(scales, values of `key`) along one sweep, the default included, sorted by scale; unscored points left out."""
    held = "s_ref" if sweep == "s_audio" else "s_audio"
    pts = sorted((r[sweep], r["summary"][key]) for r in rows
                 if r[held] == getattr(default, held) and r["summary"].get(key) is not None)
    return [p[0] for p in pts], [p[1] for p in pts]


def high_ids(data_dir: Path, n: int, skip: int = 0) -> list[str]:
    """Ids of high clips skip .. skip + n - 1 in manifest order."""
    if n < 1 or skip < 0:
        raise ValueError(f"--clips must be >= 1 and --skip >= 0, got {n} and {skip}")
    ids = [r["id"] for r in read_manifest(data_dir) if r["tier"] == "high"]
    if len(ids) < skip + n:
        raise ValueError(f"{data_dir} has {len(ids)} high clips; --skip {skip} --clips {n} needs {skip + n}")
    return ids[skip:skip + n]


def load_clips(data_dir: Path, ids: list[str], cfg: ModelConfig) -> list[Clip]:
    return [Clip(cid, read_audio(data_dir / f"{cid}.wav", cfg.audio.sample_rate),
                 load_reference(data_dir / f"{cid}.png", cfg.ae.image_size)) for cid in ids]


#################################################################################
#                              Rendering, scoring                               #
#################################################################################


def render_setting(
    model: WindowModel,
    clips: list[Clip],
    sampling: TeacherSampling,
    out_dir: Path,
    seed: int = 0,
    progress: Callable[[], None] | None = None,
    audio_boost: float = 0.0,
    extra: dict[str, tuple[Any, Path]] | None = None,
) -> tuple[RenderStats, dict[str, RenderStats]]:
    """Render every clip to `out_dir/<id>.mp4` (with its audio); count NFE at the denoiser and time each window.

    `extra` maps a name to (autoencoder, folder): each window's latents are decoded with it as well and written
    to `folder/<id>.mp4`; their decoding is timed apart, so the model's own figures do not include it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = RenderStats()
    extra = extra or {}
    extra_stats = {n: RenderStats() for n in extra}
    tee: dict[str, list[np.ndarray]] = {n: [] for n in extra}  # the current clip's frames, window by window
    tee_s = [0.0]
    for _, folder in extra.values():
        folder.mkdir(parents=True, exist_ok=True)

    denoiser = model.model  # a torch module or onnxruntime's OrtDenoiser: counted the same way, at the call

    def counted(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        stats.nfe += x.shape[0]  # x (3B, F, C, h, w): one row per guidance branch
        return denoiser(x, *args, **kwargs)

    own_decode = model.decode

    def decode(latents: torch.Tensor, reference: np.ndarray | None = None, mel: torch.Tensor | None = None) -> np.ndarray:
        t = time.perf_counter()
        for n, (codec, _) in extra.items():
            tee[n].append(decode_images(codec, latents, reference, model.device, n, mel))  # (n_new, H, W, 3)
        tee_s[0] += time.perf_counter() - t
        return own_decode(latents, reference, mel)

    cfg = model.cfg
    stream = StreamConfig(steps=sampling.steps, s_ref=sampling.s_ref, s_audio=sampling.s_audio, audio_boost=audio_boost,
                          adaptive=False, vad=False, seed=seed, s_audio_early=sampling.s_audio_early, early_from=sampling.early_from,
                          mouth_drop_from=sampling.mouth_drop_from)
    model.model = counted  # an instance attribute for the renders below, given back in `finally`
    if extra:
        model.decode = decode  # an instance attribute over the method, removed below
    try:
        for clip in clips:
            for frames_of in tee.values():
                frames_of.clear()
            tee_s[0] = 0.0
            stamps = [time.perf_counter()]
            frames, _ = render_offline(model, clip.reference, clip.audio, cfg.audio.sample_rate, stream,
                                       lambda _: stamps.append(time.perf_counter()))  # (T, H, W, 3)
            stats.render_s += time.perf_counter() - stamps[0] - tee_s[0]
            stats.sampling_s += stamps[-1] - stamps[0] - tee_s[0]
            stats.windows += len(stamps) - 1
            path = out_dir / f"{clip.id}.mp4"
            write_mp4(path, frames, clip.audio, fps=cfg.fps, sample_rate=cfg.audio.sample_rate)
            stats.paths.append(path)
            for n, (_, folder) in extra.items():
                other = np.concatenate(tee[n])  # (T, H, W, 3): offline rendering decodes every frame once, in order
                if other.shape != frames.shape:
                    raise RuntimeError(f"decoder {n}: {other.shape[0]} frames for the model's {frames.shape[0]}")
                write_mp4(folder / f"{clip.id}.mp4", other, clip.audio, fps=cfg.fps, sample_rate=cfg.audio.sample_rate)
                extra_stats[n].paths.append(folder / f"{clip.id}.mp4")
            if progress:
                progress()
    finally:
        model.model = denoiser
        if extra:
            del model.decode
    for es in extra_stats.values():  # the same samples: only the decoder differs
        es.windows, es.nfe, es.sampling_s, es.render_s = stats.windows, stats.nfe, stats.sampling_s, stats.render_s
    return stats, extra_stats


def load_decoders(paths: tuple[Path, ...], model: WindowModel) -> dict[str, Any]:
    """name -> autoencoder for each of `paths` (a folder holding autoencoder.* or a checkpoint stem), checked to
    share the model's encoder and latent statistics: another latent space would decode noise, not a comparison."""
    from fada_stream.model.autoencoder import Autoencoder, load_autoencoder

    own = model.codec
    if paths and not isinstance(own, Autoencoder):
        raise ValueError("--decoder compares our autoencoders: load the model with the torch backend")
    out: dict[str, Any] = {}
    for p in paths:
        stem = p / "autoencoder" if p.is_dir() else p
        name = stem.parent.name if stem.name == "autoencoder" else stem.name
        if name in out:
            raise ValueError(f"--decoder {p}: a second decoder named {name}")
        ae = load_autoencoder(str(stem), cfg=own.cfg).to(model.device)
        if ae.audio_aware and not ae.cfg.hears(model.cfg.audio):
            raise ValueError(f"--decoder {p}: its audio window differs from the model's audio encoder's")
        mine, theirs = own.encoder.state_dict(), ae.encoder.state_dict()
        same = mine.keys() == theirs.keys() and all(torch.equal(mine[k].cpu(), theirs[k].cpu()) for k in mine)
        if not same:
            raise ValueError(f"--decoder {p}: its encoder differs from the model's, so it decodes another latent space")
        out[name] = ae
    return out


def setting_row(setting: Setting, stats: RenderStats, report: dict[str, Any], cfg: ModelConfig) -> dict[str, Any]:
    return {
        **asdict(setting),
        "windows": stats.windows,
        "nfe": stats.nfe,
        "nfe_per_window": stats.nfe / max(1, stats.windows),
        "window_frames": cfg.dit.frames,
        "ms_per_window": 1000 * stats.sampling_s / max(1, stats.windows),
        "render_s": stats.render_s,
        "summary": report["summary"],
        "clips": report["clips"],
    }


def score_ground_truth(data_dir: Path, ids: list[str], experts: Experts, stride: int) -> dict[str, Any]:
    """The corpus clips themselves (reference and metadata beside them), for the ratios."""
    report, _ = score_videos([data_dir / f"{cid}.mp4" for cid in ids], experts, ScoreConfig(window_stride=stride))
    return report


#################################################################################
#                                    Outputs                                    #
#################################################################################


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def markdown(splits: list[dict[str, Any]]) -> str:
    """One table per split: the ground truth's row, then each setting with its ratios to ground truth and cost."""
    head = ["setting", "s_ref", "s_audio", *(h for _, h in COLUMNS), "Sync-C / GT", "identity / GT", "NFE / window",
            "ms / window"]
    lines = ["# Teacher evaluation: guidance sweep", ""]
    for sp in splits:
        gt = sp["ground_truth"]["summary"]
        lines += [f"## {sp['split']} ({len(sp['ids'])} high clips: {', '.join(sp['ids'])})", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines.append("| ground truth | - | - | " + " | ".join(_fmt(gt.get(k)) for k, _ in COLUMNS) + " | 1.000 | 1.000 | - | - |")
        for r in sp["settings"]:
            s = r["summary"]
            cells = [r["name"], f"{r['s_ref']:g}", f"{r['s_audio']:g}", *(_fmt(s.get(k)) for k, _ in COLUMNS),
                     _fmt(_ratio(s.get("sync_c"), gt.get("sync_c"))), _fmt(_ratio(s.get("identity_sim"), gt.get("identity_sim"))),
                     _fmt(r["nfe_per_window"], 0), _fmt(r["ms_per_window"], 0)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        errors = [c["error"] for r in sp["settings"] for c in r["clips"] if c.get("error")]
        if errors:
            lines += [f"{len(errors)} clip(s) failed to score, first: {errors[0]}", ""]
    lines += [
        "Every setting renders the same clips from the same noise seed. NFE / window is counted at the denoiser "
        "(one per batch row: 3 guidance branches per step); ms / window is the mean wall time of one "
        "window (16 frames for the bundled teacher, 12 of them new) inside the sampling loop, VAE decode excluded. "
        "abs offset is in frames; seam_jitter 1.0 means invisible window seams.",
        "",
    ]
    return "\n".join(lines)


def plot_sweep(splits: list[dict[str, Any]], default: TeacherSampling, path: Path) -> None:
    """Sync-C and identity_sim against scale, one line per sweep, one row per split; ground truth dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(splits), 2, figsize=(10, 3.4 * len(splits)), squeeze=False)
    for row, sp in zip(axes, splits):
        for ax, key in zip(row, ("sync_c", "identity_sim")):
            for sweep in ("s_audio", "s_ref"):
                xs, ys = sweep_points(sp["settings"], default, sweep, key)
                ax.plot(xs, ys, "o-", label=f"{sweep} (other at default)")
            if (g := sp["ground_truth"]["summary"].get(key)) is not None:
                ax.axhline(g, color="k", ls="--", lw=0.8, label="ground truth")
            ax.set_title(f"{sp['split']}: {key}", fontsize=9)
            ax.set_xlabel("guidance scale", fontsize=8)
            ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_outputs(doc: dict[str, Any], default: TeacherSampling, out: Path) -> list[Path]:
    """teacher_eval.json, teacher_eval.md and guidance_sweep.png (rewritten as results arrive)."""
    paths = [out / "teacher_eval.json", out / "teacher_eval.md", out / "guidance_sweep.png"]
    with atomic_path(paths[0]) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")  # default=str: the config's paths
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(markdown(doc["splits"]))
    plot_sweep(doc["splits"], default, paths[2])
    return paths


#################################################################################
#                                      CLI                                      #
#################################################################################


def main(cfg: TeacherEvalConfig) -> tuple[dict[str, Any], list[Path]]:
    from tqdm import tqdm

    from distill.eval.experts import load_experts
    from fada_stream.generator import Guidance, load_window_model

    t0 = time.time()
    split_ids = {Path(d): high_ids(Path(d), cfg.clips, cfg.skip) for d in cfg.data}  # before any loading: a bad set fails at once
    if not 0.0 <= cfg.mouth_drop_from < 1.0:  # checked with or without --ref-mouth-drop: a typo is never ignored
        raise ValueError(f"--mouth-drop-from must be a flow time in [0, 1), got {cfg.mouth_drop_from!r}")
    if cfg.mouth_drop_from > 0 and not cfg.ref_mouth_drop:
        raise ValueError(f"--mouth-drop-from must come with --ref-mouth-drop, got {cfg.mouth_drop_from!r} alone")
    mouth_drop = cfg.mouth_drop_from if cfg.ref_mouth_drop else None
    guidance = Guidance(1.0, 1.0, 0.0, cfg.s_audio_early, cfg.early_from, mouth_drop)  # a bad interval or drop fails at once too
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # denormal activations slow CPU kernels many times over
    model = load_window_model(cfg.checkpoint, "cpu", method=cfg.method, backend=cfg.backend)
    mcfg = model.cfg
    try:
        model.check_guidance(guidance)
    except ValueError as e:
        raise ValueError(f"--ref-mouth-drop: {e}") from e
    decoders = load_decoders(cfg.decoders, model)
    experts = load_experts(cfg.experts)
    default = TeacherSampling(steps=cfg.steps, method=cfg.method)
    if cfg.center is not None:
        default = TeacherSampling(steps=cfg.steps, method=cfg.method, s_ref=cfg.center[0], s_audio=cfg.center[1])
    settings = guidance_settings(default, cfg.s_audio, cfg.s_ref)
    stride = mcfg.dit.frames - mcfg.dit.motion_frames  # new frames per window: where seams fall
    doc: dict[str, Any] = {"config": asdict(cfg), "default": asdict(default), "splits": []}
    extra_docs = {n: {"config": asdict(cfg), "default": asdict(default), "decoder": str(p), "splits": []}
                  for n, p in zip(decoders, cfg.decoders)}
    paths: list[Path] = []
    cfg.out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=sum(len(ids) for ids in split_ids.values()) * len(settings), desc="rendering", unit="clip",
              dynamic_ncols=True) as bar:
        for data_dir, ids in split_ids.items():
            clips = load_clips(data_dir, ids, mcfg)
            split = {"split": data_dir.name, "data": str(data_dir), "ids": ids,
                     "ground_truth": score_ground_truth(data_dir, ids, experts, stride), "settings": []}
            doc["splits"].append(split)
            for d in extra_docs.values():
                d["splits"].append({**split, "settings": []})
            for s in settings:
                bar.set_postfix_str(f"{data_dir.name} {s.name}")
                sampling = TeacherSampling(steps=cfg.steps, method=cfg.method, s_ref=s.s_ref, s_audio=s.s_audio,
                                           s_audio_early=cfg.s_audio_early, early_from=cfg.early_from, mouth_drop_from=mouth_drop)
                extra = {n: (ae, cfg.out / f"decoder_{n}" / "videos" / data_dir.name / s.folder) for n, ae in decoders.items()}
                stats, extra_stats = render_setting(model, clips, sampling, cfg.out / "videos" / data_dir.name / s.folder,
                                                    cfg.seed, lambda: bar.update(1), cfg.audio_boost, extra)
                score = ScoreConfig(ground_truth=data_dir, window_stride=stride)
                report, _ = score_videos(stats.paths, experts, score)
                split["settings"].append(setting_row(s, stats, report, mcfg))
                doc["wall_s"] = time.time() - t0
                paths = write_outputs(doc, default, cfg.out)
                for n, es in extra_stats.items():
                    report, _ = score_videos(es.paths, experts, score)
                    extra_docs[n]["splits"][-1]["settings"].append(setting_row(s, es, report, mcfg))
                    extra_docs[n]["wall_s"] = doc["wall_s"]
                    paths += write_outputs(extra_docs[n], default, cfg.out / f"decoder_{n}")
    return doc, paths


def parse_args(argv: list[str] | None = None) -> TeacherEvalConfig:
    d = TeacherEvalConfig(data=(), out=Path("."))
    p = argparse.ArgumentParser(prog="python -m distill.teacher_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, action="append", required=True, help="corpus split folder; repeat for more splits")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--clips", type=int, default=d.clips, help="first N high clips per split")
    p.add_argument("--skip", type=int, default=d.skip, help="leave out the first N high clips (a fresh confirmation set)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--method", choices=["euler", "heun"], default=d.method)
    p.add_argument("--checkpoint", type=Path, default=d.checkpoint, help="folder with teacher.* and autoencoder.*")
    p.add_argument("--experts", type=Path, default=d.experts)
    p.add_argument("--s-audio", type=float, nargs="+", default=list(d.s_audio), help="s_audio sweep (s_ref at its default)")
    p.add_argument("--s-ref", type=float, nargs="+", default=list(d.s_ref), help="s_ref sweep (s_audio at its default)")
    p.add_argument("--center", type=float, nargs=2, metavar=("S_REF", "S_AUDIO"), default=None,
                   help="scales of the default row, held by the sweeps (default: the teacher's 1.5 2.5)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--audio-boost", type=float, default=d.audio_boost,
                   help="token students: one more pass of audio guidance on their output (0: one pass)")
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--decoder", type=Path, action="append", default=[],
                   help="also decode the same latents with this autoencoder (folder or stem; same encoder) and score them "
                        "under OUT/decoder_<name>/; repeatable")
    p.add_argument("--s-audio-early", type=float, default=d.s_audio_early,
                   help="an audio guidance interval in every setting: this audio scale at flow times >= --early-from")
    p.add_argument("--early-from", type=float, default=d.early_from)
    p.add_argument("--ref-mouth-drop", action="store_true",
                   help="replace the reference's mouth tokens by the null reference's in every pass (teacher only)")
    p.add_argument("--mouth-drop-from", type=float, default=d.mouth_drop_from,
                   help="with --ref-mouth-drop: drop them at flow times t >= this only (high noise; 0: every step); "
                        "--s-audio-early 6 --ref-mouth-drop --mouth-drop-from 0.5 is what fada_stream.render samples the teacher with")
    p.add_argument("--backend", choices=["torch", "onnx"], default=d.backend,
                   help="torch (default: figures comparable across sessions) or onnx (onnxruntime: the renderer's CPU default)")
    a = p.parse_args(argv)
    return TeacherEvalConfig(data=tuple(a.data), out=a.out, clips=a.clips, skip=a.skip, steps=a.steps, method=a.method,
                             s_audio=tuple(a.s_audio), s_ref=tuple(a.s_ref), center=tuple(a.center) if a.center else None, checkpoint=a.checkpoint, experts=a.experts,
                             seed=a.seed, threads=a.threads, audio_boost=a.audio_boost, decoders=tuple(a.decoder),
                             s_audio_early=a.s_audio_early, early_from=a.early_from, ref_mouth_drop=a.ref_mouth_drop,
                             mouth_drop_from=a.mouth_drop_from, backend=a.backend)


def cli(argv: list[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from fada_stream.checkpoint import CheckpointError
    from fada_stream.reference import ReferenceError
    from fada_stream.video import MediaError

    cfg = parse_args(argv)
    try:
        doc, paths = main(cfg)
    except (CheckpointError, MediaError, ReferenceError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(doc["splits"]))
    print(f"done in {doc.get('wall_s', 0) / 60:.1f} min; wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
