"""render: an mp4 as long as the audio, with it; bad files give clear errors; the bundled face is the default."""
import json
import shutil
import wave

import numpy as np
import pytest
from PIL import Image

from fada_stream import render
from fada_stream.generator import Guidance
from fada_stream.checkpoint import save_checkpoint
from fada_stream.generator import load_window_model
from fada_stream.model import TEACHER_KIND, build_teacher, preset
from fada_stream.model.autoencoder import AUTOENCODER_KIND, Autoencoder


def test_render_cli_writes_mp4_as_long_as_the_audio(tmp_path):
    av = pytest.importorskip("av")
    cfg = preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2)
    save_checkpoint(tmp_path / "ckpt" / "autoencoder", AUTOENCODER_KIND, cfg.ae, Autoencoder(cfg.ae).state_dict())
    save_checkpoint(tmp_path / "ckpt" / "teacher", TEACHER_KIND, cfg, build_teacher(cfg).state_dict())
    pcm = (0.3 * np.sin(np.arange(int(22050 * 0.9)) / 5) * 32767).astype("<i2")  # 0.9 s at 22.05 kHz
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050), w.writeframes(pcm.tobytes())
    Image.fromarray(np.full((64, 80, 3), 200, np.uint8)).save(tmp_path / "ref.png")
    out = tmp_path / "out.mp4"
    args = ["--audio", str(tmp_path / "a.wav"), "--reference", str(tmp_path / "ref.png"), "--out", str(out),
            "--checkpoint", str(tmp_path / "ckpt"), "--steps", "2"]
    assert render.main(args) == 0
    with av.open(str(out)) as box:
        n_video = sum(1 for _ in box.decode(video=0))
    assert n_video == 23  # ceil(0.9 s * 25 fps)
    assert render.main(args[:2] + ["--reference", str(tmp_path / "a.wav")] + args[4:]) == 2  # a wav as the face
    assert render.main(["--audio", str(tmp_path / "ref.png")] + args[2:]) == 2  # an image as the speech
    assert render.main(args + ["--s-audio-early", "5", "--early-from", "0.6"]) == 0  # an audio guidance interval
    assert render.main(args + ["--s-audio-early", "9"]) == 2 and render.main(args + ["--s-audio-early", "5", "--early-from", "0"]) == 2


def test_render_without_reference_uses_the_bundled_face(tmp_path):
    pytest.importorskip("av")
    pcm = (0.3 * np.sin(np.arange(8000) / 5) * 32767).astype("<i2")  # 0.5 s at 16 kHz
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(pcm.tobytes())
    assert render.main(["--audio", str(tmp_path / "a.wav"), "--out", str(tmp_path / "o.mp4"), "--steps", "1"]) == 0
    assert (tmp_path / "o.mp4").stat().st_size > 0


def test_render_on_the_onnx_backend(tiny_checkpoint, tmp_path):
    av = pytest.importorskip("av")
    pytest.importorskip("onnxscript")
    pcm = (0.3 * np.sin(np.arange(8000) / 5) * 32767).astype("<i2")  # 0.5 s at 16 kHz
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(pcm.tobytes())
    out = tmp_path / "o.mp4"
    assert render.main(["--audio", str(tmp_path / "a.wav"), "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--steps", "1",
                        "--backend", "onnx"]) == 0
    with av.open(str(out)) as box:
        assert sum(1 for _ in box.decode(video=0)) == 13  # ceil(0.5 s * 25 fps)


def test_unset_scales_render_a_token_student_at_its_own_defaults_and_anything_else_at_the_teachers(tiny_student, tiny_checkpoint, tmp_path):
    student = tmp_path / "student"
    shutil.copytree(tiny_student, student)
    doc = json.loads((student / "student.json").read_text())
    doc["config"]["s_audio"] = 3.25  # as distill.set_guidance leaves it
    (student / "student.json").write_text(json.dumps(doc))
    s = load_window_model(student, backend="torch")
    assert render.offline_guidance(s) == Guidance(1.5, 3.25)  # no interval, no mouth drop
    assert render.offline_guidance(s, 1.0, None) == Guidance(1.0, 3.25)  # a given scale wins
    with pytest.raises(ValueError, match="teacher sampler setting"):
        render.offline_guidance(s, mouth_drop_from=0.5)
    teacher = load_window_model(tiny_checkpoint, backend="torch")
    assert teacher.default_guidance.s_audio == 1.0  # live: one pass
    # Offline: full guidance, with the audio interval and the mouth dropped at high noise (sampling.TEACHER_RENDER)
    assert render.offline_guidance(teacher) == Guidance(1.5, 2.5, s_audio_early=6.0, early_from=0.5, mouth_drop_from=0.5)
    assert render.offline_guidance(teacher, None, 4.0).s_audio == 4.0
    plain = render.offline_guidance(teacher, s_audio_early=render.OFF, mouth_drop_from=render.OFF)
    assert plain == Guidance(1.5, 2.5) and teacher.passes(plain) == teacher.passes(render.offline_guidance(teacher)) == 3


def test_the_renderers_teacher_sampler_is_on_by_default_and_each_part_can_be_switched_off(tiny_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("av")
    pcm = (0.3 * np.sin(np.arange(8000) / 5) * 32767).astype("<i2")  # 0.5 s at 16 kHz
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(pcm.tobytes())
    base = ["--audio", str(tmp_path / "a.wav"), "--checkpoint", str(tiny_checkpoint), "--steps", "2", "--backend", "torch"]
    seen = []
    real = render.render_offline

    def spy(model, reference, audio, rate, cfg, progress=None):
        seen.append(cfg)
        return real(model, reference, audio, rate, cfg, progress)

    monkeypatch.setattr(render, "render_offline", spy)

    def sampled(*extra: str) -> tuple:
        assert render.main(base + ["--out", str(tmp_path / "o.mp4"), *extra]) == 0
        c = seen[-1]
        return c.s_ref, c.s_audio, c.s_audio_early, c.early_from, c.mouth_drop_from

    assert sampled() == (1.5, 2.5, 6.0, 0.5, 0.5)  # sampling.TEACHER_RENDER
    assert sampled("--s-audio-early", "off", "--mouth-drop-from", "none") == (1.5, 2.5, None, 0.5, None)  # the plain formula
    assert sampled("--mouth-drop-from", "0", "--early-from", "0.7") == (1.5, 2.5, 6.0, 0.7, 0.0)
    n = len(seen)
    for bad in (["--mouth-drop-from", "1"], ["--mouth-drop-from", "nan"], ["--early-from", "0"]):
        assert render.main(base + ["--out", str(tmp_path / "bad.mp4"), *bad]) == 2
    with pytest.raises(SystemExit):
        render.main(base + ["--out", str(tmp_path / "bad.mp4"), "--mouth-drop-from", "soon"])  # argparse: not a number
    assert len(seen) == n and not (tmp_path / "bad.mp4").exists()  # refused before rendering
