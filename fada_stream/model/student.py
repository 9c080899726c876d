"""The distilled student: the teacher's video DiT plus multi-CFG tokens (FADA, arXiv 2412.16915, sec. 3.3).

The two guidance scales (s_ref, s_audio) become Fourier features, then learned embeddings that tell
every block how strongly to follow the reference and the audio: one pass per step gives what the
teacher needs three passes for. They enter in one of two places, or both (StudentConfig.token_mode):

- adaLN: a vector added to the frames' timestep embedding, so every block's modulation (shift, scale,
  gate) depends on the scales. Its last layer starts at zero.
- attention: `cfg_tokens` tokens that every frame token attends to in each block's spatial attention,
  through a per-block gate that starts at zero.

Either way a student initialised from the teacher starts as the teacher's reference + audio branch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fada_stream.model.config import StudentConfig
from fada_stream.model.dit import VideoDiT

STUDENT_KIND = "fada-student"


class ScaleFeatures(nn.Module):
    """(B, 2) guidance scales -> (B, 4 n_freq + 2) sines and cosines of them, plus their raw values."""

    def __init__(self, n_freq: int = 16, max_scale: float = 8.0):
        super().__init__()
        # Periods from 2 * max_scale down to ~0.1: coarse and fine distinctions between scales.
        self.register_buffer("freqs", math.pi / max_scale * 2.0 ** torch.linspace(0, 6, n_freq), persistent=False)
        self.dim = 4 * n_freq + 2

    def forward(self, scales: torch.Tensor) -> torch.Tensor:
        args = scales.float()[..., None] * self.freqs  # (B, 2, n_freq)
        feats = torch.cat([torch.sin(args), torch.cos(args)], dim=-1).flatten(1)  # (B, 4 n_freq)
        return torch.cat([feats, scales.float()], dim=-1)  # (B, 4 n_freq + 2)


class CfgTokenEmbedder(nn.Module):
    """(B, 2) guidance scales -> (B, D), added to the timestep embedding (adaLN placement)."""

    def __init__(self, width: int):
        super().__init__()
        self.features = ScaleFeatures()
        self.mlp = nn.Sequential(nn.Linear(self.features.dim, width), nn.SiLU(), nn.Linear(width, width))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, scales: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(scales))  # (B, D)


class CfgAttentionTokens(nn.Module):
    """(B, 2) guidance scales -> (B, T, D) attention tokens, layer-normalised like the tokens they sit beside.

    Not zero-initialised (a normalised zero has no direction to learn from): the blocks' gates start at zero instead.
    """

    def __init__(self, width: int, n_tokens: int):
        super().__init__()
        self.features = ScaleFeatures()
        self.n_tokens = n_tokens
        self.mlp = nn.Sequential(nn.Linear(self.features.dim, width), nn.SiLU(), nn.Linear(width, n_tokens * width))

    def forward(self, scales: torch.Tensor) -> torch.Tensor:
        tok = self.mlp(self.features(scales)).view(scales.shape[0], self.n_tokens, -1)  # (B, T, D)
        return F.layer_norm(tok, tok.shape[-1:])


class StudentDiT(nn.Module):
    def __init__(self, cfg: StudentConfig):
        super().__init__()
        if cfg.token_mode not in ("adaln", "attn", "both") or cfg.cfg_tokens < 1:
            raise ValueError(f"token_mode must be adaln, attn or both with cfg_tokens >= 1, got {cfg.token_mode!r}, {cfg.cfg_tokens}")
        self.cfg = cfg
        d = cfg.model.dit.width
        self.dit = VideoDiT(cfg.model.dit, cfg.model.audio)
        adaln, attn = cfg.tokens and cfg.token_mode in ("adaln", "both"), cfg.tokens and cfg.token_mode in ("attn", "both")
        self.cfg_embed = CfgTokenEmbedder(d) if adaln else None
        self.cfg_tokens = CfgAttentionTokens(d, cfg.cfg_tokens) if attn else None
        self.token_gates = nn.Parameter(torch.zeros(cfg.model.dit.depth, d)) if attn else None  # (depth, D)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        ref: torch.Tensor,
        mel: torch.Tensor | None = None,
        motion: torch.Tensor | None = None,
        motion_mask: torch.Tensor | None = None,
        scales: torch.Tensor | None = None,
        drop_ref: torch.Tensor | None = None,
        drop_audio: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity (B, F, C, h, w), as VideoDiT.forward; scales (B, 2) = (s_ref, s_audio) select the guided
        velocity (token students only; None with drop flags gives a naive student's branches)."""
        cond = extra = None
        if scales is not None:
            if self.cfg_embed is not None:
                cond = self.cfg_embed(scales)  # (B, D)
            if self.cfg_tokens is not None:
                extra = self.cfg_tokens(scales).to(x.dtype)  # (B, T, D)
        return self.dit(x, t, ref, mel, motion=motion, motion_mask=motion_mask, drop_ref=drop_ref, drop_audio=drop_audio, cond=cond,
                        audio=audio, extra=extra, extra_gates=self.token_gates)
