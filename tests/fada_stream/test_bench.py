"""bench: one JSON object with the figures the README promises, measured on a real run."""
import json

from fada_stream import bench

KEYS = {"fps", "rtf", "nfe_per_window", "first_frame_ms", "window_ms_p50", "window_ms_p95", "sampler", "backend",
        "av_offset_frames", "sync_c", "stalls", "peak_rss_mb"}


def test_bench_json_has_every_figure(tiny_checkpoint, capsys):
    assert bench.main(["--json", "--checkpoint", str(tiny_checkpoint), "--seconds", "2", "--onsets", "1",
                       "--idle", "0.3", "--steps", "1", "--soak", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert KEYS <= set(result)
    assert result["sampler"] == "teacher" and result["backend"] == "torch"
    assert result["frames"] == 50 and result["fps"] > 0 and result["rtf"] > 0 and result["first_frame_ms"] > 0
    assert result["nfe_per_window"] == 1  # unit guidance scales: one pass per step
    assert {"identity_first_minute", "identity_last_minute", "av_offset_first_minute", "av_offset_last_minute"} <= set(result)


def test_bench_reports_a_bad_checkpoint_as_an_error(tmp_path, capsys):
    assert bench.main(["--checkpoint", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err
