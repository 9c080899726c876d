"""Parametric 2D cartoon head: identity sampling and a batched, anti-aliased renderer.

Geometry is in head coordinates: units of the image size, origin at the head centre, y down.
Per identity, everything rigid with the head (hair, ears, skin texture, beard, hats) is painted
once into a head-space RGBA texture, and the background and body into an image; per frame the
pose is one bilinear warp of that texture, and only the moving features (eyes, brows, nose,
mouth, glasses) are evaluated, as signed-distance shapes inside boxes that bound them over the
call's pose range.
"""
from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from distill.data import sdf

PARAM_KEYS = ("jaw", "width", "round", "blink", "brow", "yaw", "pitch", "roll", "tx", "ty")

HEAD_Y = 0.45  # head centre, fraction of the image height: room for hair above and shoulders below
PIVOT_Y = 0.25  # roll pivot below the head centre: heads tilt about the neck
YAW_SHIFT = 0.06  # feature parallax at |yaw| = 1, fraction of the face width
PITCH_SHIFT = 0.04  # same for pitch, fraction of the face height
MAX_ROLL, MAX_SHIFT = 0.12, 0.04  # pose range the fixed mouth box allows for
MOUTH_OPEN = 0.075  # inner-mouth height at jaw = 1
CHIN_DROP = 0.03  # chin lowering at jaw = 1, about what the lower lip travels
CHIN_X = (0.14, 0.2)  # |x| where the chin drop fades out, so hair beside the jaw stays put
MOUTH_Y = (0.15, 0.185)  # mouth height range of every identity; mouth_box is derived from it
MOUTH_W_MAX, HEAD_H_MAX = 0.088, 0.36  # sampling bounds that mouth_box relies on
TEX_H = 1.125  # texture height / width; it spans x in [-0.5, 0.5], y from -0.5 down
# The camera frames the face as talking-head datasets crop it (face about 60% of the width): scenes are
# drawn on a canvas ZOOM times larger and cropped around the head, so the mouth gets more pixels.
ZOOM = 1.25
CHUNK = 16  # frames per batch: speed is flat from 8 to 32 at 128 px and drops at 64, as the canvases leave the cache

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Identity:
    """Everything that makes a face one person. Lengths are fractions of the image size in head
    coordinates; colours are RGB in [0, 1]."""

    style: str  # "train", or "openset": looks the train split never shows
    seed: int  # drives this identity's noise textures, freckles and background pattern
    head_w: float  # half-width
    head_h: float  # half-height, crown to chin
    head_n: float  # superellipse exponent: 2 an oval, larger squarer
    chin_taper: float  # narrowing towards the chin; negative widens the jaw
    ear_w: float
    ear_h: float
    skin: RGB
    skin_noise: float  # amplitude of the blotchy low-frequency skin texture
    freckles: int
    blush: float
    shading: str  # "soft" gradients and texture; "flat"; "toon" cel bands
    ink: float  # cartoon outline width, 0 for none
    hair_style: str  # bald, cap, long, bangs, side, curly
    hair: RGB
    hairline: float  # forehead hairline height (negative: above the head centre)
    hair_volume: float  # how far the hair stands off the scalp
    beard: str  # none, stubble, goatee, full
    moustache: bool
    glasses: str  # none, round, square
    glasses_color: RGB
    hat: str  # none, beanie, tophat
    hat_color: RGB
    eye_y: float
    eye_dx: float  # half the distance between the eye centres
    eye_w: float
    eye_h: float
    eye_tilt: float  # outer corners up when positive
    iris_r: float
    iris: RGB
    lash_w: float
    brow_gap: float  # eye centre to brow centre
    brow_len: float  # half-length
    brow_thick: float
    brow_arch: float
    brow_tilt: float
    brow: RGB
    nose_y: float
    nose_w: float
    mouth_y: float
    mouth_w: float  # half-width at rest
    lip_up: float
    lip_lo: float
    lip: RGB
    neck_w: float
    shoulder_w: float
    shirt: RGB
    neckline: str  # round, v
    bg_kind: str  # train: solid, vgrad, radial, noise, bokeh; openset: checker, stripes, dots
    bg_a: RGB
    bg_b: RGB
    bg_scale: float  # pattern period
    bg_angle: float

    def to_dict(self) -> dict:
        """JSON-safe fields; floats rounded to 5 decimals so dumps are byte-stable."""

        def enc(v):
            if isinstance(v, float):
                return round(float(v), 5)
            return [enc(e) for e in v] if isinstance(v, tuple) else v

        return {f.name: enc(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> Identity:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# ----------------------------------------------------------------------------- sampling

_SKIN_TONES = ((0.98, 0.87, 0.78), (0.95, 0.78, 0.66), (0.89, 0.69, 0.55), (0.79, 0.57, 0.41),
               (0.65, 0.44, 0.30), (0.51, 0.33, 0.22), (0.37, 0.23, 0.15), (0.26, 0.16, 0.11))
_HAIR = ((0.07, 0.06, 0.06), (0.18, 0.12, 0.08), (0.33, 0.21, 0.12), (0.48, 0.23, 0.11), (0.72, 0.40, 0.18),
         (0.84, 0.69, 0.42), (0.93, 0.88, 0.76), (0.55, 0.54, 0.53), (0.88, 0.87, 0.86))
_IRIS = ((0.30, 0.18, 0.09), (0.16, 0.10, 0.06), (0.44, 0.34, 0.15), (0.27, 0.47, 0.29), (0.27, 0.47, 0.72),
         (0.47, 0.53, 0.58))


def _hsv(h: float, s: float, v: float) -> RGB:
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def sample_identity(rng: np.random.Generator, style: Literal["train", "openset"] = "train") -> Identity:
    """Draw a face; every look `style="openset"` gets (non-human skin, ink, flat or toon shading,
    patterned backgrounds, hats, extreme proportions) is one the train style never produces."""
    if style not in ("train", "openset"):
        raise ValueError(f"unknown style {style!r}")
    op = style == "openset"

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    def pick(options: tuple, p: tuple | None = None):
        return options[int(rng.choice(len(options), p=p))]

    def jitter(c: RGB, s: float) -> RGB:
        return tuple(float(np.clip(v * (1 + s * rng.standard_normal()), 0, 1)) for v in c)

    if op:  # hues from green through blue to purple: never a human skin
        skin = _hsv(u(0.25, 0.85), u(0.3, 0.65), u(0.5, 0.95))
    else:
        t = u(0, len(_SKIN_TONES) - 1)
        i = min(int(t), len(_SKIN_TONES) - 2)
        skin = jitter(tuple(np.add(_SKIN_TONES[i], np.multiply(t - i, np.subtract(_SKIN_TONES[i + 1], _SKIN_TONES[i])))), 0.03)
    lip = tuple(float(v) for v in np.clip(np.multiply(skin, (0.86, 0.58, 0.6)) + (0.08, 0.02, 0.04), 0, 1))
    if op and rng.random() < 0.5:
        lip = _hsv(u(0, 1), u(0.5, 0.9), u(0.25, 0.8))
    hair = _hsv(u(0, 1), u(0.5, 1), u(0.4, 1)) if op else jitter(pick(_HAIR), 0.08)
    head_w, head_h = (u(0.2, 0.32), u(0.26, HEAD_H_MAX)) if op else (u(0.23, 0.28), u(0.29, 0.34))
    eye_w, eye_h = (u(0.03, 0.062), u(0.016, 0.042)) if op else (u(0.036, 0.048), u(0.017, 0.025))
    eye_dx = u(max(0.075, eye_w + 0.035), min(0.115, 0.8 * head_w - eye_w))
    hair_style = pick(("bald", "cap", "long", "bangs", "side", "curly"), (0.1, 0.22, 0.2, 0.16, 0.16, 0.16))
    beard = "none" if op else pick(("none", "stubble", "goatee", "full"), (0.82, 0.06, 0.06, 0.06))
    return Identity.from_dict(Identity(
        style=style, seed=int(rng.integers(2**31)),
        head_w=head_w, head_h=head_h,
        head_n=u(1.8, 3.5) if op else u(2.0, 2.6),
        chin_taper=u(-0.15, 0.5) if op else u(0.1, 0.35),
        ear_w=u(0.025, 0.04), ear_h=u(0.045, 0.07), skin=skin,
        skin_noise=u(0.015, 0.05), freckles=int(rng.integers(10, 40)) if rng.random() < 0.25 else 0,
        blush=u(0, 0.6), shading=pick(("soft", "flat", "toon")) if op else "soft",
        ink=u(0.008, 0.014) if op and rng.random() < 0.6 else 0.0,
        hair_style=hair_style, hair=hair, hairline=u(-0.13, -0.1) if hair_style == "bangs" else u(-0.21, -0.15),
        hair_volume=u(0.01, 0.04), beard=beard, moustache=bool(not op and rng.random() < 0.15),
        glasses=pick(("none", "round", "square"), (0.8, 0.1, 0.1)), glasses_color=_hsv(u(0, 1), u(0, 0.8), u(0.1, 0.7)),
        hat=pick(("none", "beanie", "tophat"), (0.6, 0.2, 0.2)) if op else "none", hat_color=_hsv(u(0, 1), u(0.4, 1), u(0.3, 0.9)),
        eye_y=u(-0.045, -0.005), eye_dx=eye_dx, eye_w=eye_w, eye_h=eye_h, eye_tilt=u(-0.15, 0.15),
        iris_r=min(u(0.016, 0.021) * eye_w / 0.042, 0.75 * eye_w),
        iris=_hsv(u(0, 1), u(0.6, 1), u(0.4, 0.9)) if op else jitter(pick(_IRIS), 0.1),
        lash_w=u(0.007, 0.011), brow_gap=eye_h + u(0.022, 0.036), brow_len=u(0.034, 0.05),
        brow_thick=u(0.004, 0.01), brow_arch=u(0, 0.012), brow_tilt=u(-0.1, 0.2),
        brow=tuple(float(v) for v in np.multiply(hair, 0.75)) if hair_style != "bald" else jitter((0.2, 0.14, 0.1), 0.2),
        nose_y=u(0.065, 0.09), nose_w=u(0.011, 0.019),
        mouth_y=u(MOUTH_Y[0], min(MOUTH_Y[1], head_h - 0.11)), mouth_w=u(0.068, MOUTH_W_MAX),
        lip_up=u(0.009, 0.015), lip_lo=u(0.012, 0.019), lip=lip,
        neck_w=u(0.07, 0.1), shoulder_w=u(0.36, 0.46), shirt=_hsv(u(0, 1), u(0.1, 0.7), u(0.2, 0.9)),
        neckline=pick(("round", "v")),
        bg_kind=pick(("checker", "stripes", "dots")) if op else pick(("solid", "vgrad", "radial", "noise", "bokeh")),
        bg_a=_hsv(u(0, 1), u(0.6, 1), u(0.5, 1)) if op else _hsv(u(0, 1), u(0.05, 0.55), u(0.3, 0.95)),
        bg_b=_hsv(u(0, 1), u(0.6, 1), u(0.2, 0.8)) if op else _hsv(u(0, 1), u(0.05, 0.55), u(0.3, 0.95)),
        bg_scale=u(0.06, 0.16), bg_angle=u(0, math.pi),
    ).to_dict())


# ----------------------------------------------------------------------------- static layers

_INK = (0.06, 0.05, 0.08)


def _col(c: RGB, scale: float = 1.0, dims: int = 2, alpha: bool = False) -> Tensor:
    """Colour as a (3 or 4, 1, ...) tensor with `dims` trailing singleton dims; alpha 1 for premultiplied canvases."""
    rgb = [min(max(v * scale, 0.0), 1.0) for v in c] + ([1.0] if alpha else [])
    return torch.tensor(rgb, dtype=torch.float32).view(-1, *([1] * dims))


_INK_F = _col(_INK, dims=3)  # (3, 1, 1, 1) for the per-frame canvases


def _rgba(field: Tensor) -> Tensor:
    """(3, H, W) colour field -> (4, H, W) premultiplied with alpha 1."""
    return torch.cat([field, torch.ones_like(field[:1])])


def _fill(canvas: Tensor, colour: Tensor, d: Tensor, px: float, ink: float) -> None:
    """Paint {d < 0} and, for cartoon identities, an ink line along its edge."""
    sdf.paint(canvas, colour, sdf.coverage(d, px))
    if ink > 0:
        sdf.paint(canvas, _col(_INK, dims=colour.dim() - 1, alpha=canvas.shape[0] == 4), sdf.coverage(d.abs() - ink / 2, px))


def _shade(idt: Identity, base: RGB, d: Tensor, px: float, texture: Tensor | float) -> Tensor:
    """(3, H, W) colour of a region with edge distance d: soft (rim darkening, texture), toon (one cel band) or flat."""
    if idt.shading == "soft":
        light = (1 + texture) * (1 - 0.22 * sdf.smoothstep(-0.05, 0.0, d))
    elif idt.shading == "toon":
        light = 1 - 0.2 * sdf.coverage(-(d + 0.03), px)
    else:
        light = torch.ones_like(d)
    return _col(base) * light


def _hair_shapes(idt: Identity, x: Tensor, y: Tensor, d_head: Tensor, px: float, gen: np.random.Generator):
    """Distances of the hair behind the head (long styles) and over it, or None where there is none."""
    a, b, vol, s = idt.head_w, idt.head_h, idt.hair_volume, idt.hair_style
    if s == "bald":
        return None, None
    xa = x / a  # (1, W)
    line = idt.hairline + 0.12 * xa**2  # the hairline drops towards the temples
    if s == "bangs":  # a fringe of pointed locks
        line = idt.hairline + 0.06 * xa**4 + 0.012 * (1 - 2 * ((x / 0.028) % 1 - 0.5).abs())
    elif s == "side":
        line = line + (0.06 if idt.seed % 2 else -0.06) * xa
    front = torch.maximum(d_head - vol, sdf.below_curve(y, line, px))  # (H, W)
    back = None
    if s == "curly":
        th = torch.linspace(1.04 * math.pi, 1.96 * math.pi, 14).view(-1, 1, 1)
        r = 0.03 + 0.4 * vol
        bumps = sdf.circle(x - (a + 0.4 * vol) * torch.cos(th), y - (b + 0.4 * vol) * torch.sin(th), r).amin(0)
        front = torch.minimum(front, bumps)
    elif s == "long":
        length = float(gen.uniform(0.3, 0.5))
        back = sdf.box(x, y - (length - 0.1) / 2, a + vol + 0.025, (length + 0.1) / 2, 0.06)
        back = torch.minimum(back, d_head - vol)
        # keep the region behind the chin bare: the chin drop warps it, and the neck shows there
        back = torch.maximum(back, -torch.maximum(x.abs() - CHIN_X[1] - 0.02, 0.25 - y))
    return back, front


def _head_texture(idt: Identity, size: int) -> Tensor:
    """(8, H, W) head-space premultiplied RGBA: channels 0-3 what lies under the moving features
    (hair behind, ears, skin, beard), 4-7 what lies over them (hair front, hats)."""
    px = 1.0 / size
    h = math.ceil(TEX_H * size)
    x = ((torch.arange(size) + 0.5) * px - 0.5)[None]  # (1, W)
    y = ((torch.arange(h) + 0.5) * px - 0.5)[:, None]  # (H, 1)
    gen = np.random.default_rng(idt.seed)
    a, b, n, ink = idt.head_w, idt.head_h, idt.head_n, idt.ink
    aw = a * (1 - idt.chin_taper * (y / b).clamp(0, 1) ** 2)  # (H, 1)
    d_head = sdf.from_implicit(((x.abs() / aw) ** n + (y.abs() / b) ** n) ** (1 / n) - 1, px)  # (H, W)
    back, front = torch.zeros(2, 4, h, size)

    hair_tex = 0.16 * sdf.noise(gen, (14, 14) if idt.hair_style == "curly" else (3, 40), (h, size))  # streaks along the hair
    d_back, d_front = _hair_shapes(idt, x, y, d_head, px, gen)
    if d_back is not None:
        _fill(back, _rgba(_shade(idt, idt.hair, d_back, px, hair_tex) * 0.8), d_back, px, ink)

    ex, ey = 0.97 * a * (1 - idt.chin_taper * max(idt.eye_y / b, 0) ** 2), idt.eye_y + 0.03
    d_ear = sdf.ellipse(x.abs() - ex, y - ey, idt.ear_w, idt.ear_h)
    _fill(back, _rgba(_shade(idt, idt.skin, d_ear, px, 0.0) * 0.95), d_ear, px, ink)
    inner = sdf.ellipse(x.abs() - ex - 0.25 * idt.ear_w, y - ey, 0.45 * idt.ear_w, 0.6 * idt.ear_h)
    sdf.paint(back, _col(idt.skin, 0.7, alpha=True), 0.6 * sdf.coverage(inner, px, 2.0))

    tex = idt.skin_noise * (sdf.noise(gen, (6, 6), (h, size)) + 0.5 * sdf.noise(gen, (20, 20), (h, size)))
    skin = _shade(idt, idt.skin, d_head, px, tex) * (1 + 0.06 * (-x - 0.6 * y) / a if idt.shading == "soft" else 1)
    cheeks = torch.exp(-((x.abs() - idt.eye_dx - 0.01) ** 2 + (y - idt.nose_y - 0.03) ** 2) / (2 * 0.03**2))  # (H, W)
    skin = skin.lerp(_col((0.92, 0.35, 0.4)), idt.blush * 0.35 * cheeks)
    if idt.freckles:
        fx = torch.from_numpy(gen.uniform(-1, 1, idt.freckles).astype(np.float32)).view(-1, 1, 1) * (idt.eye_dx + 0.03)
        fy = torch.from_numpy(gen.uniform(idt.eye_y + 0.03, idt.nose_y + 0.04, idt.freckles).astype(np.float32)).view(-1, 1, 1)
        spots = sdf.circle(x - fx, y - fy, torch.from_numpy(gen.uniform(0.0025, 0.0045, (idt.freckles, 1, 1)).astype(np.float32)))
        skin = skin.lerp(skin * torch.tensor([0.72, 0.6, 0.55]).view(3, 1, 1), 0.55 * sdf.coverage(spots.amin(0), px))
    _fill(back, _rgba(skin), d_head, px, ink)

    if idt.beard != "none":
        d = -sdf.below_curve(y, idt.mouth_y - 0.012 - 0.12 * (x / a) ** 2, px)  # (H, W) the beard grows below a line
        if idt.beard == "goatee":
            d = sdf.ellipse(x, y - b, 0.05, b - idt.mouth_y - 0.045)
        d = torch.maximum(d, d_head - (0.003 if idt.beard == "stubble" else 0.008))
        strength = 0.3 * (1 + 0.3 * sdf.noise(gen, (64, 64), (h, size))) if idt.beard == "stubble" else 0.95
        sdf.paint(back, _rgba(_shade(idt, idt.hair, d, px, hair_tex)), strength * sdf.coverage(d, px))

    if d_front is not None:
        _fill(front, _rgba(_shade(idt, idt.hair, d_front, px, hair_tex)), d_front, px, ink)
    if idt.hat != "none":
        hat = _col(idt.hat_color, alpha=True)
        if idt.hat == "beanie":
            rim = -0.38 * b
            _fill(front, hat, torch.maximum(d_head - 0.018, y - rim), px, ink)
            _fill(front, _col(idt.hat_color, 0.75, alpha=True), torch.maximum(d_head - 0.026, (y - rim + 0.02).abs() - 0.022), px, ink)
            _fill(front, hat, sdf.circle(x, y + b + 0.03, 0.04), px, ink)
        else:
            brim = -0.72 * b
            _fill(front, hat, sdf.box(x, y - brim + 0.12, 0.72 * a, 0.12, 0.012), px, ink)
            _fill(front, _col(idt.hat_color, 0.4, alpha=True), sdf.box(x, y - brim + 0.035, 0.72 * a, 0.016), px, 0.0)
            _fill(front, hat, sdf.ellipse(x, y - brim, a + 0.07, 0.022), px, ink)
    return torch.cat([back, front])  # (8, H, W)


def _backdrop(idt: Identity, size: int) -> Tensor:
    """(3, S, S) background and body, static in the image: the head turns over a still torso."""
    px = 1.0 / size
    gen = np.random.default_rng(idt.seed + 1)
    c = (torch.arange(size) + 0.5) * px
    X, Y = c[None], c[:, None]  # (1, S), (S, 1)
    p, th = idt.bg_scale, idt.bg_angle
    xr, yr = X * math.cos(th) + Y * math.sin(th), Y * math.cos(th) - X * math.sin(th)  # (S, S) pattern frame
    kind = idt.bg_kind
    if kind == "solid":
        t = torch.zeros(size, size)
    elif kind == "vgrad":
        t = Y.expand(size, size)
    elif kind == "radial":
        t = (torch.sqrt((X - 0.5) ** 2 + (Y - 0.4) ** 2) / 0.75).clamp(0, 1)
    elif kind == "noise":
        t = torch.sigmoid(1.5 * sdf.noise(gen, (4, 4), (size, size)))
    elif kind == "bokeh":
        k = gen.uniform(0, 1, (12, 3)).astype(np.float32)
        blobs = sdf.circle(X - torch.from_numpy(k[:, :1, None]), Y - torch.from_numpy(k[:, 1:2, None]), torch.from_numpy(0.04 + 0.08 * k[:, 2:, None]))
        t = (0.5 * sdf.coverage(blobs, px, 0.05 * size)).sum(0).clamp(0, 1)
    elif kind == "checker":
        t = sdf.coverage(sdf.from_implicit(torch.sin(math.pi * xr / p) * torch.sin(math.pi * yr / p), px), px)
    elif kind == "stripes":
        t = sdf.coverage(sdf.from_implicit(torch.sin(2 * math.pi * xr / p), px), px)
    else:  # dots
        t = sdf.coverage(sdf.circle((xr / p) % 1 - 0.5, (yr / p) % 1 - 0.5, 0.3) * p, px)
    img = _col(idt.bg_a).lerp(_col(idt.bg_b), t)  # (3, S, S)

    cx = X - 0.5
    d_neck = sdf.box(cx, Y - 0.85, idt.neck_w, 0.4, 0.02)
    neck = _col(idt.skin) * (0.62 + 0.25 * sdf.smoothstep(HEAD_Y + 0.3, HEAD_Y + 0.45, Y))  # (3, S, 1) shadowed under the chin
    _fill(img, neck, d_neck, px, idt.ink)
    d_cut = sdf.ellipse(cx, Y - 0.84, 1.3 * idt.neck_w, 0.07)
    if idt.neckline == "v":
        d_cut = (cx.abs() - 1.2 * idt.neck_w + 0.9 * (Y - 0.83)) / math.sqrt(1 + 0.81)
    d_shirt = torch.maximum(sdf.superellipse(cx, Y - 1.1, idt.shoulder_w, 0.27, 3.0), -d_cut)
    _fill(img, _shade(idt, idt.shirt, d_shirt, px, 0.05 * sdf.noise(gen, (8, 8), (size, size))), d_shirt, px, idt.ink)
    return img


# ----------------------------------------------------------------------------- moving features


def _paint_nose(cv: Tensor, x: Tensor, y: Tensor, idt: Identity, q: dict[str, Tensor], px: float) -> None:
    """Shaded tip, nostrils, highlight. Every painter takes a canvas view (3, T, h, w), the head
    coordinates (T, h, w) of its pixels with parallax applied, and the parameters (T, 1, 1)."""
    x, y = x.abs(), y - idt.nose_y  # the nose is symmetric
    tip = sdf.ellipse(x, y + 0.006, 1.5 * idt.nose_w, 0.017)  # (T, h, w)
    lower = sdf.coverage(-(y + 0.004), px, 4.0)  # (T, h, w) the lower half, where the tip turns away from the light
    sdf.paint(cv, _col(idt.skin, 0.7, 3), 0.25 * lower * sdf.coverage(tip, px, 4.0))
    rim = sdf.coverage(tip.abs() - 0.003, px, 1.5) * lower
    sdf.paint(cv, _INK_F if idt.ink else _col(idt.skin, 0.58, 3), (1.0 if idt.ink else 0.7) * rim)
    nostril = sdf.ellipse(x - idt.nose_w, y + 0.25 * (x - idt.nose_w), 0.0085, 0.005)
    sdf.paint(cv, _col(idt.skin, 0.35, 3), 0.9 * sdf.coverage(nostril, px))
    if idt.shading == "soft":
        sdf.paint(cv, _col(idt.skin, 1.18, 3), 0.35 * sdf.coverage(sdf.circle(x, y + 0.017, 0.005), px, 3.0))


def _paint_mouth(cv: Tensor, x: Tensor, y: Tensor, idt: Identity, q: dict[str, Tensor], px: float) -> None:
    """Lips, dark inner mouth, upper teeth and tongue."""
    y = y - idt.mouth_y
    jaw, width, rnd = q["jaw"], q["width"], q["round"]
    hw = idt.mouth_w * (1 + 0.22 * width - 0.35 * rnd) * (1 - 0.08 * jaw)  # (T, 1, 1) half-width
    opening = MOUTH_OPEN * jaw + 0.012 * rnd  # rounding parts the lips a little
    top, bot = -0.25 * opening, 0.75 * opening  # the jaw carries the lower lip; the upper lip barely moves
    hh = ((bot - top) / 2).clamp_min(1e-4)
    bend = (0.012 * width.clamp(min=0) + 0.004 * width.clamp(max=0)) * (x / hw) ** 2  # (T, h, w) spread lips curl up at the corners
    yr = y + bend  # rest frame of the upper jaw (teeth)
    yb = yr - (top + bot) / 2  # from the centre of the opening
    thick = 1 + 0.5 * rnd  # rounded lips protrude and look fuller
    up, lo = idt.lip_up * thick * (1 - 0.25 * jaw), idt.lip_lo * thick * (1 - 0.2 * jaw)
    lips = sdf.superellipse(x, yb, hw, torch.where(yb < 0, hh + up, hh + lo), 2.0 + 0.4 * rnd)
    inner = sdf.superellipse(x, yb, hw * (0.8 - 0.25 * rnd), hh, 2.0 + 0.6 * rnd)
    if idt.moustache:
        d = sdf.ellipse(x, y + 0.012 * (x / idt.mouth_w) ** 2 + idt.lip_up + 0.011, 1.12 * idt.mouth_w, 0.012)
        sdf.paint(cv, _col(idt.hair, 1.0, 3), sdf.coverage(d, px))
    colour = _col(idt.lip, 0.85, 3).lerp(_col(idt.lip, 1.0, 3), sdf.coverage(-yb, px))  # (3, T, h, w) darker upper lip
    sdf.paint(cv, colour, sdf.coverage(lips, px))
    if idt.ink:
        sdf.paint(cv, _INK_F, sdf.coverage(lips.abs() - idt.ink / 2, px))
    closed_line = sdf.segment(x, yb, hw * (0.72 - 0.25 * rnd), 0.0045)  # a closed mouth is a lip line
    sdf.paint(cv, _col((0.16, 0.02, 0.04), 1.0, 3), sdf.coverage(torch.minimum(inner, closed_line), px))
    m_in = sdf.coverage(inner, px)
    teeth = sdf.box(x, yr + 0.016, 0.8 * idt.mouth_w, 0.018, 0.004)  # fixed to the skull: shows as the jaw drops
    sdf.paint(cv, _col((0.95, 0.93, 0.86), 1.0, 3), m_in * sdf.coverage(teeth, px))
    tongue = sdf.ellipse(x, yb - hh - 0.004, 0.55 * idt.mouth_w, 0.014)
    sdf.paint(cv, _col((0.78, 0.33, 0.38), 1.0, 3), m_in * sdf.coverage(tongue, px))


def _glasses_half(idt: Identity) -> tuple[float, float]:
    """Half-width and half-height of one lens."""
    if idt.glasses == "round":
        r = 1.3 * idt.eye_w + 0.004
        return r, r
    return 1.35 * idt.eye_w, max(1.9 * idt.eye_h, 0.03)


def _paint_eyes(cv: Tensor, x: Tensor, y: Tensor, idt: Identity, q: dict[str, Tensor], px: float) -> None:
    """Both eyes, brows and glasses at once."""
    x, y = x.abs() - idt.eye_dx, y - idt.eye_y  # mirrors the right eye onto the left
    L = idt.brow_len
    xb, yb = x, y + idt.brow_gap + 0.024 * q["brow"]  # (T, h, w) from the brow centre
    t = (xb / L).clamp(-1, 1)
    arch = idt.brow_arch * (1 + 0.6 * q["brow"])
    mid = -arch * (1 - t * t) - idt.brow_tilt * xb  # centre line, outer end up for positive tilt
    slope = 2 * arch * t / L - idt.brow_tilt
    d = torch.sqrt((xb.abs() - L).clamp(min=0) ** 2 + ((yb - mid) / torch.sqrt(1 + slope * slope)) ** 2)
    brow = d - idt.brow_thick * (1 - 0.3 * (t + 1) / 2)  # thinning towards the outer end
    _fill(cv, _col(idt.brow, 1.0, 3), brow, px, idt.ink)

    ye = y + idt.eye_tilt * x
    blink = q["blink"]
    cy = 0.6 * idt.eye_h * blink  # the lid closes onto a line a little below the eye's centre
    opening = sdf.ellipse(x, ye - cy, idt.eye_w, (idt.eye_h * (1 - blink)).clamp_min(1e-4))
    m_open = sdf.coverage(opening, px)
    sdf.paint(cv, _col((0.96, 0.95, 0.93), 1.0, 3), m_open)
    ir, iy = idt.iris_r, ye - 0.1 * idt.eye_h
    sdf.paint(cv, _col(idt.iris, 0.6, 3), m_open * sdf.coverage(sdf.circle(x, iy, ir), px))
    sdf.paint(cv, _col(idt.iris, 1.0, 3), m_open * sdf.coverage(sdf.circle(x, iy, 0.78 * ir), px))
    sdf.paint(cv, _col((0.03, 0.03, 0.04), 1.0, 3), m_open * sdf.coverage(sdf.circle(x, iy, 0.42 * ir), px))
    sdf.paint(cv, _col((1.0, 1.0, 1.0), 1.0, 3), 0.9 * m_open * sdf.coverage(sdf.circle(x + 0.3 * ir, iy + 0.35 * ir, 0.25 * ir), px))
    upper = sdf.coverage(ye - cy - 0.5 * idt.lash_w, px)  # keeps the closed-eye line whole
    lash = sdf.coverage(opening.abs() - idt.lash_w / 2, px)
    sdf.paint(cv, _col((0.08, 0.05, 0.05), 1.0, 3), lash * (upper + 0.3 * (1 - upper)))

    if idt.glasses != "none":
        gw, gh = _glasses_half(idt)
        lens = sdf.circle(x, y, gw) if idt.glasses == "round" else sdf.box(x, y, gw, gh, 0.01)
        sdf.paint(cv, _col(idt.glasses_color, 1.4, 3), 0.12 * sdf.coverage(lens, px))
        side = idt.head_w - idt.eye_dx  # the arms run to the side of the head
        frame = torch.minimum(lens.abs(), sdf.segment(x - (gw + side) / 2, y + 0.004, (side - gw) / 2, 0))
        if idt.eye_dx > gw:
            frame = torch.minimum(frame, sdf.segment(x + (idt.eye_dx + gw) / 2, y + 0.004, (idt.eye_dx - gw) / 2, 0))
        sdf.paint(cv, _col(idt.glasses_color, 1.0, 3), sdf.coverage(frame - 0.003, px))


# ----------------------------------------------------------------------------- frames

# feature name -> (parallax, painter); the nose is nearest the camera and moves most
_FEATURES = {"nose": (1.25, _paint_nose), "mouth": (0.9, _paint_mouth), "eyes": (1.0, _paint_eyes)}


def _feature_rects(idt: Identity) -> dict[str, tuple[float, float, float, float]]:
    """Head-space (x0, x1, y0, y1) of each moving feature over every expression, before parallax."""
    gw, gh = _glasses_half(idt) if idt.glasses != "none" else (0.0, 0.0)
    ex = idt.head_w + 0.01 if gw else idt.eye_dx + 1.5 * idt.eye_w + 0.015
    brow = idt.brow_gap + 0.024 + 1.6 * idt.brow_arch + idt.brow_thick + idt.brow_len * abs(idt.brow_tilt) + 0.01
    mx = 1.4 * idt.mouth_w + 0.012 + idt.ink
    return {
        "nose": (-1.5 * idt.nose_w - 0.015, 1.5 * idt.nose_w + 0.015, idt.nose_y - 0.025, idt.nose_y + 0.032),
        "mouth": (-mx, mx, idt.mouth_y - 0.06, idt.mouth_y + 0.1),
        "eyes": (-ex, ex, idt.eye_y - max(brow, gh + 0.01), idt.eye_y + max(idt.eye_h, gh) + 0.015),
    }


def _image_box(rect, shift: tuple, roll: tuple, tx: tuple, ty: tuple, size: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixels holding a head-space rect shifted by parallax within `shift`
    ((sx0, sx1), (sy0, sy1)) under any roll and translation within the given (min, max) ranges."""
    x0, x1, y0, y1 = rect
    hx = np.array([x0 + shift[0][0], x1 + shift[0][1]])[:, None, None, None, None]
    hy = np.array([y0 + shift[1][0], y1 + shift[1][1]])[None, :, None, None, None] - PIVOT_Y
    th = np.array(roll)[None, None, :, None, None]
    X = 0.5 + np.array(tx)[None, None, None, :, None] + np.cos(th) * hx - np.sin(th) * hy  # (2, 2, 2, 2, 1) corners x poses
    Y = HEAD_Y + PIVOT_Y + np.array(ty)[None, None, None, None, :] + np.sin(th) * hx + np.cos(th) * hy
    # 2 px margin: half a pixel of anti-aliasing, plus the arc a corner sweeps between the roll extremes
    box = np.floor([Y.min() * size - 2, Y.max() * size + 3, X.min() * size - 2, X.max() * size + 3])
    return tuple(int(v) for v in np.clip(box, 0, size))


def _view(size: int) -> tuple[int, int, int]:
    """(canvas size, crop top, crop left): the crop keeps the head centre at HEAD_Y of the frame."""
    canvas = int(round(size * ZOOM))
    return canvas, int(round(HEAD_Y * canvas)) - int(round(HEAD_Y * size)), (canvas - size) // 2


def mouth_box(size: int = 128) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel box holding the mouth and the dropping chin of every identity
    in every pose: the lower half of the face, as SyncNet crops it."""
    canvas, top, left = _view(size)
    t, b, l, r = _canvas_mouth_box(canvas)
    return max(t - top, 0), min(b - top, size), max(l - left, 0), min(r - left, size)


def _canvas_mouth_box(size: int) -> tuple[int, int, int, int]:
    k = _FEATURES["mouth"][0]
    # widest lips (rest width, spread, ink) at full yaw, or the chin-drop band plus ink, whichever is wider
    x = max(1.4 * MOUTH_W_MAX + 0.012 + 0.015 + YAW_SHIFT * 2 * 0.32 * k, CHIN_X[1] + 0.015)
    # from the highest open upper lip at full pitch down to the lowest dropped chin
    rect = (-x, x, MOUTH_Y[0] - 0.05 - PITCH_SHIFT * 2 * HEAD_H_MAX * k, HEAD_H_MAX + CHIN_DROP + 0.02)
    pose = (-MAX_SHIFT, MAX_SHIFT)
    return _image_box(rect, ((0, 0), (0, 0)), (-MAX_ROLL, MAX_ROLL), pose, pose, size)


def render_frames(identity: Identity, params: dict[str, np.ndarray], size: int = 128) -> np.ndarray:
    """(T, size, size, 3) uint8 RGB frames; `params` maps PARAM_KEYS to (T,) arrays (a missing key is 0, neutral)."""
    canvas, top, left = _view(size)
    return np.ascontiguousarray(_render_canvas(identity, params, canvas)[:, top : top + size, left : left + size])


def _render_canvas(identity: Identity, params: dict[str, np.ndarray], size: int) -> np.ndarray:
    """(T, size, size, 3) uint8 frames of the whole scene, before the camera crop."""
    if not params or (unknown := set(params) - set(PARAM_KEYS)):
        raise KeyError(f"expected some of {PARAM_KEYS}, got {sorted(params)}" + (f" (unknown: {sorted(unknown)})" if params else ""))
    n = len(next(iter(params.values())))
    p = {k: torch.as_tensor(np.asarray(params.get(k, np.zeros(n)), np.float32).reshape(n)) for k in PARAM_KEYS}
    bg = _backdrop(identity, size)  # (3, S, S)
    tex = _head_texture(identity, size)  # (8, H, S)

    def span(k: str) -> tuple[float, float]:
        return (float(p[k].min()), float(p[k].max())) if n else (0.0, 0.0)

    # Feature boxes bound this call's pose range; pixels outside a feature's shapes get zero
    # coverage, so a frame renders identically whatever else shares its call.
    sx = tuple(v * YAW_SHIFT * 2 * identity.head_w for v in span("yaw"))
    sy = tuple(v * PITCH_SHIFT * 2 * identity.head_h for v in span("pitch"))
    boxes = {name: _image_box(rect, (tuple(_FEATURES[name][0] * v for v in sx), tuple(_FEATURES[name][0] * v for v in sy)),
                              span("roll"), span("tx"), span("ty"), size)
             for name, rect in _feature_rects(identity).items()}
    out = torch.empty(n, size, size, 3, dtype=torch.uint8)
    for s in range(0, n, CHUNK):
        out[s : s + CHUNK] = _render_chunk(identity, {k: v[s : s + CHUNK] for k, v in p.items()}, bg, tex, boxes)
    return out.numpy()


def _render_chunk(idt: Identity, p: dict[str, Tensor], bg: Tensor, tex: Tensor, boxes: dict) -> Tensor:
    """(T, S, S, 3) uint8 for one chunk of frames."""
    size = bg.shape[-1]
    px = 1.0 / size
    q = {k: v.view(-1, 1, 1) for k, v in p.items()}  # (T, 1, 1)
    n = q["jaw"].shape[0]
    c = (torch.arange(size) + 0.5) * px
    dx = c.view(1, 1, -1) - 0.5 - q["tx"]  # (T, 1, S)
    dy = c.view(1, -1, 1) - HEAD_Y - PIVOT_Y - q["ty"]  # (T, S, 1)
    cos, sin = torch.cos(q["roll"]), torch.sin(q["roll"])
    u = cos * dx + sin * dy  # (T, S, S) head coordinates of every pixel
    v = PIVOT_Y - sin * dx + cos * dy
    ramp = ((v - idt.mouth_y) / (idt.head_h + CHIN_DROP - idt.mouth_y)).clamp(0, 1)
    drop = CHIN_DROP * q["jaw"] * ramp * (1 - sdf.smoothstep(CHIN_X[0], CHIN_X[1], u.abs()))  # (T, S, S) stretches the lower face
    grid = torch.stack([2 * u, (v - drop + 0.5) * (2 * size / tex.shape[1]) - 1], dim=-1)  # (T, S, S, 2)
    layers = F.grid_sample(tex[None], grid.view(1, n * size, size, 2), mode="bilinear", padding_mode="zeros", align_corners=False)
    layers = layers.view(8, n, size, size)  # (8, T, S, S)
    img = bg[:, None] * (1 - layers[3]) + layers[:3]  # (3, T, S, S)

    sx, sy = q["yaw"] * YAW_SHIFT * 2 * idt.head_w, q["pitch"] * PITCH_SHIFT * 2 * idt.head_h  # (T, 1, 1)
    for name, (k, painter) in _FEATURES.items():
        t, b, l, r = boxes[name]
        painter(img[:, :, t:b, l:r], u[:, t:b, l:r] - k * sx, v[:, t:b, l:r] - k * sy, idt, q, px)
    img = img * (1 - layers[7]) + layers[4:7]
    return img.clamp_(0, 1).mul_(255).add_(0.5).to(torch.uint8).permute(1, 2, 3, 0)
