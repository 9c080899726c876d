"""Metrics: exact values on constructed inputs."""
import math

import pytest
import torch

from distill.eval import metrics


def test_psnr_of_identical_frames_is_capped_and_drops_with_noise():
    x = torch.rand(3, 3, 32, 32)
    assert metrics.psnr(x, x) == metrics.PSNR_CAP
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert 15 < metrics.psnr(x, noisy) < 25
    assert metrics.psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)) == pytest.approx(20.0)


def test_ssim_of_identical_is_one_and_lower_otherwise():
    x = torch.rand(2, 3, 32, 32)
    assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-5)
    mild, strong = (metrics.ssim(x, (x + s * torch.randn_like(x)).clamp(0, 1)) for s in (0.1, 0.3))
    assert 0.5 < strong < mild < 0.99
    assert metrics.ssim(x, torch.rand(2, 3, 32, 32)) < 0.1


def test_seam_jitter_sees_jumps_at_window_starts():
    torch.manual_seed(0)
    stride, t = 6, 48
    smooth = torch.cumsum(torch.full((t, 8, 8, 3), 1.0), dim=0)  # constant change per frame
    assert metrics.seam_jitter(smooth, stride) == pytest.approx(1.0)
    jumps = smooth.clone()
    for k in range(stride, t, stride):
        jumps[k:] += 5.0  # a jump between frame k - 1 and k
    assert metrics.seam_jitter(jumps, stride) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        metrics.seam_jitter(smooth[:4], stride)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    torch.manual_seed(0)
    a = torch.randn(400, 16) @ torch.randn(16, 16)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    b = a + 2.0  # mean moves by 2 in each of 16 dims, covariance unchanged
    assert metrics.frechet_distance(a, b) == pytest.approx(64.0, rel=1e-6)
    assert metrics.frechet_distance(a, torch.randn(400, 16)) > 1.0


def test_frechet_distance_tolerates_rank_deficient_sets():
    a = torch.randn(10, 64)  # fewer samples than dimensions, as with short clips
    assert math.isfinite(metrics.frechet_distance(a, torch.randn(12, 64)))


@pytest.mark.parametrize("audio_shift", [-7, -1, 0, 2, 15])
def test_sync_offset_sign_convention(audio_shift):
    """Audio delayed by k frames (video leads) is best matched at o* = +k and reported as offset -k."""
    torch.manual_seed(1)
    t, k = 80, 15
    signal = torch.nn.functional.normalize(torch.randn(t + 40, 8), dim=-1)  # one embedding per moment
    video = signal[20 : 20 + t]  # video window i shows moment 20 + i
    audio = signal[20 - audio_shift : 20 - audio_shift + t]  # audio window j holds moment 20 - shift + j
    curve = metrics.sync_curve(video, audio, k)
    sync_c, sync_d, offset = metrics.sync_scores(curve)
    assert offset == -audio_shift
    assert sync_d == pytest.approx(0.0, abs=1e-5)
    assert sync_c > 1.0
    assert curve.shape == (2 * k + 1,)


def test_sync_curve_marks_offsets_without_overlap():
    v, a = torch.randn(3, 4), torch.randn(3, 4)
    curve = metrics.sync_curve(v, a, max_offset=5)
    assert torch.isnan(curve[:3]).all() and torch.isnan(curve[-3:]).all()  # |o| >= 3: no pair of windows
    assert not torch.isnan(curve[3:-3]).any()


def test_pearson_and_closed_in_silence():
    x = torch.linspace(0, 1, 50)
    assert metrics.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert metrics.pearson(x, -x) == pytest.approx(-1.0)
    assert math.isnan(metrics.pearson(x, torch.ones(50)))
    jaw = torch.tensor([0.0, 0.05, 0.5, 0.3, 0.02])
    silent = torch.tensor([True, True, True, False, False])
    assert metrics.closed_in_silence(jaw, silent) == pytest.approx(2 / 3)
    assert metrics.closed_in_silence(jaw, torch.zeros(5, dtype=torch.bool)) is None


def test_energy_silence_finds_speech_with_hangover():
    audio = torch.zeros(40 * 640)
    audio[10 * 640 : 20 * 640] = 0.3 * torch.randn(10 * 640)  # frames 10..19 are loud
    silent = metrics.energy_silence(audio, 40)
    speech = torch.nonzero(~silent).flatten()
    assert int(speech.min()) == 10 - 3 and int(speech.max()) == 19 + 3  # 100 ms = 3 frames each side
    assert metrics.energy_silence(torch.zeros(40 * 640), 40).all()
