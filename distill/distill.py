"""Distil the teacher into a few-step, one-pass student: mixed supervision + multi-CFG tokens.

    python -m distill.distill --teacher fada_stream/assets/teacher --data corpus/train --moderate corpus/train --steps 2
    torchrun --nproc_per_node 2 -m distill.distill --data cache-high.safetensors --moderate cache-moderate.safetensors ...

Each training step draws windows from the `high` tier and (mixed supervision) the `moderate` tier,
guidance scales per window from the student's ranges, one interval of the student's K-step grid,
and runs the teacher's guided flow from the window's noise to that interval (`distill/losses.py`).
The student starts as a copy of the teacher (its CFG-token embedding or gates start at zero) and learns
to take the interval in one step and one pass; on `high` windows the ground truth also supervises
its last step. `--tokens false` trains the naive student (teacher targets per guidance branch, no
scales, sampled with 3-pass CFG); `--mixed false` drops the moderate tier and the ground-truth term.
`--token-mode attn|both` puts the CFG tokens into attention instead of (or beside) adaLN;
`--method progressive --init DIR` distils a 2K-step student folder instead of the teacher (one round of
progressive distillation) and `--method consistency` trains by consistency distillation instead
(docs/distillation.md compares the three). `--restyle P [--restyle-shape true]` draws a share of the
windows from recoloured (and reshaped) identities; `--train-boost G` trains the student as it will run with
`StreamConfig(audio_boost=G)` (two passes per step, one without the audio).

Writes `<out>/student.{safetensors,json}` (EMA weights, StudentConfig, the command), the teacher's
autoencoder beside it (so `<out>` is a checkpoint folder the runtime loads), `<out>/state.*` to
resume from, and `<out>/log.jsonl`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, RandomSampler, Subset, default_collate
from tqdm import tqdm

from distill.losses import adaptive_weight, consistency_target, gt_loss, guided_velocity, teacher_loss, teacher_states
from distill.train_autoencoder import resolve_cache
from distill.train_common import (
    Budget, any_rank, autocast, command_line, has_run_state, load_run_state, make_ema, mean_across,
    optimizer_step, parse_config, save_run_state, start_run, teardown_distributed,
)
from distill.train_teacher import _seed_worker, check_restyle, split_clips, to_device, window_datasets
from fada_stream.checkpoint import save_checkpoint
from fada_stream.generator import BOOST_RANGE
from fada_stream.model import STUDENT_KIND, StudentConfig, StudentDiT, load_student, load_teacher
from fada_stream.sampling import add_noise, boost_audio, get_ts

log = logging.getLogger(__name__)


@dataclass
class DistillConfig:
    teacher: str = "fada_stream/assets/teacher"  # teacher checkpoint folder (teacher.* + autoencoder.*)
    data: str = "corpus/train"  # high tier: corpus folder (decoded once into <out>) or a cache file
    moderate: str = ""  # moderate tier: corpus folder or cache file; "" = the data folder's moderate clips
    out: str = "runs/student"
    init: str = ""  # a student folder to start from (a second training stage; an adaLN one may start a `both` one); "" = the teacher's weights
    steps: int = 2  # K, the student's sampler steps
    iters: int = 20000  # optimisation steps
    tokens: bool = True  # multi-CFG tokens (one pass per step); False: the naive student
    token_mode: Literal["adaln", "attn", "both"] = "adaln"  # where the tokens enter (StudentConfig.token_mode)
    cfg_tokens: int = 4  # attention tokens, for token_mode attn / both
    # The step-distillation base method: "trajectory" (the teacher's path on the student's grid), "progressive"
    # (the path of the --init student, K x substeps of its steps; one round), "consistency" (consistency distillation
    # on a grid of cd_grid teacher steps).
    method: Literal["trajectory", "progressive", "consistency"] = "trajectory"
    cd_grid: int = 8
    mixed: bool = True  # moderate tier + ground-truth loss; False: teacher targets on high only
    alpha: float = 0.25  # share of the ground-truth term relative to the teacher term (adaptive weight)
    moderate_share: float = 0.5  # of each batch, when mixed
    restyle: float = 0.0  # share of windows drawn from a recoloured copy of the data (distill/data/restyle.py)
    restyle_shape: bool = False  # the restyled copy also stretched, shifted and textured per identity
    # Boost-aware distillation: the student is trained as it will run with StreamConfig.audio_boost = train_boost
    # (v + g (v - v_no_audio), two passes per step), so its own guidance and the real audio CFG on top share the work.
    train_boost: float = 0.0
    substeps: int = 4  # teacher Euler steps per student interval: the teacher's trajectory resolution
    s_ref_min: float = 1.0
    s_ref_max: float = 2.0
    s_audio_min: float = 1.0
    s_audio_max: float = 4.0
    batch: int = 8
    lr: float = 1e-4  # fine-tuning from the teacher's weights: gentler than its own 3e-4
    warmup: int = 200
    ema: float = 0.999
    p_no_motion: float = 0.15  # share of windows without motion frames (a stream's first window)
    motion_noise: float = 0.05
    log_every: int = 50
    eval_every: int = 500
    eval_windows: int = 32  # held-out high windows; each costs a teacher trajectory per grid interval
    save_every: int = 500
    # Keep the EMA student every N steps in OUT/snapshots/stepN (0: off): runs that share a wall-clock budget but not
    # a speed (on one GPU, side by side) are then compared at the same optimisation step, the fair budget.
    snapshot_every: int = 0
    max_minutes: float = 0.0
    workers: int = 0
    device: str = "auto"
    bf16: bool = True
    seed: int = 0


def student_config(cfg: DistillConfig, model_cfg) -> StudentConfig:
    return StudentConfig(model=model_cfg, steps=cfg.steps, tokens=cfg.tokens, token_mode=cfg.token_mode, cfg_tokens=cfg.cfg_tokens,
                         s_ref_range=(cfg.s_ref_min, cfg.s_ref_max), s_audio_range=(cfg.s_audio_min, cfg.s_audio_max))


def windows(cache_arg: str, tier: str, codec, mc, out: Path, d, seed: int, restyle: float = 0.0,
            restyle_shape: bool = False) -> tuple[Subset, Subset]:
    """(train, held-out) window subsets of one tier, as latents; with `restyle` > 0 that share of the
    training windows comes from a copy in one random look (and with `restyle_shape`, shape) per identity
    (the held-out ones never do)."""
    cache = resolve_cache(cache_arg, out, tier, d)
    if cache.tier != tier:
        raise ValueError(f"{cache_arg}: expected a {tier!r} cache, got tier {cache.tier!r}")
    ds, held_ds = window_datasets(cache, codec, mc, d.device, seed, restyle, restyle_shape)
    train_clips, held_clips = (set(c) for c in split_clips(cache))
    train = Subset(ds, [i for i, (c, _) in enumerate(ds.index) if c in train_clips])
    held = Subset(held_ds, [i for i, (c, _) in enumerate(ds.index) if c in held_clips])
    return train, held


def endless(subset: Subset, batch: int, cfg: DistillConfig, d, salt: int):
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + d.rank * 10 + salt)
    sampler = RandomSampler(subset, replacement=True, num_samples=1 << 40, generator=gen)
    return iter(DataLoader(subset, batch_size=batch, sampler=sampler, num_workers=cfg.workers, worker_init_fn=_seed_worker,
                           persistent_workers=cfg.workers > 0, pin_memory=d.device.type == "cuda"))


def _cat(a, b):
    return torch.cat([a, b]) if isinstance(a, torch.Tensor) else a


def distill_losses(student, teacher, batch: dict, high: torch.Tensor, cfg: DistillConfig, scfg: StudentConfig, k: int,
                   gen: torch.Generator | None = None, scales: torch.Tensor | None = None,
                   targets: StudentDiT | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(L_teacher over the batch, L_gt over its high windows or None) at grid interval k.

    L_teacher is the base method's term: the teacher's (or, progressive, the frozen `targets` student's)
    trajectory on the student's grid, or the consistency loss. The student runs once, on those inputs and the
    ground-truth inputs stacked in one batch: one forward per backward, as DDP requires.
    """
    x0, ref, mel = batch["x"], batch["ref"], batch["mel"]  # (B, F, C, h, w), (B, C, h, w), (B, n_mels, T)
    b, f, dev, m = x0.shape[0], x0.shape[1], x0.device, scfg.model.dit.motion_frames
    rand = lambda *s: torch.rand(*s, generator=gen, device=dev)  # noqa: E731
    has_motion = rand(b) >= cfg.p_no_motion  # (B,)
    motion = x0[:, :m] + cfg.motion_noise * torch.randn(x0[:, :m].shape, generator=gen, device=dev)  # (B, M, C, h, w)
    weight = torch.ones(b, f, device=dev)
    weight[:, :m] = (~has_motion).float()[:, None]  # (B, F): frames the model must generate
    cond = dict(ref=ref, mel=mel, motion=motion, motion_mask=has_motion)
    noise = torch.randn(x0.shape, generator=gen, device=dev)  # (B, F, C, h, w)
    given = has_motion[:, None] & (torch.arange(f, device=dev) < m)[None]  # (B, F)
    noise = torch.where(given[:, :, None, None, None], torch.cat([motion, noise[:, m:]], dim=1), noise)  # as window_noise
    ts = get_ts(scfg.steps, scfg.shift, device=dev)
    if scfg.tokens:
        if scales is None:
            lo = torch.tensor([cfg.s_ref_min, cfg.s_audio_min], device=dev)
            hi = torch.tensor([cfg.s_ref_max, cfg.s_audio_max], device=dev)
            scales = lo + (hi - lo) * rand(b, 2)  # (B, 2)
        # All-False drop flags keep the null embeddings in the graph (zero gradient): DDP wants every parameter used.
        keep = torch.zeros(b, dtype=torch.bool, device=dev)
        extra = {"scales": scales, "drop_ref": keep, "drop_audio": keep}
        target = guided_velocity(teacher, scales[:, 0], scales[:, 1], **cond)
        if targets is not None:  # progressive: the previous round's student, one pass at the same scales
            target = lambda x, t: targets(x, t, **extra, **cond)  # noqa: E731
        gt_extra = {"scales": torch.ones(b, 2, device=dev), "drop_ref": keep, "drop_audio": keep}  # unguided: scales (1, 1)
    else:
        # The naive student learns each guidance branch of the teacher separately (drawn per window).
        u = rand(b)
        extra = {"drop_ref": u < 1 / 3, "drop_audio": u < 2 / 3}
        target = lambda x, t: teacher(x, t, **extra, **cond)  # noqa: E731
        gt_extra = {"drop_ref": torch.zeros(b, dtype=torch.bool, device=dev), "drop_audio": torch.zeros(b, dtype=torch.bool, device=dev)}
    if cfg.method == "consistency":
        # One interval of the fine grid (it contains the student's own grid: cd_grid is a multiple of K), from 0 up.
        rising = get_ts(cfg.cd_grid, scfg.shift).flip(0)  # (N + 1,): 0 ... 1
        n = int(torch.randint(cfg.cd_grid, (1,), generator=gen))
        t_lo, t_in = float(rising[n]), float(rising[n + 1])
        x_in = add_noise(x0, noise, torch.full((b,), t_in, device=dev))  # (B, F, C, h, w)
        plain = getattr(student, "module", student)  # the target pass needs no gradient, so not through DDP
        goal = consistency_target(target, lambda x, t: plain(x, t, **extra, **cond), x_in, t_in, t_lo)  # (B, F, C, h, w)
        base_loss = lambda v: gt_loss(v, x_in, goal, t_in, weight)  # noqa: E731
    else:
        substeps = targets.cfg.steps // scfg.steps if targets is not None else cfg.substeps
        x_in, x_next = teacher_states(target, noise, ts, k, substeps)
        t_in = float(ts[k])
        base_loss = lambda v: teacher_loss(v, x_in, x_next, t_in, float(ts[k + 1]), weight)  # noqa: E731
    t_k = torch.full((b,), t_in, device=dev)
    main, x_main, t_main = {**cond, **extra}, x_in, t_k
    boost = cfg.train_boost if scfg.tokens else 0.0
    if boost:  # the same inputs again without the audio, stacked: (2B, ...)
        silent = {**main, "drop_audio": torch.ones(b, dtype=torch.bool, device=dev)}
        main = {key: _cat(v, silent[key]) for key, v in main.items()}
        x_main, t_main = torch.cat([x_in, x_in]), torch.cat([t_k, t_k])
    n = len(x_main)

    def run_v(v: torch.Tensor) -> torch.Tensor:  # the student's (n, F, C, h, w) -> the velocity it steps with (B, ...)
        return boost_audio(*v.chunk(2), boost) if boost else v

    if not cfg.mixed or not high.any():
        return base_loss(run_v(student(x_main, t_main, **main))), None  # student: (B, F, C, h, w)
    # Ground truth supervises the last step of the unguided conditional velocity on high windows.
    t_last = float(ts[-2])
    eps = torch.randn(x0.shape, generator=gen, device=dev)
    xt = ((1.0 - t_last) * x0 + t_last * eps)[high]  # (Bh, F, C, h, w)
    sel = {key: v[high] for key, v in {**cond, **gt_extra}.items() if isinstance(v, torch.Tensor)}
    both = {key: _cat(v, sel[key]) for key, v in main.items()}
    v = student(torch.cat([x_main, xt]), torch.cat([t_main, torch.full((len(xt),), t_last, device=dev)]), **both)  # (n + Bh, ...)
    return base_loss(run_v(v[:n])), gt_loss(v[n:], xt, x0[high], t_last, weight[high])


def main(cfg: DistillConfig) -> Path:
    d, out = start_run(cfg.device, cfg.seed, cfg.out)
    budget = Budget(cfg.max_minutes)

    teacher, codec, mc = load_teacher(cfg.teacher)
    teacher = teacher.to(d.device).requires_grad_(False)
    codec = codec.to(d.device)
    scfg = student_config(cfg, mc)
    check_restyle(cfg.restyle, cfg.restyle_shape)
    if cfg.train_boost and (not cfg.tokens or cfg.method != "trajectory" or not 0.0 < cfg.train_boost <= BOOST_RANGE[1]):
        raise ValueError(f"--train-boost is for token students distilled by the trajectory method, in (0, {BOOST_RANGE[1]}]; "
                         f"got {cfg.train_boost} (tokens {cfg.tokens}, method {cfg.method})")
    if cfg.method != "trajectory" and not cfg.tokens:
        raise ValueError(f"--method {cfg.method} trains token students only (the naive baseline uses the teacher's trajectory)")
    if cfg.method == "progressive" and not cfg.init:
        raise ValueError("--method progressive distils the --init student (a 2K-step one): give --init DIR")
    if cfg.method == "consistency" and (cfg.cd_grid < 1 or cfg.cd_grid % cfg.steps):
        raise ValueError(f"--cd-grid must be a multiple of --steps {cfg.steps} (its times are the student's), got {cfg.cd_grid}")
    high_train, high_held = windows(cfg.data, "high", codec, mc, out, d, cfg.seed + d.rank, cfg.restyle, cfg.restyle_shape)
    n_mod = round(cfg.batch * cfg.moderate_share) if cfg.mixed else 0
    loaders = [endless(high_train, cfg.batch - n_mod, cfg, d, 1)]
    if n_mod:
        mod_train, _ = windows(cfg.moderate or cfg.data, "moderate", codec, mc, out, d, cfg.seed + d.rank, cfg.restyle, cfg.restyle_shape)
        loaders.append(endless(mod_train, n_mod, cfg, d, 2))
    held_idx = list(range(len(high_held)))[:: max(1, len(high_held) // cfg.eval_windows)][: cfg.eval_windows]
    eval_batch = to_device(default_collate([high_held[i] for i in held_idx]), d.device)

    student = StudentDiT(scfg).to(d.device)
    targets = None
    if cfg.init:
        start, _, init_cfg = load_student(cfg.init)
        # A progressive round halves (or divides) the steps of its start; any other second stage keeps them.
        steps_ok = (init_cfg.steps % scfg.steps == 0 and init_cfg.steps > scfg.steps) if cfg.method == "progressive" \
            else init_cfg.steps == scfg.steps
        # An adaLN student may start a `both` one: its attention tokens enter behind zero gates, so the new student
        # starts as the old one exactly and only learns what the extra tokens add.
        adds_attn = init_cfg.tokens and init_cfg.token_mode == "adaln" and scfg.token_mode == "both"
        same = ("tokens", "cfg_tokens", "shift", "model") + (() if adds_attn else ("token_mode",))
        if not steps_ok or any(getattr(init_cfg, f) != getattr(scfg, f) for f in same):
            need = f"a multiple of K={scfg.steps}" if cfg.method == "progressive" else f"K={scfg.steps}"
            raise ValueError(f"--init {cfg.init}: a K={init_cfg.steps} tokens={init_cfg.tokens} ({init_cfg.token_mode}) student of "
                             f"this or another model, not {need} tokens={scfg.tokens} ({scfg.token_mode}) for this teacher")
        missing, unexpected = student.load_state_dict(start.state_dict(), strict=not adds_attn)
        new_params = all(k.startswith(("cfg_tokens.", "token_gates")) for k in missing)
        if unexpected or not new_params:
            raise ValueError(f"--init {cfg.init}: its weights do not fit this student (missing {missing}, unexpected {unexpected})")
        if cfg.method == "progressive":
            targets = start.to(d.device).requires_grad_(False).eval()
    else:
        student.dit.load_state_dict(teacher.state_dict())
    ema = make_ema(student)
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step, saved = 0, {}
    if has_run_state(out):
        step, saved = load_run_state(out, "student", student, ema, opt)
        log.info("resumed %s at step %d", out, step)
    ddp = DDP(student) if d.world > 1 else student
    ema_t, ema_g = saved.get("loss_emas", (0.0, 0.0))  # the adaptive weight's running sizes continue
    # The teacher's weight hash, beside its path: a path names whatever teacher sits there today (the bundled
    # one changed once), the hash names the one this student was distilled from.
    meta = {"command": command_line(), "distill_config": asdict(cfg), "teacher": cfg.teacher,
            "teacher_sha256": json.loads((Path(cfg.teacher) / "teacher.json").read_text()).get("weights_sha256")}
    if d.master:
        for ext in (".json", ".safetensors"):
            src = Path(cfg.teacher) / f"autoencoder{ext}"
            if src.is_file() and src.resolve() != (out / f"autoencoder{ext}").resolve():
                shutil.copyfile(src, out / f"autoencoder{ext}")

    gen = torch.Generator().manual_seed(cfg.seed * 7919 + d.rank)
    bar = tqdm(total=cfg.iters, initial=step, desc=f"student K={cfg.steps}", disable=not d.master)
    logf = open(out / "log.jsonl", "a") if d.master else None
    while step < cfg.iters:
        parts = [next(it) for it in loaders]
        batch = to_device({k: torch.cat([p[k] for p in parts]) if torch.is_tensor(parts[0][k]) else parts[0][k] for k in ("x", "ref", "mel")}, d.device)
        high = torch.zeros(batch["x"].shape[0], dtype=torch.bool, device=d.device)
        high[: cfg.batch - n_mod] = True
        k = int(torch.randint(scfg.steps, (1,), generator=gen))  # one grid interval per step, shared by the batch
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(d.device, cfg.bf16):
            l_teacher, l_gt = distill_losses(ddp, teacher, batch, high, cfg, scfg, k, targets=targets)
        # The balance uses the mean over ranks, so every DDP rank weighs the two terms alike.
        lt = mean_across(l_teacher.item(), d)
        ema_t = lt if step == 0 or not ema_t else 0.99 * ema_t + 0.01 * lt
        loss = l_teacher
        lam = 0.0
        if l_gt is not None:
            lg = mean_across(l_gt.item(), d)
            ema_g = lg if not ema_g else 0.99 * ema_g + 0.01 * lg
            lam = adaptive_weight(ema_t, ema_g, cfg.alpha)
            loss = l_teacher + lam * l_gt
        gnorm = optimizer_step(loss, student, opt, ema, cfg.ema, step)
        step += 1
        bar.update(1)

        stop = any_rank(budget.spent(), d)
        last = stop or step == cfg.iters
        if step % cfg.log_every == 0 or last:
            row = {"step": step, "k": k, "teacher_loss": sig(lt), "gt_loss": sig(lg) if l_gt is not None else None, "lambda": sig(lam),
                   "grad_norm": round(gnorm, 4), "lr": lr}
            if step % cfg.eval_every == 0 or last:
                row.update(evaluate(ema, teacher, eval_batch, cfg, scfg, d.device))
            bar.set_postfix({k_: v for k_, v in row.items() if k_ in ("teacher_loss", "eval_teacher_loss")})
            if logf:
                logf.write(json.dumps(row) + "\n")
                logf.flush()
        if d.master and (step % cfg.save_every == 0 or last):
            run_cfg = {"distill": asdict(cfg), "student": asdict(scfg), "loss_emas": [ema_t, ema_g]}
            save_run_state(out, "student", run_cfg, student, ema, opt, step, meta)
            save_checkpoint(out / "student", STUDENT_KIND, scfg, ema.state_dict(), meta={**meta, "step": step}, dtype=torch.float16)
        if d.master and cfg.snapshot_every and step % cfg.snapshot_every == 0:
            snap = out / "snapshots" / f"step{step}"
            snap.mkdir(parents=True, exist_ok=True)
            save_checkpoint(snap / "student", STUDENT_KIND, scfg, ema.state_dict(), meta={**meta, "step": step}, dtype=torch.float16)
            for ext in (".json", ".safetensors"):  # a snapshot is a servable folder: the autoencoder beside it, linked
                src, dst = out / f"autoencoder{ext}", snap / f"autoencoder{ext}"
                if src.is_file() and not dst.exists():
                    try:
                        os.link(src, dst)
                    except OSError:  # a file system without hard links
                        shutil.copyfile(src, dst)
        if stop:
            break
    bar.close()
    if logf:
        logf.close()
    teardown_distributed()
    return out / "student"


@torch.no_grad()
def evaluate(ema, teacher, batch: dict, cfg: DistillConfig, scfg: StudentConfig, device: torch.device) -> dict[str, float]:
    """Held-out teacher loss per grid interval at fixed noise and the default scales (s_ref 1.5, s_audio 2.5):
    the teacher's own trajectory whatever the method, so every run is scored alike."""
    eval_cfg = dataclasses.replace(cfg, p_no_motion=0.0, motion_noise=0.0, mixed=False, method="trajectory")
    b = batch["x"].shape[0]
    scales = torch.tensor([[scfg.s_ref, scfg.s_audio]], device=device).expand(b, 2)
    high = torch.ones(b, dtype=torch.bool, device=device)
    losses = []
    for k in range(scfg.steps):
        gen = torch.Generator(device=device).manual_seed(4321 + k)
        with autocast(device, cfg.bf16):
            losses.append(distill_losses(ema, teacher, batch, high, eval_cfg, scfg, k, gen, scales)[0].item())
    return {"eval_teacher_loss": sig(sum(losses) / len(losses)), **{f"eval_k{k}": sig(v) for k, v in enumerate(losses)}}


def sig(x: float) -> float:
    """Four significant digits: losses span many decades over a run."""
    return float(f"{x:.4g}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(parse_config(DistillConfig, description=__doc__.split("\n")[0]))
