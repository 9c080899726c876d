"""Clip files: mp4 round trips keep frames and audio aligned; writes are atomic; bad files fail clearly."""
import hashlib

import numpy as np
import pytest

from distill.data.video_io import ClipReadError, read_mp4, read_wav, write_mp4, write_wav


def _frames(t=50, size=64):
    f = np.zeros((t, size, size, 3), np.uint8)
    for i in range(t):
        f[i, :, :, 0] = 4 * i
        f[i, 20:30, i % (size - 10) : i % (size - 10) + 10, 1] = 255
    return f


def test_mp4_round_trip_keeps_frames_and_audio_timing(tmp_path):
    frames = _frames()
    audio = np.zeros(16000 * 2, np.float32)
    audio[16000:16160] = 0.8  # a click at exactly 1.0 s = frame 25
    write_mp4(tmp_path / "a.mp4", frames, audio, fps=25)
    clip = read_mp4(tmp_path / "a.mp4")
    assert clip.frames.shape == frames.shape and clip.fps == 25
    assert np.abs(clip.frames.astype(int) - frames).mean() < 3.0
    onset = np.argmax(np.abs(clip.audio) > 0.3) / 16000
    assert abs(onset - 1.0) < 0.005  # AAC priming is removed: audio starts at video time 0


def test_same_input_gives_identical_bytes(tmp_path):
    frames, audio = _frames(), np.zeros(32000, np.float32)
    write_mp4(tmp_path / "a.mp4", frames, audio)
    write_mp4(tmp_path / "b.mp4", frames, audio)
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.mp4", "b.mp4")]
    assert digest[0] == digest[1]


def test_wav_round_trip(tmp_path):
    audio = (0.5 * np.sin(np.arange(8000) / 10)).astype(np.float32)
    write_wav(tmp_path / "a.wav", audio)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and np.abs(back - audio).max() < 1e-4


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(Exception):
        write_mp4(tmp_path / "bad.mp4", np.zeros((3, 63, 64, 3), np.uint8), None)  # odd height: yuv420p refuses
    assert list(tmp_path.iterdir()) == []


def test_unreadable_and_silent_videos_are_clear_errors(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(ClipReadError):
        read_mp4(tmp_path / "junk.mp4")
    write_mp4(tmp_path / "mute.mp4", _frames(10), None)
    with pytest.raises(ClipReadError, match="no audio"):
        read_mp4(tmp_path / "mute.mp4")
    assert len(read_mp4(tmp_path / "mute.mp4", require_audio=False).frames) == 10


def test_resampling_to_a_fixed_rate(tmp_path):
    write_mp4(tmp_path / "a.mp4", _frames(50), np.zeros(32000, np.float32), fps=50)
    clip = read_mp4(tmp_path / "a.mp4", fps=25)
    assert clip.fps == 25 and abs(len(clip.frames) - 25) <= 1
