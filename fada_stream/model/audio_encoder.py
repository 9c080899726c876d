"""Audio encoder: log-mel -> per-video-frame audio tokens with bounded look-ahead.

Each video frame gets its own mel window (past context + its 4 mel frames + look-ahead) and a
small 1-D conv net turns that window into a few tokens. Windows are cut before any layer mixes
time, so a frame's tokens provably depend on nothing beyond `AudioConfig.lookahead_samples` after
the frame's end: the streaming runtime can emit a frame as soon as that much audio has arrived.
"""
from __future__ import annotations

import torch
from torch import nn

from fada_stream.features import LOG_FLOOR, log_mel
from fada_stream.model.config import AudioConfig

SILENCE = float(torch.log(torch.tensor(LOG_FLOOR)))  # log-mel of digital silence


def stream_mel(audio: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """(..., N) 16 kHz audio -> (..., n_mels, N // hop + 1): mel frame j centred at sample j * hop.

    Computed over the whole stream (zero-padded edges = silence), so the windows the dataset and
    the runtime cut out of it are the same numbers.
    """
    return log_mel(audio, sample_rate=cfg.sample_rate, n_mels=cfg.n_mels, win=cfg.win, hop=cfg.hop)


def mel_window(mel: torch.Tensor, first_frame: int, n_frames: int, cfg: AudioConfig) -> torch.Tensor:
    """Cut the mel span that video frames [first_frame, first_frame + n_frames) need, silence outside.

    mel: (n_mels, T) of a whole stream. Returns (n_mels, cfg.mel_span(n_frames)).
    """
    start = first_frame * cfg.mel_per_frame - cfg.past_mel
    span = cfg.mel_span(n_frames)
    lo, hi = max(start, 0), min(start + span, mel.shape[-1])
    out = mel.new_full((mel.shape[0], span), SILENCE)  # (n_mels, span)
    if hi > lo:
        out[:, lo - start : hi - start] = mel[:, lo:hi]
    return out


class AudioEncoder(nn.Module):
    """(B, n_mels, mel_span(F)) -> (B, F, n_tokens, dim)."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.width
        # Log-mel sits around -11.5 in silence and near 0 in speech: a fixed affine map centres it
        # so the first conv does not spend its bias learning the offset.
        self.net = nn.Sequential(
            nn.Conv1d(cfg.n_mels, c, 3, 1, 1), nn.GELU(),
            nn.Conv1d(c, c, 3, 2, 1), nn.GELU(),
            nn.Conv1d(c, c, 3, 2, 1), nn.GELU(),
            nn.Conv1d(c, cfg.dim, 1),
        )
        self.n_tokens = self._tokens(cfg.window_mel)
        self.pos = nn.Parameter(torch.zeros(1, self.n_tokens, cfg.dim))
        nn.init.normal_(self.pos, std=0.02)

    @staticmethod
    def _tokens(w: int) -> int:
        for _ in range(2):  # two stride-2, kernel-3, pad-1 convolutions
            w = (w - 1) // 2 + 1
        return w

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        n_frames = (mel.shape[-1] - cfg.past_mel - cfg.lookahead_mel) // cfg.mel_per_frame
        x = (mel + 4.0) / 4.0  # (B, n_mels, T) roughly unit scale
        win = x.unfold(-1, cfg.window_mel, cfg.mel_per_frame)[:, :, :n_frames]  # (B, n_mels, F, W)
        b, m, f, w = win.shape
        win = win.permute(0, 2, 1, 3).reshape(b * f, m, w)  # (B*F, n_mels, W)
        tok = self.net(win).transpose(1, 2)  # (B*F, n_tokens, dim)
        return (tok + self.pos).reshape(b, f, self.n_tokens, -1)  # (B, F, n_tokens, dim)
