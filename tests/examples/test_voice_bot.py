"""examples/voice_bot.py runs: espeak-ng replies, lip-synced by the bundled avatar, end up in an mp4 whose video
is as long as the speech it carries."""
import importlib.util
import shutil
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "voice_bot.py"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the example speaks with espeak-ng")
def test_voice_bot_example(tmp_path, capsys):
    av = pytest.importorskip("av")
    spec = importlib.util.spec_from_file_location("voice_bot", EXAMPLE)
    bot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bot)
    assert bot.main(["hi", "--out", str(tmp_path / "bot.mp4")]) == 0
    out = capsys.readouterr().out
    assert "bot: 'You said: hi." in out
    with av.open(str(tmp_path / "bot.mp4")) as box:
        frames = sum(1 for _ in box.decode(video=0))
        seconds = float(box.streams.audio[0].duration * box.streams.audio[0].time_base)
    assert frames > 25 and abs(frames / 25 - seconds) < 0.1  # video as long as the reply's audio
