"""Phoneme timeline -> per-video-frame mouth parameters, with coarticulation.

Each phoneme has a mouth target, a dominance and a spread (after Cohen & Massaro, "Modeling
coarticulation in synthetic visual speech", 1993): the mouth at time t is the average of the
targets around t, each weighted by its dominance under a Gaussian window of its own width.
Tall, narrow dominance makes the lips meet for p b m and touch the teeth for f v however short
the segment, without flattening the vowels beside them; low dominance lets h take the shape of
the vowel after it.
"""
from __future__ import annotations

import numpy as np

from distill.data.speech import SILENCE, Phoneme

MOUTH_KEYS = ("jaw", "width", "round")
# jaw: 0 closed .. 1 wide open; width: -1 narrow/pursed .. 1 spread, 0 neutral; round: 0 .. 1
# lip rounding and protrusion.
_LOW = np.array([0.0, -1.0, 0.0], dtype=np.float32)
_HIGH = np.array([1.0, 1.0, 1.0], dtype=np.float32)

# Targets for espeak-ng's English mnemonics (phsource/ph_english*), as (jaw, width, round).
_TARGETS: dict[str, tuple[float, float, float]] = {
    SILENCE: (0.0, 0.0, 0.0),
    # lips closed
    "p": (0.0, 0.0, 0.0), "b": (0.0, 0.0, 0.0), "m": (0.0, 0.0, 0.0),
    # lower lip to upper teeth
    "f": (0.1, 0.1, 0.0), "v": (0.1, 0.1, 0.0),
    # tongue between the teeth ("t[" is the dental t of "eighth")
    "T": (0.15, 0.1, 0.0), "D": (0.15, 0.1, 0.0), "t[": (0.15, 0.1, 0.0),
    # teeth together, lips slightly spread
    "s": (0.08, 0.3, 0.0), "z": (0.08, 0.3, 0.0),
    # postalveolars protrude the lips
    "S": (0.12, -0.4, 0.55), "Z": (0.12, -0.4, 0.55), "tS": (0.12, -0.4, 0.55), "dZ": (0.12, -0.4, 0.55),
    # alveolars and velars: jaw follows the tongue, lips neutral ("t#" is the American flap)
    "t": (0.18, 0.1, 0.0), "d": (0.18, 0.1, 0.0), "n": (0.18, 0.1, 0.0), "t#": (0.2, 0.1, 0.0),
    "l": (0.25, 0.1, 0.0), "k": (0.25, 0.0, 0.0), "g": (0.25, 0.0, 0.0), "N": (0.25, 0.0, 0.0),
    "h": (0.35, 0.0, 0.0),
    # English r rounds the lips
    "r": (0.2, -0.3, 0.4), "r-": (0.2, -0.3, 0.4),
    "w": (0.1, -0.7, 0.9), "j": (0.15, 0.45, 0.0),
    # front vowels spread
    "i:": (0.18, 0.8, 0.0), "i": (0.2, 0.6, 0.0), "I": (0.3, 0.5, 0.0), "I#": (0.3, 0.4, 0.0),
    "E": (0.5, 0.4, 0.0), "a": (0.7, 0.45, 0.0),
    # open vowels
    "aa": (0.85, 0.2, 0.0), "A:": (0.9, 0.1, 0.0), "A@": (0.85, 0.1, 0.0), "V": (0.55, 0.1, 0.0),
    # central, reduced and r-coloured vowels
    "@": (0.35, 0.0, 0.0), "a#": (0.45, 0.1, 0.0), "@L": (0.3, 0.05, 0.0),
    "3": (0.35, -0.1, 0.25), "3:": (0.4, -0.2, 0.35), "VR": (0.4, -0.2, 0.35), "IR": (0.35, -0.1, 0.3),
    # back rounded vowels
    "0": (0.75, -0.15, 0.35), "O2": (0.65, -0.2, 0.4),
    "O:": (0.6, -0.4, 0.6), "O@": (0.55, -0.4, 0.6), "o@": (0.5, -0.45, 0.65),
    "U": (0.3, -0.5, 0.6), "u:": (0.2, -0.8, 0.9),
}
# Diphthongs glide from one target to the other over their span.
_DIPHTHONGS: dict[str, tuple[str, str]] = {
    "aI": ("a", "I"), "aU": ("a", "U"), "OI": ("O:", "I"), "eI": ("E", "I"), "oU": ("@", "U"),
    "e@": ("E", "@"), "i@": ("i:", "@"), "i@3": ("i:", "3"), "U@": ("U", "@"), "aI@": ("a", "@"),
    "aI3": ("a", "3"), "aU@": ("a", "@"),
}
# (dominance, spread): dominance weighs a segment against its neighbours; spread scales the
# Gaussian window's sigma for it. Lips must meet for p b m and touch the teeth for f v however short
# the segment, without flattening the vowels beside them: tall and narrow. h is shaped by the
# vowel after it: low.
_COARTICULATION: dict[str, tuple[float, float]] = {
    "p": (8.0, 0.4), "b": (8.0, 0.4), "m": (8.0, 0.4),
    "f": (4.0, 0.5), "v": (4.0, 0.5),
    "w": (2.0, 0.7), "S": (2.0, 0.7), "Z": (2.0, 0.7), "tS": (2.0, 0.7), "dZ": (2.0, 0.7),
    "T": (2.0, 0.7), "D": (2.0, 0.7), "t[": (2.0, 0.7),
    "h": (0.3, 1.0),
    # Short pauses (clause gaps) should not snap the mouth shut; long ones still close because
    # the window then sees nothing else.
    SILENCE: (0.5, 1.0),
}
_DEFAULT_COARTICULATION = (1.0, 1.0)
_NEUTRAL = (0.3, 0.0, 0.0)  # a symbol nothing below recognises: a half-open relaxed mouth
_MODIFIERS = "',:#[-;!0123456789"  # stress, length and variant marks after an espeak mnemonic
_STEP = 0.001  # s: the fine grid the blend is computed on


def _canonical(symbol: str) -> str | None:
    """The table key for an espeak mnemonic, or None."""
    if symbol.startswith("_"):
        return SILENCE
    symbol = symbol.lstrip("',")
    candidates = [symbol]
    stripped = symbol
    while len(stripped) > 1 and stripped[-1] in _MODIFIERS:
        stripped = stripped[:-1]
        candidates.append(stripped)
    candidates += [symbol[:2], symbol[:1]]
    return next((c for c in candidates if c in _TARGETS or c in _DIPHTHONGS), None)


def viseme_target(symbol: str) -> tuple[float, float, float]:
    """Mouth target (jaw, width, round) of an espeak phoneme mnemonic; a diphthong gives its midpoint."""
    key = _canonical(symbol)
    if key is None:
        return _NEUTRAL
    if key in _DIPHTHONGS:
        a, b = (np.array(_TARGETS[k]) for k in _DIPHTHONGS[key])
        return tuple(float(v) for v in (a + b) / 2)
    return _TARGETS[key]


def _segments(phonemes: list[Phoneme]) -> list[tuple[float, float, tuple[float, float, float], tuple[float, float]]]:
    """(start, end, target, (dominance, spread)) per articulatory segment; diphthongs split in halves."""
    out = []
    for p in phonemes:
        key = _canonical(p.symbol)
        coarticulation = _COARTICULATION.get(key, _DEFAULT_COARTICULATION)
        if key in _DIPHTHONGS:
            mid = (p.start + p.end) / 2
            first, second = _DIPHTHONGS[key]
            out += [(p.start, mid, _TARGETS[first], coarticulation), (mid, p.end, _TARGETS[second], coarticulation)]
        else:
            out.append((p.start, p.end, viseme_target(p.symbol), coarticulation))
    return out


def mouth_tracks(
    phonemes: list[Phoneme],
    n_frames: int,
    fps: float = 25.0,
    anticipation: float = 0.04,
    smoothing: float = 0.035,
) -> dict[str, np.ndarray]:
    """Mouth parameters at the centre of each video frame, keyed by MOUTH_KEYS, each (n_frames,) float32.

    The mouth leads the sound by `anticipation` seconds; `smoothing` is the Gaussian window's sigma
    in seconds. Outside the timeline the mouth is closed.
    """
    segments = _segments(phonemes)
    pad = 4 * smoothing + abs(anticipation)  # silence around the timeline so the window sees a closed mouth
    t0 = -pad
    t_end = max(n_frames / fps, segments[-1][1] if segments else 0.0) + pad
    grid = t0 + _STEP * np.arange(int(np.ceil((t_end - t0) / _STEP)) + 1)  # (G,) seconds
    targets = np.zeros((len(grid), 3))  # (G, 3): silence outside the segments
    dominance, spread = (np.full(len(grid), v) for v in _COARTICULATION[SILENCE])  # (G,) each
    for start, end, target, (weight, width) in segments:
        inside = slice(*np.searchsorted(grid, [start, end]))
        targets[inside] = target
        dominance[inside] = weight
        spread[inside] = width
    if smoothing > 0:
        # Each sample pulls the mouth towards its target with a Gaussian of its own width and
        # height; one convolution per distinct width.
        pull = np.zeros((len(grid), 3))  # (G, 3)
        total = np.zeros(len(grid))  # (G,)
        for width in np.unique(spread):
            radius = int(np.ceil(4 * width * smoothing / _STEP))
            kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) * _STEP / (width * smoothing)) ** 2)  # (K,)
            w = dominance * (spread == width)  # (G,)
            centred = slice(radius, radius + len(grid))
            pull += np.stack([np.convolve(w * targets[:, k], kernel)[centred] for k in range(3)], axis=1)
            total += np.convolve(w, kernel)[centred]
        blended = pull / total[:, None]  # (G, 3)
    else:
        blended = targets
    # The mouth at frame time t shows what the sound will be at t + anticipation.
    frame_t = (np.arange(n_frames) + 0.5) / fps + anticipation  # (F,)
    idx = np.clip(np.round((frame_t - t0) / _STEP).astype(int), 0, len(grid) - 1)  # (F,)
    mouth = np.clip(blended[idx], _LOW, _HIGH).astype(np.float32)  # (F, 3)
    return {key: mouth[:, k].copy() for k, key in enumerate(MOUTH_KEYS)}
