"""Frames to model inputs: the fixed mouth box, crops resized for the experts, downscaled full frames."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 128  # corpus resolution: every video is brought to SIZE x SIZE before scoring


def mouth_box(size: int = SIZE) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the renderer's box holding the mouth and chin in every pose."""
    from distill.data.face import mouth_box as renderer_box

    return tuple(int(v) for v in renderer_box(size))


def to_float(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float in [0, 1]."""
    x = torch.from_numpy(np.require(frames, requirements=["C", "W"])) if isinstance(frames, np.ndarray) else frames
    return x.permute(0, 3, 1, 2).float() / 255.0


def resize_frames(frames: np.ndarray, size: int = SIZE) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8, antialiased bilinear."""
    if frames.shape[1:3] == (size, size):
        return frames
    x = to_float(frames)  # (T, 3, H, W)
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)  # (T, 3, size, size)
    return (y.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def crop_box(frames: np.ndarray, box: tuple[int, int, int, int], margin: int = 0) -> np.ndarray:
    """(T, H, W, 3) -> (T, b - t + 2m, r - l + 2m, 3): the box grown by `margin` px (edge-padded outside the frame)."""
    top, bottom, left, right = box
    if margin:
        frames = np.pad(frames, ((0, 0), (margin, margin), (margin, margin), (0, 0)), mode="edge")
    return frames[:, top : bottom + 2 * margin, left : right + 2 * margin]


def to_input(crops: np.ndarray | torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(..., h, w, 3) uint8 -> (..., 3, H, W) float in [-1, 1] at the expert's input size."""
    x = torch.from_numpy(np.require(crops, requirements=["C", "W"])) if isinstance(crops, np.ndarray) else crops
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, h, w)
    if tuple(x.shape[-2:]) != tuple(hw):
        x = F.interpolate(x, size=hw, mode="bilinear", antialias=True)  # (B, 3, H, W)
    return x.reshape(*lead, 3, *hw)
