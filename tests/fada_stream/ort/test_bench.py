"""python -m fada_stream.ort.bench: both backends timed on the same windows, in one run."""
import json

import pytest

pytest.importorskip("onnxscript")

from fada_stream.ort import bench  # noqa: E402


def test_bench_times_both_backends(tiny_checkpoint, capsys):
    assert bench.main(["--checkpoint", str(tiny_checkpoint), "--windows", "2", "--block", "1", "--steps", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for backend in ("torch_ms", "onnx_ms"):
        assert set(result[backend]) == {"audio_encoder", "denoiser", "decoder", "window"}
        assert all(v > 0 for v in result[backend].values())
    assert result["windows"] == 2 and result["steps"] == 2 and result["passes"] == 1


def test_bench_reports_a_bad_checkpoint(tmp_path, capsys):
    assert bench.main(["--checkpoint", str(tmp_path), "--windows", "1", "--block", "1"]) == 2
    assert "error:" in capsys.readouterr().err


def test_bench_times_a_second_folder_in_the_same_rotation(tiny_student, reference_aware_student, tiny_checkpoint, capsys):
    """--against: another decoder beside the bundled one, both backends each, one run."""
    args = ["--checkpoint", str(tiny_student), "--against", str(reference_aware_student), "--windows", "2", "--block", "1", "--json"]
    assert bench.main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["against"]["checkpoint"] == str(reference_aware_student)
    for backend in ("torch_ms", "onnx_ms"):
        assert all(v > 0 for v in result["against"][backend].values())
    # a teacher is not a student's comparator: another sampler, another window
    assert bench.main(["--checkpoint", str(tiny_student), "--against", str(tiny_checkpoint), "--windows", "1", "--block", "1"]) == 2
    assert "another window shape" in capsys.readouterr().err
