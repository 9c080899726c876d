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
