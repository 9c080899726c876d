"""Distillation end to end on the fake corpus: token and naive students train, resume, and run in the runtime."""
import json

import numpy as np
import pytest
import torch

from distill import distill
from fada_stream.generator import StudentModel, load_window_model
from fada_stream.model import StudentDiT, load_student, load_teacher, preset
from fada_stream.model.config import StudentConfig
from fada_stream.sampling import boost_audio
from fada_stream.stream import StreamConfig, render_offline
from tests.distill.conftest import TINY

pytest.importorskip("av")


def run(teacher_dir, cache_file, moderate_cache, out, **kw):
    args = dict(iters=2, batch=4, substeps=2, device="cpu", eval_every=2, log_every=1, lr=1e-2, warmup=1)
    cfg = distill.DistillConfig(teacher=str(teacher_dir), data=str(cache_file), moderate=str(moderate_cache), out=str(out),
                                **{**args, **kw})
    return distill.main(cfg)


@pytest.mark.parametrize("mode", ["adaln", "attn", "both"])
def test_student_starts_as_the_teachers_conditional_branch_and_its_tokens_carry_the_scales(mode, awake):
    torch.manual_seed(0)
    cfg = StudentConfig(model=preset("tiny", **TINY), token_mode=mode)
    student = StudentDiT(cfg)
    for p in student.dit.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(2, 6, 4, 16, 16), torch.rand(2)
    ref, mel = torch.randn(2, 4, 16, 16), torch.randn(2, 80, cfg.model.audio.mel_span(6))
    lo, hi = torch.tensor([[1.0, 1.0]] * 2), torch.tensor([[2.0, 4.0]] * 2)
    with torch.no_grad():
        a = student(x, t, ref, mel, scales=torch.tensor([[1.0, 4.0], [2.0, 1.0]]))
        b = student.dit(x, t, ref, mel)
        torch.testing.assert_close(a, b)  # zero-initialised embedding or gates: no effect before training
        awake(student)  # as training makes them
        if student.token_gates is not None:
            student.token_gates.fill_(1.0)  # open gates
        assert (student(x, t, ref, mel, scales=lo) - student(x, t, ref, mel, scales=hi)).abs().max() > 1e-3
    assert (student.cfg_embed is not None) == (mode != "attn") and (student.cfg_tokens is not None) == (mode != "adaln")


def test_distillation_trains_saves_resumes_and_the_runtime_serves_it(teacher_dir, cache_file, moderate_cache, tmp_path):
    out = tmp_path / "student"
    run(teacher_dir, cache_file, moderate_cache, out, snapshot_every=1)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and rows[-1]["gt_loss"] is not None and rows[-1]["lambda"] > 0  # mixed supervision on
    assert "eval_teacher_loss" in rows[-1] and np.isfinite(rows[-1]["teacher_loss"])
    model, _, cfg = load_student(out)
    assert cfg.steps == 2 and cfg.tokens and model.cfg_embed is not None
    assert any(p.abs().sum() > 0 for p in model.cfg_embed.mlp[-1].parameters())  # the tokens learned something

    run(teacher_dir, cache_file, moderate_cache, out, **{"iters": 3, "snapshot_every": 2})  # resumes at step 2
    meta = json.loads((out / "student.json").read_text())["meta"]
    assert meta["step"] == 3
    # --snapshot-every keeps the EMA student of every Nth step beside the latest: runs of unequal speed that shared
    # a wall-clock budget are compared at one step
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step1", "step2"]  # the resumed run's step 3 is no multiple of 2
    snaps = [load_student(out / "snapshots" / f"step{i}")[0].state_dict() for i in (1, 2)]  # servable folders
    assert json.loads((out / "snapshots" / "step2" / "student.json").read_text())["meta"]["step"] == 2
    assert any((snaps[0][k] - snaps[1][k]).abs().max() > 0 for k in snaps[0])  # two steps, two different students
    assert meta["teacher_sha256"] == json.loads((teacher_dir / "teacher.json").read_text())["weights_sha256"]  # which teacher
    assert all(v > 0 for v in json.loads((out / "state.json").read_text())["config"]["loss_emas"])  # the balance resumes too

    student = load_window_model(out, "cpu")
    assert isinstance(student, StudentModel) and student.steps == 2 and student.name == "student"
    frames, pcm = render_offline(student, np.full((128, 128, 3), 128, np.uint8), np.zeros(8000, np.float32), 16000,
                                 StreamConfig(s_ref=1.5, s_audio=3.0))
    assert frames.shape == (13, 128, 128, 3) and len(pcm) == 8000


def test_attention_token_student_trains_and_serves(teacher_dir, cache_file, moderate_cache, tmp_path):
    out = run(teacher_dir, cache_file, moderate_cache, tmp_path / "attn", token_mode="attn").parent
    model, _, cfg = load_student(out)
    assert cfg.token_mode == "attn" and model.cfg_embed is None and model.cfg_tokens.n_tokens == 4
    assert model.token_gates.abs().sum() > 0  # the gates opened: the tokens now reach the blocks
    frames, _ = render_offline(load_window_model(out, "cpu"), np.full((128, 128, 3), 128, np.uint8), np.zeros(4000, np.float32), 16000,
                               StreamConfig())
    assert frames.shape == (7, 128, 128, 3)


@pytest.fixture(scope="module")
def two_windows(teacher_dir, cache_file, tmp_path_factory):
    from distill.train_common import Dist

    _, codec, mc = load_teacher(teacher_dir)
    train, _ = distill.windows(str(cache_file), "high", codec, mc, tmp_path_factory.mktemp("w"), Dist(0, 1, 0, torch.device("cpu")), seed=0)
    return torch.utils.data.default_collate([train[0], train[1]])


def _perturbed(model, seed: int):
    """The model with every weight moved by N(0, 0.05^2): a two-step teacher's velocity is ~1e-5, too flat to tell
    one trajectory from another."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def _losses(teacher_dir, batch, scales, **kw):
    """L_teacher of a tiny student (the perturbed teacher's weights, perturbed again: far from its targets) on two high
    windows, at fixed noise and scales."""
    teacher, _, mc = load_teacher(teacher_dir)
    _perturbed(teacher, 8)
    keys = ("method", "cd_grid", "substeps", "steps", "p_no_motion", "train_boost")
    cfg = distill.DistillConfig(mixed=False, **{"p_no_motion": 1.0, **{k: v for k, v in kw.items() if k in keys}})
    scfg = distill.student_config(cfg, mc)
    torch.manual_seed(0)  # the token embedding's first layer is drawn at construction
    student = StudentDiT(scfg)
    student.dit.load_state_dict(teacher.state_dict())
    _perturbed(student, 9)
    student = kw.get("wrap", lambda m: m)(student)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        return distill.distill_losses(student, teacher, batch, torch.ones(2, dtype=torch.bool), cfg, scfg, kw.get("k", 0), gen,
                                      torch.tensor([scales] * 2), targets=kw.get("targets"))[0]


class Recorder(torch.nn.Module):
    """A frozen student that notes the time and scales of every call."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.cfg, self.calls = inner, inner.cfg, []

    def forward(self, x, t, **kw):
        self.calls.append((float(t[0]), kw["scales"].tolist()))
        return self.inner(x, t, **kw)


class Boosted(torch.nn.Module):
    """A student run as the runtime runs it with an audio boost: with and without the audio, v + g (v - v_silent)."""

    def __init__(self, inner, g: float):
        super().__init__()
        self.inner, self.g = inner, g

    def forward(self, x, t, **kw):
        silent = self.inner(x, t, **{**kw, "drop_audio": torch.ones(len(x), dtype=torch.bool)})
        return boost_audio(self.inner(x, t, **kw), silent, self.g)


def test_boost_aware_distillation_trains_the_student_as_it_runs_boosted(teacher_dir, two_windows, cache_file, moderate_cache, tmp_path):
    """--train-boost g: L_teacher is taken on the boosted velocity, both passes in one batch."""
    for k in (0, 1):
        a = _losses(teacher_dir, two_windows, [1.5, 2.5], steps=2, k=k, substeps=2, train_boost=0.5)
        b = _losses(teacher_dir, two_windows, [1.5, 2.5], steps=2, k=k, substeps=2, wrap=lambda m: Boosted(m, 0.5))
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, _losses(teacher_dir, two_windows, [1.5, 2.5], steps=2, k=k, substeps=2))
    out = run(teacher_dir, cache_file, moderate_cache, tmp_path / "boosted", train_boost=0.5, iters=1).parent  # mixed
    assert json.loads((out / "student.json").read_text())["meta"]["distill_config"]["train_boost"] == 0.5
    for bad in (dict(train_boost=0.5, tokens=False), dict(train_boost=0.5, method="consistency", cd_grid=2), dict(train_boost=9.0)):
        with pytest.raises(ValueError, match="train-boost"):
            run(teacher_dir, cache_file, moderate_cache, tmp_path / "bad", **bad)


@pytest.mark.parametrize("p_no_motion", [0.0, 1.0])
def test_progressive_round_follows_the_frozen_students_trajectory(teacher_dir, two_windows, p_no_motion):
    """A teacher-initialised student is the teacher's conditional branch, which is the guided teacher at scales (1, 1):
    there a K = 2 student's targets from it (4 steps, two per interval) are the teacher's with two substeps. The
    frozen student runs on its own grid, at the window's scales."""
    teacher, _, mc = load_teacher(teacher_dir)
    frozen = StudentDiT(StudentConfig(model=mc, steps=4))
    frozen.dit.load_state_dict(_perturbed(teacher, 8).state_dict())  # _losses's teacher
    for k in (0, 1):
        a = _losses(teacher_dir, two_windows, [1.0, 1.0], steps=2, k=k, substeps=2, p_no_motion=p_no_motion)
        b = _losses(teacher_dir, two_windows, [1.0, 1.0], steps=2, k=k, method="progressive", targets=frozen, p_no_motion=p_no_motion)
        torch.testing.assert_close(a, b)
        assert a > 1e-4  # a real regression, not a vanishing one
    spy = Recorder(frozen)
    _losses(teacher_dir, two_windows, [2.0, 4.0], steps=2, k=1, method="progressive", targets=spy)
    assert [t for t, _ in spy.calls] == [1.0, 0.75, 0.5, 0.25]  # up to the end of interval 1: get_ts(4)
    assert all(s == [[2.0, 4.0]] * 2 for _, s in spy.calls)


@pytest.mark.parametrize("p_no_motion", [0.0, 1.0])
def test_consistency_on_a_one_step_grid_is_one_step_trajectory_distillation(teacher_dir, two_windows, p_no_motion):
    """With one interval the consistency target is the teacher's single step from noise to 0 (the boundary f(x, 0) = x):
    the same regression as trajectory distillation at K = 1 with one substep (tests/distill/test_losses.py specifies
    the target inside the grid)."""
    a = _losses(teacher_dir, two_windows, [1.5, 2.5], steps=1, substeps=1, p_no_motion=p_no_motion)
    b = _losses(teacher_dir, two_windows, [1.5, 2.5], steps=1, method="consistency", cd_grid=1, p_no_motion=p_no_motion)
    torch.testing.assert_close(a, b)
    assert a > 1e-4
    assert not torch.allclose(b, _losses(teacher_dir, two_windows, [1.5, 2.5], steps=1, method="consistency", cd_grid=4))


def test_progressive_and_consistency_runs(teacher_dir, cache_file, moderate_cache, tmp_path):
    k2 = run(teacher_dir, cache_file, moderate_cache, tmp_path / "k2", method="consistency", cd_grid=4).parent
    rows = [json.loads(line) for line in (k2 / "log.jsonl").read_text().splitlines()]
    assert np.isfinite(rows[-1]["teacher_loss"]) and rows[-1]["gt_loss"] is not None and "eval_teacher_loss" in rows[-1]
    k1 = run(teacher_dir, cache_file, moderate_cache, tmp_path / "k1", method="progressive", init=str(k2), steps=1).parent
    _, _, cfg = load_student(k1)
    assert cfg.steps == 1
    with pytest.raises(ValueError, match="--init"):
        run(teacher_dir, cache_file, moderate_cache, tmp_path / "no-init", method="progressive")
    with pytest.raises(ValueError, match="multiple of K=2"):
        run(teacher_dir, cache_file, moderate_cache, tmp_path / "same-k", method="progressive", init=str(k2))
    with pytest.raises(ValueError, match="token students"):
        run(teacher_dir, cache_file, moderate_cache, tmp_path / "naive", method="consistency", tokens=False)
    with pytest.raises(ValueError, match="multiple of --steps 2"):
        run(teacher_dir, cache_file, moderate_cache, tmp_path / "grid", method="consistency", cd_grid=3)
    with pytest.raises(ValueError, match="token_mode"):
        StudentDiT(StudentConfig(model=preset("tiny", **TINY), token_mode="attention"))


def test_naive_student_keeps_three_pass_guidance(teacher_dir, cache_file, moderate_cache, tmp_path):
    out = tmp_path / "naive"
    run(teacher_dir, cache_file, moderate_cache, out, tokens=False, mixed=False)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["gt_loss"] is None  # teacher targets only
    student = load_window_model(out, "cpu")
    from fada_stream.generator import Guidance

    assert student.passes(Guidance(1.5, 2.5)) == 3 and student.passes(Guidance(1.0, 1.0)) == 1


def test_torchrun_two_gloo_processes(teacher_dir, cache_file, moderate_cache, tmp_path, torchrun):
    out = tmp_path / "ddp"
    rc, err = torchrun("distill.distill", ["--teacher", str(teacher_dir), "--data", str(cache_file), "--moderate", str(moderate_cache),
                                           "--out", str(out), "--iters", "2", "--batch", "4", "--substeps", "1", "--device", "cpu"], tmp_path)
    assert rc == 0, err[-3000:]
    doc = json.loads((out / "student.json").read_text())
    assert doc["meta"]["step"] == 2 and doc["meta"]["command"].startswith("torchrun")
    # The other base method and token placement under DDP too (the consistency target's pass bypasses the wrapper).
    rc, err = torchrun("distill.distill", ["--teacher", str(teacher_dir), "--data", str(cache_file), "--moderate", str(moderate_cache),
                                           "--out", str(tmp_path / "ddp-cd"), "--iters", "2", "--batch", "4", "--device", "cpu",
                                           "--method", "consistency", "--cd-grid", "4", "--token-mode", "both"], tmp_path)
    assert rc == 0, err[-3000:]
    assert json.loads((tmp_path / "ddp-cd" / "student.json").read_text())["config"]["token_mode"] == "both"


def test_second_stage_starts_from_a_student_and_restyles_windows(teacher_dir, cache_file, moderate_cache, tmp_path):
    first = run(teacher_dir, cache_file, moderate_cache, tmp_path / "first").parent
    start, _, _ = load_student(first)
    out = run(teacher_dir, cache_file, moderate_cache, tmp_path / "second", init=str(first), restyle=1.0, iters=1, lr=0.0).parent
    second, _, _ = load_student(out)
    for (name, a), b in zip(start.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)  # lr 0: the second stage's weights are the first stage's
    meta = json.loads((out / "student.json").read_text())["meta"]
    assert meta["distill_config"]["init"] == str(first) and meta["distill_config"]["restyle"] == 1.0


def test_an_adaln_student_starts_a_both_student_as_itself(teacher_dir, cache_file, moderate_cache, tmp_path):
    """--init an adaLN student with --token-mode both: the attention tokens join behind zero gates, so before any
    update the new student computes exactly what the old one did; the reverse would drop learned weights: refused."""
    first = run(teacher_dir, cache_file, moderate_cache, tmp_path / "adaln").parent
    out = run(teacher_dir, cache_file, moderate_cache, tmp_path / "both", init=str(first), token_mode="both", iters=1, lr=0.0).parent
    start, _, _ = load_student(first)
    second, _, cfg = load_student(out)
    assert cfg.token_mode == "both" and second.token_gates.abs().sum() == 0 and second.cfg_tokens is not None
    x, ref = torch.randn(1, 6, 4, 16, 16), torch.randn(1, 4, 16, 16)  # (B, F, C, h, w), (B, C, h, w)
    mel = torch.randn(1, 80, cfg.model.audio.mel_span(6))  # (B, n_mels, span)
    t, scales = torch.full((1,), 0.5), torch.tensor([[1.5, 2.5]])
    with torch.no_grad():
        torch.testing.assert_close(second(x, t, ref, mel, scales=scales), start(x, t, ref, mel, scales=scales))
    with pytest.raises(ValueError, match=r"\(both\) student"):
        run(teacher_dir, cache_file, moderate_cache, tmp_path / "back", init=str(out), iters=1)  # both -> adaLN: refused


def test_second_stage_refuses_a_student_of_another_shape(teacher_dir, cache_file, moderate_cache, tmp_path):
    first = run(teacher_dir, cache_file, moderate_cache, tmp_path / "k1", steps=1, iters=1).parent
    with pytest.raises(ValueError, match="K=1"):
        run(teacher_dir, cache_file, moderate_cache, tmp_path / "k2", init=str(first))
    with pytest.raises(ValueError, match="restyle"):
        run(teacher_dir, cache_file, moderate_cache, tmp_path / "bad", restyle=1.5)
    with pytest.raises(ValueError, match="--restyle P > 0"):
        run(teacher_dir, cache_file, moderate_cache, tmp_path / "bad", restyle_shape=True)  # shapes need a restyled copy


def test_restyled_training_windows_leave_the_held_out_ones_plain(teacher_dir, cache_file, tmp_path):
    from distill.train_common import Dist

    _, codec, mc = load_teacher(teacher_dir)
    d = Dist(0, 1, 0, torch.device("cpu"))
    plain_train, plain_held = distill.windows(str(cache_file), "high", codec, mc, tmp_path, d, seed=0)
    train, held = distill.windows(str(cache_file), "high", codec, mc, tmp_path, d, seed=0, restyle=1.0)
    assert held.indices == plain_held.indices and train.indices == plain_train.indices
    for i in range(len(held)):
        torch.testing.assert_close(held[i]["x"], plain_held[i]["x"])  # evaluation stays on the corpus's own looks
    assert not torch.allclose(train[0]["x"], plain_train[0]["x"])  # every training window restyled at share 1
    shaped, shaped_held = distill.windows(str(cache_file), "high", codec, mc, tmp_path, d, seed=0, restyle=1.0, restyle_shape=True)
    torch.testing.assert_close(shaped_held[0]["x"], plain_held[0]["x"])
    assert not torch.allclose(shaped[0]["x"], train[0]["x"])  # the same looks, now also reshaped
