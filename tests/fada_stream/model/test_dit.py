"""The video DiT: adaLN-Zero identity at init, motion frames, condition dropout, the cond hook, checkpoints."""
import pytest
import torch

from fada_stream.checkpoint import save_checkpoint
from fada_stream.model import TEACHER_KIND, build_teacher, load_teacher, preset
from fada_stream.model.autoencoder import AUTOENCODER_KIND, Autoencoder
from fada_stream.model.dit import N_MOD, VideoDiT, count_params

F, M = 6, 2


def tiny_cfg():
    return preset("tiny", width=32, depth=2, heads=2, frames=F, motion_frames=M)


def perturbed(cfg, seed=0) -> VideoDiT:
    """A fresh model whose zero-initialised parameters get small random values, as training would give."""
    torch.manual_seed(seed)
    model = build_teacher(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(std=0.05)
    return model


def inputs(cfg, b=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    c, s = cfg.dit.latent_channels, cfg.dit.latent_size
    return dict(
        x=torch.randn(b, F, c, s, s, generator=g),
        t=torch.rand(b, generator=g),
        ref=torch.randn(b, c, s, s, generator=g),
        mel=torch.randn(b, cfg.audio.n_mels, cfg.audio.mel_span(F), generator=g) - 5,
        motion=torch.randn(b, M, c, s, s, generator=g),
    )


def test_zero_initialised_block_is_identity():
    cfg = tiny_cfg()
    model = build_teacher(cfg)
    blk, d = model.blocks[0], cfg.dit.width
    x, r, a = torch.randn(2, F, 16, d), torch.randn(2, 16, d), torch.randn(2, F, 7, cfg.audio.dim)
    mod = model.t_block(model.t_embedder(torch.rand(2, F)))  # zero-initialised adaLN: all zeros
    assert not mod.any()
    x2, r2 = blk(x, r, a, mod.view(2, F, N_MOD, d), torch.zeros(2, N_MOD, d))
    assert torch.equal(x2, x) and torch.equal(r2, r)


def test_fresh_model_predicts_zero_velocity():
    cfg = tiny_cfg()
    v = build_teacher(cfg)(**inputs(cfg))
    assert v.shape == (2, F, 4, 16, 16) and not v.any()


def test_motion_frames_get_zero_velocity_and_ignore_the_noisy_input():
    cfg = tiny_cfg()
    model, kw = perturbed(cfg), inputs(cfg)
    v = model(**kw)
    assert not v[:, :M].any() and v[:, M:].abs().sum() > 0
    kw2 = dict(kw, x=kw["x"].clone())
    kw2["x"][:, :M] = torch.randn_like(kw2["x"][:, :M])
    assert torch.allclose(model(**kw2), v, atol=1e-6)


def test_motion_mask_false_generates_every_frame():
    cfg = tiny_cfg()
    model, kw = perturbed(cfg), inputs(cfg)
    v = model(**kw, motion_mask=torch.tensor([True, False]))
    assert not v[0, :M].any() and v[1, :M].abs().sum() > 0
    assert torch.allclose(v[1], model(**{**kw, "motion": None})[1], atol=1e-5)


def test_dropped_conditions_are_ignored_and_flags_are_per_sample():
    cfg = tiny_cfg()
    model, kw = perturbed(cfg), inputs(cfg)
    yes, no = torch.tensor([True, True]), torch.tensor([False, False])
    other = dict(kw, mel=torch.randn_like(kw["mel"]), ref=torch.randn_like(kw["ref"]))
    assert torch.allclose(model(**kw, drop_audio=yes), model(**dict(kw, mel=other["mel"]), drop_audio=yes), atol=1e-6)
    assert torch.allclose(model(**kw, drop_ref=yes, drop_audio=yes), model(**other, drop_ref=yes, drop_audio=yes), atol=1e-6)
    assert not torch.allclose(model(**kw, drop_audio=no), model(**dict(kw, mel=other["mel"]), drop_audio=no), atol=1e-4)
    mixed = model(**kw, drop_ref=torch.tensor([True, False]), drop_audio=torch.tensor([True, False]))
    assert torch.allclose(mixed[0], model(**kw, drop_ref=yes, drop_audio=yes)[0], atol=1e-5)
    assert torch.allclose(mixed[1], model(**kw, drop_ref=no, drop_audio=no)[1], atol=1e-5)


def test_a_partial_reference_drop_blanks_only_the_chosen_tokens():
    cfg = tiny_cfg()
    model, kw = perturbed(cfg), inputs(cfg)
    n = cfg.dit.grid**2
    every, none = torch.ones(2, n, dtype=torch.bool), torch.zeros(2, n, dtype=torch.bool)
    assert torch.equal(model(**kw, ref_drop=every), model(**kw, drop_ref=torch.tensor([True, True])))  # all of it: no reference
    assert torch.equal(model(**kw, ref_drop=none), model(**kw))
    part = none.clone()
    part[:, n // 2 :] = True  # the lower half of the reference, as a mouth drop would
    other = dict(kw, ref=kw["ref"].clone())
    other["ref"][..., cfg.dit.latent_size // 2 :, :] += 1.0  # changed only where the dropped tokens lie
    torch.testing.assert_close(model(**kw, ref_drop=part), model(**other, ref_drop=part))
    assert not torch.allclose(model(**kw), model(**other), atol=1e-4)


def test_cond_hook_adds_to_the_timestep_embedding():
    cfg = tiny_cfg()
    model, kw = perturbed(cfg), inputs(cfg)
    zero = torch.zeros(2, cfg.dit.width)
    assert torch.equal(model(**kw), model(**kw, cond=zero))
    assert not torch.allclose(model(**kw), model(**kw, cond=zero + 1.0), atol=1e-4)


def test_tiny_preset_stays_small():
    cfg = preset("tiny")
    n = count_params(build_teacher(cfg))
    assert 3e6 < n < 7e6, n
    assert cfg.dit.grid**2 == 64  # tokens per frame
    base = preset("base")
    assert base.ae.image_size == 512 and base.dit.latent_size * base.ae.downsample == 512


def test_teacher_checkpoint_round_trips(tmp_path):
    cfg = tiny_cfg()
    model, ae = perturbed(cfg), Autoencoder(cfg.ae)
    save_checkpoint(tmp_path / "autoencoder", AUTOENCODER_KIND, cfg.ae, ae.state_dict())
    save_checkpoint(tmp_path / "teacher", TEACHER_KIND, cfg, model.state_dict(), meta={"command": "test"})
    loaded, codec, cfg2 = load_teacher(tmp_path)
    kw = inputs(cfg)
    assert cfg2 == cfg
    assert torch.equal(loaded(**kw), model(**kw))
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    assert torch.equal(codec.decode(codec.encode(x)), ae.eval().decode(ae.encode(x)))


def test_wrong_kind_is_refused(tmp_path):
    from fada_stream.checkpoint import CheckpointError

    cfg = tiny_cfg()
    save_checkpoint(tmp_path / "teacher", AUTOENCODER_KIND, cfg.ae, Autoencoder(cfg.ae).state_dict())
    with pytest.raises(CheckpointError):
        load_teacher(tmp_path)


def test_an_audio_aware_decoder_must_hear_the_window_the_audio_encoder_hears(tmp_path):
    # The decoder is handed the mel the denoiser's window carries: a decoder trained with a longer look-ahead would
    # need audio the stream has not read yet, so such a folder is refused at load, not half-way through a stream.
    import dataclasses

    from fada_stream.checkpoint import CheckpointError

    cfg = tiny_cfg()
    save_checkpoint(tmp_path / "teacher", TEACHER_KIND, cfg, perturbed(cfg).state_dict())
    fits = dataclasses.replace(cfg.ae, ref_channels=(4, 4, 8, 8), audio_channels=4)
    save_checkpoint(tmp_path / "autoencoder", AUTOENCODER_KIND, fits, Autoencoder(fits).state_dict())
    assert load_teacher(tmp_path)[1].audio_aware
    greedy = dataclasses.replace(fits, audio_ahead=cfg.audio.lookahead_mel + 4)
    save_checkpoint(tmp_path / "autoencoder", AUTOENCODER_KIND, greedy, Autoencoder(greedy).state_dict())
    with pytest.raises(CheckpointError, match="mel windows"):
        load_teacher(tmp_path)
