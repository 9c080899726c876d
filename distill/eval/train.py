"""Training the three experts on a corpus folder: sync expert, face regressor, identity encoder.

The corpus is decoded once into memory; batches are sampled from it. Each expert is written to
`out` as safetensors + JSON whose meta records the command that made it.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from distill.eval.crops import mouth_box, to_input
from distill.eval.data import Corpus, load_corpus
from distill.eval.experts import DEFAULT_DIR, save_expert
from distill.eval.identity import CosFaceHead, IdentityConfig, IdentityEncoder
from distill.eval.regressor import PARAMS, FaceRegressor, RegressorConfig
from distill.eval.sync_expert import SyncConfig, SyncExpert

log = logging.getLogger(__name__)
MOUTH = tuple(PARAMS.index(p) for p in ("jaw", "width", "round"))  # the parameters lip sync is about


@dataclass
class TrainConfig:
    data: Path
    out: Path = DEFAULT_DIR
    # Step counts sized for one shared CPU core: ~7, 9 and 7 steps/s, about 20 minutes in all with decoding.
    sync_steps: int = 4000  # per-window 31-way offset accuracy ~0.92 on train by the end
    regressor_steps: int = 3000
    identity_steps: int = 1500  # train identities are separated long before; more steps only overfit
    batch: int = 48
    lr: float = 2e-3  # AdamW with 5% warmup and cosine decay; BatchNorm everywhere keeps it stable
    max_shift: int = 15  # hard negatives: the clip's own audio at every shift 1..15 frames, both ways
    tau: float = 0.07  # contrastive temperature (CLIP's initial value)
    speaking_share: float = 0.9  # windows drawn where someone speaks: silence matches silence at any shift
    aux_weight: float = 1.0  # mouth-parameter prediction from both sync towers (see train_sync)
    margin: int = 4  # px of random crop jitter around the mouth box
    max_clips: int | None = None
    seed: int = 0
    threads: int = 1  # 2 shared cores: with other jobs running, 1 thread measured 3x faster than 2 (0.19 vs 0.55 s/step)


# --------------------------------------------------------------------------- shared pieces


def _schedule(opt: torch.optim.Optimizer, steps: int, lr: float) -> torch.optim.lr_scheduler.LambdaLR:
    warm = max(1, steps // 20)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))


def _photometric(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per-sample contrast, per-channel brightness and, for a third of samples, a 2x down-up blur; x (B, ..., 3, H, W).

    Channel-wise shifts make colour a weaker cue than shape: a dark moustache must not read as an open mouth.
    """
    b = x.shape[0]
    shape = (b,) + (1,) * (x.dim() - 1)
    contrast = 1 + (torch.rand(shape, generator=g) - 0.5) * 0.4
    bright = (torch.rand((b,) + (1,) * (x.dim() - 4) + (3, 1, 1), generator=g) - 0.5) * 0.2
    x = x * contrast + bright
    blur = torch.rand(b, generator=g) < 0.33
    if blur.any():
        h, w = x.shape[-2:]
        y = x[blur].reshape(-1, 3, h, w)
        y = F.interpolate(F.interpolate(y, scale_factor=0.5, mode="bilinear", antialias=True), size=(h, w), mode="bilinear")
        x[blur] = y.reshape(x[blur].shape)
    return x.clamp(-1, 1)


def _jittered_crops(corpus: Corpus, idx: np.ndarray, rng: np.random.Generator, hw: tuple[int, int], margin: int,
                    jitter: int) -> np.ndarray:
    """Mouth boxes at frames idx (B, n), moved by one random offset of up to `jitter` px per row: (B, n, h, w, 3) uint8.

    The stored crops are the box grown by `margin` px, so offset `margin` is the box itself.
    """
    dy, dx = rng.integers(margin - jitter, margin + jitter + 1, size=(2, idx.shape[0]))
    h, w = hw
    return np.stack([corpus.crops[i, y : y + h, x : x + w] for i, y, x in zip(idx, dy, dx)])


def _box_hw(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return box[1] - box[0], box[3] - box[2]


def _meta(command: str, cfg: TrainConfig, corpus_info: dict[str, Any], steps: int, t0: float, stats: dict[str, float]) -> dict[str, Any]:
    return {"command": command, "data": str(cfg.data), "steps": steps, "batch": cfg.batch, "seed": cfg.seed,
            "train_seconds": round(time.time() - t0, 1), "final": stats, **corpus_info}


# --------------------------------------------------------------------------- sync expert


@dataclass
class SyncWindows:
    """Where sync windows may start: per usable clip, starts whose every shift stays inside the clip."""

    clips: np.ndarray  # (C,) corpus clip indices
    starts: list[np.ndarray]  # per clip, frame indices t in [K, T - n - K]
    talking: list[np.ndarray]  # the subset whose window has speech
    weights: np.ndarray  # (C,) sampling probability, by number of starts


def sync_windows(corpus: Corpus, cfg: TrainConfig, scfg: SyncConfig) -> SyncWindows:
    k, n, r = cfg.max_shift, scfg.n_frames, scfg.mel_per_frame
    clips, starts, talking = [], [], []
    for c in range(len(corpus.ids)):
        sl = corpus.frames_of(c)
        length = min(sl.stop - sl.start, (corpus.mels[c].shape[-1] - scfg.mel_window) // r + 1)
        cand = np.arange(k, length - n - k + 1)  # (V,)
        if corpus.tiers[c] != "high" or len(cand) == 0:
            continue
        talk = np.lib.stride_tricks.sliding_window_view(corpus.speaking[sl], n).any(axis=1)[cand]  # (V,)
        clips.append(c)
        starts.append(cand)
        talking.append(cand[talk])
    if not clips:
        raise ValueError(f"no high-tier clip with at least {2 * k + n} frames to train the sync expert")
    sizes = np.array([len(s) for s in starts], float)
    return SyncWindows(np.array(clips), starts, talking, sizes / sizes.sum())


def sync_batch(corpus: Corpus, win: SyncWindows, cfg: TrainConfig, scfg: SyncConfig,
               rng: np.random.Generator) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """Frame indices (B, 2K + n) from t - K to t + K + n - 1, log-mel (B, n_mels, 4 (2K + n)) over the same span,
    and mouth parameters (B, 2K + n, 3) of those frames.

    The mel segment covers audio windows t - K .. t + K, so the tower returns 2K + 1 embeddings per
    sample: index K is the aligned one, the others are the same clip shifted by 1..K frames.
    """
    k, n, r = cfg.max_shift, scfg.n_frames, scfg.mel_per_frame
    first, mels = [], []
    for i in rng.choice(len(win.clips), size=cfg.batch, p=win.weights):
        c = int(win.clips[i])
        pool = win.talking[i] if len(win.talking[i]) and rng.random() < cfg.speaking_share else win.starts[i]
        t = int(rng.choice(pool))
        first.append(corpus.starts[c] + t - k)
        mels.append(corpus.mels[c][:, r * (t - k) : r * (t + k) + scfg.mel_window])  # (n_mels, 4 (2K + n))
    idx = np.asarray(first)[:, None] + np.arange(2 * k + n)  # (B, 2K + n)
    return idx, torch.stack(mels), torch.from_numpy(corpus.params[idx][..., list(MOUTH)])


def train_sync(corpus: Corpus, cfg: TrainConfig, command: str) -> SyncExpert:
    scfg = SyncConfig()
    torch.manual_seed(cfg.seed)
    rng, g = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    k, n = cfg.max_shift, scfg.n_frames
    win = sync_windows(corpus, cfg, scfg)
    model = SyncExpert(scfg).train()
    # Auxiliary heads (training only): both towers also predict the mouth parameters of their 5 frames,
    # which points them at the lips within a few hundred steps instead of leaving the contrastive loss
    # to discover them.
    aux_v = nn.Linear(model.video.n_features, n * len(MOUTH))
    aux_a = nn.Conv1d(model.audio.n_features, n * len(MOUTH), 1)
    mouth_mean = torch.from_numpy(corpus.params[:, list(MOUTH)].mean(0))
    mouth_std = torch.from_numpy(corpus.params[:, list(MOUTH)].std(0)) + 1e-3
    params = [*model.parameters(), *aux_v.parameters(), *aux_a.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    sched = _schedule(opt, cfg.sync_steps, cfg.lr)
    t0, ema = time.time(), {}
    bar = tqdm(range(cfg.sync_steps), desc="sync expert", dynamic_ncols=True)
    for step in bar:
        idx, mel, mouth = sync_batch(corpus, win, cfg, scfg, rng)
        mouth = (mouth - mouth_mean) / mouth_std  # (B, 2K + n, 3)
        crops = _jittered_crops(corpus, idx[:, k : k + n], rng, _box_hw(scfg.mouth_box), cfg.margin, cfg.margin)
        video = _photometric(to_input(crops, scfg.crop_hw), g)  # (B, n, 3, h, w)
        mel = mel + (torch.rand(len(mel), 1, 1, generator=g) - 0.5) * 2.0  # +-4 dB gain
        fv = model.video.features(video)  # (B, Fv)
        fa = model.audio.features(mel)  # (B, Fa, 2K + 1)
        v = F.normalize(model.video.proj(fv), dim=-1)  # (B, D)
        a = F.normalize(model.audio.proj(fa).transpose(1, 2), dim=-1)  # (B, 2K + 1, D)
        b = len(v)
        logits_all = v @ a.reshape(-1, a.shape[-1]).T / cfg.tau  # (B, B (2K + 1)): every shift of every clip
        logits_own = torch.einsum("bd,bsd->bs", v, a) / cfg.tau  # (B, 2K + 1): own clip, shifts only
        target = torch.arange(b) * (2 * k + 1) + k
        contrast = F.cross_entropy(logits_all, target) + F.cross_entropy(logits_own, torch.full((b,), k))
        mouth_windows = mouth.unfold(1, n, 1).flatten(2)  # (B, 2K + 1, 3 n): window s holds frames s..s+n-1
        aux = F.mse_loss(aux_v(fv), mouth_windows[:, k]) + F.mse_loss(aux_a(fa).transpose(1, 2), mouth_windows)
        loss = contrast + cfg.aux_weight * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc = (logits_own.argmax(1) == k).float().mean().item()
        for key, val in (("loss", contrast.item()), ("aux", aux.item()), ("acc", acc)):
            ema[key] = val if key not in ema else 0.98 * ema[key] + 0.02 * val
        if step % 20 == 0:
            bar.set_postfix(loss=f"{ema['loss']:.3f}", aux=f"{ema['aux']:.3f}", offset_acc=f"{ema['acc']:.2f}")
    info = {"n_clips": int(len(win.clips)), "tiers": ["high"]}
    save_expert(cfg.out, model.eval(), _meta(command, cfg, info, cfg.sync_steps, t0, {k_: round(v_, 4) for k_, v_ in ema.items()}))
    return model


# --------------------------------------------------------------------------- face regressor


def train_regressor(corpus: Corpus, cfg: TrainConfig, command: str) -> FaceRegressor:
    # Every tier: corruptions that change the pixels (damped mouth, jitter) are applied to `params` too.
    mean, std = corpus.params.mean(0), corpus.params.std(0) + 1e-3  # (7,)
    rcfg = RegressorConfig(target_mean=tuple(float(x) for x in mean),
                           target_std=tuple(float(x) for x in std))
    torch.manual_seed(cfg.seed)
    rng, g = np.random.default_rng(cfg.seed + 1), torch.Generator().manual_seed(cfg.seed + 1)
    model = FaceRegressor(rcfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = _schedule(opt, cfg.regressor_steps, cfg.lr)
    weight = torch.tensor([3.0, 1, 1, 1, 1, 1, 1])  # jaw drives the mouth metrics
    t0, ema = time.time(), {}
    bar = tqdm(range(cfg.regressor_steps), desc="face regressor", dynamic_ncols=True)
    for step in bar:
        idx = rng.integers(0, len(corpus.faces), size=cfg.batch * 2)  # (B,)
        crops = _jittered_crops(corpus, idx[:, None], rng, _box_hw(rcfg.mouth_box), cfg.margin, cfg.margin // 2)
        mouth = _photometric(to_input(crops[:, 0], rcfg.crop_hw), g)  # (B, 3, h, w)
        face = _photometric(to_input(corpus.faces[idx], (rcfg.face_size,) * 2), g)
        target = (torch.from_numpy(corpus.params[idx]) - model.mean) / model.std  # (B, 7)
        err = (model(face, mouth) - target).square().mean(0)  # (7,)
        loss = (err * weight).sum() / weight.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema["loss"] = loss.item() if not ema else 0.98 * ema["loss"] + 0.02 * loss.item()
        ema["jaw_mse"] = err[0].item() if "jaw_mse" not in ema else 0.98 * ema["jaw_mse"] + 0.02 * err[0].item()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{ema['loss']:.3f}", jaw=f"{ema['jaw_mse']:.3f}")
    info = {"n_clips": len(corpus.ids), "tiers": sorted(set(corpus.tiers))}
    save_expert(cfg.out, model.eval(), _meta(command, cfg, info, cfg.regressor_steps, t0, {k: round(v, 4) for k, v in ema.items()}))
    return model


# --------------------------------------------------------------------------- identity encoder


def train_identity(corpus: Corpus, cfg: TrainConfig, command: str) -> IdentityEncoder:
    icfg = IdentityConfig()
    torch.manual_seed(cfg.seed)
    rng, g = np.random.default_rng(cfg.seed + 2), torch.Generator().manual_seed(cfg.seed + 2)
    frame_id = np.repeat(corpus.identity, np.diff(corpus.starts))  # (F,)
    model = IdentityEncoder(icfg).train()
    head = CosFaceHead(icfg.dim, len(corpus.identities))
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=cfg.lr, weight_decay=1e-4)
    sched = _schedule(opt, cfg.identity_steps, cfg.lr)
    s, pad = icfg.face_size, 3
    t0, ema = time.time(), {}
    bar = tqdm(range(cfg.identity_steps), desc="identity encoder", dynamic_ncols=True)
    for step in bar:
        b = cfg.batch * 2
        n_ref = b // 8  # references are what the metric compares against: show them too
        idx = rng.integers(0, len(corpus.faces), size=b - n_ref)
        ref_clip = rng.integers(0, len(corpus.ids), size=n_ref)
        imgs = np.concatenate([corpus.faces[idx], corpus.references[ref_clip]])  # (B, s, s, 3)
        labels = torch.from_numpy(np.concatenate([frame_id[idx], corpus.identity[ref_clip]]))
        x = F.pad(to_input(imgs, (s, s)), (pad,) * 4, mode="replicate")  # (B, 3, s + 2p, s + 2p)
        dy, dx = rng.integers(0, 2 * pad + 1, size=2)
        x = _photometric(x[..., dy : dy + s, dx : dx + s], g)
        logits = head(model(x), labels)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc = (logits.argmax(1) == labels).float().mean().item()
        for key, val in (("loss", loss.item()), ("acc", acc)):
            ema[key] = val if key not in ema else 0.98 * ema[key] + 0.02 * val
        if step % 20 == 0:
            bar.set_postfix(loss=f"{ema['loss']:.3f}", acc=f"{ema['acc']:.2f}")
    info = {"n_clips": len(corpus.ids), "n_identities": len(corpus.identities)}
    save_expert(cfg.out, model.eval(), _meta(command, cfg, info, cfg.identity_steps, t0, {k: round(v, 4) for k, v in ema.items()}))
    return model


# --------------------------------------------------------------------------- main


def main(cfg: TrainConfig, command: str, only: tuple[str, ...] = ("sync", "regressor", "identity")) -> None:
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # tiny BatchNorm/Adam statistics otherwise slow CPU kernels ~15x
    # One decoded copy serves all three: the regressor and the identity encoder see the same downscaled frames.
    assert RegressorConfig().face_size == IdentityConfig().face_size
    bar = tqdm(desc="decoding corpus", unit="clip", dynamic_ncols=True)
    corpus = load_corpus(cfg.data, mouth_box(), cfg.margin, IdentityConfig().face_size, cfg.max_clips, progress=bar.update)
    bar.close()
    if "sync" in only:
        train_sync(corpus, cfg, command)
    if "regressor" in only:
        train_regressor(corpus, cfg, command)
    if "identity" in only:
        train_identity(corpus, cfg, command)
