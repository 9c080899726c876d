import ctypes.util
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from distill.data import speech
from distill.data.speech import (
    LANGUAGES,
    SAMPLE_RATE,
    SILENCE,
    VARIANTS,
    EspeakUnavailable,
    Phoneme,
    Voice,
    espeak_data_path,
    sample_voice,
    synthesize,
)
from distill.data.text import random_text

VOICE = Voice("en-us+m3", rate=170, pitch=50, pitch_range=50)
TEXT = 'Seven green apples, maybe <break time="400ms"/> on the table today.'
VOWEL_START = set("aAeEiIoOuUV03@")  # first character of espeak's English vowel mnemonics


def rms(audio: np.ndarray, start: float, end: float) -> float:
    segment = audio[int(round(start * SAMPLE_RATE)) : int(round(end * SAMPLE_RATE))]
    return float(np.sqrt(np.mean(segment.astype(np.float64) ** 2))) if len(segment) else 0.0


def f0(utterance: speech.Utterance) -> float:
    """Median pitch in Hz from the autocorrelation of 40 ms at the centre of each long vowel."""
    estimates = []
    for p in utterance.phonemes:
        if p.symbol[0] in VOWEL_START and p.end - p.start > 0.06:
            centre = (p.start + p.end) / 2
            x = utterance.audio[int((centre - 0.02) * SAMPLE_RATE) : int((centre + 0.02) * SAMPLE_RATE)]
            x = x - x.mean()
            ac = np.correlate(x, x, "full")[len(x) - 1 :]
            lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
            estimates.append(SAMPLE_RATE / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(estimates))


@pytest.fixture(scope="module")
def utterances() -> list[speech.Utterance]:
    """The reference sentence plus random sentences in random voices."""
    rng = np.random.default_rng(0)
    randoms = [synthesize(random_text(rng, pause_prob=0.7), sample_voice(rng)) for _ in range(6)]
    return [synthesize(TEXT, VOICE)] + randoms


def test_audio_is_16k_mono_float32_in_range(utterances):
    for u in utterances:
        assert u.audio.dtype == np.float32 and u.audio.ndim == 1
        assert np.abs(u.audio).max() <= 1.0
        assert rms(u.audio, 0, len(u.audio) / SAMPLE_RATE) > 0.02


def test_phonemes_tile_the_whole_audio(utterances):
    for u in utterances:
        ph = u.phonemes
        assert ph[0].start == 0.0
        assert ph[-1].end == pytest.approx(len(u.audio) / SAMPLE_RATE, abs=1e-9)
        for a, b in zip(ph, ph[1:]):
            assert a.end == b.start
            assert not (a.symbol == SILENCE and b.symbol == SILENCE)  # pauses are merged
        assert all(p.end > p.start for p in ph)
        assert all(p.symbol == SILENCE or (p.symbol and not p.symbol.startswith("_")) for p in ph)


def test_silences_are_quiet_and_speech_is_loud(utterances):
    for u in utterances:
        level = rms(u.audio, 0, len(u.audio) / SAMPLE_RATE)
        for p in u.phonemes:
            if p.symbol == SILENCE and p.end - p.start > 0.1:
                # 30 ms margins: a fricative's tail may ring into the pause.
                assert rms(u.audio, p.start + 0.03, p.end - 0.03) < 0.1 * level, p
            if p.symbol[0] in VOWEL_START:
                assert rms(u.audio, p.start, p.end) > 0.3 * level, p
        # Stop closures are silent inside speech, but only briefly.
        frames = u.audio[: len(u.audio) // 160 * 160].reshape(-1, 160)  # (10 ms frames, 160)
        quiet = np.sqrt(np.mean(frames**2, axis=1)) < 0.002
        centres = (np.arange(len(frames)) + 0.5) / 100
        in_speech = np.zeros(len(frames), bool)
        for p in u.phonemes:
            if p.symbol != SILENCE:
                in_speech |= (centres >= p.start) & (centres < p.end)
        assert quiet[in_speech].mean() < 0.2


def test_leading_and_trailing_silence_are_pause_symbols(utterances):
    u = utterances[0]
    assert u.phonemes[0].symbol == SILENCE and u.phonemes[-1].symbol == SILENCE
    assert [p.symbol for p in u.phonemes[1:4]] == ["s", "E", "v"]


@pytest.mark.parametrize("ms", [200, 600])
def test_ssml_break_is_a_pause_of_its_length(ms):
    u = synthesize(f'Seven green <break time="{ms}ms"/> apples today.', VOICE)
    pauses = [p.end - p.start for p in u.phonemes[1:-1] if p.symbol == SILENCE]
    assert len(pauses) == 1
    assert pauses[0] == pytest.approx(ms / 1000, abs=0.03)


def test_comma_is_a_pause():
    u = synthesize("Seven green apples, today.", VOICE)
    pauses = [p for p in u.phonemes[1:-1] if p.symbol == SILENCE]
    assert len(pauses) == 1 and pauses[0].end - pauses[0].start > 0.08


def test_same_text_and_voice_render_identically():
    first = synthesize(TEXT, VOICE)
    synthesize("Something else in between.", Voice("en-gb-x-rp+f2", 220, 70, 30))
    again = synthesize(TEXT, VOICE)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert first.phonemes == again.phonemes


def test_threads_are_serialised_and_stay_deterministic():
    voices = [Voice(f"en-us+{v}", 170, 50, 50) for v in ("m1", "f2", "klatt", "m3")]
    serial = [synthesize(TEXT, v).audio for v in voices]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda v: synthesize(TEXT, v).audio, voices))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def test_voice_parameters_change_the_audio():
    text = "Seven green apples are on the table today."
    base = synthesize(text, VOICE)
    other_variant = synthesize(text, Voice("en-us+f3", 170, 50, 50))
    assert not np.array_equal(base.audio[: len(other_variant.audio)], other_variant.audio[: len(base.audio)])
    assert f0(other_variant) > 1.4 * f0(base)  # a female variant
    slow, fast = (synthesize(text, Voice("en-us+m3", rate, 50, 50)) for rate in (130, 240))
    assert len(fast.audio) < 0.7 * len(slow.audio)
    low, high = (synthesize(text, Voice("en-us+m3", 170, pitch, 50)) for pitch in (20, 80))
    assert f0(high) > 1.3 * f0(low)


def test_accent_changes_the_phonemes():
    text = "Last night the water was hot."
    us = [p.symbol for p in synthesize(text, Voice("en-us", 170, 50, 50)).phonemes]
    gb = [p.symbol for p in synthesize(text, Voice("en", 170, 50, 50)).phonemes]
    assert us != gb


def test_every_language_and_variant_exists():
    variants = espeak_data_path() / "voices" / "!v"
    assert all((variants / v).is_file() for v in VARIANTS)
    for language in LANGUAGES:
        assert len(synthesize("Seven.", Voice(language, 170, 50, 50)).phonemes) >= 5


def test_sample_voice_is_seeded_diverse_and_in_range():
    draws = [sample_voice(np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    voices = [sample_voice(rng) for _ in range(200)]
    assert len({v.name.split("+")[0] for v in voices}) == len(LANGUAGES)
    assert len({v.name.split("+")[1] for v in voices}) >= 20
    assert all(120 <= v.rate <= 260 and 20 <= v.pitch <= 80 and 0 <= v.pitch_range <= 100 for v in voices)
    assert np.std([v.rate for v in voices]) > 25


def test_unknown_voice_is_refused():
    with pytest.raises(ValueError, match="no voice"):
        synthesize("Hi.", Voice("xx-nowhere", 170, 50, 50))


def test_missing_library_says_how_to_install(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "/nonexistent/libespeak-ng.so.1")
    with pytest.raises(EspeakUnavailable, match="apt-get install espeak-ng"):
        synthesize("Hi.", VOICE)


def test_timeline_from_onsets():
    # 1000 samples at 1 kHz: leading gap, pause symbols merged, zero-length events dropped.
    onsets = [(100, "h"), (300, "@"), (500, "_:"), (700, "_"), (700, "m"), (700, "l"), (900, "_")]
    assert speech._timeline(onsets, 1000, 1000) == [
        Phoneme(SILENCE, 0.0, 0.1),
        Phoneme("h", 0.1, 0.3),
        Phoneme("@", 0.3, 0.5),
        Phoneme(SILENCE, 0.5, 0.7),
        Phoneme("l", 0.7, 0.9),
        Phoneme(SILENCE, 0.9, 1.0),
    ]
