"""train_autoencoder: a decoder fine-tune (`--init --train decoder`) keeps every latent the models were trained on."""
import json

import pytest
import torch

from distill import train_autoencoder
from distill.data.windows import load_cache
from distill.train_autoencoder import (
    TrainConfig, evaluate, frame_references, latent_box, mouth_blend, reconstruction_loss, restyle_frames,
)
from fada_stream.model.autoencoder import images_to_unit, load_autoencoder


def test_decoder_fine_tune_changes_the_decoder_only(ae_ckpt, cache_file, tmp_path):
    torch.manual_seed(0)
    stem = train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "ft"), init=str(ae_ckpt), train="decoder",
                                              restyle=0.5, steps=3, batch=4, lr=1e-3, warmup=1, device="cpu"))
    before, after = load_autoencoder(str(ae_ckpt)), load_autoencoder(str(stem))
    for name, p in before.encoder.state_dict().items():
        assert torch.equal(p, after.encoder.state_dict()[name]), name  # frozen: bit-identical
    assert after.cfg.latent_mean == before.cfg.latent_mean and after.cfg.latent_std == before.cfg.latent_std
    assert any(not torch.equal(p, after.decoder.state_dict()[n]) for n, p in before.decoder.state_dict().items())
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    assert torch.equal(before.encode(x), after.encode(x))  # so a teacher's or student's latents mean the same

    meta = json.loads(stem.with_suffix(".json").read_text())["meta"]
    assert meta["init"]["path"] == str(ae_ckpt) and "command" in meta["init"]["meta"]
    rows = [json.loads(line) for line in (tmp_path / "ft" / "log.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and {"eval_psnr", "eval_psnr_mouth", "eval_psnr_restyled", "eval_psnr_restyled_mouth"} <= rows[0].keys()
    assert rows[-1]["step"] == 3 and "eval_psnr_restyled" in rows[-1]


def test_a_full_run_from_init_measures_new_latent_statistics(ae_ckpt, cache_file, tmp_path):
    stem = train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "all"), init=str(ae_ckpt), train="all",
                                              steps=2, batch=4, lr=1e-2, warmup=1, device="cpu"))
    before, after = load_autoencoder(str(ae_ckpt)), load_autoencoder(str(stem))
    assert any(not torch.equal(p, after.encoder.state_dict()[n]) for n, p in before.encoder.state_dict().items())
    assert after.cfg.latent_std != before.cfg.latent_std


def test_bad_fine_tune_settings_are_refused(cache_file, tmp_path):
    with pytest.raises(ValueError, match="needs --init"):
        train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "a"), train="decoder", steps=1, device="cpu"))
    with pytest.raises(ValueError, match="share in"):
        train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "b"), restyle=1.5, steps=1, device="cpu"))
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="mouth-weight"):
            train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "c"), mouth_weight=bad, steps=1,
                                               device="cpu"))


def test_the_mouth_weight_adds_the_box_error_and_nothing_else():
    x = torch.zeros(2, 3, 8, 8)
    box = (4, 8, 2, 6)  # (top, bottom, left, right)
    outside, inside = x.clone(), x.clone()
    outside[..., :4, :] = 0.5  # an error above the box
    inside[..., 4:8, 2:6] = 0.5  # the same error, in the box (a quarter of the frame)
    plain = reconstruction_loss(outside, x, box, 0.0)
    assert torch.isclose(reconstruction_loss(outside, x, box, 3.0), plain)  # outside the box: as before
    assert torch.isclose(reconstruction_loss(inside, x, box, 0.0), plain / 2)  # a quarter of the frame against half
    box_only = 0.5 + 0.25  # L1 + MSE over the box alone
    assert torch.isclose(reconstruction_loss(inside, x, box, 3.0), plain / 2 + 3.0 * box_only)


def test_evaluate_reports_the_box_apart(ae_ckpt, cache_file):
    ae = load_autoencoder(str(ae_ckpt)).eval()
    frames = load_cache(cache_file).frames[:4]
    whole, box = evaluate(ae, frames, torch.device("cpu"), box=(0, 64, 0, 128))
    assert whole == evaluate(ae, frames, torch.device("cpu"))[0] == evaluate(ae, frames, torch.device("cpu"))[1]
    top, bottom = box, evaluate(ae, frames, torch.device("cpu"), box=(64, 128, 0, 128))[1]
    # the frame's mean squared error is the mean of the two halves': PSNR of the whole sits between theirs
    assert min(top, bottom) <= whole <= max(top, bottom) and top != bottom
    # an off-centre box: rows then columns, as the (top, bottom, left, right) order says
    x = images_to_unit(frames)
    with torch.no_grad():
        mse = (ae.decode(ae.encode(x)) - x)[..., 10:70, 0:32].square().flatten(1).mean(1).mean().item() / 4.0
    expected = 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()
    assert abs(evaluate(ae, frames, torch.device("cpu"), box=(10, 70, 0, 32))[1] - expected) < 1e-3


def test_restyle_frames_restyles_about_the_share_asked():
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(40, 220, (64, 16, 16, 3), dtype=torch.uint8, generator=gen)
    assert torch.equal(restyle_frames(frames, 0.0, gen)[0], frames)
    out, no_refs = restyle_frames(frames, 1.0, torch.Generator().manual_seed(1))
    assert no_refs is None
    assert out.shape == frames.shape and out.dtype == torch.uint8
    assert all(not torch.equal(out[i], frames[i]) for i in range(len(frames)))
    half = restyle_frames(frames, 0.5, torch.Generator().manual_seed(2))[0]
    changed = sum(not torch.equal(half[i], frames[i]) for i in range(len(frames)))
    assert 16 <= changed <= 48  # 64 draws of p = 0.5
    assert torch.equal(half, restyle_frames(frames, 0.5, torch.Generator().manual_seed(2))[0])  # seeded: reproducible


def test_a_restyled_frame_and_its_reference_share_one_look():
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(40, 220, (8, 16, 16, 3), dtype=torch.uint8, generator=gen)
    out, refs = restyle_frames(frames, 1.0, torch.Generator().manual_seed(3), frames.clone())
    assert torch.equal(out, refs)  # the same pixels in, the same look and shape: the same pixels out
    assert not torch.equal(out, frames)


def test_frame_references_are_the_identity_never_the_frames_own_clip(cache_file):
    cache = load_cache(cache_file)
    idx = torch.arange(len(cache.frames))
    clip = torch.searchsorted(cache.frame_start, idx, right=True) - 1
    neutral = frame_references(cache, idx, 0.0, torch.Generator())
    assert torch.equal(neutral, cache.references[cache.clip_identity[clip]])
    other = frame_references(cache, idx, 1.0, torch.Generator().manual_seed(0))
    for i in range(0, len(idx), 7):
        same = (cache.frames == other[i]).flatten(1).all(1).nonzero().flatten()  # frames equal to the reference drawn
        mates = (cache.clip_identity == cache.clip_identity[clip[i]]).sum()
        if mates > 1:  # another clip of this identity exists: a frame of it, never of the frame's own clip
            assert len(same) and all(cache.clip_identity[clip[j]] == cache.clip_identity[clip[i]] and clip[j] != clip[i] for j in same)
        else:
            assert torch.equal(other[i], neutral[i])


def test_a_reference_aware_decoder_trains_from_a_plain_one(ae_ckpt, cache_file, tmp_path):
    torch.manual_seed(0)
    stem = train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "ref"), init=str(ae_ckpt), train="decoder",
                                              restyle=0.5, ref_channels="4,8,8,16", steps=3, batch=4, lr=1e-3, warmup=1,
                                              device="cpu"))
    before, after = load_autoencoder(str(ae_ckpt)), load_autoencoder(str(stem))
    assert after.reference_aware and after.cfg.ref_channels == (4, 8, 8, 16)
    for name, p in before.encoder.state_dict().items():
        assert torch.equal(p, after.encoder.state_dict()[name]), name  # the latents keep their meaning
    cache = load_cache(cache_file)
    x = images_to_unit(cache.frames[:2])
    a, b = images_to_unit(cache.references[:1]), images_to_unit(cache.references[-1:]).flip(-1)
    with torch.no_grad():
        assert (after.decode(after.encode(x), a) - after.decode(after.encode(x), b)).abs().max() > 0  # it uses the reference
    rows = [json.loads(line) for line in (tmp_path / "ref" / "log.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 3 and "eval_psnr_restyled" in rows[-1]
    with pytest.raises(ValueError, match="would drop it"):  # a reference-aware init is continued, never rebuilt
        train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "again"), init=str(stem), train="decoder",
                                           ref_channels="4,8,8,32", steps=1, device="cpu"))
    with pytest.raises(ValueError, match="comma-separated"):
        train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "bad"), init=str(ae_ckpt), ref_channels="a,b",
                                           steps=1, device="cpu"))


def test_an_audio_aware_decoder_trains_on_corrupted_mouths_and_hears_the_audio(ae_ckpt, cache_file, tmp_path):
    torch.manual_seed(0)
    stem = train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "snd"), init=str(ae_ckpt), train="decoder",
                                              ref_channels="4,8,8,16", audio_channels=8, mouth_corrupt=0.5, mouth_blend_min=0.3,
                                              steps=3, batch=4, lr=1e-3, warmup=1, device="cpu"))
    before, after = load_autoencoder(str(ae_ckpt)), load_autoencoder(str(stem))
    assert after.audio_aware and after.reference_aware and after.cfg.audio_channels == 8
    assert (after.cfg.audio_past, after.cfg.audio_per_frame, after.cfg.audio_ahead) == (16, 4, 7)  # the tiny preset's window
    for name, p in before.encoder.state_dict().items():
        assert torch.equal(p, after.encoder.state_dict()[name]), name  # the latents keep their meaning
    cache = load_cache(cache_file)
    z, ref = after.encode(images_to_unit(cache.frames[:2])), images_to_unit(cache.references[:1])
    c = after.cfg
    quiet = torch.full((c.audio_mels, c.audio_past + 2 * c.audio_per_frame + c.audio_ahead), -11.5)
    with torch.no_grad():
        assert (after.decode(z, ref, quiet) - after.decode(z, ref, quiet + 8.0)).abs().max() > 0  # it hears the sound
    rows = [json.loads(line) for line in (tmp_path / "snd" / "log.jsonl").read_text().splitlines()]
    assert "eval_psnr_mouth_corrupt" in rows[0] and "eval_psnr_mouth_corrupt" in rows[-1]
    with pytest.raises(ValueError, match="would drop it"):
        train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "again"), init=str(stem), train="decoder",
                                           audio_channels=16, steps=1, device="cpu"))


def test_bad_audio_decoder_settings_are_refused(ae_ckpt, cache_file, tmp_path):
    with pytest.raises(ValueError, match="needs a reference-aware decoder"):  # nothing to blend the mouth toward
        train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "a"), init=str(ae_ckpt), train="decoder",
                                           mouth_corrupt=0.5, steps=1, device="cpu"))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="mouth-corrupt"):
            train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "b"), mouth_corrupt=bad, steps=1, device="cpu"))
        with pytest.raises(ValueError, match="mouth-blend-min"):
            train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "e"), mouth_blend_min=bad, steps=1, device="cpu"))
    with pytest.raises(ValueError, match="audio-channels"):
        train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "c"), audio_channels=-1, steps=1, device="cpu"))
    with pytest.raises(ValueError, match="needs a reference-aware decoder"):  # the ONNX graph takes mel after the reference
        train_autoencoder.main(TrainConfig(data=str(cache_file), out=str(tmp_path / "d"), init=str(ae_ckpt), train="decoder",
                                           audio_channels=8, steps=1, device="cpu"))


def test_the_mouth_blend_moves_the_mouth_cells_of_about_a_share_of_frames():
    cells = latent_box((57, 128, 18, 110), 8)
    assert cells == (7, 16, 2, 14)  # every latent cell the pixel box touches
    w = mouth_blend(400, 0.5, cells, 16, torch.Generator().manual_seed(0))  # (N, 1, 16, 16)
    inside = w[:, 0, 7:16, 2:14]
    outside = w.clone()
    outside[:, 0, 7:16, 2:14] = 0
    assert not outside.any() and 0 <= w.min() and w.max() <= 1  # nothing outside the box, weights in [0, 1]
    per_frame = inside.flatten(1)
    assert torch.equal(per_frame.amax(1), per_frame.amin(1))  # one weight over a frame's whole box
    assert 150 < (per_frame[:, 0] > 0).sum() < 250  # about half the frames
    assert not mouth_blend(50, 0.0, cells, 16, torch.Generator()).any()


def test_a_higher_blend_floor_trains_on_fainter_mouths_only():
    cells = latent_box((57, 128, 18, 110), 8)
    full = mouth_blend(400, 1.0, cells, 16, torch.Generator().manual_seed(0))[:, 0, 7, 2]  # (N,) one weight a frame
    faint = mouth_blend(400, 1.0, cells, 16, torch.Generator().manual_seed(0), 0.4)[:, 0, 7, 2]
    assert full.min() < 0.1 and 0.4 <= faint.min() and faint.max() <= 1
    assert torch.allclose(faint, 0.4 + 0.6 * full)  # the same draws, moved into the range: runs differ only there
