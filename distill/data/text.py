"""Random English sentences for the speech corpus.

The words come from `wordlist.txt`: ~600 common words chosen so every English phoneme occurs
often, the ones the mouth shows most (bilabials p b m, labiodentals f v, rounded and wide vowels)
included. Sentences are not grammatical; the mouth model needs phoneme coverage, not meaning.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

WORDLIST = Path(__file__).with_name("wordlist.txt")
BREAK_MS = (150, 600)  # SSML pause lengths: from a short hesitation to a long breath


@functools.cache
def words() -> tuple[str, ...]:
    """The built-in word list, one entry per line of `wordlist.txt`."""
    return tuple(line.strip() for line in WORDLIST.read_text().splitlines() if line.strip())


def random_text(rng: np.random.Generator, min_words: int = 4, max_words: int = 14, pause_prob: float = 0.3) -> str:
    """A sentence of min_words..max_words random words, in SSML for `speech.synthesize`.

    With probability `pause_prob` the sentence holds pauses: one, or two in sentences of more
    than eight words, each either a comma or a `<break time="...ms"/>` of 150-600 ms.
    """
    vocabulary = words()
    n = int(rng.integers(min_words, max_words + 1))
    tokens = [vocabulary[i] for i in rng.integers(len(vocabulary), size=n)]
    tokens[0] = tokens[0].capitalize()
    if n > 1 and rng.random() < pause_prob:
        n_pauses = 1 + int(n > 8 and rng.random() < 0.5)
        for gap in rng.choice(n - 1, size=n_pauses, replace=False):  # pause after tokens[gap]
            if rng.random() < 0.5:
                tokens[gap] += ","
            else:
                tokens[gap] += f' <break time="{int(rng.integers(BREAK_MS[0], BREAK_MS[1] + 1))}ms"/>'
    return " ".join(tokens) + ("?" if rng.random() < 0.15 else ".")
