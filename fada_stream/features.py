"""Audio features shared by the runtime's audio encoder and the evaluation experts.

Log-mel spectrogram in plain torch (no torchaudio): centred STFT frames, so mel
frame j describes the audio around time j * hop / sample_rate. With the default
hop of 10 ms there are 100 mel frames per second, i.e. 4 per video frame at 25 fps.
"""
from __future__ import annotations

import functools
import math

import torch

LOG_FLOOR = 1e-5  # keeps log finite in digital silence; log(1e-5) = -11.5 is the silence level


def _hz_to_mel(f: float | torch.Tensor) -> float | torch.Tensor:
    """HTK mel scale (O'Shaughnessy 1987)."""
    if isinstance(f, torch.Tensor):
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    return 2595.0 * math.log10(1.0 + f / 700.0)


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular mel filters, (n_mels, n_fft // 2 + 1) float32, area-normalised (Slaney) so bands weigh alike."""
    f_max = sample_rate / 2.0 if f_max is None else f_max
    mels = torch.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)  # (n_mels+2,)
    edges = _mel_to_hz(mels)  # (n_mels+2,)
    freqs = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)  # (F,)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1) each
    up = (freqs[None] - lo) / (mid - lo)  # (n_mels, F)
    down = (hi - freqs[None]) / (hi - mid)  # (n_mels, F)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)  # (n_mels, F)
    fb = fb * (2.0 / (hi - lo))
    return fb.float()


@functools.lru_cache(maxsize=16)
def _hann(win: int) -> torch.Tensor:
    return torch.hann_window(win, periodic=True)


def log_mel(
    audio: torch.Tensor,
    sample_rate: int = 16000,
    n_mels: int = 80,
    n_fft: int = 512,
    win: int = 400,
    hop: int = 160,
) -> torch.Tensor:
    """Log-mel spectrogram: audio (..., N) -> (..., n_mels, N // hop + 1), frame j centred at j * hop.

    Edges are zero-padded (not reflected) so a chunk of silence stays silence and
    clips shorter than a window still work.
    """
    lead = audio.shape[:-1]
    x = audio.reshape(-1, audio.shape[-1]).float()  # (B, N)
    window = _hann(win).to(x.device)
    spec = torch.stft(
        x, n_fft=n_fft, hop_length=hop, win_length=win, window=window,
        center=True, pad_mode="constant", return_complex=True,
    )  # (B, F, frames)
    power = spec.real.square() + spec.imag.square()  # (B, F, frames)
    fb = mel_filterbank(sample_rate, n_fft, n_mels).to(x.device)  # (n_mels, F)
    mel = torch.matmul(fb, power)  # (B, n_mels, frames)
    out = torch.log(mel + LOG_FLOOR)  # (B, n_mels, frames)
    return out.reshape(*lead, n_mels, out.shape[-1])
