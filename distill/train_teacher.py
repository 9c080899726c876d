"""Train the teacher: a video DiT on autoencoder latents, flow matching with condition dropout.

    python -m distill.train_teacher --preset tiny --data corpus/train --autoencoder runs/autoencoder/autoencoder
    torchrun --nproc_per_node 2 -m distill.train_teacher --data cache-high.safetensors ...

Trains on the `high` tier only (FADA: the teacher learns from clean data; the student sees the rest).
The cache's frames are encoded once at start, so each step touches only latents. Writes
`<out>/teacher.{safetensors,json}` (EMA weights, full model config, the command), a copy of the
autoencoder beside it (so `<out>` is what `fada_stream.render --checkpoint` reads), `<out>/state.*`
to resume from, and `<out>/log.jsonl`.

`--init DIR` starts from a trained teacher folder (same DiT and autoencoder) instead of fresh weights, and
`--restyle P [--restyle-shape true]` draws a share P of the training windows from a copy of the corpus in
one random look (and shape) per identity, reference and window alike (distill/data/restyle.py): a second
stage that teaches appearance copying on colours and patterns the corpus lacks (open-set references).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, RandomSampler, default_collate
from tqdm import tqdm

from fada_stream.mouth_region import region_tokens
from distill.data.restyle import restyle_cache_frames
from distill.data.windows import Cache, WindowDataset
from distill.train_autoencoder import resolve_cache
from distill.train_common import (
    Budget, any_rank, autocast, command_line, has_run_state, load_run_state, make_ema, mean_across,
    optimizer_step, parse_config, save_run_state, start_run, teardown_distributed,
)
from fada_stream.checkpoint import save_checkpoint
from fada_stream.model import TEACHER_KIND, ModelConfig, build_teacher, load_autoencoder, load_teacher, preset
from fada_stream.model.autoencoder import LatentCodec, images_to_unit, latent_space
from fada_stream.sampling import add_noise, sample_train_t, velocity_target

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: str = "corpus/train"  # corpus folder (high tier is decoded once into <out>) or a cache file
    autoencoder: str = "runs/autoencoder/autoencoder"  # our checkpoint stem, or a diffusers folder (base preset)
    out: str = "runs/teacher"
    preset: Literal["tiny", "base"] = "tiny"
    # DiT overrides (0 = the preset's value): smoke tests and CPU runs shrink the model.
    width: int = 0
    depth: int = 0
    heads: int = 0
    frames: int = 0
    motion_frames: int = 0
    init: str = ""  # a teacher folder to start from (a second stage); "" = fresh weights
    restyle: float = 0.0  # share of training windows drawn from a recoloured copy of the data (distill/data/restyle.py)
    restyle_shape: bool = False  # the restyled copy also stretched, shifted and textured per identity
    steps: int = 100000
    batch: int = 8  # windows per step per process
    lr: float = 3e-4  # a 5M-param DiT tolerates more than DiT-XL's 1e-4
    warmup: int = 500
    weight_decay: float = 0.0
    ema: float = 0.999
    # Condition dropout (as in FADA's teacher): these shares of samples train the unconditional and the
    # reference-only branches of the three-branch guidance; the rest see reference + audio.
    p_uncond: float = 0.1
    p_drop_audio: float = 0.1
    # Share of windows whose reference loses its mouth tokens (fada_stream.mouth_region, replaced by the null
    # reference's): the teacher copies the reference's mouth on unseen faces, and dropping it at sampling time lifts
    # their lip sync at a cost in identity (docs/models.md, "The sampler's side"); trained this way it must draw the
    # mouth from the audio and the motion frames. 0: off, and the random draws are those of a run without it.
    p_ref_mouth_drop: float = 0.0
    # Share of windows trained without motion frames, as a stream's first window is generated.
    p_no_motion: float = 0.15
    # At run time motion frames are the previous window's generated latents, not ground truth:
    # a little noise on them in training keeps the model from trusting them blindly (exposure bias).
    motion_noise: float = 0.05
    log_every: int = 50
    workers: int = 0  # DataLoader processes; 2-4 keep a GPU fed at large batches
    eval_every: int = 1000
    save_every: int = 1000
    max_minutes: float = 0.0  # stop cleanly (and save) after this much wall time; 0 = no limit
    device: str = "auto"
    bf16: bool = True  # bf16 autocast on CUDA
    seed: int = 0


def model_config(cfg: TrainConfig, codec: LatentCodec, codec_kind: str) -> ModelConfig:
    overrides = {k: getattr(cfg, k) for k in ("width", "depth", "heads", "frames", "motion_frames") if getattr(cfg, k)}
    mc = preset(cfg.preset, **overrides)
    if codec_kind == "diffusers":
        mc.autoencoder, mc.autoencoder_path = "diffusers", cfg.autoencoder
    else:
        mc.ae = dataclasses.replace(codec.cfg)
    mc.dit.latent_channels = codec.latent_channels
    mc.dit.latent_size = mc.ae.image_size // codec.downsample
    return mc


@torch.no_grad()
def encode_all(codec: LatentCodec, frames: torch.Tensor, device: torch.device, batch: int = 256, desc: str = "encoding") -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, C, h, w) float16 standardised latents, on the CPU."""
    out = []
    for i in tqdm(range(0, len(frames), batch), desc=desc, leave=False, disable=len(frames) <= batch):
        out.append(codec.encode(images_to_unit(frames[i : i + batch].to(device))).half().cpu())
    return torch.cat(out)


def check_restyle(restyle: float, restyle_shape: bool) -> None:
    """The --restyle / --restyle-shape pair of train_teacher and distill, refused before any data is read."""
    if not 0.0 <= restyle <= 1.0:
        raise ValueError(f"--restyle is a share in [0, 1], got {restyle}")
    if restyle_shape and not restyle:
        raise ValueError("--restyle-shape shapes the restyled copy: give --restyle P > 0 too")


def window_datasets(cache: Cache, codec: LatentCodec, mc: ModelConfig, device: torch.device, seed: int, restyle: float = 0.0,
                    restyle_shape: bool = False) -> tuple[WindowDataset, WindowDataset]:
    """(training, held-out) views of one cache's windows as latents. With `restyle` > 0 that share of the
    training view's windows comes from a copy in one random look (and with `restyle_shape`, shape) per
    identity; the held-out view shares every tensor and never draws from it."""
    latents = encode_all(codec, cache.frames, device, desc=f"encoding {cache.tier} frames")  # (N, C, h, w) float16
    refs = encode_all(codec, cache.references, device)  # (I, C, h, w)
    alt = {}
    if restyle > 0:
        # The looks depend on a fixed seed (not the rank or run seed): every DDP rank sees the same restyled corpus.
        frames, references = restyle_cache_frames(cache.frames, cache.references, cache.frame_start, cache.clip_identity,
                                                  seed=1234, shape=restyle_shape)
        alt = dict(alt_latents=encode_all(codec, frames, device, desc=f"encoding restyled {cache.tier} frames"),
                   alt_ref_latents=encode_all(codec, references, device), p_alt=restyle)
        del frames, references
    ds = WindowDataset(cache, mc.dit.frames, mc.audio, latents=latents, ref_latents=refs, seed=seed, **alt)
    held = ds
    if alt:  # the same windows (mels and latents shared), never restyled, drawing from their own generator
        held = copy.copy(ds)
        held.p_alt, held.rng = 0.0, np.random.default_rng(seed)
    return ds, held


def split_clips(cache: Cache) -> tuple[list[int], list[int]]:
    """Every 20th clip is held out for evaluation when there are enough clips."""
    held = [c for c in range(cache.n_clips) if cache.n_clips >= 4 and c % 20 == 19]
    return [c for c in range(cache.n_clips) if c not in held], held or list(range(cache.n_clips))


def flow_loss(model, batch: dict, mc: ModelConfig, cfg: TrainConfig, gen: torch.Generator | None = None, t: torch.Tensor | None = None,
              drop: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Flow-matching velocity loss over the generated (non-motion) frames of a batch of windows."""
    x0, ref, mel = batch["x"], batch["ref"], batch["mel"]  # (B, F, C, h, w), (B, C, h, w), (B, n_mels, T)
    b, dev, m = x0.shape[0], x0.device, mc.dit.motion_frames
    rand = lambda *s: torch.rand(*s, generator=gen, device=dev)  # noqa: E731
    t = sample_train_t(b, dev, gen) if t is None else t  # (B,)
    noise = torch.randn(x0.shape, generator=gen, device=dev)  # (B, F, C, h, w)
    xt = add_noise(x0, noise, t)  # (B, F, C, h, w)
    has_motion = rand(b) >= cfg.p_no_motion  # (B,)
    motion = x0[:, :m] + cfg.motion_noise * torch.randn(x0[:, :m].shape, generator=gen, device=dev)  # (B, M, C, h, w)
    if drop is None:
        u = rand(b)
        drop = (u < cfg.p_uncond, u < cfg.p_uncond + cfg.p_drop_audio)
    part = {}
    if cfg.p_ref_mouth_drop > 0:
        mouth = region_tokens(mc.dit.grid).to(dev)  # (N,)
        part["ref_drop"] = (rand(b) < cfg.p_ref_mouth_drop)[:, None] & mouth[None]  # (B, N)
    v = model(xt, t, ref, mel, motion=motion, motion_mask=has_motion, drop_ref=drop[0], drop_audio=drop[1], **part)  # (B, F, C, h, w)
    gen_frames = torch.ones(b, x0.shape[1], device=dev)
    gen_frames[:, :m] = (~has_motion).float()[:, None]  # (B, F): frames the model had to generate
    err = (v.float() - velocity_target(x0, noise)).square().mean(dim=(2, 3, 4))  # (B, F)
    return (err * gen_frames).sum() / gen_frames.sum()


@torch.no_grad()
def evaluate(ema, batches: list[dict], mc: ModelConfig, cfg: TrainConfig, device: torch.device) -> dict[str, float]:
    """Held-out loss at fixed times and noise, with all conditions, and the loss added by dropping each.

    audio_gain > 0 means the model listens; ref_gain > 0 means it copies the reference.
    """
    eval_cfg = dataclasses.replace(cfg, p_no_motion=0.0, motion_noise=0.0)
    out = {"full": 0.0, "no_audio": 0.0, "uncond": 0.0}
    for i, batch in enumerate(batches):
        b = batch["x"].shape[0]
        t = torch.linspace(0.1, 0.9, b, device=device)
        no, yes = torch.zeros(b, dtype=torch.bool, device=device), torch.ones(b, dtype=torch.bool, device=device)
        for name, drop in (("full", (no, no)), ("no_audio", (no, yes)), ("uncond", (yes, yes))):
            gen = torch.Generator(device=device).manual_seed(1234 + i)
            with autocast(device, cfg.bf16):
                out[name] += flow_loss(ema, batch, mc, eval_cfg, gen, t, drop).item() / len(batches)
    return {"eval_loss": out["full"], "audio_gain": out["no_audio"] - out["full"], "ref_gain": out["uncond"] - out["no_audio"]}


def _seed_worker(_: int) -> None:
    """Each DataLoader process draws its own references (a forked numpy generator would repeat them)."""
    info = torch.utils.data.get_worker_info()
    info.dataset.dataset.rng = np.random.default_rng(info.seed % 2**32)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def main(cfg: TrainConfig) -> Path:
    check_restyle(cfg.restyle, cfg.restyle_shape)
    d, out = start_run(cfg.device, cfg.seed, cfg.out)
    budget = Budget(cfg.max_minutes)

    codec_kind = "diffusers" if Path(cfg.autoencoder).is_dir() else "ours"
    codec = load_autoencoder(cfg.autoencoder, kind=codec_kind).to(d.device)
    mc = model_config(cfg, codec, codec_kind)
    start = None
    if cfg.init:  # checked before the cache is read and encoded
        start, _, init_mc = load_teacher(cfg.init)
        # Same denoiser shape and the same latent space (the autoencoder's config carries its measured statistics;
        # a decoder fine-tune, reference-aware or not, keeps it).
        if (asdict(init_mc.dit) != asdict(mc.dit) or latent_space(init_mc.ae) != latent_space(mc.ae)
                or init_mc.autoencoder != mc.autoencoder):
            raise ValueError(f"--init {cfg.init}: a teacher of another model or autoencoder than --preset {cfg.preset} "
                             f"with --autoencoder {cfg.autoencoder} and these overrides")
    cache = resolve_cache(cfg.data, out, "high", d)
    if cache.tier != "high":
        raise ValueError(f"{cfg.data}: the teacher trains on the high tier only; this cache holds tier {cache.tier!r}")
    ds, held_ds = window_datasets(cache, codec, mc, d.device, cfg.seed + d.rank, cfg.restyle, cfg.restyle_shape)
    train_clips, held_clips = (set(c) for c in split_clips(cache))
    train_set = torch.utils.data.Subset(ds, [i for i, (c, _) in enumerate(ds.index) if c in train_clips])
    eval_windows = [i for i, (c, _) in enumerate(ds.index) if c in held_clips][:: max(1, len(ds.index) // 256)][:64]
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + d.rank)
    sampler = RandomSampler(train_set, replacement=True, num_samples=1 << 40, generator=gen)
    loader = iter(DataLoader(train_set, batch_size=cfg.batch, sampler=sampler, num_workers=cfg.workers, worker_init_fn=_seed_worker,
                             persistent_workers=cfg.workers > 0, pin_memory=d.device.type == "cuda"))
    eval_batches = [to_device(default_collate([held_ds[i] for i in eval_windows[j : j + 16]]), d.device) for j in range(0, len(eval_windows), 16)]

    model = build_teacher(mc).to(d.device)
    if start is not None:
        model.load_state_dict(start.state_dict())
        del start
    ema = make_ema(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
    step = 0
    if has_run_state(out):
        step, _ = load_run_state(out, "teacher", model, ema, opt)
        log.info("resumed %s at step %d", out, step)
    ddp = DDP(model) if d.world > 1 else model
    meta = {"command": command_line(), "train_config": asdict(cfg), "autoencoder": cfg.autoencoder}
    run_cfg = {"train": asdict(cfg), "model": asdict(mc)}
    if d.master and codec_kind == "ours" and Path(cfg.autoencoder).with_suffix(".json").resolve() != (out / "autoencoder.json").resolve():
        for ext in (".json", ".safetensors"):
            shutil.copyfile(Path(cfg.autoencoder).with_suffix(ext), out / f"autoencoder{ext}")

    bar = tqdm(total=cfg.steps, initial=step, desc="teacher", disable=not d.master)
    logf = open(out / "log.jsonl", "a") if d.master else None
    while step < cfg.steps:
        batch = to_device(next(loader), d.device)
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(d.device, cfg.bf16):
            loss = flow_loss(ddp, batch, mc, cfg)
        gnorm = optimizer_step(loss, model, opt, ema, cfg.ema, step)
        step += 1
        bar.update(1)

        stop = any_rank(budget.spent(), d)
        last = stop or step == cfg.steps
        if step % cfg.log_every == 0 or last:
            row = {"step": step, "loss": round(mean_across(loss.item(), d), 5), "grad_norm": round(gnorm, 4), "lr": lr}
            if step % cfg.eval_every == 0 or last:
                row.update({k: round(v, 5) for k, v in evaluate(ema, eval_batches, mc, cfg, d.device).items()})
            bar.set_postfix({k: v for k, v in row.items() if k in ("loss", "eval_loss", "audio_gain")})
            if logf:
                logf.write(json.dumps(row) + "\n")
                logf.flush()
        if d.master and (step % cfg.save_every == 0 or last):
            save_run_state(out, "teacher", run_cfg, model, ema, opt, step, meta)
            save_checkpoint(out / "teacher", TEACHER_KIND, mc, ema.state_dict(), meta={**meta, "step": step}, dtype=torch.float16)
        if stop:
            break
    bar.close()
    if logf:
        logf.close()
    teardown_distributed()
    return out / "teacher"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(parse_config(TrainConfig, description=__doc__.split("\n")[0]))
