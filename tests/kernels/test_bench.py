"""kernels.bench: refuses to run without CUDA, and (walked on CPU tensors in Triton's interpreter, with a wall-clock
timer standing in for do_bench) writes every section of its table, so the one run a lent GPU allows cannot die of a
typo half-way. It asserts what the document holds, never a speed."""
import dataclasses
import time

import pytest
import torch

from fada_stream.model import config as model_config
from kernels import bench


def test_without_cuda_it_says_why_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--out", "unused.md"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU, run python -m kernels.bench itself")
def test_every_section_is_written_on_cpu_in_the_interpreter(monkeypatch, tmp_path):
    def wall_ms(fn, rep=200):
        t0 = time.perf_counter()
        fn()
        return 1e3 * (time.perf_counter() - t0)

    def small():  # the tiny preset shrunk: the interpreter runs a kernel program by program, in Python
        cfg = model_config.PRESETS["tiny"]()
        cfg.dit = dataclasses.replace(cfg.dit, latent_size=8, width=32, depth=1, heads=2, frames=5, motion_frames=2)
        return cfg

    monkeypatch.setitem(model_config.PRESETS, "small", small)

    monkeypatch.setattr(bench, "DEVICE", "cpu")
    monkeypatch.setattr(bench, "time_ms", wall_ms)
    monkeypatch.setattr(bench, "copy_bandwidth", lambda: 10.0)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # inductor's C++ build would cost minutes on CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "CPU (interpreter)")
    out = tmp_path / "bench.md"
    assert bench.main(["--presets", "small", "--batch", "1", "--dtype", "fp16", "--sweep", "--sweep-minutes", "0.02", "--out", str(out)]) == 0
    doc = out.read_text()
    assert doc.startswith("# Kernel benchmark: CPU (interpreter)")
    for title in ("small: attention", "small: fused element-wise ops", "small: whole denoiser, one forward", "small: attention tile sweep",
                  "small: row-kernel tile sweep"):
        assert f"## {title}" in doc
    rows = [line for line in doc.splitlines() if line.startswith("| attention") or line.startswith("| denoiser")]
    assert len(rows) == 4  # three attention uses and the denoiser, each with a number in every column
    assert not any("n/a" in row for row in rows), rows
    sweep_rows = doc.split("## small: attention tile sweep")[1].splitlines()[4:]
    assert any(row.startswith("| spatial + reference |") for row in sweep_rows)
    assert "| modulated LayerNorm | (1, 80, 32) |" in doc.split("## small: row-kernel tile sweep")[1]
