import re

import numpy as np

from distill.data.speech import SILENCE, Voice, synthesize
from distill.data.text import BREAK_MS, random_text, words

BREAK = re.compile(r'<break time="(\d+)ms"/>')


def plain_words(text: str) -> list[str]:
    return re.sub(r"[,.?]", "", BREAK.sub("", text)).split()


def test_word_list_is_a_few_hundred_plain_words():
    vocabulary = words()
    assert 300 <= len(vocabulary) == len(set(vocabulary))
    assert all(w.isalpha() and (w.islower() or w == "I") for w in vocabulary)


def test_word_list_covers_every_mouth_shape():
    """Spoken by espeak, the list contains every phoneme class the mouth model must learn."""
    phonemes = {p.symbol for p in synthesize(" ".join(words()) + ".", Voice("en-us+m3", 260, 50, 50)).phonemes}
    bilabial, labiodental, dental = {"p", "b", "m"}, {"f", "v"}, {"T", "D"}
    postalveolar = {"S", "Z", "tS", "dZ"}
    rounded = {"w", "u:", "U", "O:", "oU", "aU", "OI", "r"}
    spread = {"i:", "I", "eI", "E"}
    wide = {"a", "aI", "A@", "V"}
    other = {"s", "z", "t", "d", "n", "l", "k", "g", "N", "h", "j", "@", "3"}
    missing = (bilabial | labiodental | dental | postalveolar | rounded | spread | wide | other) - phonemes
    assert not missing


def test_random_text_is_seeded_and_within_bounds():
    texts = [random_text(np.random.default_rng(5)) for _ in range(2)]
    assert texts[0] == texts[1]
    rng = np.random.default_rng(0)
    vocabulary = {w.lower() for w in words()}
    for _ in range(200):
        text = random_text(rng, min_words=3, max_words=9)
        tokens = plain_words(text)
        assert 3 <= len(tokens) <= 9
        assert all(t.lower() in vocabulary for t in tokens)
        assert text[0].isupper() and text[-1] in ".?"


def test_pause_probability_controls_pauses():
    rng = np.random.default_rng(1)
    assert not any("," in t or "<break" in t for t in (random_text(rng, pause_prob=0.0) for _ in range(100)))
    paused = [random_text(rng, min_words=4, pause_prob=1.0) for _ in range(200)]
    assert all("," in t or "<break" in t for t in paused)
    lengths = [int(ms) for t in paused for ms in BREAK.findall(t)]
    assert lengths and min(lengths) >= BREAK_MS[0] and max(lengths) <= BREAK_MS[1]
    assert sum("," in t for t in paused) > 50  # both kinds of pause occur


def test_random_text_speaks_with_its_pauses():
    rng = np.random.default_rng(3)
    text = next(t for t in (random_text(rng, pause_prob=1.0) for _ in range(50)) if "<break" in t and "," not in t)
    (ms,) = (int(m) for m in BREAK.findall(text))
    u = synthesize(text, Voice("en-us+f2", 180, 50, 50))
    pauses = [p.end - p.start for p in u.phonemes[1:-1] if p.symbol == SILENCE]
    assert any(abs(d - ms / 1000) < 0.03 for d in pauses)
