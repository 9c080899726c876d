"""distill.speedup: teacher and student timed on the same window in one run; the speed-ups are ratios of what it
measured; wrong folders and mismatched windows are refused with a clear error."""
import json
import shutil

import torch

from distill import speedup
from fada_stream.generator import Guidance, build_window_model
from fada_stream.checkpoint import save_checkpoint
from fada_stream.model import STUDENT_KIND, StudentDiT, preset
from fada_stream.model.config import StudentConfig
from fada_stream.ort.parity import random_window


def test_time_window_samples_then_decodes_the_new_frames(tiny_checkpoint):
    teacher = build_window_model(tiny_checkpoint, torch.device("cpu"))
    decoded = []
    real_decode = teacher.decode
    teacher.decode = lambda lat, ref, mel: decoded.append(lat.shape) or real_decode(lat, ref, mel)
    sample_ms, window_ms = speedup.time_window(teacher, random_window(teacher.cfg), 2, Guidance(1.5, 2.5))
    assert 0 < sample_ms <= window_ms  # the window is sampling plus decode
    assert decoded == [(teacher.cfg.dit.frames - teacher.cfg.dit.motion_frames, *decoded[0][1:])]  # the new frames only


def test_cli_times_both_models_and_reports_their_ratios(tiny_checkpoint, tiny_student, capsys):
    rc = speedup.main(["--teacher", str(tiny_checkpoint), "--student", str(tiny_student), "--backend", "torch",
                       "--rounds", "2", "--student-windows", "2", "--teacher-steps", "4", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    r = out["backends"]["torch"]
    t, s = r["teacher"], r["student"]
    assert (t["steps"], t["passes"], t["nfe"], t["s_ref"], t["s_audio"]) == (4, 3, 12, 1.5, 2.5)  # offline: 3 passes a step
    assert (s["steps"], s["passes"], s["nfe"]) == (2, 1, 2)  # a token student: K steps of one pass
    assert (t["windows"], s["windows"]) == (2, 4)  # the warm-up round is not counted
    assert r["speedup"]["nfe"] == 6.0
    assert r["speedup"]["sample"] == round(t["sample_ms"] / s["sample_ms"], 2)
    assert r["speedup"]["window"] == round(t["window_ms"] / s["window_ms"], 2)
    assert 0 < t["sample_ms"] <= t["window_ms"] and 0 < s["sample_ms"] <= s["window_ms"]
    text = speedup.table(out)  # what the command prints without --json
    assert f"{r['speedup']['sample']:.1f}x" in text and f"{r['speedup']['window']:.1f}x" in text


def test_folders_are_checked_for_what_they_hold(tiny_checkpoint, tiny_student, tmp_path, capsys):
    assert speedup.main(["--teacher", str(tiny_student), "--student", str(tiny_student), "--backend", "torch"]) == 2
    assert "holds no teacher" in capsys.readouterr().err
    assert speedup.main(["--teacher", str(tiny_checkpoint), "--student", str(tiny_checkpoint), "--backend", "torch"]) == 2
    assert "holds no student" in capsys.readouterr().err
    other = tmp_path / "other"  # a student of another window size than the teacher's
    cfg = StudentConfig(model=preset("tiny", width=32, depth=1, heads=2, frames=8, motion_frames=2), steps=2)
    save_checkpoint(other / "student", STUDENT_KIND, cfg, StudentDiT(cfg).state_dict())
    shutil.copytree(tiny_student, other, dirs_exist_ok=True, ignore=shutil.ignore_patterns("student.*"))
    assert speedup.main(["--teacher", str(tiny_checkpoint), "--student", str(other), "--backend", "torch"]) == 2
    assert "windows differ" in capsys.readouterr().err
