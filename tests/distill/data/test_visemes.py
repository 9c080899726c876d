import numpy as np
import pytest

from distill.data.speech import SILENCE, Phoneme, Voice, synthesize
from distill.data.visemes import MOUTH_KEYS, mouth_tracks, viseme_target

FPS = 25.0


def timeline(*spans: tuple[str, float]) -> list[Phoneme]:
    """Phonemes from (symbol, duration) pairs laid end to end from t = 0."""
    out, t = [], 0.0
    for symbol, duration in spans:
        out.append(Phoneme(symbol, t, t + duration))
        t += duration
    return out


def frame_at(t: float, fps: float = FPS, anticipation: float = 0.04) -> int:
    """The frame whose mouth shows the sound at time t."""
    return int(round((t - anticipation) * fps - 0.5))


def test_targets_match_articulation():
    assert viseme_target(SILENCE) == (0.0, 0.0, 0.0)
    for closed in "pbm":
        assert viseme_target(closed)[0] == 0.0
    assert viseme_target("f")[0] < 0.2 and viseme_target("v")[0] < 0.2
    assert viseme_target("A:")[0] > 0.7 and viseme_target("aa")[0] > 0.7
    assert viseme_target("i:")[1] > 0.5 and viseme_target("i:")[2] == 0.0
    jaw, width, rnd = viseme_target("u:")
    assert width < -0.5 and rnd > 0.7
    assert viseme_target("w")[2] > 0.7
    assert viseme_target("S")[2] > 0.3


def test_unknown_symbols_fall_back_sensibly():
    assert viseme_target("'i:") == viseme_target("i:")
    assert viseme_target("I2") == viseme_target("I")
    assert viseme_target("_:") == viseme_target("_!") == (0.0, 0.0, 0.0)
    assert viseme_target("m#") == viseme_target("m")
    a, i = np.array(viseme_target("a")), np.array(viseme_target("I"))
    np.testing.assert_allclose(viseme_target("aI"), (a + i) / 2)
    for symbol in ["??", "Q", "x;", "zz9"]:
        jaw, width, rnd = viseme_target(symbol)
        assert 0 <= jaw <= 1 and -1 <= width <= 1 and 0 <= rnd <= 1


def test_tracks_have_the_right_shape_dtype_and_range():
    tracks = mouth_tracks(timeline(("_", 0.2), ("w", 0.1), ("A:", 0.3), ("i:", 0.2), ("_", 0.2)), 30)
    assert tuple(tracks) == MOUTH_KEYS
    for key, low, high in zip(MOUTH_KEYS, (0, -1, 0), (1, 1, 1)):
        assert tracks[key].shape == (30,) and tracks[key].dtype == np.float32
        assert low <= tracks[key].min() and tracks[key].max() <= high
    assert mouth_tracks([], 5)["jaw"].tolist() == [0.0] * 5


def test_mouth_closed_in_silence_and_open_on_vowels():
    tracks = mouth_tracks(timeline(("_", 0.5), ("A:", 0.3), ("_", 0.5)), 33)
    jaw = tracks["jaw"]
    assert jaw[frame_at(0.65)] > 0.7
    assert jaw[: frame_at(0.4)].max() < 0.02
    assert jaw[frame_at(0.95) :].max() < 0.02


def test_short_pause_does_not_snap_shut():
    jaw = mouth_tracks(timeline(("A:", 0.3), ("_", 0.04), ("A:", 0.3)), 16)["jaw"]
    assert jaw[frame_at(0.32)] > 0.4


def test_bilabial_closes_between_open_vowels():
    # m centred at 0.54 s, 80 ms long, between two open vowels.
    jaw = mouth_tracks(timeline(("_", 0.3), ("A:", 0.2), ("m", 0.08), ("A:", 0.2), ("_", 0.3)), 27)["jaw"]
    assert jaw[frame_at(0.54)] < 0.1
    assert jaw[frame_at(0.4)] > 0.6 and jaw[frame_at(0.68)] > 0.6


def test_rounding_and_spreading_follow_the_vowels():
    tracks = mouth_tracks(timeline(("_", 0.2), ("u:", 0.3), ("i:", 0.3), ("_", 0.2)), 25)
    oo, ee = frame_at(0.35), frame_at(0.65)
    assert tracks["round"][oo] > 0.6 and tracks["width"][oo] < -0.4
    assert tracks["round"][ee] < 0.1 and tracks["width"][ee] > 0.5


def test_diphthong_glides():
    width = mouth_tracks(timeline(("_", 0.2), ("aU", 0.4), ("_", 0.2)), 80, fps=100.0, anticipation=0.0)["width"]
    assert width[25] > 0.2 and width[55] < -0.2


def test_anticipation_opens_the_mouth_earlier():
    phonemes = timeline(("_", 0.5), ("A:", 0.4), ("_", 0.5))

    def opening(anticipation: float) -> float:
        jaw = mouth_tracks(phonemes, 140, fps=100.0, anticipation=anticipation)["jaw"]
        return (np.argmax(jaw > 0.45) + 0.5) / 100

    assert opening(0.0) == pytest.approx(0.5, abs=0.03)
    assert opening(0.0) - opening(0.08) == pytest.approx(0.08, abs=0.015)


def test_smoothing_blurs_short_segments():
    phonemes = timeline(("_", 0.3), ("A:", 0.08), ("_", 0.3))
    peak = {s: mouth_tracks(phonemes, 68, fps=100.0, smoothing=s)["jaw"].max() for s in (0.0, 0.02, 0.06)}
    assert peak[0.0] == pytest.approx(0.9) and peak[0.0] > peak[0.02] > peak[0.06]


def test_tracks_follow_real_speech():
    u = synthesize('Maybe we move, <break time="400ms"/> my father said.', Voice("en-gb-x-rp+f4", 160, 50, 50))
    n = int(len(u.audio) / 16000 * FPS) + 1
    tracks = mouth_tracks(u.phonemes, n)
    sound_t = (np.arange(n) + 0.5) / FPS + 0.04  # the sound each frame shows

    def frames_in(spans: list[Phoneme], margin: float = 0.0) -> np.ndarray:
        return np.array([any(p.start + margin <= t < p.end - margin for p in spans) for t in sound_t])

    long_pauses = [p for p in u.phonemes if p.symbol == SILENCE and p.end - p.start > 0.15]
    assert long_pauses
    assert tracks["jaw"][frames_in(long_pauses, margin=0.07)].max() < 0.05
    open_vowels = [p for p in u.phonemes if p.symbol in {"A:", "aa", "aI", "eI", "E"}]
    bilabials = [p for p in u.phonemes if p.symbol in {"m", "b", "p"} and p.end - p.start > 0.05]
    assert tracks["jaw"][frames_in(open_vowels)].mean() > 0.35
    assert tracks["jaw"][frames_in(bilabials, margin=0.015)].max() < 0.15
    rounded = [p for p in u.phonemes if p.symbol in {"u:", "w"}]
    assert tracks["round"][frames_in(rounded)].mean() > 0.4
