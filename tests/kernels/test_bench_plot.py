"""kernels.bench_plot: reads the speed-up column of each kernels.bench table (sweeps and unmeasured rows left out)
and draws them; anything that is not such a table is refused with exit code 2."""
from kernels import bench_plot

TABLE = """# Kernel benchmark: some GPU

## tiny: attention

| op | shape | sdpa-flash | triton | triton / sdpa-flash |
|---|---|---|---|---|
| attention temporal | (192, 3, 16, 16, 64) | 1 TFLOP/s (22.7 us) | 2 TFLOP/s (10.6 us) | 2.14x |
| attention audio cross | (48, 3, 64, 7, 64) | n/a (RuntimeError) | 1 TFLOP/s (9.1 us) | n/a |

## tiny: fused element-wise ops

| op | shape | torch eager | triton | triton / torch eager | triton % of copy |
|---|---|---|---|---|---|
| gated residual | (3, 1024, 192) | 316 GB/s (11.3 us) | 545 GB/s (6.5 us) | 1.73x | 13% |

## tiny: attention tile sweep

| use | shape | heuristic tile | heuristic | best tile | best | configs timed |
|---|---|---|---|---|---|---|
| temporal | (192, 3, 16, 16, 64) | 16x16 | 1 TFLOP/s (26.8 us) | 16x16 | 1.5 TFLOP/s (24.5 us) | 4 |

## base: whole denoiser, one forward

| op | shape | torch | triton | triton / torch |
|---|---|---|---|---|
| denoiser forward | base | 70.7 ms | 55.9 ms | 1.27x |
"""


def test_reads_the_speedup_column_of_each_measured_row():
    assert bench_plot.speedups(TABLE) == {"tiny": {"attention temporal": 2.14, "gated residual": 1.73}, "base": {"denoiser forward": 1.27}}


def test_draws_one_chart_of_several_tables(tmp_path):
    (tmp_path / "a.md").write_text(TABLE)
    (tmp_path / "b.md").write_text(TABLE.replace("2.14x", "0.5x"))
    out = tmp_path / "chart.png"
    assert bench_plot.main([f"before={tmp_path / 'a.md'}", f"after={tmp_path / 'b.md'}", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_refuses_what_is_not_a_bench_table(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("# notes\n\nnothing measured here\n")
    assert bench_plot.main([f"x={tmp_path / 'notes.md'}", "--out", str(tmp_path / "c.png")]) == 2
    assert bench_plot.main([f"x={tmp_path / 'missing.md'}", "--out", str(tmp_path / "c.png")]) == 2
    assert bench_plot.main([str(tmp_path / "notes.md"), "--out", str(tmp_path / "c.png")]) == 2
    assert "LABEL=FILE" in capsys.readouterr().err
