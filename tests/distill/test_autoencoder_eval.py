"""autoencoder_eval: ground truth through an autoencoder, scored, in a layout compare_evals pairs clip by clip."""
import json

import numpy as np
import pytest
import torch

from distill import compare_evals
from distill.autoencoder_eval import WINDOW, cli, round_trip
from fada_stream.model.autoencoder import load_autoencoder


def test_round_trip_keeps_every_frame_and_times_the_decoder(ae_ckpt):
    ae = load_autoencoder(str(ae_ckpt))
    frames = np.random.default_rng(0).integers(0, 255, (WINDOW + 5, 128, 128, 3), dtype=np.uint8)
    out, decode_s = round_trip(ae, frames)
    assert out.shape == frames.shape and out.dtype == np.uint8 and decode_s > 0
    with torch.no_grad():  # window by window is the same as all at once: the autoencoder works per frame
        x = torch.from_numpy(frames[:3]).movedim(-1, 1).float() / 127.5 - 1
        one = ((ae.decode(ae.encode(x)).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).movedim(1, -1).numpy()
    assert np.array_equal(out[:3], one)


def test_an_audio_aware_round_trip_decodes_each_window_with_its_own_sound(awake):
    from fada_stream.model import Autoencoder, AutoencoderConfig, mel_window, stream_mel
    from fada_stream.model.config import AudioConfig

    torch.manual_seed(0)
    ae = awake(Autoencoder(AutoencoderConfig(ref_channels=(4, 8, 8, 16), audio_channels=8))).eval()
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (WINDOW + 5, 128, 128, 3), dtype=np.uint8)
    face, sound = frames[0], rng.normal(0, 0.1, (WINDOW + 5) * 640).astype(np.float32)  # 640 samples a frame at 25 fps
    out, _ = round_trip(ae, frames, face, sound)
    assert out.shape == frames.shape
    ac, unit = AudioConfig(), lambda a: torch.from_numpy(a).movedim(-1, -3).float() / 127.5 - 1  # noqa: E731
    with torch.no_grad():  # the second window, frames 16..20, hears the mel of exactly those frames
        mel = mel_window(stream_mel(torch.from_numpy(sound), ac), WINDOW, 5, ac)
        second = ae.decode(ae.encode(unit(frames[WINDOW:])), unit(face)[None], mel)
    assert np.array_equal(out[WINDOW:], ((second + 1) * 127.5).round().to(torch.uint8).movedim(1, -1).numpy())
    with pytest.raises(ValueError, match="needs the clip's audio"):
        round_trip(ae, frames, face)


def test_autoencoder_eval_end_to_end_and_paired_by_compare_evals(corpus, ae_ckpt, tmp_path):
    pytest.importorskip("av")
    runs = {}
    for name in ("a", "b"):
        out = tmp_path / name
        assert cli(["--data", str(corpus), "--autoencoder", str(ae_ckpt), "--out", str(out), "--clips", "2", "--threads", "1"]) == 0
        runs[name] = out
    doc = json.loads((runs["a"] / "teacher_eval.json").read_text())
    (split,) = doc["splits"]
    (setting,) = split["settings"]
    assert setting["summary"]["n_errors"] == 0 and setting["ms_per_window"] > 0
    assert all(c["psnr"] is not None for c in setting["clips"])  # scored against the ground truth
    assert split["ground_truth"]["summary"]["identity_sim"] is not None
    assert len(list((runs["a"] / "videos" / corpus.name).glob("*.mp4"))) == 2
    assert "| " + corpus.name + " | 2 |" in (runs["a"] / "autoencoder_eval.md").read_text()

    assert compare_evals.main(["--out", str(tmp_path / "cmp"), f"A={runs['a']}", f"B={runs['b']}", "--against", "A"]) == 0
    assert (tmp_path / "cmp_paired.png").stat().st_size > 0
    diffs = compare_evals.paired_diffs({k: compare_evals.load_run(v) for k, v in runs.items()}, "a")
    assert diffs and all(np.allclose(d, 0.0) for d in diffs.values())  # the same autoencoder twice: clip for clip the same


def test_a_missing_autoencoder_is_a_clear_error(corpus, tmp_path, capsys):
    assert cli(["--data", str(corpus), "--autoencoder", str(tmp_path / "nope" / "autoencoder"), "--out", str(tmp_path / "o"),
                "--clips", "1"]) == 2
    assert "error:" in capsys.readouterr().err
