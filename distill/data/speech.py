"""Speech with exact phoneme timing, from libespeak-ng through ctypes.

espeak-ng reports every phoneme it renders as an event carrying the output sample where the
phoneme starts, so the timeline is exact, not aligned after the fact. The library is global,
non-re-entrant state: every utterance holds one process-wide lock and gets a freshly loaded copy
(see `_Espeak`), which is what makes equal inputs render identically.
"""
from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fada_stream.audio import resample

SAMPLE_RATE = 16000
SILENCE = "_"

# Accents whose voice files ship with espeak-ng-data (lang/gmw/); "en" is British English.
LANGUAGES = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
# Variants from espeak-ng-data/voices/!v that still sound like a person: the robot, whisper,
# croak and extreme-flutter ones would teach the mouth model sounds no speaker makes.
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4",
    "Annie", "belinda", "benjamin", "david", "edward", "linda", "max", "michel",
    "paul", "quincy", "rob", "robert", "steph", "travis",
)

_INSTALL_HINT = "install espeak-ng (Debian/Ubuntu: apt-get install espeak-ng)"

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000  # without it a missing espeak-ng-data calls exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_EE_OK = 0
_BUFFER_MS = 1000  # longer buffers mean fewer Python callbacks; timing comes from events anyway


class EspeakUnavailable(RuntimeError):
    """libespeak-ng or its espeak-ng-data could not be loaded."""


@dataclass(frozen=True)
class Voice:
    name: str  # espeak voice spec "language+variant", e.g. "en-us+f3"
    rate: int  # words per minute; espeak accepts ~80..450
    pitch: int  # 0..100, 50 is the variant's own pitch
    pitch_range: int  # 0..100, 0 is monotone


@dataclass(frozen=True)
class Phoneme:
    symbol: str  # espeak mnemonic ("h", "@", "oU", "i:"); every pause is SILENCE
    start: float  # seconds on the output timeline
    end: float


@dataclass
class Utterance:
    audio: np.ndarray  # (N,) float32 in [-1, 1], mono, SAMPLE_RATE
    phonemes: list[Phoneme]  # tiles [0, N / SAMPLE_RATE] without gaps or overlaps
    voice: Voice


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # output sample since the start of the message
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class _Capture:
    """What espeak hands back during one espeak_Synth call."""

    chunks: list[np.ndarray] = field(default_factory=list)  # each (n,) int16
    onsets: list[tuple[int, str]] = field(default_factory=list)  # (start sample, mnemonic)


class _Espeak:
    """One freshly loaded copy of libespeak-ng, good for one utterance.

    espeak keeps synthesis state across calls in statics that no API resets (the pitch-flutter
    phase in wavegen.c's AdvanceParameters, clause context), so the same text renders a few ms
    longer and with another waveform depending on what was said before. Unloading the library and
    loading it again is the only way back to a pristine state. It costs ~5 ms per utterance, about
    half of the ~11 ms a typical 3 s utterance takes in all, and nothing stays loaded between calls.
    """

    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as e:
            raise EspeakUnavailable(f"cannot load libespeak-ng ({e}); {_INSTALL_HINT}") from e
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        self.lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        self.lib.espeak_Info.restype = ctypes.c_char_p
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            self.close()
            raise EspeakUnavailable(f"espeak_Initialize failed: espeak-ng-data not found; {_INSTALL_HINT}")
        self.capture = _Capture()
        self.callback = _SynthCallback(self._on_synth)  # kept referenced: espeak holds the pointer
        self.lib.espeak_SetSynthCallback(self.callback)

    def close(self) -> None:
        self.lib.espeak_Terminate()
        # ctypes never unloads a library; without dlclose the next CDLL would return this copy.
        _ctypes.dlclose(self.lib._handle)

    def data_path(self) -> Path:
        data = ctypes.c_char_p()
        self.lib.espeak_Info(ctypes.byref(data))
        return Path(data.value.decode())

    def _on_synth(self, wav, n_samples: int, events) -> int:
        if n_samples > 0:
            self.capture.chunks.append(np.ctypeslib.as_array(wav, (n_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                self.capture.onsets.append((events[i].sample, events[i].id.string.decode("ascii", "replace")))
            i += 1
        return 0  # continue synthesis

    def render(self, text: str, voice: Voice) -> _Capture:
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != _EE_OK:
            raise ValueError(f"espeak-ng has no voice {voice.name!r}")
        # After the voice: loading a voice may reset prosody parameters.
        self.lib.espeak_SetParameter(_PARAM_RATE, voice.rate, 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, voice.pitch, 0)
        self.lib.espeak_SetParameter(_PARAM_RANGE, voice.pitch_range, 0)
        # espeak draws noise from libc rand(), which outlives the library reload.
        _LIBC.srand(1)
        self.capture = _Capture()
        data = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _SSML, None, None)
        if status != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        return self.capture


_LIBC = ctypes.CDLL(None)
_LIBC.srand.argtypes = [ctypes.c_uint]
# espeak is process-global state and not re-entrant.
_LOCK = threading.Lock()


@contextlib.contextmanager
def _espeak() -> Iterator[_Espeak]:
    """A pristine espeak for the duration of the block, with the process-wide lock held."""
    with _LOCK:
        espeak = _Espeak()
        try:
            yield espeak
        finally:
            espeak.close()


def espeak_data_path() -> Path:
    """The espeak-ng-data directory that libespeak-ng reads."""
    with _espeak() as espeak:
        return espeak.data_path()


def _timeline(onsets: list[tuple[int, str]], n_samples: int, rate: int) -> list[Phoneme]:
    """Phoneme onsets (sample, mnemonic) -> spans tiling [0, n_samples / rate].

    Each phoneme lasts until the next onset. Every pause mnemonic ("_", "_:", "_!" ...) becomes
    SILENCE, adjacent silences merge, and audio before the first onset is silence too.
    Zero-length events (espeak marks clause ends with them) vanish.
    """
    marks = [(0, SILENCE)] + [(min(max(s, 0), n_samples), SILENCE if m.startswith("_") else m) for s, m in onsets]
    marks.sort(key=lambda mark: mark[0])  # stable: same-sample events keep espeak's order
    spans: list[tuple[int, int, str]] = []
    for (start, symbol), (end, _) in zip(marks, marks[1:] + [(n_samples, SILENCE)]):
        if end <= start:
            continue
        if spans and spans[-1][2] == symbol == SILENCE:
            spans[-1] = (spans[-1][0], end, SILENCE)
        else:
            spans.append((start, end, symbol))
    return [Phoneme(symbol, start / rate, end / rate) for start, end, symbol in spans]


def synthesize(text: str, voice: Voice) -> Utterance:
    """Render `text` with `voice`: 16 kHz audio and the phoneme spans espeak rendered.

    `text` is read as SSML, so `<break time="300ms"/>` inserts a pause; plain text works too, but
    a literal "<" or "&" must be escaped. Deterministic: equal inputs give identical outputs.
    """
    with _espeak() as espeak:
        capture = espeak.render(text, voice)
        rate = espeak.sample_rate
    pcm = np.concatenate(capture.chunks) if capture.chunks else np.zeros(0, np.int16)  # (n,) int16
    audio = resample(pcm.astype(np.float32) / 32768.0, rate, SAMPLE_RATE)  # (N,) float32
    phonemes = _timeline(capture.onsets, len(pcm), rate)
    if phonemes:
        # The resampled length is rounded: stretch the last span to the exact end.
        last = phonemes[-1]
        phonemes[-1] = Phoneme(last.symbol, last.start, len(audio) / SAMPLE_RATE)
    return Utterance(np.clip(audio, -1.0, 1.0), phonemes, voice)


def sample_voice(rng: np.random.Generator) -> Voice:
    """A random English accent x voice variant x speaking rate x pitch."""
    language = LANGUAGES[rng.integers(len(LANGUAGES))]
    variant = VARIANTS[rng.integers(len(VARIANTS))]
    return Voice(
        name=f"{language}+{variant}",
        rate=int(rng.integers(120, 261)),
        pitch=int(rng.integers(20, 81)),
        pitch_range=int(rng.integers(20, 91)),
    )
