"""Scoring: the offset sign convention end to end through mp4 files, per-clip errors, the CLI's report."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from distill.data.video_io import write_mp4
from distill.eval.__main__ import main as cli
from distill.eval.experts import Experts, save_expert
from distill.eval.identity import IdentityConfig, IdentityEncoder
from distill.eval.regressor import FaceRegressor, RegressorConfig
from distill.eval.score import ScoreConfig, score_videos
from distill.data.corrupt import shift_audio
from distill.eval.sync_expert import SyncConfig, SyncExpert

SPF = 640  # audio samples per video frame


class BrightnessTower(nn.Module):
    """Video window -> its 5 mean crop brightnesses (about +-0.8 here), as a unit vector."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 5, 3, h, w)
        return F.normalize(x.mean(dim=(2, 3, 4)), dim=-1)  # (B, 5)


class LoudnessTower(nn.Module):
    """Log-mel -> per video frame +1 when loud, -1 when silent, 5 frames per window, as unit vectors."""

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # (B, 80, 4 (W + 4))
        tok = mel.mean(dim=1).unfold(-1, 4, 4).mean(-1)  # (B, W + 4): one value per video frame
        z = torch.tanh(tok + 6.0)  # silence is -11.5, noise at 0.3 about 0
        return F.normalize(z.unfold(-1, 5, 1), dim=-1)  # (B, W, 5)


def handmade_experts() -> Experts:
    sync = SyncExpert(SyncConfig())
    sync.video, sync.audio = BrightnessTower(), LoudnessTower()
    torch.manual_seed(0)
    return Experts(sync=sync.eval(), regressor=FaceRegressor(RegressorConfig(width=4)).eval(),
                   identity=IdentityEncoder(IdentityConfig(width=4)).eval())


def blinking_clip(n: int = 60, seed: int = 0, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Frames bright where the audio is loud (noise bursts), dark where silent: the answer is offset 0."""
    rng = np.random.default_rng(seed)
    on = rng.random(n) < 0.5  # (T,)
    frames = np.where(on[:, None, None, None], 228, 28).astype(np.uint8) * np.ones((1, size, size, 3), np.uint8)
    audio = (rng.standard_normal(n * SPF) * 0.3 * np.repeat(on, SPF)).astype(np.float32)  # (T * SPF,)
    return frames, audio


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    frames, audio = blinking_clip()
    for k in (-4, 0, 3):
        write_mp4(d / f"delay{k:+d}.mp4", frames, shift_audio(audio, -k, SPF))
    write_mp4(d / "small.mp4", frames[:, :96, :96], audio)
    write_mp4(d / "silent_film.mp4", frames, None)
    write_mp4(d / "short.mp4", frames[:3], audio[: 3 * SPF])
    (d / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return d


def test_delayed_audio_is_found_at_minus_its_delay_and_bad_files_are_per_clip_errors(videos):
    paths = sorted(videos.glob("*.mp4"))
    report, curves = score_videos(paths, handmade_experts(), ScoreConfig())
    rows = {p.split("/")[-1]: r for p, r in ((r["path"], r) for r in report["clips"])}
    for k in (-4, 0, 3):
        r = rows[f"delay{k:+d}.mp4"]
        assert r["error"] is None and r["offset"] == -k, r
        assert r["sync_c"] > 0.5 and r["sync_d"] < 0.3
    assert rows["small.mp4"]["resized_from"] == [96, 96] and rows["small.mp4"]["offset"] == 0
    assert "no audio" in rows["silent_film.mp4"]["error"]
    assert "fewer than one 5-frame" in rows["short.mp4"]["error"]
    assert rows["corrupt.mp4"]["error"]
    assert report["summary"]["n_clips"] == 7 and report["summary"]["n_errors"] == 3
    assert len(curves) == 4 and all(len(c) == 31 for c in curves.values())


def test_still_video_has_no_sync_confidence(videos, tmp_path):
    frames, audio = blinking_clip()
    write_mp4(tmp_path / "still.mp4", np.repeat(frames[:1], len(frames), axis=0), audio)
    report, _ = score_videos([tmp_path / "still.mp4", videos / "delay+0.mp4"], handmade_experts(), ScoreConfig())
    still, aligned = report["clips"]
    assert still["sync_c"] < 0.1 < aligned["sync_c"]


def test_cli_writes_json_markdown_and_plots(videos, tmp_path):
    experts_dir = tmp_path / "experts"
    torch.manual_seed(0)
    for m in (SyncExpert(SyncConfig(video_width=4, audio_width=8, dim=8)), FaceRegressor(RegressorConfig(width=4)),
              IdentityEncoder(IdentityConfig(width=4))):
        save_expert(experts_dir, m.eval(), {"command": "test"})
    out = tmp_path / "report"
    rc = cli(["score", "--videos", str(videos), "--out", str(out), "--experts", str(experts_dir),
              "--ground-truth", str(videos), "--window-stride", "12"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    good = [r for r in report["clips"] if r["error"] is None]
    assert len(good) == 4 and len(report["clips"]) == 7
    for r in good:
        assert set(r) >= {"path", "sync_c", "sync_d", "offset", "mouth_corr", "closed_in_silence", "identity_sim",
                          "psnr", "ssim", "seam_jitter", "error"}
        assert r["mouth_corr"] is None  # no clip metadata
        assert r["psnr"] == 100.0 and r["ssim"] == pytest.approx(1.0, abs=1e-4)  # each is its own ground truth
        assert r["seam_jitter"] is not None
    assert report["summary"]["frechet_sync_visual"] == pytest.approx(0.0, abs=1e-3)
    md = (out / "report.md").read_text()
    assert "NOT FID" in md and "corrupt.mp4" in md
    assert (out / "offset_curves.png").stat().st_size > 0 and (out / "metrics.png").stat().st_size > 0


def test_closed_in_silence_removes_the_regressors_bias_seen_on_the_reference(tmp_path):
    """A regressor that sees every mouth 0.3 open (as with a moustache) is corrected by the reference image."""
    experts = handmade_experts()
    experts.regressor = FaceRegressor(RegressorConfig(width=4, target_mean=(0.3,) + (0.0,) * 6)).eval()
    torch.nn.init.zeros_(experts.regressor.head[-1].weight)
    torch.nn.init.zeros_(experts.regressor.head[-1].bias)  # predicts the mean, jaw 0.3, for every frame
    frames, audio = blinking_clip()
    for name in ("with_ref", "without_ref"):
        (tmp_path / name).mkdir()
        write_mp4(tmp_path / name / "clip.mp4", frames, audio)
    from PIL import Image

    Image.fromarray(frames[0]).save(tmp_path / "with_ref" / "clip.png")
    report, _ = score_videos([tmp_path / "with_ref" / "clip.mp4", tmp_path / "without_ref" / "clip.mp4"], experts, ScoreConfig())
    with_ref, without_ref = report["clips"]
    assert with_ref["jaw_at_rest"] == pytest.approx(0.3) and with_ref["closed_in_silence"] == 1.0
    assert without_ref["reference"] == "first frame" and without_ref["closed_in_silence"] == 0.0
    assert with_ref["silence_from"] == "audio energy"
