"""Signed-distance shape primitives, anti-aliased painting and smooth noise for the procedural face.

Distances are in the caller's length unit (fractions of the image size) and negative inside.
Several are first-order approximations, exact only near the boundary; that is all the
anti-aliasing ramp of `coverage` reads, so edges stay one pixel wide and move sub-pixel smoothly.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_EPS = 1e-6


def coverage(d: Tensor, px: float, soft: float = 1.0) -> Tensor:
    """Fraction of a pixel inside {d < 0}: a linear ramp `soft` pixels wide centred on the edge."""
    return (0.5 - d / (px * soft)).clamp_(0.0, 1.0)


def smoothstep(e0: float, e1: float, x: Tensor) -> Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def circle(x: Tensor, y: Tensor, r: float | Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y) - r


def _bounded(d: Tensor, x: Tensor, y: Tensor, a: float | Tensor, b: float | Tensor) -> Tensor:
    """Raise a first-order distance to the distance of the bounding box, a lower bound of the true one.

    Far from a thin shape (a shut eye, closed lips) implicit / gradient degenerates to |y|
    everywhere and would draw the shape's line across the whole canvas.
    """
    return torch.maximum(d, torch.maximum(x.abs() - a, y.abs() - b))


def ellipse(x: Tensor, y: Tensor, a: float | Tensor, b: float | Tensor) -> Tensor:
    """Axis-aligned ellipse, k0 (k0 - 1) / k1 (implicit over gradient norm).

    The small offsets keep the centre, where both norms vanish, at about -min(a, b) instead of 0/0.
    """
    k0 = torch.sqrt((x / a) ** 2 + (y / b) ** 2) + 1e-4
    k1 = torch.sqrt((x / (a * a)) ** 2 + (y / (b * b)) ** 2) + 1e-4 / torch.minimum(torch.as_tensor(a), torch.as_tensor(b))
    return _bounded((k0 - 1.0) * k0 / k1, x, y, a, b)


def superellipse(x: Tensor, y: Tensor, a: float | Tensor, b: float | Tensor, n: float | Tensor) -> Tensor:
    """|x/a|^n + |y/b|^n = 1 (n < 2 pinches the ends, n > 2 squares them): radius - 1 over its gradient norm."""
    ax = x.abs() / a + _EPS
    ay = y.abs() / b + _EPS
    r = (ax**n + ay**n) ** (1.0 / n)
    gx = (ax / r) ** (n - 1.0) / a
    gy = (ay / r) ** (n - 1.0) / b
    return _bounded((r - 1.0) / torch.sqrt(gx * gx + gy * gy), x, y, a, b)


def segment(x: Tensor, y: Tensor, half: float | Tensor, r: float | Tensor) -> Tensor:
    """Capsule around the horizontal segment |x| <= half, y = 0, of radius r."""
    return torch.sqrt((x.abs() - half).clamp(min=0.0) ** 2 + y * y) - r


def box(x: Tensor, y: Tensor, hx: float, hy: float, r: float = 0.0) -> Tensor:
    """Rounded box of half-extents (hx, hy) and corner radius r."""
    qx = x.abs() - hx + r
    qy = y.abs() - hy + r
    outside = torch.sqrt(qx.clamp(min=0.0) ** 2 + qy.clamp(min=0.0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0.0) - r


def below_curve(y: Tensor, curve: Tensor, px: float) -> Tensor:
    """Signed distance below a curve y = curve(x) sampled on a grid's x (1, W) of spacing px: negative above it."""
    slope = torch.gradient(curve, spacing=px, dim=1)[0]
    return (y - curve) / torch.sqrt(1 + slope * slope)


def from_implicit(f: Tensor, px: float) -> Tensor:
    """Distance from an implicit function sampled on a (..., H, W) grid of spacing px, by f / |grad f|.

    For static layers painted once per identity, where any shape that is easy to write as an
    implicit function (tapered superellipses, wavy stripes) is worth a numerical gradient.
    """
    gy, gx = torch.gradient(f, spacing=px, dim=(-2, -1))
    return f / torch.sqrt(gx * gx + gy * gy).clamp_min(_EPS)


def paint(canvas: Tensor, colour: Tensor, alpha: Tensor) -> None:
    """Composite `colour` over `canvas` in place with per-pixel `alpha`.

    One lerp serves both opaque RGB canvases and premultiplied RGBA ones (colour carrying alpha 1).
    """
    canvas.lerp_(colour, alpha)


def noise(gen: np.random.Generator, low: tuple[int, int], out: tuple[int, int]) -> Tensor:
    """(H, W) smooth unit-variance noise: a random low-resolution grid upsampled bicubically.

    The grid shape sets the feature size per axis: (3, 40) gives vertical hair streaks.
    """
    z = torch.from_numpy(gen.standard_normal(low).astype(np.float32))[None, None]  # (1, 1, h, w)
    z = F.interpolate(z, size=out, mode="bicubic", align_corners=False)[0, 0]  # (H, W)
    return z / z.std().clamp_min(1e-6)
