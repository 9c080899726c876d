"""The teacher's denoiser: a video DiT over windows of latent frames, conditioned on a reference and audio.

A window holds F latent frames; the first M are clean motion frames from the previous window.
Every block does, per frame, spatial self-attention whose keys also see the reference image's
tokens (appearance copying, as Animate Anyone / Loopy's reference net does, with the weights
shared), temporal attention across frames at each spatial position, cross-attention to the frame's
local audio tokens, and an MLP. Conditioning on the timestep enters through adaLN-Zero; one shared
modulation MLP plus a per-block table (PixArt-alpha's adaLN-single) keeps that ~12x cheaper in
parameters than DiT's per-block adaLN. An optional `cond` vector is added to the timestep embedding,
and optional `extra` tokens join every block's spatial attention: the student's multi-CFG tokens enter
through one or both.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fada_stream.model.audio_encoder import AudioEncoder
from fada_stream.model.config import AudioConfig, DiTConfig
from kernels.attention import flash_attention
from kernels.backend import Backend
from kernels.cfg_token import gated_residual, modulated_layer_norm

N_MOD = 12  # (shift, scale, gate) for spatial attention, temporal attention, audio cross-attention, MLP
NORM_EPS = 1e-6  # DiT's LayerNorm eps (no affine weights: adaLN supplies shift and scale)


def modulate_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, backend: Backend) -> torch.Tensor:
    """LayerNorm(x) (1 + scale) + shift for tokens x (B, ..., D), shift/scale (B, D) or per frame (B, F, D)."""
    return modulated_layer_norm(x.reshape(x.shape[0], -1, x.shape[-1]), shift, scale, eps=NORM_EPS, backend=backend).view(x.shape)


def gated_add(x: torch.Tensor, gate: torch.Tensor, y: torch.Tensor, backend: Backend) -> torch.Tensor:
    """x + gate * y (adaLN-Zero's gated residual) for tokens x (B, ..., D), y of x's size, gate (B, D) or (B, F, D)."""
    b, d = x.shape[0], x.shape[-1]
    return gated_residual(x.reshape(b, -1, d), gate, y.reshape(b, -1, d), backend=backend).view(x.shape)


#################################################################################
#               Embedding Layers for Timesteps and Positions                   #
#################################################################################


class TimestepEmbedder(nn.Module):
    """Flow time t in [0, 1] -> vector, through sinusoids of 1000 t (DiT's frequency range) and an MLP."""

    def __init__(self, width: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    @staticmethod
    def frequencies(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)  # (half,)
        args = 1000.0 * t.float()[..., None] * freqs  # (..., half)
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (..., dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.frequencies(t, self.freq_dim).to(self.mlp[0].weight.dtype))  # (..., width): half-precision weights take half features


def sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))  # (dim/2,)
    out = np.outer(pos.reshape(-1), omega)  # (N, dim/2)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (N, dim)


def sincos_2d(dim: int, grid: int) -> np.ndarray:
    ys, xs = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    return np.concatenate([sincos_1d(dim // 2, ys), sincos_1d(dim // 2, xs)], axis=1)  # (grid*grid, dim)


#################################################################################
#                                 Core DiT Model                                #
#################################################################################


class Attention(nn.Module):
    """Multi-head attention; keys/values come from `context` (defaults to the queries' own tokens)."""

    def __init__(self, width: int, heads: int, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(context_dim or width, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, backend: Backend = "torch") -> torch.Tensor:
        b, n, d = x.shape
        ctx = x if context is None else context  # (b, m, dc)
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)  # (b, heads, n, hd)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # (b, heads, m, hd) each
        out = flash_attention(q, k, v, backend=backend)  # (b, heads, n, hd)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))  # (b, n, d)


class Mlp(nn.Module):
    def __init__(self, width: int, ratio: float):
        super().__init__()
        hidden = int(width * ratio)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class VideoDiTBlock(nn.Module):
    """Spatial (+reference) attention, temporal attention, audio cross-attention, MLP; each adaLN-Zero gated."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, audio_dim: int):
        super().__init__()
        self.spatial = Attention(width, heads)
        self.temporal = Attention(width, heads)
        self.audio = Attention(width, heads, context_dim=audio_dim)
        self.mlp = Mlp(width, mlp_ratio)
        self.table = nn.Parameter(torch.zeros(N_MOD, width))  # adaLN-single: this block's offset of the shared modulation

    def forward(
        self, x: torch.Tensor, r: torch.Tensor, a: torch.Tensor, mod: torch.Tensor, mod_ref: torch.Tensor, backend: Backend = "torch",
        extra: torch.Tensor | None = None, extra_gate: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, F, N, D) frame tokens, r (B, Nr, D) reference tokens, a (B, F, A, Da) audio tokens,
        mod (B, F, 12, D) per-frame modulation, mod_ref (B, 12, D); extra (B, T, D) tokens every frame token
        also attends to (the student's CFG tokens), added through extra_gate (D,). Returns the updated (x, r)."""
        b, f, n, d = x.shape
        sa, ca, ga, st, ct, gt, sx, cx, gx, sm, cm, gm = (mod + self.table).unbind(2)  # (B, F, D) each
        rs, rc, rg, _, _, _, _, _, _, rsm, rcm, rgm = (mod_ref + self.table).unbind(1)  # (B, D) each

        hr = modulate_norm(r, rs, rc, backend)  # (B, Nr, D)
        h = modulate_norm(x, sa, ca, backend)  # (B, F, N, D)
        keys = torch.cat([h, hr[:, None].expand(b, f, -1, d)], dim=2).reshape(b * f, -1, d)  # (B*F, N+Nr, D)
        x = gated_add(x, ga, self.spatial(h.reshape(b * f, n, d), keys, backend=backend), backend)  # (B, F, N, D)
        r = gated_add(r, rg, self.spatial(hr, backend=backend), backend)  # (B, Nr, D): the reference stream sees only itself
        if extra is not None:
            # A softmax of its own (decoupled, as IP-Adapter's image tokens): the teacher's attention over frame and
            # reference tokens is left as it was, and the zero-initialised gate makes the student start as the teacher.
            tok = extra[:, None].expand(b, f, -1, d).reshape(b * f, -1, d)  # (B*F, T, D)
            x = x + extra_gate * self.spatial(h.reshape(b * f, n, d), tok, backend=backend).view(b, f, n, d)  # (B, F, N, D)

        h = modulate_norm(x, st, ct, backend).transpose(1, 2).reshape(b * n, f, d)  # (B*N, F, D)
        # Plain torch here: the temporal output is frame-major, and the fused epilogue would first copy it to x's layout.
        x = x + gt[:, :, None] * self.temporal(h, backend=backend).view(b, n, f, d).transpose(1, 2)  # (B, F, N, D)

        h = modulate_norm(x, sx, cx, backend).reshape(b * f, n, d)  # (B*F, N, D)
        x = gated_add(x, gx, self.audio(h, a.reshape(b * f, a.shape[2], a.shape[3]), backend=backend), backend)  # (B, F, N, D)

        x = gated_add(x, gm, self.mlp(modulate_norm(x, sm, cm, backend)), backend)  # (B, F, N, D)
        r = gated_add(r, rgm, self.mlp(modulate_norm(r, rsm, rcm, backend)), backend)  # (B, Nr, D)
        return x, r


class FinalLayer(nn.Module):
    def __init__(self, width: int, patch: int, channels: int):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(2, width))
        self.linear = nn.Linear(width, patch * patch * channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor, backend: Backend = "torch") -> torch.Tensor:
        shift, scale = (self.table + c[:, :, None]).unbind(2)  # (B, F, D) each
        return self.linear(modulate_norm(x, shift, scale, backend))  # (B, F, N, p*p*C)


class VideoDiT(nn.Module):
    """v_theta(x_t, t | motion, reference, audio) for a window of F latent frames (flow-matching velocity)."""

    def __init__(self, cfg: DiTConfig, audio_cfg: AudioConfig):
        super().__init__()
        self.cfg = cfg
        d, p, c = cfg.width, cfg.patch, cfg.latent_channels
        self.audio_encoder = AudioEncoder(audio_cfg)
        self.patch_embed = nn.Conv2d(c, d, p, p)
        n = cfg.grid**2
        self.register_buffer("pos_spatial", torch.from_numpy(sincos_2d(d, cfg.grid)).float()[None], persistent=False)  # (1, N, D)
        self.register_buffer("pos_frame", torch.from_numpy(sincos_1d(d, np.arange(cfg.frames))).float()[:, None], persistent=False)  # (F, 1, D)
        self.ref_type = nn.Parameter(torch.zeros(d))  # tells reference tokens from frame tokens
        self.null_ref = nn.Parameter(torch.zeros(n, d))  # stands in for a dropped reference
        self.null_audio = nn.Parameter(torch.zeros(self.audio_encoder.n_tokens, audio_cfg.dim))  # ... and dropped audio
        self.t_embedder = TimestepEmbedder(d)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(d, N_MOD * d))  # adaLN-single: shared by every block
        self.blocks = nn.ModuleList([VideoDiTBlock(d, cfg.heads, cfg.mlp_ratio, audio_cfg.dim) for _ in range(cfg.depth)])
        self.final = FinalLayer(d, p, c)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        def _basic_init(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        self.apply(_basic_init)
        w = self.patch_embed.weight.data  # like nn.Linear, as DiT does
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.ref_type, std=0.02)
        nn.init.normal_(self.null_ref, std=0.02)
        nn.init.normal_(self.null_audio, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        # adaLN-Zero: every gate starts at 0, so each block starts as the identity and the
        # final projection at 0 (DiT, Peebles & Xie 2023, sec. 3.2).
        nn.init.zeros_(self.t_block[1].weight)
        nn.init.zeros_(self.t_block[1].bias)
        for blk in self.blocks:
            nn.init.zeros_(blk.table)
        nn.init.zeros_(self.final.table)
        nn.init.zeros_(self.final.linear.weight)
        nn.init.zeros_(self.final.linear.bias)

    def embed_frames(self, x: torch.Tensor) -> torch.Tensor:
        b, f = x.shape[:2]
        h = self.patch_embed(x.flatten(0, 1))  # (B*F, D, g, g)
        return h.flatten(2).transpose(1, 2).view(b, f, -1, h.shape[1])  # (B, F, N, D)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        b, f, _, _ = x.shape
        p, g, c = self.cfg.patch, self.cfg.grid, self.cfg.latent_channels
        x = x.view(b, f, g, g, p, p, c)  # (B, F, gy, gx, py, px, C)
        return x.permute(0, 1, 6, 2, 4, 3, 5).reshape(b, f, c, g * p, g * p)  # (B, F, C, h, w)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        ref: torch.Tensor,
        mel: torch.Tensor | None = None,
        motion: torch.Tensor | None = None,
        motion_mask: torch.Tensor | None = None,
        drop_ref: torch.Tensor | None = None,
        drop_audio: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        extra: torch.Tensor | None = None,
        extra_gates: torch.Tensor | None = None,
        ref_drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity for a window.

        x (B, F, C, h, w) noisy latents at flow time t (B,) (1 = noise); ref (B, C, h, w) reference
        latent; mel (B, n_mels, mel_span(F)) log-mel window; motion (B, M, C, h, w) clean latents of
        the first M frames, used where motion_mask (B,) is True (None: no motion frames, as in a
        stream's first window); drop_ref / drop_audio (B,) bool select the null condition (CFG);
        cond (B, D) is added to the frames' timestep embedding (not the reference stream's, so a
        session can cache the reference's per-layer tokens whatever the guidance scales). `audio`
        (B, F, A, Da), the audio encoder's tokens of `mel`, may be given instead of mel: a sampler
        encodes a window's audio once rather than at every step. extra (B, T, D) are tokens the frame tokens
        attend to in every block's spatial attention, weighted by extra_gates (depth, D). ref_drop (B, N) bool
        replaces those reference tokens by the null reference's, a partial drop (the reference's mouth, so the
        frames cannot copy its shape: docs/models.md, "The reference's mouth"). Returns
        (B, F, C, h, w), exactly 0 on motion frames, so a sampler leaves them equal to the clean latents.
        """
        b, f = x.shape[:2]
        clean = self.motion_frames(b, f, x.device, motion, motion_mask)  # (B, F) True on given motion frames
        if motion is not None:
            pad = torch.zeros_like(x[:, motion.shape[1] :])  # (B, F-M, C, h, w)
            x = torch.where(clean[:, :, None, None, None], torch.cat([motion, pad], dim=1), x)  # (B, F, C, h, w)
        t_frame = torch.where(clean, torch.zeros_like(t)[:, None], t[:, None].expand(b, f))  # (B, F): motion frames are clean
        c = self.t_embedder(t_frame)  # (B, F, D)
        if cond is not None:
            c = c + cond[:, None]
        mod = self.t_block(c).view(b, f, N_MOD, -1)  # (B, F, 12, D)
        c_ref = self.t_embedder(torch.zeros(b, device=x.device))  # (B, D): the reference is a clean image
        mod_ref = self.t_block(c_ref).view(b, N_MOD, -1)  # (B, 12, D)

        h = self.embed_frames(x) + self.pos_spatial + self.pos_frame[:f]  # (B, F, N, D)
        r = self.embed_frames(ref[:, None])[:, 0]  # (B, N, D)
        if drop_ref is not None:
            r = torch.where(drop_ref[:, None, None], self.null_ref.to(r.dtype), r)
        if ref_drop is not None:
            r = torch.where(ref_drop[:, :, None], self.null_ref.to(r.dtype), r)  # (B, N, D)
        r = r + self.pos_spatial + self.ref_type  # (B, N, D)
        a = self.audio_encoder(mel) if audio is None else audio  # (B, F, A, Da)
        if drop_audio is not None:
            a = torch.where(drop_audio[:, None, None, None], self.null_audio.to(a.dtype), a)

        # The Triton kernels are forward-only, so with autograd on (training, distillation) every
        # call takes the torch reference; cfg.backend picks the kernels for inference.
        backend = "torch" if torch.is_grad_enabled() else self.cfg.backend
        for i, blk in enumerate(self.blocks):
            gate = None if extra is None else extra_gates[i]
            h, r = blk(h, r, a, mod, mod_ref, backend, extra, gate)  # (B, F, N, D), (B, N, D)
        v = self.unpatchify(self.final(h, c, backend))  # (B, F, C, h, w)
        return torch.where(clean[:, :, None, None, None], torch.zeros_like(v), v)

    def motion_frames(self, b: int, f: int, device: torch.device, motion: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, F) bool: frames given clean by the caller."""
        clean = torch.zeros(b, f, dtype=torch.bool, device=device)
        if motion is not None:
            m = motion.shape[1]
            clean[:, :m] = True if mask is None else mask[:, None]
        return clean


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
