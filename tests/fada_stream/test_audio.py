import numpy as np
import pytest

from fada_stream.audio import StreamResampler, resample, to_float_mono

RATE_PAIRS = [(22050, 16000), (48000, 16000), (16000, 48000)]


def tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("src,dst", RATE_PAIRS)
@pytest.mark.parametrize("n", [0, 1, 7, 441, 22051])
def test_length_is_exact_and_output_is_finite_float32(src, dst, n):
    x = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    y = resample(x, src, dst)
    assert y.dtype == np.float32
    assert y.shape == (round(n * dst / src),)
    assert np.isfinite(y).all()


@pytest.mark.parametrize("src,dst", RATE_PAIRS)
@pytest.mark.parametrize("freq", [440.0, 3000.0, 6500.0])
def test_sine_keeps_frequency_amplitude_and_phase(src, dst, freq):
    y = resample(tone(freq, src), src, dst)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    peak = np.fft.rfftfreq(len(y), 1 / dst)[np.argmax(spectrum)]
    assert abs(peak - freq) <= 1.0  # one FFT bin of a 1 s signal
    # Away from the zero-padded edges the output is the same sine sampled at the new rate.
    interior = slice(dst // 20, -dst // 20)
    np.testing.assert_allclose(y[interior], tone(freq, dst)[interior], atol=1e-3)


def test_downsampling_removes_content_above_the_new_nyquist():
    y = resample(tone(9000.0, 22050), 22050, 16000)  # would alias to 7 kHz
    interior = y[800:-800]
    assert np.sqrt(np.mean(interior**2)) < 0.5 / np.sqrt(2) * 1e-3  # below -60 dB


def test_same_rate_is_identity():
    x = tone(1000.0, 16000, 0.1)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)


@pytest.mark.parametrize("src,dst", RATE_PAIRS + [(24000, 16000), (44100, 48000), (8000, 16000)])
def test_streamed_resampling_in_random_chunks_equals_the_whole_signal(src, dst):
    rng = np.random.default_rng(src + dst)
    x = rng.uniform(-1, 1, 12345).astype(np.float32)
    r, parts, i = StreamResampler(src, dst), [], 0
    while i < len(x):
        k = int(rng.integers(1, 900))
        parts.append(r.process(x[i : i + k]))
        i += k
    np.testing.assert_array_equal(np.concatenate(parts + [r.flush()]), resample(x, src, dst))


def test_to_float_mono_accepts_bytes_int16_and_floats_and_repairs_bad_samples():
    ints = np.array([0, 16384, -32768], np.int16)
    np.testing.assert_array_equal(to_float_mono(ints.astype("<i2").tobytes(), 16000), [0.0, 0.5, -1.0])
    np.testing.assert_array_equal(to_float_mono(ints, 16000), [0.0, 0.5, -1.0])
    np.testing.assert_array_equal(to_float_mono(ints[:, None], 16000), [0.0, 0.5, -1.0])
    np.testing.assert_array_equal(to_float_mono(np.array([np.nan, np.inf, 3.0, -0.25]), 16000), [0, 0, 1, -0.25])


@pytest.mark.parametrize("pcm,rate,match", [
    (b"\x00", 16000, "even"), (np.zeros((4, 2), np.float32), 16000, "mono"), (np.zeros(4, np.int64), 16000, "dtype"),
    (np.zeros(4, np.float32), 7999, "outside"), (np.zeros(4, np.float32), 16000.0, "int"), ([0.0], 16000, "numpy"),
])
def test_to_float_mono_refuses_what_is_not_mono_audio(pcm, rate, match):
    with pytest.raises(ValueError, match=match):
        to_float_mono(pcm, rate)
