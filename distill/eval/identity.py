"""Identity encoder: a frame -> a unit embedding, trained as a cosine-softmax classifier over the
train identities (CosFace, Wang et al. 2018), so cosine similarity measures "same face"."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distill.eval.crops import resize_frames, to_input
from distill.eval.layers import conv_bn

KIND = "identity_encoder"


@dataclass(frozen=True)
class IdentityConfig:
    face_size: int = 64  # skin, hair and face shape survive a 2x downscale
    width: int = 32
    dim: int = 128


class IdentityEncoder(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> (B, dim) unit vectors."""

    def __init__(self, cfg: IdentityConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.net = nn.Sequential(
            conv_bn(3, w, 2), conv_bn(w, 2 * w), conv_bn(2 * w, 2 * w, 2), conv_bn(2 * w, 4 * w, 2), conv_bn(4 * w, 4 * w, 2),
        )
        self.proj = nn.Linear(4 * w * (cfg.face_size // 16) ** 2, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.net(x).flatten(1)), dim=-1)  # (B, dim)


class CosFaceHead(nn.Module):
    """Logits s (cos(theta_y) - m) for the true class, s cos(theta_j) otherwise; training only."""

    def __init__(self, dim: int, n_classes: int, scale: float = 16.0, margin: float = 0.2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = emb @ F.normalize(self.weight, dim=-1).T  # (B, n_classes)
        return self.scale * (cos - self.margin * F.one_hot(labels, cos.shape[1]))  # (B, n_classes)


@torch.no_grad()
def embed_faces(model: IdentityEncoder, frames: np.ndarray, chunk: int = 256) -> torch.Tensor:
    """(T, 128, 128, 3) uint8 -> (T, dim)."""
    s = model.cfg.face_size
    x = to_input(resize_frames(frames, s), (s, s))  # (T, 3, s, s)
    return torch.cat([model(x[i : i + chunk]) for i in range(0, len(x), chunk)])
