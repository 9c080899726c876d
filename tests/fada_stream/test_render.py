"""render: window layout covers any length; references of any size; bad files give clear errors; mp4 length."""
import wave

import numpy as np
import pytest
import torch
from PIL import Image

from fada_stream import render
from fada_stream.checkpoint import save_checkpoint
from fada_stream.model import TEACHER_KIND, build_teacher, preset
from fada_stream.model.autoencoder import AUTOENCODER_KIND, Autoencoder


@pytest.mark.parametrize("n", [1, 15, 16, 17, 28, 29, 100])
def test_windows_cover_every_frame_once(n):
    w = render.Windows(frames=16, motion=4)
    starts = w.starts(n)
    new = set(range(16))
    for s in starts[1:]:
        assert set(range(s, s + 4)) <= new  # motion frames were generated already
        new |= set(range(s + 4, s + 16))
    assert set(range(n)) <= new


def test_reference_any_size_is_cropped_and_resized(tmp_path):
    Image.fromarray(np.zeros((300, 500, 3), np.uint8)).save(tmp_path / "wide.jpg")
    Image.fromarray(np.zeros((40, 30), np.uint8)).save(tmp_path / "small.png")
    assert render.load_reference(tmp_path / "wide.jpg", 128).shape == (128, 128, 3)
    assert render.load_reference(tmp_path / "small.png", 128).shape == (128, 128, 3)


def test_bad_reference_is_a_clear_error(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(render.ReferenceError, match="not a readable image"):
        render.load_reference(tmp_path / "junk.png", 128)
    with pytest.raises(render.ReferenceError, match="not found"):
        render.load_reference(tmp_path / "missing.png", 128)


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


def test_same_seed_same_latents():
    cfg = preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2)
    torch.manual_seed(0)
    model = build_teacher(cfg).eval()
    mel = torch.randn(80, 200)
    ref = torch.randn(4, 16, 16)
    s = render.TeacherSampling(steps=2)
    a = render.render_latents(model, cfg, ref, mel, 10, s, torch.Generator().manual_seed(3))
    b = render.render_latents(model, cfg, ref, mel, 10, s, torch.Generator().manual_seed(3))
    assert a.shape == (10, 4, 16, 16) and torch.equal(a, b)
