"""distill/make_teacher.sh, every stage at a thousandth of its recorded budget on a fake corpus: the one command that
remakes the bundled teacher leaves a folder the renderer serves, its teacher from the second stage and its decoder
from the last of the four fine-tunes, each recording the command that made it."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "distill" / "make_teacher.sh"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")]


def test_one_command_remakes_the_bundled_teacher_chain(corpus, tmp_path):
    out, run = tmp_path / "out", tmp_path / "run"
    env = {**os.environ, "DEVICE": "cpu", "PYTHON": sys.executable, "CORPUS": str(corpus), "RUN": str(run), "SCALE": "0.001",
           "AE_BATCH": "4", "TEACHER_BATCH": "2", "DECODER_BATCH": "2", "OMP_NUM_THREADS": "1",
           "TEACHER_ARGS": "--width 32 --depth 1 --heads 2 --frames 6 --motion-frames 2"}
    r = subprocess.run(["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["autoencoder.json", "autoencoder.safetensors", "teacher.json", "teacher.safetensors"]
    teacher = json.loads((out / "teacher.json").read_text())["meta"]
    assert teacher["train_config"]["init"] == str(run / "first") and teacher["train_config"]["restyle"] == 0.5  # the second stage
    ae = json.loads((out / "autoencoder.json").read_text())
    assert ae["meta"]["train_config"]["mouth_corrupt"] == 1.0 and ae["config"]["ref_channels"]  # faint mouths, reference-aware
    chain, m = [], ae["meta"]
    while m:
        chain.append(m["command"])
        m = (m.get("init") or {}).get("meta")
    assert len(chain) == 5 and "--mouth-weight 2" in chain[1] and "--ref-channels" in chain[2] and "--train decoder" in chain[3]

    step = teacher["step"]
    again = subprocess.run(["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert json.loads((out / "teacher.json").read_text())["meta"]["step"] == step  # a finished stage is not trained again

    from fada_stream.generator import load_window_model

    model = load_window_model(out, "cpu", backend="torch")  # what render --checkpoint OUT serves
    assert model.name == "teacher" and model.codec.reference_aware
