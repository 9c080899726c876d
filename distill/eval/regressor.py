"""Face-parameter regressor: a frame -> the renderer's jaw, width, round, blink, yaw, pitch, roll.

Two small towers: the downscaled full frame for pose and blinks, and the mouth box at native
resolution for the mouth shape, whose few-pixel changes a 64x64 frame would blur away.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from distill.eval.crops import crop_box, mouth_box, resize_frames, to_input
from distill.eval.layers import conv_bn

KIND = "face_regressor"
PARAMS = ("jaw", "width", "round", "blink", "yaw", "pitch", "roll")


@dataclass(frozen=True)
class RegressorConfig:
    mouth_box: tuple[int, int, int, int] = field(default_factory=mouth_box)  # in the 128x128 frame
    crop_hw: tuple[int, int] = (64, 80)  # the 65x76 lower-face box at about native resolution (multiples of 16)
    face_size: int = 64  # pose and blink survive a 2x downscale
    width: int = 24
    target_mean: tuple[float, ...] = (0.0,) * len(PARAMS)  # set from training data: outputs are standardised
    target_std: tuple[float, ...] = (1.0,) * len(PARAMS)


class FaceRegressor(nn.Module):
    """(face (B, 3, S, S), mouth (B, 3, h, w)) in [-1, 1] -> (B, 7) standardised parameters."""

    def __init__(self, cfg: RegressorConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.face = nn.Sequential(conv_bn(3, w, 2), conv_bn(w, 2 * w, 2), conv_bn(2 * w, 4 * w, 2), conv_bn(4 * w, 4 * w, 2))
        self.mouth = nn.Sequential(conv_bn(3, w, 2), conv_bn(w, 2 * w, 2), conv_bn(2 * w, 4 * w, 2), conv_bn(4 * w, 4 * w, 2))
        n_face = 4 * w * (cfg.face_size // 16) ** 2
        n_mouth = 4 * w * (cfg.crop_hw[0] // 16) * (cfg.crop_hw[1] // 16)
        self.head = nn.Sequential(nn.Linear(n_face + n_mouth, 128), nn.ReLU(inplace=True), nn.Linear(128, len(PARAMS)))
        self.register_buffer("mean", torch.tensor(cfg.target_mean), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.target_std), persistent=False)

    def forward(self, face: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
        f = self.face(face).flatten(1)  # (B, n_face)
        m = self.mouth(mouth).flatten(1)  # (B, n_mouth)
        return self.head(torch.cat([f, m], dim=1))  # (B, 7)


def regressor_inputs(frames: np.ndarray, cfg: RegressorConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, 128, 128, 3) uint8 -> face (T, 3, S, S), mouth (T, 3, h, w) in [-1, 1]."""
    face = to_input(resize_frames(frames, cfg.face_size), (cfg.face_size, cfg.face_size))
    mouth = to_input(crop_box(frames, cfg.mouth_box), cfg.crop_hw)
    return face, mouth


@torch.no_grad()
def predict_params(model: FaceRegressor, frames: np.ndarray, chunk: int = 256) -> dict[str, torch.Tensor]:
    """(T, 128, 128, 3) uint8 -> {name: (T,)} in the renderer's units."""
    face, mouth = regressor_inputs(frames, model.cfg)
    z = torch.cat([model(face[i : i + chunk], mouth[i : i + chunk]) for i in range(0, len(face), chunk)])  # (T, 7)
    y = z * model.std + model.mean  # (T, 7)
    return {k: y[:, i] for i, k in enumerate(PARAMS)}
