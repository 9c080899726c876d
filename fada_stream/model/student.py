"""The distilled student: the teacher's video DiT plus multi-CFG tokens (FADA, arXiv 2412.16915, sec. 3.3).

The two guidance scales (s_ref, s_audio) become Fourier features, then a learned embedding added to
the frames' timestep embedding, so every block's adaLN modulation knows how strongly to follow the
reference and the audio: one pass per step gives what the teacher needs three passes for. The
embedding's last layer starts at zero, so a student initialised from the teacher starts as the
teacher's reference + audio branch.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from fada_stream.model.config import StudentConfig
from fada_stream.model.dit import VideoDiT

STUDENT_KIND = "fada-student"


class CfgTokenEmbedder(nn.Module):
    """(B, 2) guidance scales -> (B, D)."""

    def __init__(self, width: int, n_freq: int = 16, max_scale: float = 8.0):
        super().__init__()
        # Periods from 2 * max_scale down to ~0.1: coarse and fine distinctions between scales.
        self.register_buffer("freqs", math.pi / max_scale * 2.0 ** torch.linspace(0, 6, n_freq), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(4 * n_freq + 2, width), nn.SiLU(), nn.Linear(width, width))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, scales: torch.Tensor) -> torch.Tensor:
        args = scales.float()[..., None] * self.freqs  # (B, 2, n_freq)
        feats = torch.cat([torch.sin(args), torch.cos(args)], dim=-1).flatten(1)  # (B, 4 n_freq)
        return self.mlp(torch.cat([feats, scales.float()], dim=-1))  # (B, D)


class StudentDiT(nn.Module):
    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.cfg = cfg
        self.dit = VideoDiT(cfg.model.dit, cfg.model.audio)
        self.cfg_embed = CfgTokenEmbedder(cfg.model.dit.width) if cfg.tokens else None

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
        cond = None
        if self.cfg_embed is not None and scales is not None:
            cond = self.cfg_embed(scales)  # (B, D)
        return self.dit(x, t, ref, mel, motion=motion, motion_mask=motion_mask, drop_ref=drop_ref, drop_audio=drop_audio, cond=cond,
                        audio=audio)
