"""log_mel: frame count and centring, a sine lands in its mel band, batching changes nothing."""
import math

import pytest
import torch

from fada_stream.features import _hz_to_mel, log_mel, mel_filterbank


@pytest.mark.parametrize("n", [160, 16000, 16000 + 37, 50])
def test_shape_is_n_over_hop_plus_one(n):
    out = log_mel(torch.zeros(n))
    assert out.shape == (80, n // 160 + 1)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0, 6500.0])
def test_sine_lands_in_its_mel_band(freq):
    t = torch.arange(16000) / 16000.0
    mel = log_mel(0.5 * torch.sin(2 * math.pi * freq * t))  # (80, 101)
    peak = int(mel[:, 10:-10].mean(dim=1).argmax())
    # Band centres are equally spaced on the mel scale between 0 Hz and Nyquist.
    centre = _hz_to_mel(freq) / _hz_to_mel(8000.0) * 81 - 1
    assert abs(peak - centre) <= 1.0


def test_frame_j_is_centred_at_j_times_hop():
    audio = torch.zeros(16000)
    audio[8000:8160] = torch.randn(160)  # a 10 ms burst starting at frame 50
    energy = log_mel(audio).mean(dim=0)  # (101,)
    loud = torch.nonzero(energy > energy.min() + 1.0).flatten()
    assert 48 <= int(loud.min()) and int(loud.max()) <= 53
    assert 50 <= int(energy.argmax()) <= 51


def test_batch_equals_one_by_one():
    torch.manual_seed(0)
    audio = torch.randn(2, 3, 4000) * 0.1
    batched = log_mel(audio)  # (2, 3, 80, 26)
    assert batched.shape == (2, 3, 80, 26)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(batched[i, j], log_mel(audio[i, j]), atol=1e-4, rtol=1e-4)


def test_silence_is_the_floor_and_filterbank_is_cached():
    assert torch.allclose(log_mel(torch.zeros(1600)), torch.full((80, 11), math.log(1e-5)))
    assert mel_filterbank(16000, 512, 80) is mel_filterbank(16000, 512, 80)
    assert (mel_filterbank(16000, 512, 80).sum(dim=1) > 0).all()  # no empty band at 80 mels / 257 bins
