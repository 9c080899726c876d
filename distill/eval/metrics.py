"""Evaluation metrics as pure functions of tensors: lip sync, mouth, image fidelity, distributions, seams."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PSNR_CAP = 100.0  # dB reported for identical frames (the true value is infinite)


# --------------------------------------------------------------------------- lip sync


def sync_curve(video_emb: torch.Tensor, audio_emb: torch.Tensor, max_offset: int = 15) -> torch.Tensor:
    """Mean distance between video window t and audio window t + o over all valid t, per offset o.

    video_emb (Tv, D), audio_emb (Ta, D) -> mdist (2 max_offset + 1,) for o = -max_offset..max_offset;
    NaN where no t is valid. As syncnet_python's evaluation, but averaging only over pairs that exist
    instead of zero-padding the audio.
    """
    v, a = video_emb.float(), audio_emb.float()
    out = torch.full((2 * max_offset + 1,), float("nan"))
    for i, o in enumerate(range(-max_offset, max_offset + 1)):
        lo, hi = max(0, -o), min(len(v), len(a) - o)  # t with both windows t and t + o present
        if hi > lo:
            out[i] = (v[lo:hi] - a[lo + o : hi + o]).norm(dim=1).mean()  # only the pairs needed: O(T) memory
    return out


def sync_scores(mdist: torch.Tensor) -> tuple[float, float, int]:
    """(Sync-C, Sync-D, offset) from a curve over o = -K..K.

    Sync-D = min distance, Sync-C = median - min (syncnet_python's confidence). The best audio
    shift o* = argmin; offset = -o* so that offset > 0 means the video lags the audio (the mouth
    moves after the sound), matching `av_offset_frames` of the corpus.
    """
    k = (mdist.numel() - 1) // 2
    valid = mdist[~torch.isnan(mdist)]
    if valid.numel() == 0:
        raise ValueError("no valid offset: video and audio windows do not overlap")
    best = int(torch.nan_to_num(mdist, nan=float("inf")).argmin())
    d_min = float(valid.min())
    return float(valid.median()) - d_min, d_min, -(best - k)


# --------------------------------------------------------------------------- mouth and silence


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation of two (N,) series; NaN when either is constant."""
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    den = torch.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


def energy_silence(audio: torch.Tensor, n_frames: int, fps: float = 25.0, sample_rate: int = 16000,
                   rel_db: float = -35.0, hangover_s: float = 0.1) -> torch.Tensor:
    """Per-video-frame silence flags (n_frames,) bool from audio (N,).

    A frame is speech when its RMS is within `rel_db` of the loud (95th percentile) frames and above
    an absolute floor; speech is then dilated by `hangover_s` on both sides, since the mouth opens
    just before the sound (co-articulation) and closes just after it.
    """
    spf = int(round(sample_rate / fps))
    x = F.pad(audio.float(), (0, max(0, n_frames * spf - audio.numel())))[: n_frames * spf]  # (T spf,)
    rms = x.reshape(n_frames, spf).square().mean(dim=1).sqrt()  # (T,)
    loud = torch.quantile(rms, 0.95)
    speech = (rms > loud * 10 ** (rel_db / 20)) & (rms > 1e-3)  # (T,)
    h = int(math.ceil(hangover_s * fps))
    speech = F.max_pool1d(speech.float()[None, None], 2 * h + 1, 1, h)[0, 0] > 0  # (T,)
    return ~speech


def closed_in_silence(jaw: torch.Tensor, silent: torch.Tensor, threshold: float = 0.1) -> float | None:
    """Fraction of silent frames whose mouth opening jaw (T,) is below `threshold`; None without silence."""
    n = min(jaw.numel(), silent.numel())
    jaw, silent = jaw[:n], silent[:n].bool()
    if not silent.any():
        return None
    return float((jaw[silent] < threshold).float().mean())


# --------------------------------------------------------------------------- image fidelity


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean per-frame PSNR in dB of (T, 3, H, W) frames in [0, 1]; identical frames count as PSNR_CAP."""
    mse = (x.float() - y.float()).square().flatten(1).mean(dim=1)  # (T,)
    db = 10 * torch.log10(1.0 / mse.clamp_min(1e-30))  # (T,)
    return float(db.clamp(max=PSNR_CAP).mean())


def _gaussian(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()  # (size,)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004; 11x11 Gaussian, sigma 1.5, valid region) of (T, 3, H, W) in [0, 1]."""
    c1, c2 = 0.01**2, 0.03**2
    g = _gaussian(window, sigma)
    k = (g[:, None] * g[None, :]).expand(3, 1, window, window)  # (3, 1, w, w): one filter per channel
    x, y = x.float(), y.float()

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, k, groups=3)  # (T, 3, H - w + 1, W - w + 1)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


# --------------------------------------------------------------------------- distributions


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to feature sets a (N, D) and b (M, D).

    |mu_a - mu_b|^2 + tr(Sa + Sb - 2 (Sa^1/2 Sb Sa^1/2)^1/2), in float64 with eigendecompositions
    (symmetric, so no complex sqrtm as in scipy's FID code).
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)  # (D,)
    sa, sb = torch.cov(a.T), torch.cov(b.T)  # (D, D)
    ea, va = torch.linalg.eigh(sa)
    root_a = (va * ea.clamp_min(0).sqrt()) @ va.T  # (D, D)
    mid = torch.linalg.eigvalsh(root_a @ sb @ root_a)  # (D,)
    tr_cross = mid.clamp_min(0).sqrt().sum()
    d = (mu_a - mu_b).square().sum() + torch.trace(sa) + torch.trace(sb) - 2 * tr_cross
    return max(float(d), 0.0)


# --------------------------------------------------------------------------- windowed generation


def seam_jitter(frames: torch.Tensor, stride: int) -> float:
    """Mean |frame difference| at window seams over that within windows, for (T, ...) frames.

    Window k starts at frame k * stride, so the seams are frames t with t % stride == 0, t > 0
    (the difference between frame t - 1 and t). 1.0 means seams are invisible.
    """
    diff = (frames[1:].float() - frames[:-1].float()).abs().flatten(1).mean(dim=1)  # (T - 1,): diff[i] = |f[i+1] - f[i]|
    t = torch.arange(1, frames.shape[0])  # (T - 1,)
    at_seam = t % stride == 0
    if not at_seam.any() or at_seam.all():
        raise ValueError(f"need frames both at and between seams: {frames.shape[0]} frames, stride {stride}")
    within = diff[~at_seam].mean()
    return float(diff[at_seam].mean() / within) if within > 0 else float("inf")
