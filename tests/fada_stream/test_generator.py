"""What ships: the distilled student is the bundled default, the teacher stays one switch away, and the
student's folder is a complete, self-describing checkpoint."""
import json

import numpy as np
import pytest
import torch

from fada_stream.checkpoint import CheckpointError
from fada_stream.generator import BUNDLED_STUDENT, DEFAULT_CHECKPOINT, StudentModel, TeacherModel, bundled_checkpoint, load_window_model
from fada_stream.reference import load_reference
from fada_stream.stream import StreamConfig, render_offline


def test_the_default_is_the_bundled_student_and_the_teacher_is_one_switch_away():
    assert bundled_checkpoint() == BUNDLED_STUDENT == bundled_checkpoint("student")
    assert bundled_checkpoint("teacher") == DEFAULT_CHECKPOINT
    with pytest.raises(ValueError, match="unknown sampler"):
        bundled_checkpoint("fast")
    with pytest.raises(CheckpointError, match="holds no teacher"):
        load_window_model(BUNDLED_STUDENT, "cpu", sampler="teacher")


def test_the_bundled_student_is_a_two_step_one_pass_model_with_its_provenance():
    model = load_window_model(None, "cpu", backend="torch")
    assert isinstance(model, StudentModel) and model.steps == 2
    assert model.passes(model.default_guidance) == 1  # CFG tokens: the guidance scales cost no extra pass
    assert isinstance(load_window_model(None, "cpu", sampler="teacher", backend="torch"), TeacherModel)
    meta = json.loads((BUNDLED_STUDENT / "student.json").read_text())["meta"]
    assert meta["command"].startswith("python -m distill.distill") and meta["distill_config"]["steps"] == 2
    teacher_ae = (DEFAULT_CHECKPOINT / "autoencoder.safetensors").read_bytes()
    assert (BUNDLED_STUDENT / "autoencoder.safetensors").read_bytes() == teacher_ae  # the latents it was distilled in


def test_the_bundled_students_lips_follow_the_speech_it_is_given():
    from fada_stream.bench import output_sync, sample_speech

    model = load_window_model(None, "cpu", backend="torch")
    audio = sample_speech(4.0)
    frames, pcm = render_offline(model, load_reference(None, 128), audio, 16000, StreamConfig())
    assert frames.shape == (100, 128, 128, 3) and len(pcm) == len(audio)
    given = output_sync(frames, audio)
    other = output_sync(frames, np.roll(audio, len(audio) // 2))  # the same speech, two seconds out of step
    assert abs(given["av_offset_frames"]) <= 1 and given["sync_c"] > other["sync_c"] + 0.05, (given, other)


def test_audio_boost_is_one_more_pass_of_audio_guidance_on_a_token_student():
    from fada_stream.generator import Guidance
    from fada_stream.model.config import StudentConfig

    calls = []

    def fake(x, t, scales=None, drop_audio=None, **cond):  # a velocity that depends on the audio flag and the scales
        calls.append((x.shape[0], None if drop_audio is None else drop_audio.tolist()))
        v = x * scales[:, :1, None, None, None] + cond["ref"][:, None]  # (B, F, C, h, w)
        return v if drop_audio is None else v - 2.0 * (~drop_audio).float()[:, None, None, None, None]

    student = StudentModel(fake, None, StudentConfig(), torch.device("cpu"), audio_encoder=lambda m: m)
    x, t, ref = torch.randn(1, 3, 4, 2, 2), torch.tensor([0.5]), torch.randn(1, 4, 2, 2)
    plain = student._model_fn(Guidance(1.5, 2.5), ref=ref)(x, t)
    assert student.passes(Guidance(1.5, 2.5)) == 1 and calls == [(1, None)]  # no boost: one pass, no audio flag
    boosted = student._model_fn(Guidance(1.5, 2.5, audio_boost=0.5), ref=ref)(x, t)
    assert student.passes(Guidance(1.5, 2.5, audio_boost=0.5)) == 2 and calls[-1] == (2, [False, True])  # one batched call
    full, silent = 1.5 * x + ref[:, None] - 2.0, 1.5 * x + ref[:, None]
    torch.testing.assert_close(boosted, full + 0.5 * (full - silent))
    torch.testing.assert_close(plain, 1.5 * x + ref[:, None])
    for bad in (-0.1, 4.5, float("nan"), "1"):
        with pytest.raises(ValueError, match="audio_boost"):
            Guidance(1.5, 2.5, audio_boost=bad)


def test_an_audio_guidance_interval_guides_high_noise_harder_at_the_same_passes():
    from fada_stream.generator import Guidance
    from fada_stream.model.config import ModelConfig

    def fake(x, t, drop_ref=None, drop_audio=None, **cond):  # v(0,0) = 0, v(ref,0) = 1, v(ref,audio) = 2 on every row
        return (2.0 * ~drop_audio + 1.0 * (drop_audio & ~drop_ref)).float().view(-1, 1, 1, 1, 1).expand_as(x)

    teacher = TeacherModel(fake, None, ModelConfig(), torch.device("cpu"), audio_encoder=lambda m: m)
    g = Guidance(1.5, 2.5, s_audio_early=6.0, early_from=0.6)
    fn = teacher.guided_fn(g, ref=torch.zeros(1, 4, 2, 2))
    x = torch.zeros(1, 3, 4, 2, 2)
    early, late = fn(x, torch.tensor([0.8])), fn(x, torch.tensor([0.4]))
    torch.testing.assert_close(early, torch.full_like(x, 1.5 + 6.0 * 1.0))  # s_ref (1 - 0) + s_audio_early (2 - 1)
    torch.testing.assert_close(late, torch.full_like(x, 1.5 + 2.5 * 1.0))
    assert teacher.passes(g) == teacher.passes(Guidance(1.5, 2.5)) == 3  # the interval costs no pass
    assert teacher.passes(Guidance(1.0, 1.0, s_audio_early=4.0)) == 2  # its costlier phase: the early one needs v(ref, 0)
    assert [(p.s_ref, p.s_audio, p.s_audio_early) for p in g.phases()] == [(1.5, 6.0, None), (1.5, 2.5, None)]
    assert Guidance(1.5, 2.5).phases() == (Guidance(1.5, 2.5),)
    for bad in ({"s_audio_early": 9.0}, {"s_audio_early": float("nan")}, {"s_audio_early": 4.0, "early_from": 0.0},
                {"s_audio_early": 4.0, "early_from": 1.5}):
        with pytest.raises(ValueError, match="s_audio_early|early_from"):
            Guidance(1.5, 2.5, **bad)


def test_the_mouth_drop_reaches_every_guidance_branch_of_the_teacher_at_high_noise_only():
    from fada_stream.generator import Guidance
    from fada_stream.model.config import ModelConfig
    from fada_stream.mouth_region import region_tokens

    seen = []

    def fake(x, t, drop_ref=None, drop_audio=None, ref_drop=None, **cond):
        seen.append(None if ref_drop is None else ref_drop.clone())
        return torch.zeros_like(x)

    cfg = ModelConfig()
    teacher = TeacherModel(fake, None, cfg, torch.device("cpu"), audio_encoder=lambda m: m)
    args = (torch.zeros(4, 2, 2), torch.zeros(8, 10), None, torch.randn(3, 4, 2, 2), 2)
    teacher.sample(*args, Guidance(1.5, 2.5), lambda: False)
    assert seen == [None, None]  # off by default: the whole reference
    teacher.sample(*args, Guidance(1.5, 2.5, mouth_drop_from=0.0), lambda: False)
    mouth = region_tokens(cfg.dit.grid)  # (N,)
    assert len(seen) == 4 and all(torch.equal(r, mouth[None].repeat(3, 1)) for r in seen[2:])  # every step, all 3 branches
    teacher.sample(*args[:4], 4, Guidance(1.5, 2.5, mouth_drop_from=0.5), lambda: False)  # flow times 1, 0.75, 0.5, 0.25
    assert [r is None for r in seen[4:]] == [False, False, False, True]  # high noise only: the last step sees the whole reference
    assert teacher.passes(Guidance(1.5, 2.5, mouth_drop_from=0.5)) == 3  # the drop costs no pass
    for bad in (1.0, -0.1, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="mouth_drop_from"):
            Guidance(1.5, 2.5, mouth_drop_from=bad)


def test_a_student_refuses_the_mouth_drop_before_any_window(tiny_student):
    from fada_stream.generator import Guidance
    from fada_stream.stream import StreamScheduler

    student = load_window_model(tiny_student, "cpu", backend="torch")
    face = load_reference(None, student.cfg.ae.image_size)
    with pytest.raises(ValueError, match="teacher sampler setting"):
        StreamScheduler(student, face, StreamConfig(mouth_drop_from=0.5), paced=False, out_rate=16000)
    sched = StreamScheduler(student, face, StreamConfig(), paced=False, out_rate=16000)
    with pytest.raises(ValueError, match="teacher sampler setting"):
        sched.set_guidance(Guidance(1.5, 2.5, mouth_drop_from=0.0))
    assert sched.guidance.mouth_drop_from is None  # a refused change changes nothing


def test_audio_boost_reaches_the_sampler_and_survives_a_change_of_scales():
    import asyncio

    from fada_stream.session import AvatarSession

    model = load_window_model(None, "cpu", backend="torch")
    audio = np.zeros(16000, dtype=np.float32)
    one, _ = render_offline(model, load_reference(None, 128), audio, 16000, StreamConfig(seed=3))
    two, _ = render_offline(model, load_reference(None, 128), audio, 16000, StreamConfig(seed=3, audio_boost=1.0))
    assert one.shape == two.shape and not np.array_equal(one, two)  # the boost changed the samples
    with pytest.raises(ValueError, match="audio_boost"):
        AvatarSession(config=StreamConfig(audio_boost=-1.0))

    async def run():
        async with AvatarSession(config=StreamConfig(audio_boost=0.5, idle=False), paced=False, backend="torch") as s:
            assert s.guidance.audio_boost == 0.5 and s.stats()["nfe_per_window"] == 2 * 2  # K = 2 steps x 2 passes
            s.set_guidance(s_audio=3.0)
            assert s.guidance.s_audio == 3.0 and s.guidance.audio_boost == 0.5
            s.set_guidance(audio_boost=0.0)  # switched off at run time: back to one pass per step
            assert s.stats()["audio_boost"] == 0.0 and s.stats()["nfe_per_window"] == 2 and s.guidance.s_audio == 3.0
            with pytest.raises(ValueError, match="audio_boost"):
                s.set_guidance(s_ref=1.0, audio_boost=5.0)
            assert s.guidance.s_ref != 1.0 and s.guidance.audio_boost == 0.0  # a refused change changes nothing

        async with AvatarSession(config=StreamConfig(s_audio_early=5.0, early_from=0.7, idle=False), paced=False, backend="torch") as s:
            s.set_guidance(s_audio=3.0)
            assert (s.guidance.s_audio, s.guidance.s_audio_early, s.guidance.early_from) == (3.0, 5.0, 0.7)  # the interval stays

        async with AvatarSession(config=StreamConfig(mouth_drop_from=0.5, idle=False), sampler="teacher", paced=False,
                                 backend="torch") as s:
            s.set_guidance(s_audio=2.0)
            assert (s.guidance.s_audio, s.guidance.mouth_drop_from) == (2.0, 0.5)  # the mouth drop stays
        with pytest.raises(ValueError, match="mouth_drop_from"):
            AvatarSession(config=StreamConfig(mouth_drop_from=1.0))

    asyncio.run(run())
