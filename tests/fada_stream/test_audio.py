import numpy as np
import pytest

from fada_stream.audio import resample

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
