"""Samplers return x0 under an exact denoiser; multi-CFG is one batched pass; motion frames stay clean."""
import pytest
import torch

from fada_stream.model import build_teacher, preset
from fada_stream.sampling import (
    SAMPLERS, add_noise, cfg_passes, combine_multi_cfg, get_ts, guidance_interval, multi_cfg, sample_euler, velocity_target,
    window_noise,
)


def exact_velocity(x0):
    """The true flow velocity when the data is the single point x0: v = (x_t - x0) / t."""
    return lambda x, t: (x - x0) / t.view(-1, *([1] * (x.ndim - 1)))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("steps,shift", [(1, 1.0), (4, 1.0), (25, 3.0)])
def test_exact_denoiser_returns_x0(name, steps, shift):
    x0 = torch.randn(2, 3, 4, 4)
    out = SAMPLERS[name](exact_velocity(x0), torch.randn(2, 3, 4, 4), get_ts(steps, shift))
    assert torch.allclose(out, x0, atol=1e-5)


def test_schedule_runs_from_noise_to_data():
    ts = get_ts(10, shift=3.0)
    assert ts[0] == 1.0 and ts[-1] == 0.0 and (ts[1:] < ts[:-1]).all()


def test_velocity_target_moves_xt_back_to_x0():
    x0, eps, t = torch.randn(3, 5), torch.randn(3, 5), torch.tensor([0.2, 0.5, 1.0])
    xt = add_noise(x0, eps, t)
    assert torch.allclose(xt - t[:, None] * velocity_target(x0, eps), x0, atol=1e-6)


def test_callback_sees_every_step():
    seen = []
    sample_euler(lambda x, t: torch.zeros_like(x), torch.zeros(1, 2), get_ts(5), callback=lambda d: seen.append(d["i"]))
    assert seen == [0, 1, 2, 3, 4]


class FlagModel:
    """A fake denoiser whose output depends on the drop flags; counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x, t, drop_ref, drop_audio, ref, mel):
        self.calls += 1
        keep_ref = (~drop_ref).float().view(-1, 1)
        keep_audio = (~drop_audio).float().view(-1, 1)
        return x * 0.5 + keep_ref * ref + keep_audio * mel * 3.0


def test_multi_cfg_combines_the_three_branches_with_their_scales():
    model, x, t = FlagModel(), torch.randn(2, 4), torch.rand(2)
    ref, mel = torch.randn(2, 4), torch.randn(2, 4)
    no, yes = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)
    v_uncond, v_ref, v_full = model(x, t, no, no, ref, mel), model(x, t, yes, no, ref, mel), model(x, t, yes, yes, ref, mel)
    v = multi_cfg(model, 2.0, 4.0, ref=ref, mel=mel)(x, t)
    assert torch.allclose(v, v_uncond + 2.0 * (v_ref - v_uncond) + 4.0 * (v_full - v_ref), atol=1e-5)


def test_multi_cfg_with_unit_scales_is_the_full_condition_branch():
    model, x, t = FlagModel(), torch.randn(2, 4), torch.rand(2)
    ref, mel = torch.randn(2, 4), torch.randn(2, 4)
    v = multi_cfg(model, 1.0, 1.0, ref=ref, mel=mel)(x, t)
    assert model.calls == 1 and cfg_passes(1.0, 1.0) == 1  # the other two branches have zero weight
    full = model(x, t, torch.zeros(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool), ref, mel)
    assert torch.allclose(v, full, atol=1e-6)


@pytest.mark.parametrize("s_ref,s_audio,passes", [(2.0, 4.0, 3), (1.0, 4.0, 2), (3.0, 3.0, 2), (0.0, 0.0, 1)])
def test_multi_cfg_evaluates_only_branches_with_weight_in_one_batched_call(s_ref, s_audio, passes):
    model, x, t = FlagModel(), torch.randn(2, 4), torch.rand(2)
    ref, mel = torch.randn(2, 4), torch.randn(2, 4)
    no, yes = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)
    v_uncond, v_ref, v_full = model(x, t, no, no, ref, mel), model(x, t, yes, no, ref, mel), model(x, t, yes, yes, ref, mel)
    seen = []
    v = multi_cfg(lambda x, t, **kw: seen.append(len(x)) or model(x, t, **kw), s_ref, s_audio, ref=ref, mel=mel)(x, t)
    assert seen == [2 * passes] and cfg_passes(s_ref, s_audio) == passes
    assert torch.allclose(v, combine_multi_cfg(v_uncond, v_ref, v_full, s_ref, s_audio), atol=1e-5)


def test_guidance_interval_uses_the_early_guidance_at_high_noise_only():
    seen = []
    early = lambda x, t: seen.append(("early", float(t[0]))) or torch.ones_like(x)  # noqa: E731
    late = lambda x, t: seen.append(("late", float(t[0]))) or torch.zeros_like(x)  # noqa: E731
    x = torch.zeros(2, 3)
    out = sample_euler(guidance_interval(early, late, 0.5), x, get_ts(4))  # t = 1, 0.75, 0.5, 0.25 -> 0
    assert seen == [("early", 1.0), ("early", 0.75), ("early", 0.5), ("late", 0.25)]  # t >= 0.5 is early
    torch.testing.assert_close(out, torch.full((2, 3), -0.75))  # only the early steps moved x: 3 steps of dt = -0.25


def test_multi_cfg_scales_each_difference():
    v00, vr0, vra = torch.tensor(1.0), torch.tensor(3.0), torch.tensor(4.0)
    assert combine_multi_cfg(v00, vr0, vra, 2.0, 3.0) == 1.0 + 2 * 2.0 + 3 * 1.0
    assert combine_multi_cfg(v00, vr0, vra, 0.0, 0.0) == v00


def test_teacher_sampling_keeps_motion_frames_clean(awake):
    cfg = preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2)
    torch.manual_seed(0)
    model = awake(build_teacher(cfg).eval())
    motion = torch.randn(1, 2, 4, 16, 16)
    ref, mel = torch.randn(1, 4, 16, 16), torch.randn(1, 80, cfg.audio.mel_span(6))
    fn = multi_cfg(model, 1.5, 2.5, ref=ref, mel=mel, motion=motion)
    x = sample_euler(fn, window_noise((1, 6, 4, 16, 16), motion, torch.Generator().manual_seed(0)), get_ts(3))
    assert torch.equal(x[:, :2], motion)
    assert x[:, 2:].abs().sum() > 0
