"""compare_seeds: two methods with several training runs each, compared beyond one run's luck."""
import numpy as np

from distill import compare_seeds
from tests.distill.test_compare_evals import fake_run


def runs(tmp_path, name, per_run_clip_sync_c):
    return [fake_run(tmp_path / f"{name}{i}", float(np.mean(c)), 0.8, 2, clip_sync_c=c) for i, c in enumerate(per_run_clip_sync_c)]


def side(label, dirs):
    return ["--side", f"{label}=" + ",".join(str(d) for d in dirs)]


def test_a_gap_every_run_and_clip_shows_is_significant_on_every_count(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.5, 20)  # the clips differ a lot; the methods by 0.05 on each, the runs by little
    ours = runs(tmp_path, "ours", [base + 0.05 + rng.normal(0, 0.005, 20) for _ in range(3)])
    naive = runs(tmp_path, "naive", [base + rng.normal(0, 0.005, 20) for _ in range(3)])
    assert compare_seeds.main(side("ours", ours) + side("naive", naive) + ["--out", str(tmp_path / "cmp")]) == 0
    rows = {r["metric"]: r for r in compare_seeds.compare({"ours": [compare_seeds.load_run(d) for d in ours],
                                                           "naive": [compare_seeds.load_run(d) for d in naive]})}
    r = rows["Sync-C"]
    assert abs(r["diff"] - 0.05) < 0.01 and r["clips_higher"] == 20 and r["p"] < 0.001
    assert r["pairings_higher"] == 9 and r["pairings"] == 9 and r["ci"][0] > 0 and r["boot_le_0"] == 0.0
    assert rows["identity"]["diff"] == 0.0  # equal on every clip: no gap
    text = (tmp_path / "cmp.md").read_text()
    assert "| test | Sync-C | 20 |" in text and "| 20/20 |" in text and "| 9/9 |" in text
    assert (tmp_path / "cmp.png").stat().st_size > 0


def test_a_gap_one_lucky_run_makes_is_not_significant_across_runs(tmp_path):
    """One run of the first method far ahead, the others level: clip by clip on the seed average it looks real,
    across runs it does not, and the two-level interval says so."""
    base = np.linspace(0.2, 0.5, 20)
    ours = runs(tmp_path, "ours", [base + 0.09, base - 0.005, base - 0.01])
    naive = runs(tmp_path, "naive", [base, base + 0.005, base - 0.005])
    r = next(r for r in compare_seeds.compare({"ours": [compare_seeds.load_run(d) for d in ours],
                                               "naive": [compare_seeds.load_run(d) for d in naive]}) if r["metric"] == "Sync-C")
    assert r["p"] < 0.001  # the clip-level test alone would call it
    assert r["pairings_higher"] == 3  # only the lucky run beats the other side's runs
    assert r["ci"][0] < 0 < r["ci"][1] and r["boot_le_0"] > 0.05


def test_bad_arguments_give_a_clear_error(tmp_path, capsys):
    one = runs(tmp_path, "a", [np.full(4, 0.3)])
    assert compare_seeds.main(["--side", "no label", "--side", f"b={one[0]}", "--out", str(tmp_path / "x")]) == 2
    assert "LABEL=DIR" in capsys.readouterr().err
    assert compare_seeds.main(side("a", one) + ["--out", str(tmp_path / "x")]) == 2
    assert "exactly two --side" in capsys.readouterr().err
    assert compare_seeds.main(side("a", one) + side("b", [tmp_path / "missing"]) + ["--out", str(tmp_path / "x")]) == 2
    assert "compare_seeds:" in capsys.readouterr().err


def test_by_identity_pairs_faces_not_clips(tmp_path, capsys):
    """Twenty clips of four faces, the first method far ahead on every clip of one face and level on the rest: over
    clips that looks like a finding, over faces (four units) it cannot be one, and --by-identity says so."""
    import json

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "manifest.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "identity_id": f"face{i // 5}"}) + "\n" for i in range(20)))
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.5, 20)
    lucky = np.where(np.arange(20) < 5, 0.1, 0.0)  # face0's five clips
    ours = runs(tmp_path, "ours", [base + lucky + rng.normal(0, 0.002, 20) for _ in range(3)])
    naive = runs(tmp_path, "naive", [base + rng.normal(0, 0.002, 20) for _ in range(3)])
    for d in ours + naive:  # teacher_eval records each split's corpus folder
        doc = json.loads((d / "teacher_eval.json").read_text())
        doc["splits"][0]["data"] = str(corpus)
        (d / "teacher_eval.json").write_text(json.dumps(doc))
    loaded = {"ours": [compare_seeds.load_run(d) for d in ours], "naive": [compare_seeds.load_run(d) for d in naive]}
    per_clip = next(r for r in compare_seeds.compare(loaded) if r["metric"] == "Sync-C")
    faces = compare_seeds.clip_identities(ours[0])
    assert faces["test"]["c7"] == "face1"
    per_face = next(r for r in compare_seeds.compare(loaded, identities=faces) if r["metric"] == "Sync-C")
    assert per_clip["clips"] == 20 and per_clip["p"] < 0.05
    assert per_face["clips"] == 4 and per_face["unit"] == "identities" and per_face["p"] > 0.1
    assert abs(per_face["diff"] - 0.025) < 0.005  # a face's mean counts once, whatever its clip count
    assert compare_seeds.main(side("ours", ours) + side("naive", naive) + ["--by-identity", "--out", str(tmp_path / "f")]) == 0
    text = (tmp_path / "f.md").read_text()
    assert "--by-identity" in text and "Paired unit: the identity" in text and "| test | Sync-C | 4 |" in text
    (corpus / "manifest.jsonl").unlink()
    assert compare_seeds.main(side("ours", ours) + side("naive", naive) + ["--by-identity", "--out", str(tmp_path / "g")]) == 2
    assert "manifest.jsonl" in capsys.readouterr().err
