"""distill.set_guidance: a token student's default scales change on record, its weights never; bad requests change nothing."""
import json
import shutil

import pytest
import torch

from distill import set_guidance
from fada_stream.checkpoint import sha256_file, save_checkpoint
from fada_stream.generator import Guidance, bundled_checkpoint, load_window_model
from fada_stream.model import STUDENT_KIND, StudentDiT, load_student, preset
from fada_stream.model.config import StudentConfig
from tests.distill.conftest import TINY


@pytest.fixture
def student(tiny_student, tmp_path):
    folder = tmp_path / "student"
    shutil.copytree(tiny_student, folder)
    return folder


def test_new_defaults_reach_the_runtime_and_are_recorded_beside_the_training_command(student):
    weights = sha256_file(student / "student.safetensors")
    assert (load_student(student)[2].s_ref, load_student(student)[2].s_audio) == (1.5, 2.5)

    assert set_guidance.main([str(student), "--s-audio", "3.25", "--evidence", "docs/x.md, a sweep"]) == 0

    assert load_window_model(student, backend="torch").default_guidance == Guidance(1.5, 3.25)  # what sessions start at
    assert sha256_file(student / "student.safetensors") == weights  # the same trained model
    [record] = json.loads((student / "student.json").read_text())["meta"]["guidance_defaults"]
    assert record["from"] == {"s_ref": 1.5, "s_audio": 2.5} and record["to"] == {"s_ref": 1.5, "s_audio": 3.25}
    assert record["evidence"] == "docs/x.md, a sweep"
    assert record["command"].startswith("python -m distill.set_guidance ") and "'docs/x.md, a sweep'" in record["command"]

    assert set_guidance.main([str(student), "--s-ref", "2", "--evidence", "another"]) == 0  # a second change appends
    history = json.loads((student / "student.json").read_text())["meta"]["guidance_defaults"]
    assert [h["to"] for h in history] == [{"s_ref": 1.5, "s_audio": 3.25}, {"s_ref": 2.0, "s_audio": 3.25}]


@pytest.mark.parametrize("args", [
    ["--s-audio", "4.5"],       # past the distilled range (1, 4): its token never saw it
    ["--s-ref", "0.5"],
    ["--s-audio", "nan"],
    ["--s-audio", "3", "--evidence", " "],
    [],                         # nothing to set
])
def test_a_refused_request_leaves_the_student_as_it_was(student, args, capsys):
    before = (student / "student.json").read_bytes()
    argv = [str(student)] + args + ([] if "--evidence" in args else ["--evidence", "e"])
    assert set_guidance.main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert (student / "student.json").read_bytes() == before
    assert sorted(p.name for p in student.iterdir()) == ["autoencoder.json", "autoencoder.safetensors", "student.json", "student.safetensors"]


def test_naive_students_and_teachers_are_refused(tmp_path, tiny_checkpoint, capsys):
    naive = tmp_path / "naive"
    cfg = StudentConfig(model=preset("tiny", **TINY), steps=6, tokens=False)
    save_checkpoint(naive / "student", STUDENT_KIND, cfg, StudentDiT(cfg).state_dict())
    assert set_guidance.main([str(naive), "--s-audio", "3", "--evidence", "e"]) == 2
    assert "naive student" in capsys.readouterr().err
    assert set_guidance.main([str(tiny_checkpoint), "--s-audio", "3", "--evidence", "e"]) == 2  # a teacher folder
    assert "student" in capsys.readouterr().err


def test_the_bundled_students_defaults_are_the_last_recorded_change_inside_its_range():
    doc = json.loads((bundled_checkpoint("student") / "student.json").read_text())
    cfg, history = doc["config"], doc["meta"].get("guidance_defaults", [])
    last = history[-1]["to"] if history else {"s_ref": StudentConfig.s_ref, "s_audio": StudentConfig.s_audio}
    assert {"s_ref": cfg["s_ref"], "s_audio": cfg["s_audio"]} == last  # no default changed off the record
    assert all(h["evidence"] and h["command"].startswith("python -m distill.set_guidance") for h in history)
    assert cfg["s_audio_range"][0] <= cfg["s_audio"] <= cfg["s_audio_range"][1]
    assert cfg["s_ref_range"][0] <= cfg["s_ref"] <= cfg["s_ref_range"][1]
    assert torch.isfinite(torch.tensor([cfg["s_ref"], cfg["s_audio"]])).all()


def test_a_header_without_meta_gets_one_and_keeps_its_file_mode(tmp_path, tiny_student):
    folder = tmp_path / "s"
    shutil.copytree(tiny_student, folder)
    header = folder / "student.json"
    doc = json.loads(header.read_text())
    doc.pop("meta", None)
    header.write_text(json.dumps(doc))
    header.chmod(0o600)
    assert set_guidance.main([str(folder), "--s-audio", "3", "--evidence", "e"]) == 0
    assert json.loads(header.read_text())["meta"]["guidance_defaults"][-1]["to"]["s_audio"] == 3.0
    assert header.stat().st_mode & 0o777 == 0o600
