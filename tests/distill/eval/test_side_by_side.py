"""side_by_side: labelled panels of the same clip in one mp4, as long as the shortest, with the first one's audio."""
import numpy as np
import pytest

from distill.eval import side_by_side
from fada_stream.video import write_mp4


def test_compose_puts_captioned_panels_side_by_side():
    a, b = np.zeros((10, 128, 128, 3), np.uint8), np.full((8, 128, 128, 3), 200, np.uint8)
    grid = side_by_side.compose([("teacher", a), ("ours", b)])
    assert grid.shape == (8, side_by_side.LABEL_H + 128, 256, 3)
    assert (grid[:, side_by_side.LABEL_H:, 128:] == 200).all() and (grid[:, side_by_side.LABEL_H:, :128] == 0).all()
    assert grid[0, : side_by_side.LABEL_H, :128].max() > 200  # the caption is drawn (anti-aliased white)


def test_cli_writes_the_video_and_refuses_bad_specs(tmp_path, capsys):
    av = pytest.importorskip("av")
    t = np.arange(16000, dtype=np.float32) / 16000
    for name, n in (("a", 25), ("b", 20)):
        write_mp4(tmp_path / f"{name}.mp4", np.full((n, 128, 128, 3), 90, np.uint8), 0.2 * np.sin(2 * np.pi * 220 * t))
    out = tmp_path / "sbs.mp4"
    assert side_by_side.main([f"first={tmp_path / 'a.mp4'}", f"second={tmp_path / 'b.mp4'}", "--out", str(out)]) == 0
    with av.open(str(out)) as box:
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    assert len(frames) == 20 and frames[0].shape == (side_by_side.LABEL_H + 128, 256, 3)
    assert side_by_side.main([str(tmp_path / "a.mp4"), "--out", str(out)]) == 2  # no label
    assert side_by_side.main(["x=" + str(tmp_path / "missing.mp4"), "--out", str(out)]) == 2
    assert "missing.mp4" in capsys.readouterr().err
