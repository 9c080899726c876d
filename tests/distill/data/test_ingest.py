"""Real videos come in at 25 fps, 16 kHz, square 128x128; bad files are reported and skipped."""
import json

import numpy as np

from distill.data.manifest import read_manifest
from distill.data.ingest import IngestConfig, ingest_folder, square_resize
from distill.data.video_io import read_mp4, read_wav, write_mp4


def _video(path, t, h, w, fps, rate):
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[:, :, : w // 2] = 200  # left half bright: checks the centre crop keeps the middle
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(t / fps * rate)) / rate)).astype(np.float32)
    write_mp4(path, frames, audio, fps=fps, sample_rate=rate)


def test_ingest_normalises_rate_size_and_audio(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _video(src / "talk one.mp4", 60, 240, 320, 30, 44100)  # 2 s at 30 fps, 4:3, 44.1 kHz audio
    (src / "broken.mp4").write_bytes(b"\x00" * 1000)
    write_mp4(src / "mute.mp4", np.zeros((40, 64, 64, 3), np.uint8), None)
    out = tmp_path / "out"
    rows, errors = ingest_folder(src, out, IngestConfig(tier="moderate"))
    assert len(rows) == 1 and len(errors) == 2
    assert any("no audio" in e for e in errors)
    row = read_manifest(out)[0]
    assert row["tier"] == "moderate" and row["id"] == "real-talk_one"
    clip = read_mp4(out / f"{row['id']}.mp4")
    assert clip.frames.shape[1:] == (128, 128, 3) and abs(len(clip.frames) - 50) <= 1
    wav, rate = read_wav(out / f"{row['id']}.wav")
    assert rate == 16000 and len(wav) == len(clip.frames) * 640
    peak = np.argmax(np.abs(np.fft.rfft(wav))) * 16000 / len(wav)
    assert abs(peak - 440) < 5
    meta = json.loads((out / f"{row['id']}.json").read_text())
    assert "params" not in meta and meta["split"] == "ingest"


def test_square_resize_centre_crops():
    frames = np.zeros((2, 100, 300, 3), np.uint8)
    frames[:, :, 100:200] = 255  # only the centre square is white
    out = square_resize(frames, 32)
    assert out.shape == (2, 32, 32, 3) and out.min() > 250


def test_same_names_in_different_folders_stay_distinct(tmp_path):
    src = tmp_path / "src"
    for sub in ("a", "b"):
        (src / sub).mkdir(parents=True)
        _video(src / sub / "talk.mp4", 30, 64, 64, 25, 16000)
    rows, errors = ingest_folder(src, tmp_path / "out")
    assert not errors and sorted(r["id"] for r in rows) == ["real-a_talk", "real-b_talk"]
