"""Restyling: one random colour look per identity, applied alike to its reference and all its frames.

Distillation (`python -m distill.distill --restyle P`) encodes a restyled copy of each tier and draws a
share P of its windows from it. The point is the student's *learned* guidance: a naive student
extrapolates with real CFG at inference, which carries over to any reference, while a token student
only learns the guided output on the references it is shown. The corpus's faces span human skin tones
on soft backgrounds; a look rotates every hue (skin, hair, clothes, background), rescales saturation
and contrast, and sometimes posterises to a few levels per channel (flat, cel-like shading), so the
student sees references well outside that palette, with the teacher's guided output on them as
targets and, on `high` windows, the restyled ground truth. Nothing here draws on the open-set style
family of `distill.data.face` (patterns, ink, hats, proportions): that split stays held out.

With `shape=True` (`--restyle-shape`) each identity also gets a `Shape`: its whole picture stretched
and shifted (other face proportions and framings than the corpus draws) and, half the time, a static
grain texture laid over it; again alike on its reference and frames, so the mouth the audio drives
stays where the reference shows it. Colour alone did not reach the token student's open-set lip-sync
gap (docs/distillation.md); this tests whether geometry and texture do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# RGB <-> YIQ: luma plus a 2-D chroma plane, so a hue change is a rotation of (I, Q).
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


@dataclass(frozen=True)
class Look:
    hue: float  # chroma rotation, radians
    saturation: float  # chroma gain
    contrast: float  # luma gain about mid-grey
    brightness: float  # luma offset, in [0, 1] units
    levels: int  # posterise to this many levels per channel; 0 = smooth

    def matrix(self) -> torch.Tensor:
        """(3, 3) colour transform on RGB column vectors (posterising and clipping come after)."""
        c, s = math.cos(self.hue), math.sin(self.hue)
        yiq = torch.tensor([[self.contrast, 0.0, 0.0],
                            [0.0, self.saturation * c, -self.saturation * s],
                            [0.0, self.saturation * s, self.saturation * c]])
        return _YIQ_TO_RGB @ yiq @ _RGB_TO_YIQ


def sample_look(gen: torch.Generator) -> Look:
    """Any hue; saturation 0.7-1.8x; contrast 0.8-1.25x; brightness +-0.08; posterised 4-6 levels 30% of the time."""
    u = torch.rand(6, generator=gen).tolist()
    levels = 4 + int(u[5] * 3) if u[4] < 0.3 else 0
    return Look(hue=2 * math.pi * u[0], saturation=0.7 + 1.1 * u[1], contrast=0.8 + 0.45 * u[2],
                brightness=0.16 * (u[3] - 0.5), levels=levels)


@dataclass(frozen=True)
class Shape:
    sx: float  # horizontal scale of the picture about its centre (> 1: wider faces)
    sy: float  # vertical scale
    dx: float  # shift right, in frame widths
    dy: float  # shift down, in frame heights
    grain: float  # texture amplitude: luminance x (1 + grain * field), field in [-1, 1]; 0 = none
    texture_seed: int  # the field's seed: one static texture per identity

    def warp(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float in [0, 1] -> stretched and shifted, edges repeated (no black borders)."""
        # affine_grid maps output to input coordinates in [-1, 1]: input = (output - shift) / scale.
        theta = torch.tensor([[1.0 / self.sx, 0.0, -2.0 * self.dx / self.sx],
                              [0.0, 1.0 / self.sy, -2.0 * self.dy / self.sy]], dtype=x.dtype)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)  # (N, H, W, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def field(self, h: int, w: int) -> torch.Tensor:
        """(1, 1, H, W) static texture in [-1, 1]: coarse blotches plus fine grain."""
        gen = torch.Generator().manual_seed(self.texture_seed)
        coarse = F.interpolate(torch.rand(1, 1, 6, 6, generator=gen), size=(h, w), mode="bicubic", align_corners=False)
        fine = F.interpolate(torch.rand(1, 1, h // 4, w // 4, generator=gen), size=(h, w), mode="bilinear", align_corners=False)
        return (coarse + fine - 1.0).clamp(-1.0, 1.0)


def sample_shape(gen: torch.Generator) -> Shape:
    """Scales 0.85-1.2 per axis, shifts +-5 % of the frame, grain 0.05-0.25 half the time."""
    u = torch.rand(6, generator=gen).tolist()
    grain = 0.05 + 0.2 * u[5] if u[4] < 0.5 else 0.0
    return Shape(sx=0.85 + 0.35 * u[0], sy=0.85 + 0.35 * u[1], dx=0.1 * (u[2] - 0.5), dy=0.1 * (u[3] - 0.5),
                 grain=grain, texture_seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))


def restyle(frames: torch.Tensor, look: Look, shape: Shape | None = None) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> the same frames in `look` (and `shape`, if given), uint8."""
    x = frames.float() / 255.0  # (N, H, W, 3)
    if shape is not None:
        x = shape.warp(x.permute(0, 3, 1, 2))  # (N, 3, H, W)
        if shape.grain:
            x = x * (1.0 + shape.grain * shape.field(x.shape[2], x.shape[3]))
        x = x.clamp(0.0, 1.0).permute(0, 2, 3, 1)  # (N, H, W, 3)
    m = look.matrix()
    # Contrast acts about mid-grey: shift so grey (0.5, 0.5, 0.5) maps to itself before the offset.
    grey = torch.full((3,), 0.5)
    y = (x - grey) @ m.T + grey + look.brightness  # (N, H, W, 3)
    y = y.clamp(0.0, 1.0)
    if look.levels:
        y = torch.round(y * (look.levels - 1)) / (look.levels - 1)
    return torch.round(y * 255.0).to(torch.uint8)


def restyle_cache_frames(frames: torch.Tensor, references: torch.Tensor, frame_start: torch.Tensor,
                         clip_identity: torch.Tensor, seed: int, shape: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One look (and with `shape`, one Shape) per identity over a cache: (frames (N, H, W, 3),
    references (I, H, W, 3)), both uint8.

    A clip's frames and its identity's reference share the look, so the reference still shows the
    person the window shows. The shapes are drawn after all the looks: a seed gives the same colours
    with or without them.
    """
    gen = torch.Generator().manual_seed(seed)
    looks = [sample_look(gen) for _ in range(len(references))]
    shapes = [sample_shape(gen) if shape else None for _ in range(len(references))]
    out_refs = torch.stack([restyle(references[i : i + 1], looks[i], shapes[i])[0] for i in range(len(references))])
    out = torch.empty_like(frames)
    for c in range(len(frame_start) - 1):
        a, b = int(frame_start[c]), int(frame_start[c + 1])
        i = int(clip_identity[c])
        for s in range(a, b, 256):  # chunks: the float copies of a long clip stay small
            e = min(b, s + 256)
            out[s:e] = restyle(frames[s:e], looks[i], shapes[i])
    return out, out_refs
