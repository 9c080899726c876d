"""The adapter examples: the pipecat one runs offline (espeak-ng -> FadaVideoService -> mp4); the LiveKit one needs
a LiveKit server to run, so here it must at least import against the installed livekit-agents."""
import importlib.util
import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the example speaks with espeak-ng")
def test_pipecat_example_writes_the_avatar_video(tmp_path, capsys):
    pytest.importorskip("pipecat.frames.frames")
    av = pytest.importorskip("av")
    example = load("pipecat_avatar")
    assert example.main(["hello from pipecat", "--out", str(tmp_path / "p.mp4")]) == 0
    assert "wrote" in capsys.readouterr().out
    with av.open(str(tmp_path / "p.mp4")) as box:
        frames = sum(1 for _ in box.decode(video=0))
        seconds = float(box.streams.audio[0].duration * box.streams.audio[0].time_base)
    assert frames > 25 and abs(frames / 25 - seconds) < 0.1


def test_livekit_example_imports():
    pytest.importorskip("livekit.agents")
    example = load("livekit_avatar")
    assert callable(example.entrypoint)
