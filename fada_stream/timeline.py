"""The session's audio timeline: utterances placed on the video-frame clock, and the model's audio tape.

An utterance (`Segment`) starts on a frame boundary and keeps two copies of its audio: the model's
(16 kHz, speech-gated) written onto the `Tape` at the segment's frames, and the output copy at the
session's output rate that is emitted frame by frame, so both stay on one clock by construction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fada_stream.audio import StreamResampler
from fada_stream.vad import GateConfig, SpeechGate


class Tape:
    """Absolute-indexed 16 kHz audio; anything never written, or already trimmed, reads as silence."""

    def __init__(self) -> None:
        self.start = 0  # absolute index of buf[0]
        self.buf = np.zeros(0, dtype=np.float32)

    def write(self, pos: int, x: np.ndarray) -> None:
        end = pos + len(x)
        if end > self.start + len(self.buf):
            self.buf = np.concatenate([self.buf, np.zeros(end - self.start - len(self.buf), dtype=np.float32)])
        lo = max(pos, self.start)
        self.buf[lo - self.start : end - self.start] = x[lo - pos :]

    def read(self, lo: int, hi: int) -> np.ndarray:
        out = np.zeros(hi - lo, dtype=np.float32)
        a, b = max(lo, self.start), min(hi, self.start + len(self.buf))
        if b > a:
            out[a - lo : b - lo] = self.buf[a - self.start : b - self.start]
        return out

    def clear_from(self, pos: int) -> None:
        """Forget everything at and after pos (an interrupted utterance's unplayed audio)."""
        self.buf = self.buf[: max(0, pos - self.start)]

    def trim(self, before: int) -> None:
        """Drop history before `before`; it will read as silence."""
        cut = min(max(0, before - self.start), len(self.buf))
        self.buf, self.start = self.buf[cut:], self.start + cut


@dataclass
class Segment:
    """One utterance: the audio pushed between two flushes, placed from frame `start` on."""

    id: int
    start: int  # first video frame
    in_rate: int
    out_rate: int
    model_rate: int
    fps: int
    gate: GateConfig | None  # None: the model hears the audio ungated
    model_samples: int = 0  # model-rate samples written to the tape
    out: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))  # output audio not yet emitted
    out_emitted: int = 0  # output samples already handed out
    flushed: bool = False
    frames_played: int = 0  # video frames of this segment the consumer has taken

    def __post_init__(self) -> None:
        self._open_resamplers(self.in_rate)

    def _open_resamplers(self, rate: int) -> None:
        self.in_rate = rate
        self.to_model = StreamResampler(rate, self.model_rate)
        self.to_out = StreamResampler(rate, self.out_rate)
        if self.gate is not None and not hasattr(self, "speech_gate"):
            self.speech_gate = SpeechGate(self.gate)

    def _model_audio(self, x: np.ndarray, final: bool) -> np.ndarray:
        y = np.concatenate([self.to_model.process(x), self.to_model.flush()]) if final else self.to_model.process(x)
        if self.gate is None:
            return y
        return np.concatenate([self.speech_gate.push(y), self.speech_gate.flush()]) if final else self.speech_gate.push(y)

    def push(self, x: np.ndarray, rate: int, tape: Tape) -> None:
        """Append (N,) float32 audio at `rate`; a rate change closes the resamplers and opens new ones."""
        if rate != self.in_rate:
            tail = self.to_model.flush()
            self.out = np.concatenate([self.out, self.to_out.flush()])
            self._write(self.speech_gate.push(tail) if self.gate is not None else tail, tape)
            self._open_resamplers(rate)
        self._write(self._model_audio(x, final=False), tape)
        self.out = np.concatenate([self.out, self.to_out.process(x)])

    def flush(self, tape: Tape) -> None:
        self._write(self._model_audio(np.zeros(0, dtype=np.float32), final=True), tape)
        self.out = np.concatenate([self.out, self.to_out.flush()])
        self.flushed = True

    def _write(self, y: np.ndarray, tape: Tape) -> None:
        tape.write(self.start * self.spf + self.model_samples, y)
        self.model_samples += len(y)

    @property
    def spf(self) -> int:
        """Model samples per video frame."""
        return self.model_rate // self.fps

    @property
    def end(self) -> int | None:
        """One past the last frame, once flushed: the video lasts as long as the audio, to within a frame."""
        return self.start + math.ceil(self.model_samples / self.spf) if self.flushed else None

    @property
    def duration(self) -> float:
        return (self.out_emitted + len(self.out)) / self.out_rate

    def known_frames(self, lookahead: int) -> int:
        """Frames (from the segment's start) whose audio, look-ahead included, has been decided."""
        return max(0, (self.model_samples - lookahead) // self.spf)

    def take_audio(self, frame: int) -> np.ndarray:
        """Output audio up to the end of `frame` (an absolute frame index); at the last frame, all that is left."""
        k = frame - self.start + 1
        upto = len(self.out) + self.out_emitted if self.end is not None and frame + 1 >= self.end else round(k * self.out_rate / self.fps)
        n = max(0, min(upto - self.out_emitted, len(self.out)))
        pcm, self.out = self.out[:n], self.out[n:]
        self.out_emitted += n
        return pcm
