"""compare_evals: teacher_eval runs side by side, each model's Sync-C and identity as a share of the first run's."""
import json

import numpy as np
import pytest

from distill import compare_evals


def fake_run(path, sync_c, identity, nfe, clip_sync_c=(), split_name="test", first_clip=0):
    summary = {"sync_c": sync_c, "sync_d": 1.0, "abs_offset": 0.0, "mouth_corr": 0.7, "identity_sim": identity, "seam_jitter": 1.1}
    gt = {**summary, "sync_c": 0.5, "identity_sim": 0.95}
    clips = [{"path": f"videos/c{i}.mp4", "sync_c": v, "mouth_corr": 0.7, "identity_sim": identity, "error": None}
             for i, v in enumerate(clip_sync_c, start=first_clip)]
    split = {"split": split_name, "ground_truth": {"summary": gt},
             "settings": [{"name": "s_audio=3.5", "summary": {**summary, "sync_c": 0.9}, "nfe_per_window": nfe, "ms_per_window": 1.0},
                          {"name": "default", "summary": summary, "nfe_per_window": nfe, "ms_per_window": 10.0, "clips": clips}]}
    path.mkdir()
    (path / "teacher_eval.json").write_text(json.dumps({"splits": [split]}))
    return path


def test_table_and_plot(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 0.40, 0.80, 75)
    b = fake_run(tmp_path / "b", 0.36, 0.84, 2)
    assert compare_evals.main([f"teacher={a}", f"student K=2={b}", "--out", str(tmp_path / "cmp")]) == 0
    text = (tmp_path / "cmp.md").read_text()
    assert "| test | student K=2 | 2 | 0.360 |" in text and "| 90 % | 105 % |" in text
    assert "| test | ground truth | - | 0.500 |" in text
    assert (tmp_path / "cmp.png").stat().st_size > 0
    assert compare_evals.main([f"x={tmp_path / 'missing'}", "--out", str(tmp_path / "c2")]) == 2
    assert "not a teacher_eval output" in capsys.readouterr().err
    # DIR@SETTING picks a row of the run's sweep (setting names hold "=" too)
    assert compare_evals.main([f"teacher={a}", f"student, s_audio 3.5={b}@s_audio=3.5", "--out", str(tmp_path / "c3")]) == 0
    assert "| test | student, s_audio 3.5 | 2 | 0.900 |" in (tmp_path / "c3.md").read_text()
    assert compare_evals.main([f"teacher={a}@s_audio=9", "--out", str(tmp_path / "c4")]) == 2
    assert "no setting 's_audio=9'" in capsys.readouterr().err


def test_a_label_given_twice_joins_the_splits_of_two_folders(tmp_path, capsys):
    test, openset = fake_run(tmp_path / "t", 0.40, 0.80, 75), fake_run(tmp_path / "o", 0.20, 0.70, 75, split_name="openset")
    other = fake_run(tmp_path / "b", 0.30, 0.75, 75, split_name="openset")
    assert compare_evals.main([f"teacher={test}", f"teacher={openset}", f"second stage={other}", "--out", str(tmp_path / "c")]) == 0
    text = (tmp_path / "c.md").read_text()
    assert "| test | teacher | 75 | 0.400 |" in text and "| openset | teacher | 75 | 0.200 |" in text
    assert "| openset | second stage | 75 | 0.300 | " in text and "| 150 % | 107 % |" in text  # shares of the joined run's openset row
    assert compare_evals.main([f"teacher={test}", f"teacher={test}", "--out", str(tmp_path / "c2")]) == 2
    assert "given twice with split 'test' in both folders, and not on disjoint clips" in capsys.readouterr().err


def test_a_label_given_twice_joins_disjoint_clips_of_one_split(tmp_path, capsys):
    """teacher_eval --skip scores the next clips: joined, the summary is the clip-weighted mean and every clip pairs."""
    ref = fake_run(tmp_path / "ref", 0.30, 0.80, 75, clip_sync_c=[0.30] * 6)
    first = fake_run(tmp_path / "first", 0.40, 0.80, 75, clip_sync_c=[0.40] * 2)
    rest = fake_run(tmp_path / "rest", 0.20, 0.80, 75, clip_sync_c=[0.20] * 4, first_clip=2)
    assert compare_evals.main([f"ref={ref}", f"run={first}", f"run={rest}", "--out", str(tmp_path / "c"), "--against", "ref"]) == 0
    text = (tmp_path / "c.md").read_text()
    assert "| test | run | 75 | 0.267 |" in text  # (2 x 0.40 + 4 x 0.20) / 6
    assert "| test | run | ref | -0.033 | 2/6 |" in text  # all six clips paired
    overlapping = fake_run(tmp_path / "again", 0.20, 0.80, 75, clip_sync_c=[0.20] * 4, first_clip=1)
    assert compare_evals.main([f"run={first}", f"run={overlapping}", "--out", str(tmp_path / "c2")]) == 2
    assert "1 shared" in capsys.readouterr().err


def test_sign_flip_p_is_exact_for_small_sets_and_two_sided():
    assert compare_evals.sign_flip_p(np.full(6, 0.01)) == pytest.approx(2 / 64)  # all 6 higher: only +-all as extreme
    assert compare_evals.sign_flip_p(np.full(6, -0.01)) == pytest.approx(2 / 64)
    assert compare_evals.sign_flip_p(np.array([0.02, -0.02, 0.01, -0.01])) == 1.0  # mean 0: every flip is as extreme
    p = compare_evals.sign_flip_p(np.full(20, 0.01), samples=10_000)  # sampled above 16 clips: never 0
    assert p == pytest.approx(1 / 10_001, rel=0.5)


def test_paired_table_compares_clip_by_clip(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 0.30, 0.80, 18, clip_sync_c=[0.30, 0.31, 0.29, 0.30])
    b = fake_run(tmp_path / "b", 0.32, 0.80, 2, clip_sync_c=[0.32, 0.33, 0.30, 0.29])  # higher on 3 of 4
    assert compare_evals.main([f"naive={a}", f"ours={b}", "--out", str(tmp_path / "cmp"), "--against", "naive"]) == 0
    text = (tmp_path / "cmp.md").read_text()
    # diffs +0.02 +0.02 +0.01 -0.01: |sum| >= 0.04 for +-(2 + 2 + 1 +- 1): 6 of the 16 sign flips
    assert "| test | ours | naive | +0.010 | 3/4 | 0.375 | +0.000 | 0/4 |" in text
    assert "| test | naive | naive |" not in text
    assert (tmp_path / "cmp_paired.png").stat().st_size > 0
    assert compare_evals.main([f"naive={a}", "--out", str(tmp_path / "c2"), "--against", "teacher"]) == 2
    assert "not one of the labels" in capsys.readouterr().err


def test_tradeoff_joins_each_models_settings_into_one_curve(tmp_path):
    assert compare_evals.curves(["naive, s_audio 2.5", "ours, s_audio 2.5", "naive, s_audio 4", "ours, s_audio 4", "teacher"]) == {
        "naive": ["naive, s_audio 2.5", "naive, s_audio 4"], "ours": ["ours, s_audio 2.5", "ours, s_audio 4"], "teacher": ["teacher"]}
    a = fake_run(tmp_path / "a", 0.30, 0.80, 18)
    b = fake_run(tmp_path / "b", 0.32, 0.82, 2)
    assert compare_evals.main([f"naive, 2.5={a}", f"naive, 3.5={a}@s_audio=3.5", f"ours, 2.5={b}", f"ours, 3.5={b}@s_audio=3.5",
                               "--out", str(tmp_path / "cmp"), "--tradeoff"]) == 0
    assert (tmp_path / "cmp_tradeoff.png").stat().st_size > 0
    assert compare_evals.main([f"naive={a}", "--out", str(tmp_path / "c2")]) == 0
    assert not (tmp_path / "c2_tradeoff.png").exists()  # only when asked


def test_common_cuts_a_long_baseline_to_the_faces_a_short_probe_scored(tmp_path, capsys):
    ref = fake_run(tmp_path / "ref", 0.25, 0.80, 75, clip_sync_c=[0.1, 0.2, 0.3, 0.3, 0.3, 0.3])
    doc = json.loads((ref / "teacher_eval.json").read_text())  # the ground truth scored clip by clip too
    doc["splits"][0]["ground_truth"]["clips"] = [{"path": f"gt/c{i}.mp4", "sync_c": 0.5 + i / 10, "offset": i} for i in range(6)]
    (ref / "teacher_eval.json").write_text(json.dumps(doc))
    probe = fake_run(tmp_path / "probe", 0.40, 0.80, 75, clip_sync_c=[0.4, 0.4])
    args = [f"ref={ref}", f"probe={probe}", "--against", "ref"]
    assert compare_evals.main(args + ["--out", str(tmp_path / "all")]) == 0
    assert "| test | ref | 75 | 0.250 |" in (tmp_path / "all.md").read_text()  # its own six faces: not the probe's two
    assert compare_evals.main(args + ["--out", str(tmp_path / "c"), "--common"]) == 0
    text = (tmp_path / "c.md").read_text()
    assert "| test | ref | 75 | 0.150 |" in text and "| test | probe | 75 | 0.400 |" in text and "| 267 % |" in text
    assert "| test | ground truth | - | 0.550 |" in text  # (0.5 + 0.6) / 2: the same two faces
    assert "| test | probe | ref | +0.250 | 2/2 |" in text
    other = fake_run(tmp_path / "other", 0.40, 0.80, 75, clip_sync_c=[0.4], first_clip=7)
    assert compare_evals.main([f"ref={ref}", f"other={other}", "--out", str(tmp_path / "c2"), "--common"]) == 2
    assert "no clip scored by every run" in capsys.readouterr().err
