"""python -m distill.export: writes a checked export of a checkpoint and prints its parity with torch."""
import pytest

pytest.importorskip("onnxscript")

from distill import export  # noqa: E402
from fada_stream.ort.export import read_manifest  # noqa: E402


def test_export_cli_writes_and_checks_parity(tiny_checkpoint, tmp_path, capsys):
    assert export.main(["--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "onnx")]) == 0
    out = capsys.readouterr().out
    assert "onnx.checker passed" in out and "window_uint8" in out
    assert read_manifest(tmp_path / "onnx")["kind"] == "teacher"


def test_export_cli_errors_clearly(tmp_path, capsys):
    assert export.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "onnx")]) == 2
    assert "neither student.json nor teacher.json" in capsys.readouterr().err
