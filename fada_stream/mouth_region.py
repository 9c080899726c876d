"""Where the mouth sits in a face crop, in the denoiser's token grid: the region the teacher's sampler drops from
the reference at high noise (generator.Guidance.mouth_drop_from) and its training form (train_teacher
--p-ref-mouth-drop) blanks out.

The box is fixed on the face-aligned crop the corpus and the bundled face use (the face centred, filling the
square). A photo framed otherwise (a wide shot, a face off centre) puts something else in the box: crop it to the
face first (docs/api.md, StreamConfig's mouth_drop_from)."""
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
