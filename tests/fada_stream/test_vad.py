"""Speech gate: speech passes untouched, steady noise between utterances is zeroed, streaming equals whole."""
import numpy as np
import pytest

from fada_stream.vad import GateConfig, SpeechGate


def run(gate: SpeechGate, x: np.ndarray, chunk: int | None = None) -> np.ndarray:
    step = chunk or max(1, len(x))
    parts = [gate.push(x[i : i + step]) for i in range(0, len(x), step)]
    return np.concatenate(parts + [gate.flush()])


@pytest.fixture(scope="module")
def noisy(speech):
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal(32000)).astype(np.float32)  # 2 s at -40 dBFS
    return np.concatenate([noise, speech + 0.01 * rng.standard_normal(len(speech)).astype(np.float32), noise]), len(speech)


def test_speech_passes_and_noise_after_adaptation_is_gated(noisy):
    x, n_speech = noisy
    gate = SpeechGate()
    y = run(gate, x)
    assert len(y) == len(x)
    speech = slice(32000, 32000 + n_speech)
    assert np.sqrt(np.mean(y[speech] ** 2)) / np.sqrt(np.mean(x[speech] ** 2)) > 0.98
    assert np.all(y[16000:31000] == 0)  # webrtcvad adapts to the noise within the first second; then it is silence
    assert np.all(y[-12000:] == 0)  # after the hangover
    assert any(abs(o - 32000) <= 0.1 * 16000 for o in gate.onsets)  # onset found where speech starts


@pytest.mark.parametrize("chunk", [1, 160, 333, 4096])
def test_streaming_in_any_chunks_equals_one_push(noisy, chunk):
    x, _ = noisy
    x = x[:40000]
    np.testing.assert_array_equal(run(SpeechGate(), x, chunk), run(SpeechGate(), x))


def test_digital_silence_stays_silent_and_lengths_are_exact():
    for n in (0, 1, 319, 320, 16001):
        y = run(SpeechGate(), np.zeros(n, np.float32))
        assert len(y) == n and not y.any()


def test_decisions_lag_by_a_fixed_bound(speech):
    cfg = GateConfig()
    gate = SpeechGate(cfg)
    out = gate.push(speech[:16000])
    assert 16000 - len(out) < (cfg.lag_frames + 1) * cfg.frame  # the rest is released once it is final
