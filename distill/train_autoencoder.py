"""Train the latent autoencoder (8x down, 4 channels) on corpus frames.

    python -m distill.train_autoencoder --data corpus/train --out runs/autoencoder --max-minutes 30
    torchrun --nproc_per_node 2 -m distill.train_autoencoder --data cache.safetensors ...
    python -m distill.train_autoencoder --init fada_stream/assets/teacher/autoencoder --train decoder --restyle 0.5 ...

`--train decoder` (with `--init`) freezes the encoder and keeps its latent statistics: every latent a teacher
or student trained on the init autoencoder makes keeps its meaning, so a better decoder drops into their
folders without retraining them. `--restyle P` gives a share P of each batch's frames a random look and
shape (distill/data/restyle.py), so the decoder learns colours and shading the corpus lacks. `--mouth-weight W`
adds W times the reconstruction error of the lower-face box (the mouth and chin) to the loss; the held-out
PSNR is logged over the whole frame and over that box. `--audio-channels A` adds an audio-aware decoder (each frame's
log-mel window, embedded to width A; its fusions start at zero), and `--mouth-corrupt P` blends the mouth box of a
share P of the training latents part way toward the reference's latent (a part u ~ U(0, 1), or U(m, 1) with
`--mouth-blend-min m`), as a generator that under-articulates leaves it, so the decoder learns to draw back the
mouth a faint latent stands for (`eval_psnr_mouth_corrupt` logs how well it does; docs/autoencoder.md measures
the trade against clean round trips).

`--data` is a corpus folder (decoded once into `<out>/cache.safetensors`) or a cache file. Writes
`<out>/autoencoder.{safetensors,json}` (EMA weights and the latent statistics the denoiser's inputs
are standardised with), `<out>/state.*` to resume from, and `<out>/log.jsonl`.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from distill.data.face import mouth_box
from distill.data.restyle import restyle, sample_look, sample_shape
from distill.data.windows import Cache, build_cache, load_cache
from distill.train_common import (
    Budget, Dist, any_rank, autocast, command_line, has_run_state, load_run_state, make_ema, mean_across,
    optimizer_step, parse_config, save_run_state, start_run, teardown_distributed,
)
from fada_stream.checkpoint import load_checkpoint, save_checkpoint
from fada_stream.model.audio_encoder import mel_window, stream_mel
from fada_stream.model.autoencoder import AUTOENCODER_KIND, Autoencoder, images_to_unit, load_autoencoder
from fada_stream.model.config import PRESETS, AudioConfig

log = logging.getLogger(__name__)
KIND = AUTOENCODER_KIND


@dataclass
class TrainConfig:
    data: str = "corpus/train"  # corpus folder or cache file
    out: str = "runs/autoencoder"
    preset: Literal["tiny", "base"] = "tiny"
    # Clean frames only: a decoder that learns blur and compression artefacts reproduces them. The
    # teacher trains on this tier too, so one cache file serves both.
    tier: Literal["high", "all"] = "high"
    steps: int = 20000
    batch: int = 32  # frames per step per process
    lr: float = 5e-4
    warmup: int = 200
    ema: float = 0.999
    # Gaussian noise on the latents while training: the decoder then tolerates the small errors a
    # few-step sampler leaves, and together with the L2 penalty pins the latent scale.
    latent_noise: float = 0.1
    latent_l2: float = 1e-3
    log_every: int = 50
    eval_every: int = 500
    save_every: int = 1000
    max_minutes: float = 0.0  # stop cleanly (and save) after this much wall time; 0 = no limit
    init: str = ""  # start from this autoencoder checkpoint stem (`<dir>/autoencoder`) instead of random weights
    # "decoder": the encoder (and with it the latent statistics) stays as --init made it, so models trained on
    # those latents stay valid; "all" trains both halves.
    train: Literal["all", "decoder"] = "all"
    restyle: float = 0.0  # share of each batch's frames given a random look and shape (distill/data/restyle.py)
    # Reference-aware decoder (fada_stream.model.autoencoder.Decoder): the reference pyramid's widths at 128, 64,
    # 32, 16 px, e.g. "12,24,64,128"; with --init from a plain autoencoder its decoder is kept and the new
    # fusions start at zero. Each training frame is decoded with its identity's reference image (in the same look).
    ref_channels: str = ""
    p_other_reference: float = 0.25  # share of frames whose reference is a frame of another clip of the identity
    # Extra weight of the lower-face box (distill.data.face.mouth_box: mouth and chin of every identity in every pose,
    # about 40 % of the frame, the box the lip-sync expert crops) in the reconstruction loss: the mouth carries the lip
    # sync yet is a small part of the whole-frame error. The logged `loss` includes the box term.
    mouth_weight: float = 0.0
    # Audio-aware decoder (fada_stream.model.autoencoder.Decoder): the width of each frame's audio embedding, e.g. 32;
    # with --init from a decoder without it, its fusions start at zero. Its mel window is the preset's audio encoder's.
    audio_channels: int = 0
    # Share of training frames whose latent mouth box (distill.data.face.mouth_box over 8) is blended a random part
    # u ~ U(0, 1) toward the reference's latent: a closed or other mouth, as a generator that under-articulates leaves
    # it (the teacher keeps 79 % of the open-set Sync-C its latents could carry). The decoder learns to move a mouth
    # that sits near the reference's back out; an audio-aware one may also hear what it should be.
    mouth_corrupt: float = 0.0
    # The lower end of that part, u ~ U(mouth_blend_min, 1): above 0 trains on fainter mouths only, so the decoder
    # learns to draw a small latent movement out further.
    mouth_blend_min: float = 0.0
    device: str = "auto"
    bf16: bool = True  # bf16 autocast on CUDA
    seed: int = 0


def resolve_cache(data: str, out: Path, tier: str, d: Dist) -> Cache:
    """A cache file as given, or the corpus folder decoded once by rank 0 into <out>/cache-<tier>.safetensors."""
    path = Path(data)
    if path.is_dir():
        target = out / f"cache-{tier}.safetensors"
        if d.master and not target.is_file():
            with tqdm(desc="decoding corpus", unit="clip") as bar:
                # JPEG q90: a tenth of the raw size on disk, at about 1/255 mean error.
                build_cache(path, target, tier=None if tier == "all" else tier, frame_format="jpeg", progress=bar.update)
        if d.world > 1:
            torch.distributed.barrier()
        path = target
    return load_cache(path)


def split_clips(cache: Cache) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame indices for training and for evaluation (every 20th clip held out, when there are enough)."""
    train, held = [], []
    for c in range(cache.n_clips):
        idx = torch.arange(int(cache.frame_start[c]), int(cache.frame_start[c + 1]))
        (held if cache.n_clips >= 4 and c % 20 == 19 else train).append(idx)
    train_idx = torch.cat(train)
    return train_idx, (torch.cat(held) if held else train_idx)


def restyle_frames(frames: torch.Tensor, share: float, gen: torch.Generator,
                   refs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, H, W, 3) uint8 frames and optional (N, H, W, 3) references -> the same with about a share of them, each
    frame on its own, in a random look and shape; a frame's reference gets the frame's look and shape."""
    if share <= 0:
        return frames, refs
    out, out_refs = frames.clone(), None if refs is None else refs.clone()
    pick = torch.rand(len(frames), generator=gen) < share  # (N,)
    for i in pick.nonzero().flatten().tolist():
        look, shape = sample_look(gen), sample_shape(gen)
        out[i : i + 1] = restyle(frames[i : i + 1], look, shape)
        if out_refs is not None:
            out_refs[i : i + 1] = restyle(refs[i : i + 1], look, shape)
    return out, out_refs


def frame_references(cache: Cache, idx: torch.Tensor, p_other: float, gen: torch.Generator) -> torch.Tensor:
    """(N, H, W, 3) uint8: each frame's reference, its identity's neutral face or, with probability `p_other`,
    a random frame of another clip of the same identity (a frame of its own clip would show its mouth)."""
    clip = torch.searchsorted(cache.frame_start, idx, right=True) - 1  # (N,)
    ident = cache.clip_identity[clip]  # (N,)
    refs = cache.references[ident].clone()
    for i in range(len(idx)):
        if p_other <= 0 or float(torch.rand(1, generator=gen)) >= p_other:
            continue
        others = ((cache.clip_identity == ident[i]) & (torch.arange(cache.n_clips) != clip[i])).nonzero().flatten()
        if len(others):
            o = int(others[torch.randint(len(others), (1,), generator=gen)])
            j = int(cache.frame_start[o]) + int(torch.randint(cache.clip_frames(o), (1,), generator=gen))
            refs[i] = cache.frames[j]
    return refs


def clip_mels(cache: Cache, audio_cfg: AudioConfig) -> list[torch.Tensor]:
    """Each clip's whole log-mel stream, (n_mels, T * 4 + 1), as the dataset and the runtime compute it."""
    return [stream_mel(cache.audio[cache.audio_start[c] : cache.audio_start[c + 1]], audio_cfg) for c in range(cache.n_clips)]


def frame_audio(cache: Cache, idx: torch.Tensor, mels: list[torch.Tensor], audio_cfg: AudioConfig) -> torch.Tensor:
    """(N, n_mels, W): each frame's own log-mel window (silence beyond its clip's ends)."""
    clip = torch.searchsorted(cache.frame_start, idx, right=True) - 1  # (N,)
    local = idx - cache.frame_start[clip]  # (N,)
    return torch.stack([mel_window(mels[c], s, 1, audio_cfg) for c, s in zip(clip.tolist(), local.tolist())])


def latent_box(box: tuple[int, int, int, int], downsample: int) -> tuple[int, int, int, int]:
    """A pixel box (top, bottom, left, right) -> the latent cells that cover it."""
    t, b, l, r = box
    return t // downsample, -(-b // downsample), l // downsample, -(-r // downsample)


def mouth_blend(n: int, share: float, cells: tuple[int, int, int, int], size: int, gen: torch.Generator,
                floor: float = 0.0) -> torch.Tensor:
    """(n, 1, size, size) weights toward the reference's latent: u ~ U(floor, 1) over the mouth cells of about a share
    of the frames, 0 elsewhere."""
    t, b, l, r = cells
    w = torch.zeros(n, 1, size, size)
    u = (floor + (1 - floor) * torch.rand(n, generator=gen)) * (torch.rand(n, generator=gen) < share)  # (n,)
    w[:, :, t:b, l:r] = u.view(n, 1, 1, 1)
    return w


def reconstruction_loss(rec: torch.Tensor, x: torch.Tensor, box: tuple[int, int, int, int], mouth_weight: float) -> torch.Tensor:
    """L1 + MSE over the frame, plus `mouth_weight` times the same over the (top, bottom, left, right) box.

    rec, x: (B, 3, H, W) in [-1, 1]."""
    loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
    if mouth_weight > 0:
        t, b, l, r = box
        loss = loss + mouth_weight * (F.l1_loss(rec[..., t:b, l:r], x[..., t:b, l:r]) + F.mse_loss(rec[..., t:b, l:r], x[..., t:b, l:r]))
    return loss


def _psnr(mse: float) -> float:
    return 10.0 * torch.log10(torch.tensor(1.0 / max(mse / 4.0, 1e-10))).item()  # [-1, 1] -> [0, 1] scale


@torch.no_grad()
def evaluate(ae: Autoencoder, frames: torch.Tensor, device: torch.device, refs: torch.Tensor | None = None,
             box: tuple[int, int, int, int] | None = None, audio: torch.Tensor | None = None,
             blend: torch.Tensor | None = None) -> tuple[float, float]:
    """PSNR (dB) of reconstructions of held-out frames (decoded with `refs`, their references, and `audio`, their
    (N, n_mels, W) mel windows, where the decoder takes them): over the whole frame, and over `box` (top, bottom,
    left, right; the whole frame again if None). `blend` (N, 1, h, w) moves each latent that far toward its
    reference's first (`mouth_blend`), which needs `refs`."""
    t, b, l, r = box or (0, None, 0, None)  # frames are (N, H, W, 3) uint8; the box indexes (b, 3, H, W) errors
    mse, mse_box = [], []
    for i in range(0, len(frames), 64):
        x = images_to_unit(frames[i : i + 64].to(device))  # (b, 3, H, W)
        ref = None if refs is None else images_to_unit(refs[i : i + 64].to(device))  # (b, 3, H, W)
        z = ae.encode(x)  # (b, C, h, w)
        if blend is not None:
            w = blend[i : i + 64].to(device)  # (b, 1, h, w)
            z = z + w * (ae.encode(ref) - z)
        mel = None if audio is None else audio[i : i + 64].to(device)  # (b, n_mels, W)
        err = (ae.decode(z, ref, mel) - x).square()  # (b, 3, H, W)
        mse.append(err.flatten(1).mean(1))
        mse_box.append(err[..., t:b, l:r].flatten(1).mean(1))
    return _psnr(torch.cat(mse).mean().item()), _psnr(torch.cat(mse_box).mean().item())


@torch.no_grad()
def latent_stats(ae: Autoencoder, frames: torch.Tensor, pool: torch.Tensor, device: torch.device, n: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of raw latents over n frames spread evenly through `pool` (frame indices)."""
    idx = pool[torch.linspace(0, len(pool) - 1, min(n, len(pool))).long()]
    z = torch.cat([ae.encode_raw(images_to_unit(frames[idx[i : i + 256]].to(device))) for i in range(0, len(idx), 256)])  # (n, C, h, w)
    return z.mean(dim=(0, 2, 3)).cpu(), z.std(dim=(0, 2, 3)).cpu()


def export(ae: Autoencoder, frames: torch.Tensor, pool: torch.Tensor, device: torch.device, path: Path, meta: dict,
           keep_stats: bool = False) -> None:
    """Measure the latent statistics with these weights (unless `keep_stats`: a frozen encoder keeps the init's
    exactly) and write the checkpoint the teacher loads."""
    if not keep_stats:
        ae.set_latent_stats(*latent_stats(ae, frames, pool, device))
    save_checkpoint(path, KIND, ae.cfg, ae.state_dict(), meta=meta)


def parse_widths(text: str) -> tuple[int, ...]:
    """"12,24,64,128" -> (12, 24, 64, 128); "" -> ()."""
    try:
        widths = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as e:
        raise ValueError(f"--ref-channels takes comma-separated widths, got {text!r}") from e
    if any(w <= 0 for w in widths):
        raise ValueError(f"--ref-channels widths must be positive, got {text!r}")
    return widths


def audio_fields(audio_cfg: AudioConfig, width: int) -> dict[str, int]:
    """An audio-aware decoder's fields: each frame hears what the preset's audio encoder hears, no more look-ahead."""
    return {"audio_channels": width, "audio_mels": audio_cfg.n_mels, "audio_past": audio_cfg.past_mel,
            "audio_per_frame": audio_cfg.mel_per_frame, "audio_ahead": audio_cfg.lookahead_mel}


def build_autoencoder(cfg: TrainConfig) -> Autoencoder:
    """A fresh autoencoder, or --init's; with --ref-channels or --audio-channels, --init's with a reference- or
    audio-aware decoder added (its fusions at zero, so it starts decoding exactly as the init did)."""
    widths = parse_widths(cfg.ref_channels)
    sound = audio_fields(PRESETS[cfg.preset]().audio, cfg.audio_channels) if cfg.audio_channels else {}
    if not cfg.init:
        ae_cfg = PRESETS[cfg.preset]().ae
        ae_cfg = replace(ae_cfg, ref_channels=widths, **sound)
        return Autoencoder(ae_cfg).train()
    init = load_autoencoder(cfg.init)
    new: dict = {}
    if widths and widths != init.cfg.ref_channels:
        if init.reference_aware:
            raise ValueError(f"{cfg.init} already has a reference-aware decoder ({init.cfg.ref_channels}); --ref-channels "
                             f"{cfg.ref_channels} would drop it")
        new["ref_channels"] = widths
    if sound and sound["audio_channels"] != init.cfg.audio_channels:
        if init.audio_aware:
            raise ValueError(f"{cfg.init} already has an audio-aware decoder ({init.cfg.audio_channels} channels); "
                             f"--audio-channels {cfg.audio_channels} would drop it")
        new.update(sound)
    if not new:
        return init.train()
    ae = Autoencoder(replace(init.cfg, **new))
    missing, unexpected = ae.load_state_dict(init.state_dict(), strict=False)
    added: tuple[str, ...] = ()  # the parameters the new parts bring, which --init cannot have
    if "ref_channels" in new:
        added += ("decoder.ref.", "decoder.fuse.")
    if "audio_channels" in new:
        added += ("decoder.audio.", "decoder.audio_fuse.")
    if unexpected or any(not k.startswith(added) for k in missing):
        raise ValueError(f"{cfg.init}: weights do not fit the decoder asked for ({unexpected or missing})")
    return ae.train()


def main(cfg: TrainConfig) -> Path:
    if cfg.train == "decoder" and not cfg.init:
        raise ValueError("--train decoder needs --init: a frozen random encoder makes no useful latents")
    if not 0.0 <= cfg.restyle <= 1.0:
        raise ValueError(f"--restyle is a share in [0, 1], got {cfg.restyle}")
    if not (math.isfinite(cfg.mouth_weight) and cfg.mouth_weight >= 0.0):
        raise ValueError(f"--mouth-weight is a finite weight >= 0, got {cfg.mouth_weight}")
    if cfg.audio_channels < 0:
        raise ValueError(f"--audio-channels is a width >= 0, got {cfg.audio_channels}")
    if cfg.audio_channels and not (cfg.ref_channels or (cfg.init and load_autoencoder(cfg.init).reference_aware)):
        raise ValueError("--audio-channels needs a reference-aware decoder (--ref-channels, or an --init that has one): "
                         "the ONNX decoder takes the mel after the reference")
    if not 0.0 <= cfg.mouth_corrupt <= 1.0:
        raise ValueError(f"--mouth-corrupt is a share in [0, 1], got {cfg.mouth_corrupt}")
    if not 0.0 <= cfg.mouth_blend_min <= 1.0:
        raise ValueError(f"--mouth-blend-min is a part in [0, 1], got {cfg.mouth_blend_min}")
    d, out = start_run(cfg.device, cfg.seed, cfg.out)
    budget = Budget(cfg.max_minutes)
    cache = resolve_cache(cfg.data, out, cfg.tier, d)
    train_idx, eval_idx = split_clips(cache)
    eval_pick = eval_idx[torch.linspace(0, len(eval_idx) - 1, min(256, len(eval_idx))).long()]
    eval_frames = cache.frames[eval_pick]

    ae = build_autoencoder(cfg).to(d.device)
    if cache.frames.shape[1] != ae.cfg.image_size:  # the box and the loss are in the frames' pixels
        raise ValueError(f"{cfg.data}: {cache.frames.shape[1]} px frames for a {ae.cfg.image_size} px autoencoder")
    box = mouth_box(ae.cfg.image_size)
    if cfg.mouth_corrupt > 0 and not ae.reference_aware:
        raise ValueError("--mouth-corrupt blends toward the reference's latent: it needs a reference-aware decoder")
    cells = latent_box(box, ae.cfg.downsample)
    audio_cfg = PRESETS[cfg.preset]().audio
    mels = clip_mels(cache, audio_cfg) if ae.audio_aware else None
    eval_audio = frame_audio(cache, eval_pick, mels, audio_cfg) if mels is not None else None
    if cfg.train == "decoder":
        ae.encoder.requires_grad_(False)
    # Held-out frames decode with their neutral references; the restyled ones are one fixed draw, so the figure is
    # comparable from one evaluation to the next.
    eval_refs = frame_references(cache, eval_pick, 0.0, torch.Generator()) if ae.reference_aware else None
    eval_restyled, eval_restyled_refs = (restyle_frames(eval_frames, 1.0, torch.Generator().manual_seed(1234), eval_refs)
                                         if cfg.restyle > 0 else (None, None))
    # The mouth half way to the reference's, every held-out frame: how much of it the decoder draws back.
    eval_blend = torch.zeros(len(eval_frames), 1, ae.cfg.latent_size, ae.cfg.latent_size)
    eval_blend[:, :, cells[0]:cells[1], cells[2]:cells[3]] = 0.5
    ema = make_ema(ae)
    opt = torch.optim.AdamW([p for p in ae.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step = 0
    if has_run_state(out):
        step, _ = load_run_state(out, "autoencoder", ae, ema, opt)
        log.info("resumed %s at step %d", out, step)
    model = DDP(ae) if d.world > 1 else ae
    meta = {"command": command_line(), "train_config": asdict(cfg)}
    if cfg.init:
        meta["init"] = {"path": cfg.init, "meta": load_checkpoint(cfg.init, KIND)[2]}
    run_cfg = {"train": asdict(cfg), "model": asdict(ae.cfg)}

    bar = tqdm(total=cfg.steps, initial=step, desc="autoencoder", disable=not d.master)
    logf = open(out / "log.jsonl", "a") if d.master else None

    def eval_row() -> dict[str, float]:
        psnr, psnr_mouth = evaluate(ema, eval_frames, d.device, eval_refs, box, eval_audio)
        row = {"eval_psnr": round(psnr, 3), "eval_psnr_mouth": round(psnr_mouth, 3)}
        if eval_restyled is not None:
            psnr, psnr_mouth = evaluate(ema, eval_restyled, d.device, eval_restyled_refs, box, eval_audio)
            row.update(eval_psnr_restyled=round(psnr, 3), eval_psnr_restyled_mouth=round(psnr_mouth, 3))
        if eval_refs is not None:
            _, psnr_mouth = evaluate(ema, eval_frames, d.device, eval_refs, box, eval_audio, eval_blend)
            row["eval_psnr_mouth_corrupt"] = round(psnr_mouth, 3)
        return row

    if logf and cfg.init and step == 0:  # where the fine-tune starts from, in the same figures
        logf.write(json.dumps({"step": 0, **eval_row()}) + "\n")
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + d.rank + step)
    while step < cfg.steps:
        idx = train_idx[torch.randint(len(train_idx), (cfg.batch,), generator=gen)]
        refs = frame_references(cache, idx, cfg.p_other_reference, gen) if ae.reference_aware else None
        frames, refs = restyle_frames(cache.frames[idx], cfg.restyle, gen, refs)
        x = images_to_unit(frames.to(d.device, non_blocking=True))  # (B, 3, H, W)
        r = None if refs is None else images_to_unit(refs.to(d.device, non_blocking=True))  # (B, 3, H, W)
        audio = None if mels is None else frame_audio(cache, idx, mels, audio_cfg).to(d.device)  # (B, n_mels, W)
        toward = None
        if cfg.mouth_corrupt > 0:
            with torch.no_grad():
                w = mouth_blend(len(idx), cfg.mouth_corrupt, cells, ae.cfg.latent_size, gen, cfg.mouth_blend_min)
                toward = (w.to(d.device), ae.encode_raw(r))  # (B, 1, h, w), (B, C, h, w)
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(d.device, cfg.bf16):
            rec, z = model(x, cfg.latent_noise, r, audio, toward)  # (B, 3, H, W), (B, C, h, w)
            rec_loss = reconstruction_loss(rec.float(), x, box, cfg.mouth_weight)
            loss = rec_loss + cfg.latent_l2 * z.float().square().mean()
        optimizer_step(loss, ae, opt, ema, cfg.ema, step)
        step += 1
        bar.update(1)

        stop = any_rank(budget.spent(), d)
        if step % cfg.log_every == 0 or stop or step == cfg.steps:
            rl = mean_across(rec_loss.item(), d)
            row = {"step": step, "loss": round(rl, 5), "lr": lr}
            if step % cfg.eval_every == 0 or stop or step == cfg.steps:
                row.update(eval_row())
            bar.set_postfix(loss=f"{rl:.4f}", **({"psnr": row["eval_psnr"]} if "eval_psnr" in row else {}))
            if logf:
                logf.write(json.dumps(row) + "\n")
                logf.flush()
        if d.master and (step % cfg.save_every == 0 or stop or step == cfg.steps):
            save_run_state(out, "autoencoder", run_cfg, ae, ema, opt, step, meta)
            export(ema, cache.frames, train_idx, d.device, out / "autoencoder", {**meta, "step": step},
                   keep_stats=cfg.train == "decoder")
        if stop:
            break
    bar.close()
    if logf:
        logf.close()
    teardown_distributed()
    return out / "autoencoder"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(parse_config(TrainConfig, description=__doc__.split("\n")[0]))
