"""teacher_eval: one tiny synthetic clip, a tiny random teacher, 1 step: every file, every row, NFE = 3 x steps x windows."""
import json

import pytest

from distill.data.corpus import synth_corpus
from distill.data.synth import SynthConfig
from distill.teacher_eval import cli, guidance_settings, high_ids
from fada_stream.checkpoint import save_checkpoint
from fada_stream.model import TEACHER_KIND, build_teacher, preset
from fada_stream.model.autoencoder import AUTOENCODER_KIND, Autoencoder
from fada_stream.stream import window_count
from fada_stream.sampling import TeacherSampling


def test_settings_are_default_then_sweeps_without_repeats():
    names = [s.name for s in guidance_settings(TeacherSampling(s_ref=1.5, s_audio=2.5), (1, 2.5), (1.5, 4))]
    assert names == ["default", "s_audio=1", "s_ref=4"]  # s_audio=2.5 and s_ref=1.5 are the default itself


def test_skip_leaves_out_the_first_high_clips_for_a_fresh_set(tmp_path):
    tiers = ["high", "moderate", "high", "high", "moderate", "high"]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "tier": t}) + "\n" for i, t in enumerate(tiers)))
    assert high_ids(tmp_path, 2) == ["c0", "c2"]
    assert high_ids(tmp_path, 2, skip=2) == ["c3", "c5"]  # disjoint from the first two: moderate clips never count
    with pytest.raises(ValueError, match="has 4 high clips"):
        high_ids(tmp_path, 2, skip=3)  # never a silently smaller set
    for n, skip in ((0, 0), (1, -1)):
        with pytest.raises(ValueError, match="--clips must be >= 1"):
            high_ids(tmp_path, n, skip)
    assert cli(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--clips", "2", "--skip", "3"]) == 2


def test_an_audio_guidance_interval_applies_to_every_setting_and_a_bad_one_fails_before_rendering(tmp_path):
    from distill.teacher_eval import parse_args

    cfg = parse_args(["--data", "d", "--out", "o", "--s-audio-early", "6", "--early-from", "0.6"])
    assert (cfg.s_audio_early, cfg.early_from) == (6.0, 0.6) and parse_args(["--data", "d", "--out", "o"]).s_audio_early is None
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"id": "c0", "tier": "high"}) + "\n")
    assert cli(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--clips", "1", "--s-audio-early", "9"]) == 2
    assert not (tmp_path / "out").exists()  # refused before anything was loaded or written


def test_the_mouth_drop_is_a_flag_for_teachers_only(tmp_path):
    from distill.teacher_eval import parse_args

    assert parse_args(["--data", "d", "--out", "o", "--ref-mouth-drop"]).ref_mouth_drop
    assert parse_args(["--data", "d", "--out", "o"]).backend == "torch"  # figures comparable across sessions
    assert parse_args(["--data", "d", "--out", "o", "--backend", "onnx"]).backend == "onnx"  # the renderer's CPU default
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"id": "c0", "tier": "high"}) + "\n")
    from fada_stream.generator import BUNDLED_STUDENT

    assert cli(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--clips", "1", "--ref-mouth-drop",
                "--checkpoint", str(BUNDLED_STUDENT)]) == 2  # a probe of the teacher's reference stream
    assert parse_args(["--data", "d", "--out", "o", "--ref-mouth-drop", "--mouth-drop-from", "0.5"]).mouth_drop_from == 0.5
    for bad in (["--mouth-drop-from", "0.5"], ["--mouth-drop-from", "-1"], ["--ref-mouth-drop", "--mouth-drop-from", "1"]):  # alone, or never
        assert cli(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--clips", "1", *bad]) == 2
    assert not (tmp_path / "out").exists()


def test_teacher_eval_end_to_end(tmp_path):
    pytest.importorskip("av")
    rows = synth_corpus(tmp_path / "test", "test", 1, seed=5, cfg=SynthConfig(moderate_fraction=0.0), workers=1)
    assert rows[0]["tier"] == "high"  # seed 5 alone would draw a moderate clip, which teacher_eval skips
    cfg = preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2)
    save_checkpoint(tmp_path / "ckpt" / "autoencoder", AUTOENCODER_KIND, cfg.ae, Autoencoder(cfg.ae).state_dict())
    save_checkpoint(tmp_path / "ckpt" / "teacher", TEACHER_KIND, cfg, build_teacher(cfg).state_dict())
    out = tmp_path / "eval"
    assert cli(["--data", str(tmp_path / "test"), "--out", str(out), "--clips", "1", "--steps", "1",
                "--checkpoint", str(tmp_path / "ckpt"), "--s-audio", "4", "--s-ref", "4", "--threads", "1"]) == 0

    doc = json.loads((out / "teacher_eval.json").read_text())
    (split,) = doc["splits"]
    assert [r["name"] for r in split["settings"]] == ["default", "s_audio=4", "s_ref=4"]
    windows = window_count(rows[0]["n_frames"], 6, 2)
    for r in split["settings"]:
        assert r["windows"] == windows and r["nfe"] == 3 * 1 * windows and r["nfe_per_window"] == 3
        assert r["ms_per_window"] > 0 and r["summary"]["n_errors"] == 0
        assert (out / "videos" / "test" / f"s_ref{r['s_ref']:g}_s_audio{r['s_audio']:g}" / f"{rows[0]['id']}.mp4").is_file()
    assert split["ground_truth"]["summary"]["sync_c"] is not None

    md = (out / "teacher_eval.md").read_text()
    for row in ("| ground truth |", "| default | 1.5 | 2.5 |", "| s_audio=4 | 1.5 | 4 |", "| s_ref=4 | 4 | 2.5 |"):
        assert row in md
    assert (out / "guidance_sweep.png").stat().st_size > 0

    # The renderer's teacher sampler on its CPU backend: onnxruntime's denoiser counted at the call like torch's
    pytest.importorskip("onnxscript")
    ort_out = tmp_path / "eval_onnx"
    assert cli(["--data", str(tmp_path / "test"), "--out", str(ort_out), "--clips", "1", "--steps", "1",
                "--checkpoint", str(tmp_path / "ckpt"), "--s-audio", "2.5", "--s-ref", "1.5", "--threads", "1",
                "--backend", "onnx", "--s-audio-early", "6", "--ref-mouth-drop", "--mouth-drop-from", "0.5"]) == 0
    (row,) = json.loads((ort_out / "teacher_eval.json").read_text())["splits"][0]["settings"]
    assert row["nfe"] == 3 * windows and row["summary"]["n_errors"] == 0  # the drop and the interval cost no pass


def test_decoder_flag_scores_other_decoders_on_the_same_latents(tmp_path):
    """--decoder: the same samples decoded again; the model's own autoencoder reproduces its scores exactly,
    a reference-aware decoder of the same encoder is scored apart, a foreign latent space is refused."""
    pytest.importorskip("av")
    import dataclasses

    import torch

    synth_corpus(tmp_path / "test", "test", 1, seed=5, cfg=SynthConfig(moderate_fraction=0.0), workers=1)
    cfg = preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2)
    torch.manual_seed(0)
    ae = Autoencoder(cfg.ae)
    save_checkpoint(tmp_path / "ckpt" / "autoencoder", AUTOENCODER_KIND, cfg.ae, ae.state_dict())
    save_checkpoint(tmp_path / "ckpt" / "teacher", TEACHER_KIND, cfg, build_teacher(cfg).state_dict())
    ref_cfg = dataclasses.replace(cfg.ae, ref_channels=(4, 4, 8, 8))
    ref_ae = Autoencoder(ref_cfg)
    ref_ae.encoder.load_state_dict(ae.encoder.state_dict())  # a decoder fine-tune: the encoder is kept
    with torch.no_grad():
        for conv in ref_ae.decoder.fuse:
            conv.weight.normal_(0, 0.05)  # a decoder that really draws on the reference
    save_checkpoint(tmp_path / "refdec" / "autoencoder", AUTOENCODER_KIND, ref_cfg, ref_ae.state_dict())
    snd_cfg = dataclasses.replace(ref_cfg, audio_channels=4)  # an audio-aware one hears each frame's mel besides
    snd_ae = Autoencoder(snd_cfg)
    snd_ae.load_state_dict(ref_ae.state_dict(), strict=False)
    with torch.no_grad():
        for conv in snd_ae.decoder.audio_fuse:
            conv.weight.normal_(0, 0.05)
    save_checkpoint(tmp_path / "snddec" / "autoencoder", AUTOENCODER_KIND, snd_cfg, snd_ae.state_dict())
    save_checkpoint(tmp_path / "foreign" / "autoencoder", AUTOENCODER_KIND, cfg.ae, Autoencoder(cfg.ae).state_dict())

    out = tmp_path / "eval"
    args = ["--data", str(tmp_path / "test"), "--out", str(out), "--clips", "1", "--steps", "1", "--checkpoint",
            str(tmp_path / "ckpt"), "--s-audio", "2.5", "--s-ref", "1.5", "--threads", "1"]
    assert cli(args + ["--decoder", str(tmp_path / "ckpt"), "--decoder", str(tmp_path / "refdec" / "autoencoder"),
                       "--decoder", str(tmp_path / "snddec")]) == 0

    main = json.loads((out / "teacher_eval.json").read_text())["splits"][0]["settings"][0]
    same = json.loads((out / "decoder_ckpt" / "teacher_eval.json").read_text())["splits"][0]["settings"][0]
    ref = json.loads((out / "decoder_refdec" / "teacher_eval.json").read_text())
    assert same["summary"] == main["summary"]  # same latents, same decoder: same videos, same scores
    assert same["nfe"] == main["nfe"] and same["windows"] == main["windows"]
    assert ref["decoder"].endswith("autoencoder") and ref["splits"][0]["settings"][0]["summary"]["n_errors"] == 0
    assert ref["splits"][0]["settings"][0]["summary"] != main["summary"]
    assert (out / "decoder_refdec" / "teacher_eval.md").is_file()
    snd = json.loads((out / "decoder_snddec" / "teacher_eval.json").read_text())["splits"][0]["settings"][0]["summary"]
    assert snd["n_errors"] == 0 and snd != ref["splits"][0]["settings"][0]["summary"]  # the sound moved the pictures

    assert cli(args + ["--out", str(tmp_path / "e2"), "--decoder", str(tmp_path / "foreign")]) == 2  # another latent space
