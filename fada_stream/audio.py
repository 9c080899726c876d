"""Audio helpers shared by the runtime and the corpus generator."""
from __future__ import annotations

import functools
import math

import numpy as np

# Kaiser-windowed sinc (resampy's design). The Kaiser transition band is about 5.4 / zero
# crossings of the cutoff wide, so 48 crossings with the cutoff at 94% of the lower Nyquist put the
# stopband edge just under Nyquist: measured 22.05 -> 16 kHz, flat to 7.2 kHz, -99 dB from 8.2 kHz.
# beta 9.5 buys the ~-95 dB sidelobes. Cost per minute of audio: ~0.1 s CPU at 22.05 -> 16 kHz,
# ~0.3 s at 48 -> 16 kHz (3x the taps).
_ZERO_CROSSINGS = 48
_ROLLOFF = 0.94
_KAISER_BETA = 9.5
# Outputs computed per vectorised step: bounds the (outputs, taps) gather to a few MB.
_CHUNK_OUTPUTS = 1 << 15


@functools.lru_cache(maxsize=32)
def _filter_bank(up: int, down: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Polyphase bank for a rational rate change of up/down (coprime).

    Output n lies at input time n * down / up. Outputs come in blocks of `up` that all share one
    set of phases; block b starts at input sample b * down. Returns the taps (up, T) float32, the
    first input sample each phase reads relative to its block start (up,), and T.
    """
    cutoff = _ROLLOFF * min(1.0, up / down)  # fraction of the input Nyquist
    half = math.ceil(_ZERO_CROSSINGS / cutoff)  # half-length in input samples
    taps = np.arange(-half + 1, half + 1)  # (T,)
    phase = np.arange(up)  # (up,)
    base = phase * down // up  # (up,) input sample at or before each output
    frac = (phase * down % up) / up  # (up,) how far the output lies past `base`
    dist = taps[None, :] - frac[:, None]  # (up, T) tap position minus output time, input samples
    window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (dist / half) ** 2, 0.0, None))) / np.i0(_KAISER_BETA)
    h = cutoff * np.sinc(cutoff * dist) * window  # (up, T)
    # Unity DC gain per phase: otherwise phases differ by ~1e-4 and a constant picks up a tone at
    # the block rate.
    h /= h.sum(axis=1, keepdims=True)
    return h.astype(np.float32), base - half + 1, 2 * half


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling of a mono signal by a Kaiser-windowed sinc polyphase filter.

    x: (N,) float32. Returns (round(N * dst_rate / src_rate),) float32, with output sample n at
    input time n * src_rate / dst_rate (sample 0 stays aligned) and zeros assumed outside x.
    When downsampling, content above the new Nyquist is removed (below -95 dB); the passband is flat
    to about 90% of it.
    """
    r = StreamResampler(src_rate, dst_rate)
    return np.concatenate([r.process(x), r.flush()])


class StreamResampler:
    """`resample` over a stream that arrives in chunks: the concatenated outputs of `process` and
    `flush` equal `resample` of the concatenated inputs, to float rounding.

    An output is emitted as soon as every input its filter reads has arrived, so the added latency
    is the filter's half-length (~3 ms at 24 -> 16 kHz); `flush` ends the stream with zeros.
    """

    def __init__(self, src_rate: int, dst_rate: int):
        g = math.gcd(src_rate, dst_rate)
        self.up, self.down = dst_rate // g, src_rate // g
        self.h, self.first, self.n_taps = _filter_bank(self.up, self.down)
        pad = max(0, -int(self.first.min()))
        self.buf = np.zeros(pad, dtype=np.float32)  # input history; buf[0] is input sample -pad
        self.buf_start = -pad
        self.n_in = 0  # input samples received
        self.n_out = 0  # output samples emitted

    def _start(self, n: np.ndarray) -> np.ndarray:
        """First input sample (absolute) that output n reads."""
        return (n // self.up) * self.down + self.first[n % self.up]

    def _emit(self, n_end: int) -> np.ndarray:
        """Outputs [n_out, n_end), all of whose inputs are in buf."""
        out = np.empty(max(0, n_end - self.n_out), dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self.buf, self.n_taps)  # (positions, T) view, no copy
        step = _CHUNK_OUTPUTS
        for i in range(0, len(out), step):
            n = np.arange(self.n_out + i, min(self.n_out + i + step, n_end))  # (k,)
            out[i : i + len(n)] = np.einsum("kt,kt->k", windows[self._start(n) - self.buf_start], self.h[n % self.up])
        self.n_out = max(self.n_out, n_end)
        keep = int(self._start(np.array(self.n_out))) - self.buf_start  # inputs before this are never read again
        self.buf, self.buf_start = self.buf[max(0, keep) :], self.buf_start + max(0, keep)
        return out

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed (N,) float32 input; returns the outputs that became computable."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        self.n_in += len(x)
        if self.up == self.down:
            self.n_out = self.n_in
            return x.copy()
        self.buf = np.concatenate([self.buf, x])
        # start(n) never decreases with n: count the outputs whose last tap has arrived.
        last = self.n_in - self.n_taps  # latest allowed start
        if last < int(self._start(np.array(self.n_out))):
            return np.zeros(0, dtype=np.float32)
        b = (last - int(self.first.min())) // self.down + 1  # blocks that may hold ready outputs
        n = np.arange(self.n_out, b * self.up + self.up)
        n_end = self.n_out + int(np.count_nonzero(self._start(n) <= last))
        return self._emit(n_end)

    def flush(self) -> np.ndarray:
        """End of stream: the remaining outputs, up to round(total input * dst / src), zeros assumed after."""
        total = round(self.n_in * self.up / self.down)
        if self.up == self.down or total <= self.n_out:
            return np.zeros(0, dtype=np.float32)
        need = int(self._start(np.array(total - 1))) + self.n_taps - (self.buf_start + len(self.buf))
        self.buf = np.concatenate([self.buf, np.zeros(max(0, need), dtype=np.float32)])
        return self._emit(total)


SAMPLE_RATES = (8000, 192000)  # accepted input rates, inclusive


def to_float_mono(pcm: bytes | bytearray | memoryview | np.ndarray, sample_rate: int) -> np.ndarray:
    """Caller audio -> (N,) float32 in [-1, 1]: s16le bytes, or an int16 / float ndarray, mono.

    Non-finite samples become 0 and floats are clipped: bad samples must not reach the model or
    the speakers, and a TTS glitch should not end a session. Raises ValueError on what cannot be
    audio (wrong rate, several channels, unsupported dtype).
    """
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool):
        raise ValueError(f"sample_rate must be an int, got {type(sample_rate).__name__}")
    if not SAMPLE_RATES[0] <= sample_rate <= SAMPLE_RATES[1]:
        raise ValueError(f"sample_rate {sample_rate} Hz is outside {SAMPLE_RATES[0]}-{SAMPLE_RATES[1]} Hz")
    if isinstance(pcm, (bytes, bytearray, memoryview)):
        raw = bytes(pcm)
        if len(raw) % 2:
            raise ValueError(f"s16le audio must have an even number of bytes, got {len(raw)}")
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if not isinstance(pcm, np.ndarray):
        raise ValueError(f"audio must be s16le bytes or a numpy array, got {type(pcm).__name__}")
    a = pcm
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"audio must be mono (N,), got shape {pcm.shape}")
    if a.dtype == np.int16:
        return a.astype(np.float32) / 32768.0
    if a.dtype.kind != "f":
        raise ValueError(f"audio dtype must be int16 or float, got {a.dtype}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(a, -1.0, 1.0)
