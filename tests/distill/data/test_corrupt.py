"""Corruptions do exactly the recorded damage."""
import numpy as np

from distill.data import corrupt


def test_shift_audio_sign_convention():
    audio = np.zeros(6400, np.float32)
    audio[3200] = 1.0
    early = corrupt.shift_audio(audio, 2, 640)  # video lags audio by 2 frames: the sound comes earlier
    late = corrupt.shift_audio(audio, -2, 640)
    assert np.argmax(early) == 3200 - 1280 and np.argmax(late) == 3200 + 1280
    assert len(early) == len(late) == len(audio)


def test_damped_mouth_scales_mouth_only():
    p = {k: np.ones(5, np.float32) for k in ("jaw", "width", "round", "blink")}
    d = corrupt.damp_mouth(p, 0.5)
    assert np.allclose(d["jaw"], 0.5) and np.allclose(d["blink"], 1.0)


def test_jitter_repeats_previous_frames():
    idx = corrupt.jitter_indices(np.random.default_rng(0), 200, 0.1)
    assert idx[0] == 0 and np.all(idx >= np.arange(200) - 1) and (idx != np.arange(200)).sum() > 5


def test_noise_snr():
    rng = np.random.default_rng(0)
    clean = (0.3 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    noisy = corrupt.add_noise(rng, clean, 10.0)
    snr = 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))
    assert abs(snr - 10.0) < 0.5


def test_blur_smooths_edges_and_keeps_flat_regions():
    f = np.zeros((1, 32, 32, 3), np.uint8)
    f[:, :, 16:] = 200
    b = corrupt.gaussian_blur(f, 1.5)
    assert b[0, 5, 0, 0] == 0 and b[0, 5, 31, 0] == 200 and 0 < b[0, 5, 16, 0] < 200


def test_sampled_corruptions_are_recorded_with_strengths():
    for s in range(20):
        c = corrupt.sample_corruptions(np.random.default_rng(s))
        assert 1 <= len(c.items) <= 3 and all(i["kind"] in corrupt.KINDS for i in c.items)
        if (o := c.get("av_offset")) is not None:
            assert 1 <= abs(o["frames"]) <= 5
