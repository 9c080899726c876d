"""Where the mouth sits in a face crop, in the denoiser's token grid: the region the reference-mouth probe
(distill.teacher_eval --ref-mouth-drop) and its training form (train_teacher --p-ref-mouth-drop) blank out."""
from __future__ import annotations

import torch

# The mouth, jaw and chin of a face-aligned crop as fractions of the image (top, bottom, left, right): pixels
# 80-111 x 32-95 at 128 px, where open-set ground-truth frames change most from one frame to the next (docs/models.md,
# "The sampler's side").
MOUTH_BOX = (0.625, 0.875, 0.25, 0.75)


def region_tokens(grid: int, box: tuple[float, float, float, float] = MOUTH_BOX) -> torch.Tensor:
    """(grid*grid,) bool, row-major: the tokens of a grid x grid token map whose centres lie inside `box`."""
    c = (torch.arange(grid) + 0.5) / grid  # (grid,) token centres as fractions of the image
    rows = (c > box[0]) & (c < box[1])
    cols = (c > box[2]) & (c < box[3])
    return (rows[:, None] & cols[None, :]).flatten()
