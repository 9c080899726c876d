"""Latent autoencoder: 8x down, 4 channels; our own small one, or a diffusers AutoencoderKL from a local path.

Both sides of the interface speak standardised latents (per-channel zero mean, unit variance over
training frames), so the denoiser never knows which autoencoder produced them. Images are
(B, 3, H, W) floats in [-1, 1].
"""
from __future__ import annotations

from dataclasses import asdict, replace
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from fada_stream.model.config import AutoencoderConfig


@runtime_checkable
class LatentCodec(Protocol):
    """What the teacher, the render CLI and the runtime need from an autoencoder."""

    latent_channels: int
    downsample: int

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, C, H/d, W/d) standardised latents."""
        ...

    def decode(self, latents: torch.Tensor, reference: torch.Tensor | None = None, mel: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, h, w) standardised latents -> (B, 3, h*d, w*d) in [-1, 1]. `reference` (1 or B, 3, H, W) in
        [-1, 1] is the reference image the latents were generated from, `mel` the log-mel span of the B frames
        (n_mels, past + 4 B + ahead): a reference- or audio-aware decoder needs them, others ignore them, so callers
        always pass both."""
        ...


#################################################################################
#                                   Our autoencoder                             #
#################################################################################


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))  # (B, ch, H, W)


class Encoder(nn.Module):
    """Strided 3x3 convolutions down a pyramid whose channels double as resolution halves."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        ch = cfg.enc_channels
        layers: list[nn.Module] = [nn.Conv2d(3, ch[0], 3, 1, 1)]
        for cin, cout in zip(ch[:-1], ch[1:]):
            layers += [nn.SiLU(), nn.Conv2d(cin, cout, 3, 2, 1), ResBlock(cout)]
        layers += [nn.SiLU(), nn.Conv2d(ch[-1], cfg.latent_channels, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, C, H/8, W/8)


class ReferencePyramid(nn.Module):
    """The reference image as features at 128, 64, 32 and 16 px (widths `ref_channels`), computed once per
    decode call: a strided pyramid like the encoder's, but it keeps every level, with no bottleneck."""

    def __init__(self, ch: tuple[int, ...]):
        super().__init__()
        self.stem = nn.Conv2d(3, ch[0], 3, 1, 1)
        self.down = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Conv2d(a, b, 3, 2, 1)) for a, b in zip(ch[:-1], ch[1:]))
        self.top = ResBlock(ch[-1])

    def forward(self, ref: torch.Tensor) -> list[torch.Tensor]:
        """(R, 3, H, W) -> [(R, ch[0], H, W), (R, ch[1], H/2, W/2), ...], finest first."""
        feats = [self.stem(ref)]
        for down in self.down:
            feats.append(down(feats[-1]))
        feats[-1] = self.top(feats[-1])
        return feats


class FrameAudio(nn.Module):
    """Each decoded frame's log-mel window -> one embedding: (N, n_mels, W) -> (N, width). Two strided 1-D
    convolutions keep the window's timing (flattened, not pooled): the mouth follows the phoneme at the frame, not
    the window's average."""

    def __init__(self, n_mels: int, window: int, width: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(n_mels, hidden, 3, 2, 1), nn.GELU(), nn.Conv1d(hidden, hidden, 3, 2, 1), nn.GELU())
        t = window
        for _ in range(2):  # two stride-2, kernel-3, pad-1 convolutions
            t = (t - 1) // 2 + 1
        self.proj = nn.Linear(hidden * t, width)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = (mel + 4.0) / 4.0  # log-mel: -11.5 in silence, near 0 in speech -> roughly unit scale (as AudioEncoder)
        return self.proj(F.gelu(self.net(x).flatten(1)))  # (N, width)


def frame_mel_windows(mel: torch.Tensor, n_frames: int, cfg: AutoencoderConfig) -> torch.Tensor:
    """(n_mels, past + per_frame * n + ahead): the mel span of n consecutive frames (as `mel_window` cuts it) ->
    (n, n_mels, W), each frame's own window."""
    need = cfg.audio_past + cfg.audio_per_frame * n_frames + cfg.audio_ahead
    if mel.dim() != 2 or mel.shape[0] != cfg.audio_mels or mel.shape[1] != need:
        raise ValueError(f"an audio-aware decoder needs the ({cfg.audio_mels}, {need}) log-mel span of its {n_frames} "
                         f"frames, got {tuple(mel.shape)}")
    return mel.unfold(-1, cfg.audio_window, cfg.audio_per_frame).transpose(0, 1)  # (n, n_mels, W)


class Decoder(nn.Module):
    """Residual blocks where pixels are few, then 1x1-conv + pixel-shuffle up with shrinking channels.

    The cost sits at 16x16 (256 positions); every doubling of resolution gets a quarter or fewer of
    the channels, so each level costs about the same and the whole decoder a few ms per 128x128
    frame on two CPU cores, which real time at 25 fps needs beside the denoiser.

    With `ref_channels`, each level starts by adding a fusion of its features with the reference's at the
    same resolution: a 3x3 convolution at 16 and 32 px, where a head's small shifts away from the reference
    are a pixel or two, and 1x1 above, where a 3x3 one would cost more than the level itself. The fusions'
    last weights start at zero, so a reference-aware decoder fine-tuned from a plain one starts as it.

    With `audio_channels`, each frame's log-mel window is embedded (`FrameAudio`) and fused the same way at 16 and
    32 px, also from zero (docs/autoencoder.md, "A decoder for under-articulated mouths").
    """

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        ch, nb = cfg.dec_channels, cfg.dec_blocks
        self.stem = nn.Conv2d(cfg.latent_channels, ch[0], 3, 1, 1)
        levels = []
        for i, c in enumerate(ch):
            mods: list[nn.Module] = [ResBlock(c) for _ in range(nb[i])]
            if i + 1 < len(ch):
                mods += [nn.SiLU(), nn.Conv2d(c, 4 * ch[i + 1], 1), nn.PixelShuffle(2), nn.Conv2d(ch[i + 1], ch[i + 1], 3, 1, 1)]
            levels.append(nn.Sequential(*mods))
        self.levels = nn.Sequential(*levels)
        self.out = nn.Conv2d(ch[-1], 3, 3, 1, 1)
        self.ref: ReferencePyramid | None = None
        self.fuse = nn.ModuleList()
        if cfg.ref_channels:
            rch = tuple(reversed(cfg.ref_channels))  # coarsest first, as the decoder's levels
            if len(rch) != len(ch):
                raise ValueError(f"ref_channels needs one width per decoder level ({len(ch)}), got {cfg.ref_channels}")
            self.ref = ReferencePyramid(tuple(cfg.ref_channels))
            for i, (c, r) in enumerate(zip(ch, rch)):
                k = 3 if i < 2 else 1
                conv = nn.Conv2d(c + r, c, k, 1, k // 2)
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
                self.fuse.append(conv)
        # Audio-aware: the frame's audio embedding, broadcast over the grid, fused at 16 and 32 px (3x3, zero-initialised
        # like the reference's, so a fine-tune from a decoder without it starts as that decoder). The residual blocks
        # after each fusion put the sound where the latent's mouth is.
        self.audio: FrameAudio | None = None
        self.audio_fuse = nn.ModuleList()
        self.audio_shape = (cfg.audio_mels, cfg.audio_window)
        if cfg.audio_channels:
            self.audio = FrameAudio(cfg.audio_mels, cfg.audio_window, cfg.audio_channels)
            for c in ch[:2]:
                conv = nn.Conv2d(c + cfg.audio_channels, c, 3, 1, 1)
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
                self.audio_fuse.append(conv)

    def forward(self, z: torch.Tensor, reference: torch.Tensor | None = None, audio: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, C, h, w); reference (1 or B, 3, H, W) for a reference-aware decoder; audio (B, n_mels, W), each
        frame's log-mel window, for an audio-aware one."""
        h = self.stem(z)  # (B, ch[0], h, w)
        if self.ref is None and self.audio is None:
            return self.out(F.silu(self.levels(h)))  # (B, 3, H, W)
        feats: list[torch.Tensor | None] = [None] * len(self.levels)
        if self.ref is not None:
            if reference is None:
                raise ValueError("this autoencoder's decoder is reference-aware: decode(latents, reference) needs the reference image")
            feats = self.ref(reference)[::-1]  # coarsest first: (R, r_i, h * 2^i, w * 2^i)
        sound = None
        if self.audio is not None:
            if audio is None:
                raise ValueError("this autoencoder's decoder is audio-aware: decode(latents, reference, mel) needs the "
                                 "frames' log-mel")
            if tuple(audio.shape) != (z.shape[0], *self.audio_shape):
                raise ValueError(f"an audio-aware decoder takes one (n_mels, window) = {self.audio_shape} log-mel window a "
                                 f"frame, ({z.shape[0]}, ...) here; got {tuple(audio.shape)}")
            sound = self.audio(audio)[:, :, None, None]  # (B, A, 1, 1)
        for i, (level, f) in enumerate(zip(self.levels, feats)):
            if f is not None:
                f = f.expand(h.shape[0], -1, -1, -1)  # one reference for every frame
                h = h + self.fuse[i](F.silu(torch.cat([h, f], dim=1)))
            if sound is not None and i < len(self.audio_fuse):
                a = sound.expand(-1, -1, h.shape[2], h.shape[3])  # (B, A, h_i, w_i)
                h = h + self.audio_fuse[i](F.silu(torch.cat([h, a], dim=1)))
            h = level(h)
        return self.out(F.silu(h))  # (B, 3, H, W)


class Autoencoder(nn.Module):
    """Deterministic autoencoder; latents are standardised with statistics stored in its config."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.latent_channels = cfg.latent_channels
        self.downsample = cfg.downsample
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.register_buffer("mean", torch.tensor(cfg.latent_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.latent_std).view(1, -1, 1, 1), persistent=False)

    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Record the raw latents' per-channel statistics (config and buffers), after training."""
        self.cfg.latent_mean = tuple(float(v) for v in mean)
        self.cfg.latent_std = tuple(float(v) for v in std)
        self.mean.copy_(mean.view(1, -1, 1, 1))
        self.std.copy_(std.view(1, -1, 1, 1))

    @property
    def reference_aware(self) -> bool:
        return self.decoder.ref is not None

    @property
    def audio_aware(self) -> bool:
        return self.decoder.audio is not None

    def forward(self, images: torch.Tensor, latent_noise: float = 0.0, reference: torch.Tensor | None = None,
                audio: torch.Tensor | None = None,
                toward: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction (B, 3, H, W), raw latent (B, C, h, w)), noise added before decoding.
        `reference` (B, 3, H, W): each frame's reference image, for a reference-aware decoder; `audio`
        (B, n_mels, W): each frame's log-mel window, for an audio-aware one; `toward` (weights (B, 1, h, w), raw
        latents (B, C, h, w)): the decoded latent is moved that far toward those (a corrupted mouth)."""
        z = self.encoder(images)  # (B, C, h, w)
        zd = z if toward is None else z + toward[0] * (toward[1] - z)  # (B, C, h, w)
        return self.decoder(zd + latent_noise * torch.randn_like(z), reference, audio), z

    def encode_raw(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)  # (B, C, h, w)

    def decode_raw(self, z: torch.Tensor, reference: torch.Tensor | None = None, audio: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z, reference, audio)  # (B, 3, H, W)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return (self.encoder(images) - self.mean) / self.std  # (B, C, h, w)

    def decode(self, latents: torch.Tensor, reference: torch.Tensor | None = None, mel: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, h, w) -> (B, 3, H, W); `reference` (1 or B, 3, H, W) is used by a reference-aware decoder only,
        `mel` by an audio-aware one: the log-mel span of the B consecutive frames, (n_mels, past + 4 B + ahead) as
        `mel_window` cuts it, or each frame's own window, (B, n_mels, W)."""
        if reference is not None and reference.dim() == 3:
            reference = reference[None]
        ref = reference.to(latents.dtype) if self.reference_aware and reference is not None else None
        audio = None
        if self.audio_aware:
            if mel is None:
                raise ValueError("this autoencoder's decoder is audio-aware: decode(latents, reference, mel) needs the frames' log-mel")
            audio = (mel if mel.dim() == 3 else frame_mel_windows(mel, latents.shape[0], self.cfg)).to(latents.dtype)
        return self.decoder(latents * self.std + self.mean, ref, audio).clamp(-1.0, 1.0)  # (B, 3, H, W)


#################################################################################
#                          diffusers AutoencoderKL adapter                      #
#################################################################################


class DiffusersAutoencoder(nn.Module):
    """A diffusers-style AutoencoderKL loaded from a local folder, behind the LatentCodec interface.

    diffusers is imported only here, so it stays an optional dependency for base-preset users.
    Its own scaling_factor / shift_factor standardise the latents (SD's 0.18215 convention).
    """

    def __init__(self, path: str, dtype: torch.dtype = torch.float32):
        super().__init__()
        try:
            from diffusers import AutoencoderKL
        except ImportError as e:
            raise ImportError("the 'diffusers' autoencoder needs `pip install diffusers`") from e
        self.vae = AutoencoderKL.from_pretrained(path, local_files_only=True, torch_dtype=dtype)
        self.vae.requires_grad_(False)
        cfg = self.vae.config
        self.latent_channels = int(cfg.latent_channels)
        self.downsample = 2 ** (len(cfg.block_out_channels) - 1)
        self.scale = float(getattr(cfg, "scaling_factor", 1.0) or 1.0)
        self.shift = float(getattr(cfg, "shift_factor", 0.0) or 0.0)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        z = self.vae.encode(images.to(self.vae.dtype)).latent_dist.mean  # (B, C, h, w)
        return ((z - self.shift) * self.scale).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, reference: torch.Tensor | None = None, mel: torch.Tensor | None = None) -> torch.Tensor:
        z = latents / self.scale + self.shift  # (B, C, h, w)
        return self.vae.decode(z.to(self.vae.dtype)).sample.float().clamp(-1.0, 1.0)


def images_to_unit(frames: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float in [-1, 1]."""
    return frames.movedim(-1, -3).float() / 127.5 - 1.0


def unit_to_images(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) in [-1, 1] -> (..., H, W, 3) uint8."""
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).movedim(-3, -1)


AUTOENCODER_KIND = "fada-autoencoder"
# The decoder's own shape: a decoder fine-tune may change these and keep the latent space (encoder, statistics).
DECODER_FIELDS = ("dec_channels", "dec_blocks", "ref_channels", "audio_channels", "audio_mels", "audio_past",
                  "audio_per_frame", "audio_ahead")


def latent_space(cfg: AutoencoderConfig) -> dict:
    """What fixes the latents' meaning: the config without the decoder's own fields."""
    return {k: v for k, v in asdict(cfg).items() if k not in DECODER_FIELDS}


def load_autoencoder(path: str, kind: str = "ours", cfg: AutoencoderConfig | None = None) -> nn.Module:
    """Our autoencoder from a checkpoint stem (`<dir>/autoencoder`), or a diffusers one from a local folder.

    `cfg` is a model's copy of the config it was trained with: it fixes what the latents mean (encoder, statistics),
    while the decoder's shape comes from the file itself, since a decoder fine-tune swaps only that half.
    """
    if kind == "diffusers":
        return DiffusersAutoencoder(path)
    from fada_stream.checkpoint import load_checkpoint, load_into
    from fada_stream.model.config import from_dict

    doc, state, _ = load_checkpoint(path, AUTOENCODER_KIND)
    own = from_dict(AutoencoderConfig, doc)
    if cfg is not None:
        own = replace(cfg, **{k: getattr(own, k) for k in DECODER_FIELDS})
    ae = Autoencoder(own)
    load_into(ae, state, str(path))
    return ae.eval()
