"""Autoencoder: 8x down / 4 channels, standardised latents, the LatentCodec protocol, checkpoints."""
import importlib.util

import pytest
import torch

from fada_stream.checkpoint import save_checkpoint
from fada_stream.model import Autoencoder, AutoencoderConfig, DiffusersAutoencoder, LatentCodec, load_autoencoder
from fada_stream.model.autoencoder import AUTOENCODER_KIND, images_to_unit, unit_to_images


def test_shapes_and_protocol():
    ae = Autoencoder(AutoencoderConfig()).eval()
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (2, 4, 16, 16) and ae.downsample == 8
    y = ae.decode(z)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert isinstance(ae, LatentCodec)


def test_latent_standardisation_is_inverted_by_decode():
    ae = Autoencoder(AutoencoderConfig()).eval()
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    raw = ae.encode_raw(x)
    mean, std = torch.tensor([0.5, -1.0, 0.0, 2.0]), torch.tensor([2.0, 0.5, 1.0, 3.0])
    ae.set_latent_stats(mean, std)
    z = ae.encode(x)
    assert torch.allclose(z, (raw - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1), atol=1e-6)
    assert torch.allclose(ae.decode(z), ae.decode_raw(raw).clamp(-1, 1), atol=1e-5)
    assert ae.cfg.latent_std == (2.0, 0.5, 1.0, 3.0)


def test_checkpoint_round_trip_keeps_stats(tmp_path):
    ae = Autoencoder(AutoencoderConfig()).eval()
    ae.set_latent_stats(torch.tensor([0.1, 0.2, 0.3, 0.4]), torch.tensor([1.5, 1.5, 2.0, 2.0]))
    save_checkpoint(tmp_path / "autoencoder", AUTOENCODER_KIND, ae.cfg, ae.state_dict())
    loaded = load_autoencoder(str(tmp_path / "autoencoder"))
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    assert torch.equal(loaded.encode(x), ae.encode(x))


def _reference_aware(plain: Autoencoder) -> Autoencoder:
    """`plain` with a reference-aware decoder added, as `train_autoencoder --ref-channels` builds it."""
    cfg = AutoencoderConfig(**{**plain.cfg.__dict__, "ref_channels": (4, 8, 8, 16)})
    ae = Autoencoder(cfg).eval()
    missing, unexpected = ae.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("decoder.ref.", "decoder.fuse.")) for k in missing)
    return ae


def test_a_reference_aware_decoder_starts_as_the_plain_one_it_extends():
    torch.manual_seed(0)
    plain = Autoencoder(AutoencoderConfig()).eval()
    ae = _reference_aware(plain)
    z, ref = torch.randn(3, 4, 16, 16), torch.rand(1, 3, 128, 128) * 2 - 1
    assert torch.equal(ae.decode(z, ref), plain.decode(z))  # fusions at zero: the reference adds nothing yet
    assert torch.equal(plain.decode(z, ref), plain.decode(z))  # a plain decoder ignores a reference it is given
    assert ae.reference_aware and not plain.reference_aware


def test_a_reference_aware_decoder_draws_from_the_reference_it_is_given(awake):
    torch.manual_seed(1)
    ae = awake(_reference_aware(Autoencoder(AutoencoderConfig()).eval()))
    z = torch.randn(3, 4, 16, 16)
    a, b = torch.rand(1, 3, 128, 128) * 2 - 1, torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        out_a, out_b = ae.decode(z, a), ae.decode(z, b)
        assert (out_a - out_b).abs().max() > 1e-3
        # one reference serves every frame of a call: the same as giving each frame its own copy
        torch.testing.assert_close(out_a, ae.decode(z, a.expand(3, -1, -1, -1)))
        torch.testing.assert_close(out_a, ae.decode(z, a[0]))  # (3, H, W) is taken as one image
    with pytest.raises(ValueError, match="needs the reference"):
        ae.decode(z)


def test_reference_aware_checkpoints_round_trip(tmp_path, awake):
    ae = awake(_reference_aware(Autoencoder(AutoencoderConfig()).eval()))
    save_checkpoint(tmp_path / "autoencoder", AUTOENCODER_KIND, ae.cfg, ae.state_dict())
    loaded = load_autoencoder(str(tmp_path / "autoencoder"))
    z, ref = torch.randn(2, 4, 16, 16), torch.rand(1, 3, 128, 128) * 2 - 1
    assert loaded.cfg.ref_channels == (4, 8, 8, 16)
    with torch.no_grad():
        assert torch.equal(loaded.decode(z, ref), ae.decode(z, ref))


def _audio_aware(ref_aware: Autoencoder) -> Autoencoder:
    """`ref_aware` with an audio-aware decoder added, as `train_autoencoder --audio-channels` builds it."""
    cfg = AutoencoderConfig(**{**ref_aware.cfg.__dict__, "audio_channels": 8})
    ae = Autoencoder(cfg).eval()
    missing, unexpected = ae.load_state_dict(ref_aware.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("decoder.audio.", "decoder.audio_fuse.")) for k in missing)
    return ae


def _span(n: int, cfg: AutoencoderConfig, seed: int = 0) -> torch.Tensor:
    """A log-mel span for n frames, (n_mels, past + 4 n + ahead), speech-like levels."""
    return torch.randn(cfg.audio_mels, cfg.audio_past + cfg.audio_per_frame * n + cfg.audio_ahead,
                       generator=torch.Generator().manual_seed(seed)) * 2 - 4


def test_an_audio_aware_decoder_starts_as_the_decoder_it_extends(awake):
    torch.manual_seed(2)
    base = awake(_reference_aware(Autoencoder(AutoencoderConfig()).eval()))
    ae = _audio_aware(base)
    z, ref = torch.randn(3, 4, 16, 16), torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ae.decode(z, ref, _span(3, ae.cfg)), base.decode(z, ref))  # fusions at zero: no sound yet
        assert torch.equal(base.decode(z, ref, _span(3, ae.cfg)), base.decode(z, ref))  # others ignore the mel
    assert ae.audio_aware and not base.audio_aware


def test_an_audio_aware_decoder_hears_each_frame_through_its_own_window_only(awake):
    # Frame i hears mel frames [4 i, 4 i + W) of the span: the past context before it and the look-ahead after it,
    # no further. Sound beyond that must not move it (the look-ahead bound is latency), sound inside must.
    torch.manual_seed(3)
    ae = awake(_audio_aware(_reference_aware(Autoencoder(AutoencoderConfig()).eval())))
    c = ae.cfg
    n, z, ref = 4, torch.randn(4, 4, 16, 16), torch.rand(1, 3, 128, 128) * 2 - 1
    mel = _span(n, c)
    with torch.no_grad():
        out = ae.decode(z, ref, mel)  # (4, 3, H, W)
        after = mel.clone()
        after[:, 1 * c.audio_per_frame + c.audio_window:] += 3.0  # everything beyond frame 1's window
        moved = ae.decode(z, ref, after)
        assert torch.equal(moved[:2], out[:2])  # frames 0 and 1 do not hear it
        assert (moved[2:] - out[2:]).abs().amax(dim=(1, 2, 3)).min() > 0  # frames 2 and 3 do
        # the span is cut into per-frame windows: giving them directly is the same call
        windows = torch.stack([mel[:, i * c.audio_per_frame : i * c.audio_per_frame + c.audio_window] for i in range(n)])
        assert torch.equal(ae.decode(z, ref, windows), out)
    with pytest.raises(ValueError, match="needs the frames' log-mel"):
        ae.decode(z, ref)
    with pytest.raises(ValueError, match="log-mel span"):
        ae.decode(z, ref, mel[:, :-1])  # a span for another number of frames
    with pytest.raises(ValueError, match="log-mel window a frame"):
        ae.decode(z, ref, windows[..., :-2])  # windows two mel frames short (the convolutions would not notice)
    with pytest.raises(ValueError, match="log-mel window a frame"):
        ae.decode(z, ref, windows[:3])  # a window short of a frame


def test_training_moves_the_decoded_latent_toward_the_one_it_is_given():
    # --mouth-corrupt: `toward` = (weights, latents) blends what the decoder sees; weight 0 changes nothing, weight 1
    # hands it the other latent there, while the returned latent (for the L2 penalty) stays the frame's own.
    torch.manual_seed(6)
    ae = Autoencoder(AutoencoderConfig()).eval()
    x, other = torch.rand(2, 3, 128, 128) * 2 - 1, torch.randn(2, 4, 16, 16)
    with torch.no_grad():
        plain, z = ae(x)
        none, z0 = ae(x, toward=(torch.zeros(2, 1, 16, 16), other))
        full, z1 = ae(x, toward=(torch.ones(2, 1, 16, 16), other))
        assert torch.equal(none, plain) and torch.equal(z0, z) and torch.equal(z1, z)
        torch.testing.assert_close(full, ae.decode_raw(other))


def test_audio_aware_checkpoints_round_trip(tmp_path, awake):
    ae = awake(_audio_aware(_reference_aware(Autoencoder(AutoencoderConfig()).eval())))
    save_checkpoint(tmp_path / "autoencoder", AUTOENCODER_KIND, ae.cfg, ae.state_dict())
    loaded = load_autoencoder(str(tmp_path / "autoencoder"))
    z, ref, mel = torch.randn(2, 4, 16, 16), torch.rand(1, 3, 128, 128) * 2 - 1, _span(2, ae.cfg)
    assert loaded.audio_aware and loaded.cfg.audio_channels == 8
    with torch.no_grad():
        assert torch.equal(loaded.decode(z, ref, mel), ae.decode(z, ref, mel))


def test_image_conversions_round_trip():
    img = torch.randint(0, 256, (2, 128, 128, 3), dtype=torch.uint8)
    assert torch.equal(unit_to_images(images_to_unit(img)), img)


@pytest.mark.skipif(importlib.util.find_spec("diffusers") is not None, reason="diffusers is installed")
def test_diffusers_adapter_says_what_is_missing():
    with pytest.raises(ImportError, match="diffusers"):
        DiffusersAutoencoder("/nonexistent")
