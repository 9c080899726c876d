"""distill.soup: students of one recipe average into one servable student; anything else is refused."""
import json
import shutil

import numpy as np
import pytest
import torch

from distill import soup
from fada_stream.checkpoint import CheckpointError, save_checkpoint
from fada_stream.generator import StudentModel, load_window_model
from fada_stream.model import STUDENT_KIND, StudentDiT, load_student, preset
from fada_stream.model.config import StudentConfig
from fada_stream.stream import StreamConfig, render_offline
from tests.distill.conftest import TINY


def student_folder(path, ae_stem, seed, teacher="t" * 64, width=32, step=10):
    """A servable student folder whose weights are drawn from `seed` (what training runs of several seeds leave)."""
    torch.manual_seed(seed)
    cfg = StudentConfig(model=preset("tiny", **{**TINY, "width": width}))
    model = StudentDiT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    path.mkdir(parents=True)
    save_checkpoint(path / "student", STUDENT_KIND, cfg, model.state_dict(),
                    meta={"command": f"seed {seed}", "teacher_sha256": teacher, "step": step}, dtype=torch.float16)
    for ext in (".json", ".safetensors"):
        shutil.copyfile(ae_stem.with_suffix(ext), path / f"autoencoder{ext}")
    return path


def test_the_soup_is_the_mean_of_its_students_and_serves(ae_ckpt, tmp_path):
    runs = [student_folder(tmp_path / f"s{i}", ae_ckpt, seed=i, step=10 + i) for i in range(3)]
    assert soup.main([str(r) for r in runs] + ["--out", str(tmp_path / "soup")]) == 0

    states = [load_student(r)[0].state_dict() for r in runs]
    mixed = load_student(tmp_path / "soup")[0].state_dict()
    for k, v in mixed.items():  # stored as float16 like every student: equal to that precision
        torch.testing.assert_close(v, sum(s[k] for s in states) / 3, atol=1e-3, rtol=1e-2)
    meta = json.loads((tmp_path / "soup" / "student.json").read_text())["meta"]
    assert meta["command"].startswith("python -m distill.soup") and meta["step"] == 10  # the smallest step
    assert [s["folder"] for s in meta["soup"]["sources"]] == [str(r) for r in runs]
    assert meta["teacher_sha256"] == "t" * 64 and meta["distill_commands"] == ["seed 0", "seed 1", "seed 2"]

    model = load_window_model(tmp_path / "soup", "cpu")
    assert isinstance(model, StudentModel)
    frames, _ = render_offline(model, np.full((128, 128, 3), 128, np.uint8), np.zeros(4000, np.float32), 16000, StreamConfig())
    assert frames.shape == (7, 128, 128, 3)


def test_weights_tilt_the_mean():
    a, b = {"w": torch.zeros(3), "n": torch.tensor([2])}, {"w": torch.ones(3), "n": torch.tensor([2])}
    out = soup.average_states([a, b], [1.0, 3.0])
    torch.testing.assert_close(out["w"], torch.full((3,), 0.75))
    assert torch.equal(out["n"], torch.tensor([2]))  # integer buffers are kept, not averaged
    with pytest.raises(ValueError, match="non-negative"):
        soup.average_states([a, b], [1.0, -1.0])
    with pytest.raises(ValueError, match="cannot be averaged"):
        soup.average_states([a, {"w": torch.ones(3), "n": torch.tensor([3])}])


@pytest.mark.parametrize("odd, message", [
    (dict(width=64), "config differs"),
    (dict(teacher="u" * 64), "another teacher"),
    ("autoencoder", "autoencoder differs"),
])
def test_students_of_another_recipe_teacher_or_autoencoder_are_refused(ae_ckpt, tmp_path, odd, message, capsys):
    a = student_folder(tmp_path / "a", ae_ckpt, seed=0)
    b = student_folder(tmp_path / "b", ae_ckpt, seed=1, **(odd if isinstance(odd, dict) else {}))
    if odd == "autoencoder":
        from safetensors.torch import load_file, save_file
        tensors = load_file(str(b / "autoencoder.safetensors"))
        save_file({k: v + 1 if v.is_floating_point() else v for k, v in tensors.items()}, str(b / "autoencoder.safetensors"))
    with pytest.raises(CheckpointError, match=message):
        soup.make_soup([a, b], tmp_path / "soup")
    assert soup.main([str(a), str(b), "--out", str(tmp_path / "soup")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "soup").exists()  # nothing half-written


def test_one_folder_or_an_input_as_output_is_refused(ae_ckpt, tmp_path, capsys):
    a = student_folder(tmp_path / "a", ae_ckpt, seed=0)
    with pytest.raises(ValueError, match="at least two"):
        soup.make_soup([a], tmp_path / "soup")
    b = student_folder(tmp_path / "b", ae_ckpt, seed=1)
    with pytest.raises(SystemExit):
        soup.main([str(a), str(b), "--out", str(a)])
    (a / "student.safetensors").write_bytes(b"not safetensors")
    assert soup.main([str(a), str(b), "--out", str(tmp_path / "soup")]) == 2  # a damaged source: a clear error
    assert "does not match" in capsys.readouterr().err
