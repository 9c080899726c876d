"""Non-mouth motion tracks: in range, smooth, deterministic, livelier while speaking."""
import numpy as np
import pytest

from distill.data.face import MAX_ROLL, MAX_SHIFT
from distill.data.motion import sample_motion

FPS = 25
N = 60 * FPS
LIMITS = {"blink": (0, 1), "brow": (0, 1), "yaw": (-1, 1), "pitch": (-1, 1), "roll": (-MAX_ROLL, MAX_ROLL),
          "tx": (-MAX_SHIFT, MAX_SHIFT), "ty": (-MAX_SHIFT, MAX_SHIFT)}


def speech(n: int = N) -> np.ndarray:
    """Alternating 5 s of speech and 5 s of silence."""
    return (np.arange(n) // (5 * FPS)) % 2 == 0


@pytest.fixture(scope="module")
def tracks():
    return [sample_motion(np.random.default_rng(s), N, FPS, speech()) for s in range(4)]


def test_keys_shapes_dtypes_and_determinism(tracks):
    m = tracks[0]
    assert set(m) == set(LIMITS)
    assert all(v.shape == (N,) and v.dtype == np.float32 for v in m.values())
    again = sample_motion(np.random.default_rng(0), N, FPS, speech())
    assert all(np.array_equal(m[k], again[k]) for k in m)
    assert not np.array_equal(m["yaw"], tracks[1]["yaw"])
    assert sample_motion(np.random.default_rng(0), 10)["yaw"].shape == (10,)  # speaking is optional


def test_tracks_stay_in_range(tracks):
    for m in tracks:
        for k, (lo, hi) in LIMITS.items():
            assert lo <= m[k].min() and m[k].max() <= hi, k


def test_head_motion_is_smooth_and_moves(tracks):
    for m in tracks:
        for k in ("yaw", "pitch", "roll", "tx", "ty"):
            span = LIMITS[k][1] - LIMITS[k][0]
            step = np.abs(np.diff(m[k]))
            assert step.max() < 0.1 * span, k  # no jumps between frames
            assert np.abs(np.diff(m[k], 2)).max() < 0.03 * span, k  # no kinks
            assert m[k].std() > 0.02 * span, k


def test_blinks_are_brief_events_every_few_seconds(tracks):
    for m in tracks:
        shut = m["blink"] > 0.5
        onsets = np.flatnonzero(shut[1:] & ~shut[:-1])
        assert 60 / 7 <= len(onsets) <= 60 / 1.5
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, shut.astype(int), 0])))[::2]  # frames per closure
        assert runs.max() * 1000 / FPS <= 250
        assert m["blink"].max() > 0.95  # the eyes do close fully
        assert np.mean(m["blink"] < 0.05) > 0.8  # and are open most of the time


def test_speech_brings_more_head_motion_and_brow_raises(tracks):
    talking = speech()
    moving = np.array([[np.abs(np.diff(m[k]))[talking[1:]].mean() / np.abs(np.diff(m[k]))[~talking[1:]].mean()
                        for k in ("yaw", "pitch", "roll")] for m in tracks])
    assert moving.mean() > 1.5
    brow = np.stack([m["brow"] for m in tracks])  # (4, N)
    assert brow[:, talking].mean() > 2 * brow[:, ~talking].mean()
