"""README's main job: `python -m distill.eval baseline` synthesises clips, damages copies and scores them all."""
import json

from distill.eval.__main__ import main


def test_baseline_command_end_to_end(tmp_path):
    out = tmp_path / "demo"
    assert main(["baseline", "--clips", "2", "--out", str(out), "--threads", "1"]) == 0
    rows = {(r["split"], r["variant"]): r for r in json.loads((out / "baseline.json").read_text())}
    assert {s for s, _ in rows} == {"test", "openset"}
    gt, shifted = rows[("test", "gt_high")], rows[("test", "shifted_audio")]
    assert gt["n"] == 2  # the default seed draws two clean test clips
    assert shifted["offset"] == -5 and abs(gt["offset"]) <= 1
    assert rows[("test", "still_image")]["sync_c"] < gt["sync_c"]
    assert rows[("test", "swapped_audio")]["sync_c"] < gt["sync_c"]
    assert "| split | variant |" in (out / "baseline.md").read_text()
    assert (out / "baseline.png").stat().st_size > 0
