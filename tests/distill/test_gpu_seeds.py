"""distill/gpu_seeds.sh, run on the CPU with a tiny teacher: every recipe and seed asked for trains, and each run's
weights come back at the last step that all of them reached."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "distill" / "gpu_seeds.sh"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")]


def seeds(teacher_dir, cache_file, moderate_cache, out, tmp_path, recipes, seeds_, *flags):
    env = {**os.environ, "DEVICE": "cpu", "BATCH": "2", "PYTHON": sys.executable, "RUNS": str(tmp_path / "runs"),
           "TEACHER": str(teacher_dir), "RECIPES": recipes, "CHECK_AFTER": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), str(cache_file), str(moderate_cache), str(out), "5", seeds_,
                           "--iters", "2", "--snapshot-every", "1", "--eval-every", "2", "--warmup", "1", *flags],
                          env=env, capture_output=True, text=True, timeout=600)


def test_both_recipes_of_a_seed_return_their_students_at_the_shared_step(teacher_dir, cache_file, moderate_cache, tmp_path):
    out = tmp_path / "out"
    r = seeds(teacher_dir, cache_file, moderate_cache, out, tmp_path, "student naive", "1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.tar")) == ["naive_s1.tar", "student_s1.tar"]
    assert "shared step: 2" in (out / "seeds.log").read_text()
    for name, k, tokens in (("student_s1", 2, True), ("naive_s1", 6, False)):
        with tarfile.open(out / f"{name}.tar") as tar:
            assert sorted(tar.getnames()) == ["log.jsonl", "student.json", "student.safetensors"]
            doc = json.load(tar.extractfile("student.json"))
        assert doc["meta"]["step"] == 2 and doc["config"]["steps"] == k and doc["config"]["tokens"] is tokens
        assert "--seed 1" in doc["meta"]["command"]


def test_one_recipe_alone_and_an_unknown_one(teacher_dir, cache_file, moderate_cache, tmp_path):
    out = tmp_path / "out"
    r = seeds(teacher_dir, cache_file, moderate_cache, out, tmp_path, "student", "1 2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.tar")) == ["student_s1.tar", "student_s2.tar"]  # no naive runs
    bad = seeds(teacher_dir, cache_file, moderate_cache, tmp_path / "bad", tmp_path, "student teacher", "3")
    assert bad.returncode == 2 and "unknown recipe teacher" in bad.stdout
    assert not (tmp_path / "runs" / "student_s3").exists()  # refused before any run started