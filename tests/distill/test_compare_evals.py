"""compare_evals: teacher_eval runs side by side, each model's Sync-C and identity as a share of the first run's."""
import json

from distill import compare_evals


def fake_run(path, sync_c, identity, nfe):
    summary = {"sync_c": sync_c, "sync_d": 1.0, "abs_offset": 0.0, "mouth_corr": 0.7, "identity_sim": identity, "seam_jitter": 1.1}
    gt = {**summary, "sync_c": 0.5, "identity_sim": 0.95}
    split = {"split": "test", "ground_truth": {"summary": gt},
             "settings": [{"name": "sweep", "summary": {}}, {"name": "default", "summary": summary, "nfe_per_window": nfe, "ms_per_window": 10.0}]}
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
