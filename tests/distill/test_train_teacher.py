"""Teacher training: the cache and its windows, losses that fall, resume, checkpoints, torchrun with gloo.

Everything runs on the fake corpus of conftest.py (the real layout; a disc face whose mouth follows the audio).
"""
import json

import numpy as np
import pytest
import torch

from distill import train_autoencoder, train_teacher
from distill.data.windows import WindowDataset, build_cache, load_cache
from fada_stream.model import AudioConfig, load_autoencoder, load_teacher, preset

pytest.importorskip("av")
TINY = dict(width=32, depth=1, heads=2, frames=6, motion_frames=2)
def test_cache_round_trips_and_keeps_only_the_tier(corpus, tmp_path):
    raw = load_cache(build_cache(corpus, tmp_path / "raw.safetensors", frame_format="raw"))
    from distill.data.video_io import read_mp4, read_wav

    assert raw.clip_ids == ["fake-000", "fake-001", "fake-003", "fake-004"] and raw.tier == "high"
    assert torch.equal(raw.frames[24:48], torch.from_numpy(read_mp4(corpus / "fake-001.mp4").frames))
    wav, _ = read_wav(corpus / "fake-001.wav")
    assert np.abs(raw.audio[15360:30720].numpy() - wav).max() < 1e-4
    assert raw.identity_ids == ["id0", "id1", "id2"] and raw.clip_identity.tolist() == [0, 0, 1, 2]
    jpeg = load_cache(build_cache(corpus, tmp_path / "jpeg.safetensors", frame_format="jpeg"))
    assert (jpeg.frames.float() - raw.frames.float()).abs().mean() < 2.0
    assert (tmp_path / "jpeg.safetensors").stat().st_size < (tmp_path / "raw.safetensors").stat().st_size / 3
    capped = build_cache(corpus, tmp_path / "capped.safetensors", max_mb=0.5, max_per_identity=1)
    assert load_cache(capped).clip_ids == ["fake-000", "fake-003"] and capped.stat().st_size < 0.5e6


def test_windows_align_frames_audio_and_references(cache_file):
    cache, cfg = load_cache(cache_file), AudioConfig()
    ds = WindowDataset(cache, 6, cfg, stride=2, p_other_frame=1.0)
    item = ds[5]
    c, s = ds.index[5]
    assert item["x"].shape == (6, 3, 128, 128) and item["x"].dtype == torch.uint8
    assert item["mel"].shape == (80, cfg.mel_span(6)) and item["params"].shape == (6, 10)  # every face parameter; those a clip lacks are NaN
    a = int(cache.frame_start[c]) + s
    assert torch.equal(item["x"], cache.frames[a : a + 6].permute(0, 3, 1, 2))
    for i in range(len(ds)):  # a reference frame never comes from the window's own clip
        c, _ = ds.index[i]
        ref = ds[i]["ref"].permute(1, 2, 0)
        own = cache.frames[int(cache.frame_start[c]) : int(cache.frame_start[c + 1])]
        if len(ds.same_identity[c]):
            assert not (own == ref).flatten(1).all(1).any()


def test_teacher_loss_falls_in_a_few_steps(cache_file):
    torch.manual_seed(0)
    cache = load_cache(cache_file)
    cfg = train_teacher.TrainConfig(**TINY)
    mc = preset("tiny", **TINY)
    lat = torch.randn(len(cache.frames), 4, 16, 16) * 0.5 + cache.frames.float().mean((1, 2, 3)).view(-1, 1, 1, 1) / 100
    ds = WindowDataset(cache, 6, mc.audio, latents=lat, ref_latents=torch.zeros(3, 4, 16, 16))
    batch = torch.utils.data.default_collate([ds[i] for i in range(0, len(ds), max(1, len(ds) // 8))])
    model = train_teacher.build_teacher(mc)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = train_teacher.flow_loss(model, batch, mc, cfg, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_a_share_of_windows_trains_without_the_references_mouth():
    mc = preset("tiny", **TINY)
    b, n = 64, mc.dit.grid**2
    batch = {"x": torch.randn(b, 6, 4, 16, 16), "ref": torch.randn(b, 4, 16, 16), "mel": torch.randn(b, mc.audio.n_mels, 10)}
    seen = {}

    def model(xt, t, ref, mel, ref_drop=None, **kw):
        seen["ref_drop"] = ref_drop
        return torch.zeros_like(xt)

    plain = train_teacher.flow_loss(model, batch, mc, train_teacher.TrainConfig(**TINY), torch.Generator().manual_seed(0))
    assert seen["ref_drop"] is None  # off by default: no partial drop, and the same random draws as before
    cfg = train_teacher.TrainConfig(**TINY, p_ref_mouth_drop=0.5)
    dropped = train_teacher.flow_loss(model, batch, mc, cfg, torch.Generator().manual_seed(0))
    rows = seen["ref_drop"]  # (B, N): each window drops the whole mouth region or nothing
    mouth = train_teacher.region_tokens(mc.dit.grid)
    assert rows.shape == (b, n) and all(torch.equal(r, mouth) or not r.any() for r in rows)
    assert 16 < int(rows.any(1).sum()) < 48  # about half of the windows
    torch.testing.assert_close(plain, dropped)  # the draw comes after the loss's own: its noise and times are unchanged


def test_train_scripts_checkpoint_and_resume(cache_file, ae_ckpt, tmp_path):
    out = tmp_path / "teacher"
    args = dict(data=str(cache_file), autoencoder=str(ae_ckpt), out=str(out), steps=2, batch=2, device="cpu", eval_every=2, **TINY)
    train_teacher.main(train_teacher.TrainConfig(**args))
    model, codec, mc = load_teacher(out)
    assert mc.dit.width == 32 and mc.ae.latent_std != (1.0, 1.0, 1.0, 1.0)  # measured statistics travel with it
    doc = json.loads((out / "teacher.json").read_text())
    assert doc["meta"]["step"] == 2 and "command" in doc["meta"]
    train_teacher.main(train_teacher.TrainConfig(**{**args, "steps": 3}))
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 3] and "audio_gain" in rows[0]
    assert json.loads((out / "state.json").read_text())["meta"]["step"] == 3


def test_max_minutes_stops_cleanly_with_a_checkpoint(cache_file, ae_ckpt, tmp_path):
    out = tmp_path / "t"
    train_teacher.main(train_teacher.TrainConfig(data=str(cache_file), autoencoder=str(ae_ckpt), out=str(out), steps=10**6,
                                                 batch=2, device="cpu", max_minutes=1e-4, **TINY))
    assert json.loads((out / "teacher.json").read_text())["meta"]["step"] >= 1


def test_teacher_refuses_a_cache_of_every_tier(corpus, ae_ckpt, tmp_path):
    every = build_cache(corpus, tmp_path / "all.safetensors", tier=None, frame_format="jpeg")
    with pytest.raises(ValueError, match="high tier only"):
        train_teacher.main(train_teacher.TrainConfig(data=str(every), autoencoder=str(ae_ckpt), out=str(tmp_path / "t"), steps=1, device="cpu", **TINY))


def test_torchrun_two_gloo_processes(cache_file, ae_ckpt, tmp_path, torchrun):
    out = tmp_path / "ddp"
    rc, err = torchrun("distill.train_teacher", ["--data", str(cache_file), "--autoencoder", str(ae_ckpt), "--out", str(out), "--steps", "2",
                                                 "--batch", "2", "--device", "cpu"] + [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()], tmp_path)
    assert rc == 0, err[-3000:]
    doc = json.loads((out / "teacher.json").read_text())
    assert doc["meta"]["step"] == 2 and doc["meta"]["command"].startswith("torchrun")


def test_init_starts_from_a_trained_teacher_and_refuses_another_model(cache_file, ae_ckpt, tmp_path):
    args = dict(data=str(cache_file), autoencoder=str(ae_ckpt), steps=1, batch=2, device="cpu", **TINY)
    train_teacher.main(train_teacher.TrainConfig(out=str(tmp_path / "first"), **args))
    # lr 0: a second stage that cannot move must end exactly where it started
    train_teacher.main(train_teacher.TrainConfig(out=str(tmp_path / "second"), init=str(tmp_path / "first"), lr=0.0, **args))
    first, second = load_teacher(tmp_path / "first")[0].state_dict(), load_teacher(tmp_path / "second")[0].state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    fresh = train_teacher.build_teacher(preset("tiny", **TINY)).state_dict()
    assert not all(torch.equal(fresh[k], second[k].float()) for k in fresh)
    with pytest.raises(ValueError, match="another model or autoencoder"):
        train_teacher.main(train_teacher.TrainConfig(out=str(tmp_path / "wide"), init=str(tmp_path / "first"), **{**args, "width": 64}))
    # a decoder fine-tune (here reference-aware) keeps the latent space: the teacher goes on with it
    refdec = train_autoencoder.main(train_autoencoder.TrainConfig(data=str(cache_file), out=str(tmp_path / "refdec"), init=str(ae_ckpt),
                                                                  train="decoder", ref_channels="4,4,8,8", steps=1, batch=2, device="cpu"))
    train_teacher.main(train_teacher.TrainConfig(out=str(tmp_path / "third"), init=str(tmp_path / "first"), **{**args, "autoencoder": str(refdec)}))
    assert (tmp_path / "third" / "teacher.json").is_file()


def test_restyle_changes_training_windows_only(cache_file, ae_ckpt, tmp_path):
    cache, mc = load_cache(cache_file), preset("tiny", **TINY)
    codec = load_autoencoder(str(ae_ckpt))
    plain, same = train_teacher.window_datasets(cache, codec, mc, torch.device("cpu"), seed=0)
    assert plain is same
    train, held = train_teacher.window_datasets(cache, codec, mc, torch.device("cpu"), seed=0, restyle=1.0)
    for i in (0, len(plain) // 2, len(plain) - 1):  # a window's frames are fixed by its index; only the look changes
        assert torch.equal(held[i]["x"], plain[i]["x"])
        assert not torch.equal(train[i]["x"], plain[i]["x"])
    train_teacher.main(train_teacher.TrainConfig(data=str(cache_file), autoencoder=str(ae_ckpt), out=str(tmp_path / "r"), steps=1,
                                                 batch=2, device="cpu", restyle=0.5, restyle_shape=True, **TINY))
    assert json.loads((tmp_path / "r" / "teacher.json").read_text())["meta"]["train_config"]["restyle"] == 0.5
    for bad, match in ((dict(restyle=1.5), r"share in \[0, 1\]"), (dict(restyle_shape=True), "give --restyle")):
        with pytest.raises(ValueError, match=match):
            train_teacher.main(train_teacher.TrainConfig(data=str(cache_file), autoencoder=str(ae_ckpt), out=str(tmp_path / "bad"),
                                                         steps=1, device="cpu", **TINY, **bad))
