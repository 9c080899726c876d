"""distill.bars: issue 3's bars over the pooled clips of several teacher_eval folders, ratios to the ground truth
taken over the same clips, an interval that says how much the faces given let a value move, and clear refusals."""
import json

import pytest

from distill import bars


def run_folder(path, split, clips, gt):
    """A teacher_eval folder in the layout teacher_eval.json has: one split, its default setting's clips and the ground truth's."""
    path.mkdir(parents=True)
    doc = {"splits": [{"split": split, "ground_truth": {"summary": {}, "clips": [{"path": f"corpus/{i}.mp4", **s} for i, s in gt.items()]},
                       "settings": [{"name": "default", "summary": {}, "nfe_per_window": 75, "ms_per_window": 1.0,
                                     "clips": [{"path": f"videos/{i}.mp4", **s} for i, s in clips.items()]}]}]}
    (path / "teacher_eval.json").write_text(json.dumps(doc))
    return path


def scores(sync_c, identity=0.95, offset=0, mouth=0.8, seam=1.0):
    return {"sync_c": sync_c, "identity_sim": identity, "offset": offset, "mouth_corr": mouth, "seam_jitter": seam, "error": None}


def test_bars_pool_disjoint_faces_and_take_ratios_over_the_same_clips(tmp_path):
    gt = {f"f{i}": scores(0.5, identity=1.0) for i in range(8)}
    a = run_folder(tmp_path / "a", "openset", {f"f{i}": scores(0.45, offset=-1) for i in range(4)}, gt)  # faces 0-3
    b = run_folder(tmp_path / "b", "openset", {f"f{i}": scores(0.35, offset=2) for i in range(4, 8)}, gt)  # faces 4-7
    only_a = {r["bar"]: r for r in bars.evaluate([a])["openset"]}
    assert only_a["Sync-C / ground truth"]["value"] == pytest.approx(0.9) and only_a["Sync-C / ground truth"]["passes"]
    both = {r["bar"]: r for r in bars.evaluate([a, b])["openset"]}
    sync = both["Sync-C / ground truth"]
    assert sync["clips"] == 8 and sync["value"] == pytest.approx(0.8) and sync["passes"]  # (0.45 + 0.35) / 2 / 0.5: at the bar
    assert sync["low"] < 0.8 < sync["high"] and 0.2 < sync["fail_share"] < 0.8  # the faces differ: a draw can land either side
    assert both["abs offset (frames)"]["value"] == pytest.approx(1.5) and not both["abs offset (frames)"]["passes"]  # |-1|, |2|
    assert both["identity / ground truth"]["value"] == pytest.approx(0.95) and both["identity / ground truth"]["fail_share"] == 0
    md = bars.markdown(bars.evaluate([a, b]))
    assert "| openset | abs offset (frames) (<= 1) | 8 | 1.500 |" in md and "FAILS" in md


def test_a_clip_without_ground_truth_is_left_out_of_a_ratio_and_bad_folders_are_refused(tmp_path, capsys):
    gt = {"f0": scores(0.5)}
    a = run_folder(tmp_path / "a", "test", {"f0": scores(0.4), "f1": scores(0.1)}, gt)
    sync = {r["bar"]: r for r in bars.evaluate([a])["test"]}["Sync-C / ground truth"]
    assert sync["clips"] == 1 and sync["value"] == pytest.approx(0.8)
    assert bars.main([str(tmp_path / "missing")]) == 2 and "not a teacher_eval output" in capsys.readouterr().err
    assert bars.main([str(a), "--setting", "s_audio=4"]) == 2  # a setting the sweep did not render
    assert bars.main([str(a), "--json"]) == 0 and json.loads(capsys.readouterr().out)["splits"]["test"][0]["clips"] == 1
