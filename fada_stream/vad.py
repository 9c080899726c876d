"""Speech gate: webrtcvad decisions with onset confirmation, pre-roll and hangover, over streamed audio.

The denoiser was trained on clean speech whose pauses are digital silence; microphone noise or
breathing between words would make the mouth twitch. The gate passes speech (with a little of the
audio before each confirmed onset, so plosives keep their burst) and zeroes what webrtcvad calls
silence after a hangover, with short ramps so the cut itself adds no broadband click to the mel.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np


@dataclass
class GateConfig:
    sample_rate: int = 16000  # webrtcvad takes 8/16/32/48 kHz; the runtime feeds its model rate
    aggressiveness: int = 2  # webrtcvad mode 0-3; 2 rejects steady fan/hum noise yet keeps soft onsets
    frame_ms: int = 20  # webrtcvad frames are 10, 20 or 30 ms
    onset_frames: int = 2  # consecutive voiced frames that confirm speech: one noise click is not an onset
    preroll_frames: int = 1  # frames opened before a confirmed onset (the plosive before the vowel)
    hangover_frames: int = 12  # 240 ms: short pauses inside a sentence keep the gate open
    ramp_ms: float = 5.0  # gain ramp at each transition

    @property
    def frame(self) -> int:
        return self.sample_rate * self.frame_ms // 1000

    @property
    def lag_frames(self) -> int:
        """Frames a decision may be revised after its audio arrived (onset confirmation + pre-roll + ramp)."""
        return self.onset_frames - 1 + self.preroll_frames + 1


class SpeechGate:
    """Streamed audio in, gated audio out, a fixed `GateConfig.lag_frames` behind.

    `push` returns the samples whose gain is final; `flush` ends the stream and returns the rest,
    so the concatenated outputs have exactly the length of the input. `onsets` lists the sample
    positions where speech was confirmed to start (after pre-roll).
    """

    def __init__(self, cfg: GateConfig | None = None):
        import webrtcvad

        self.cfg = cfg or GateConfig()
        self.vad = webrtcvad.Vad(self.cfg.aggressiveness)
        self.pending = np.zeros(0, dtype=np.float32)  # samples received but not yet returned
        self.gains: list[float] = []  # per frame of `pending` decided so far (0 or 1; may be raised by pre-roll)
        self.run = 0  # consecutive voiced frames
        self.silent = 0  # consecutive unvoiced frames while speaking
        self.speaking = False
        self.offset = 0  # stream position of pending[0]
        self.onsets: collections.deque[int] = collections.deque(maxlen=256)  # recent ones: a live microphone never ends
        self._prev_gain = 0.0  # gain of the last sample returned: ramps continue across calls

    def _classify(self, frame: np.ndarray) -> bool:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return self.vad.is_speech(pcm, self.cfg.sample_rate)

    def _decide(self) -> None:
        """Classify every complete frame of `pending` that has no gain yet."""
        cfg, n = self.cfg, self.cfg.frame
        while (len(self.gains) + 1) * n <= len(self.pending):
            i = len(self.gains)
            voiced = self._classify(self.pending[i * n : (i + 1) * n])
            self.run = self.run + 1 if voiced else 0
            if self.speaking:
                self.silent = 0 if voiced else self.silent + 1
                if self.silent > cfg.hangover_frames:
                    self.speaking = False
            elif self.run >= cfg.onset_frames:
                self.speaking, self.silent = True, 0
                first = max(0, i - cfg.onset_frames + 1 - cfg.preroll_frames)
                for j in range(first, i):
                    self.gains[j] = 1.0
                self.onsets.append(self.offset + first * n)
            self.gains.append(1.0 if self.speaking else 0.0)

    def _release(self, n_frames: int, tail: int = 0) -> np.ndarray:
        """Return the first n_frames decided frames (+ tail undecided samples, gain 0) with ramps."""
        n = self.cfg.frame
        count = n_frames * n + tail
        per_frame = np.asarray(self.gains[: n_frames + 1] + [0.0], dtype=np.float32)  # one frame of look-ahead for ramps
        gain = np.repeat(per_frame, n)[: count + n]  # (count + n,)
        ramp = max(1, int(self.cfg.ramp_ms * self.cfg.sample_rate / 1000))
        # Causal moving average, primed with the previous call's last gain so ramps cross call boundaries.
        padded = np.concatenate([np.full(ramp, self._prev_gain, dtype=np.float32), gain])
        smooth = np.convolve(padded, np.ones(ramp, dtype=np.float32) / ramp, mode="valid")[1 : count + 1]
        out = self.pending[:count] * smooth
        if count:
            self._prev_gain = float(smooth[-1])
        self.pending = self.pending[count:]
        self.gains = self.gains[n_frames:]
        self.offset += count
        return out.astype(np.float32)

    def push(self, x: np.ndarray) -> np.ndarray:
        """Feed (N,) float32 audio; returns the gated samples that are now final."""
        self.pending = np.concatenate([self.pending, np.asarray(x, dtype=np.float32).reshape(-1)])
        self._decide()
        final = max(0, len(self.gains) - self.cfg.lag_frames)
        return self._release(final)

    def flush(self) -> np.ndarray:
        """End of stream: everything still held, a trailing partial frame counted as silence."""
        self._decide()
        tail = len(self.pending) - len(self.gains) * self.cfg.frame
        out = self._release(len(self.gains), tail)
        self.run = self.silent = 0
        self.speaking = False
        return out
