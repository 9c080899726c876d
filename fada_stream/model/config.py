"""Model configs: one dataclass per component, and the named presets the CLIs offer as choices.

`tiny` is what the package ships and what runs in real time on a 2-core CPU (128x128 at 25 fps);
`base` is the same architecture sized for GPU users training on real 512x512 video.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

C = TypeVar("C")


@dataclass
class AutoencoderConfig:
    image_size: int = 128  # tiny preset resolution, the corpus's
    latent_channels: int = 4  # Stable-Diffusion-like latent: 8x down, 4 channels (issue 3)
    # Encoder widths at 128, 64, 32, 16 px. The encoder runs once per reference and per training
    # frame, never per generated frame, so it may be wider than the decoder.
    enc_channels: tuple[int, ...] = (16, 32, 64, 128)
    # Decoder widths at 16, 32, 64, 128 px: channels shrink as resolution grows, because
    # full-resolution convolutions with many channels are what cost on the CPU (measured on this project's 2-core machine).
    dec_channels: tuple[int, ...] = (128, 64, 24, 12)
    dec_blocks: tuple[int, ...] = (3, 1, 1, 0)  # residual blocks per level: capacity where pixels are few (~5 ms/frame)
    # Reference-aware decoding (empty: off). The decoder also sees the reference image through a small pyramid
    # with these widths at 128, 64, 32, 16 px, fused into each decoder level: the 16x16x4 latent cannot hold a
    # checkerboard or an ink outline, but the reference, which every caller has, does (docs/autoencoder.md).
    # The encoder and the latents are untouched, so the denoisers trained on them stay valid.
    ref_channels: tuple[int, ...] = ()
    # Audio-aware decoding (0: off). The decoder also hears each frame's log-mel window (the audio encoder's
    # geometry: `audio_past` mel frames before the frame, its `audio_per_frame` own, `audio_ahead` after it), embedded
    # to this width and fused at 16 and 32 px: where a generated latent under-articulates the mouth, the decoder can
    # draw it from the sound (docs/autoencoder.md). The window must equal the audio encoder's (`hears`): the decoder is
    # handed the mel the denoiser's window carries, and a longer look-ahead would add latency.
    audio_channels: int = 0
    audio_mels: int = 80
    audio_past: int = 16
    audio_per_frame: int = 4
    audio_ahead: int = 7
    # Latents are standardised per channel by statistics measured after training (like SD's
    # 0.18215), so the diffusion model sees unit-variance inputs; identity until measured.
    latent_mean: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    latent_std: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.enc_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample

    @property
    def audio_window(self) -> int:
        """Mel frames one decoded frame hears."""
        return self.audio_past + self.audio_per_frame + self.audio_ahead

    def hears(self, audio: AudioConfig) -> bool:
        """Whether an audio-aware decoder's mel window is exactly `audio`'s encoder's (what the stream hands it)."""
        return (self.audio_mels, self.audio_past, self.audio_per_frame, self.audio_ahead) == (
            audio.n_mels, audio.past_mel, audio.mel_per_frame, audio.lookahead_mel)


@dataclass
class AudioConfig:
    n_mels: int = 80  # fada_stream.features.log_mel
    mel_per_frame: int = 4  # 100 mel frames/s over 25 video frames/s
    past_mel: int = 16  # 160 ms of past context per frame: coarticulation; costs no latency
    # Audio a frame may hear beyond its own end. 80 ms keeps first-frame latency within budget
    # (architecture.md: latency = (F - M)/fps + look-ahead + compute) yet covers the mouth's
    # anticipation of the next phoneme.
    lookahead_ms: float = 80.0
    width: int = 128  # conv channels of the per-frame encoder
    dim: int = 128  # audio token width the denoiser cross-attends to
    hop: int = 160  # log_mel hop: 10 ms at 16 kHz
    win: int = 400  # log_mel window: a mel frame hears +-200 samples around its centre
    sample_rate: int = 16000

    @property
    def lookahead_mel(self) -> int:
        """Mel frames past a video frame's own 4 whose whole STFT window ends within the look-ahead.

        Frame f's last own mel frame is centred 3 hops after its start and hears win/2 samples past
        its centre; each extra mel frame adds one hop.
        """
        samples = self.lookahead_ms * self.sample_rate / 1000.0
        own_end = (self.mel_per_frame - 1) * self.hop + self.win // 2  # samples heard after frame start
        frame = self.mel_per_frame * self.hop
        return max(0, math.floor((samples - (own_end - frame)) / self.hop))

    @property
    def lookahead_samples(self) -> int:
        """Audio samples after a frame's end that its tokens depend on (<= lookahead_ms)."""
        return (self.mel_per_frame - 1 + self.lookahead_mel) * self.hop + self.win // 2 - self.mel_per_frame * self.hop

    @property
    def window_mel(self) -> int:
        """Mel frames one video frame's encoder sees: past context + its own + look-ahead."""
        return self.past_mel + self.mel_per_frame + self.lookahead_mel

    def mel_span(self, n_frames: int) -> int:
        """Mel frames a window of n_frames video frames needs, from past_mel before its first frame."""
        return self.past_mel + self.mel_per_frame * n_frames + self.lookahead_mel


@dataclass
class DiTConfig:
    latent_channels: int = 4
    latent_size: int = 16  # 128 px / 8
    # Patch 2 -> 8x8 = 64 tokens per frame. Patch 1 would give 256 tokens and ~4x the compute of
    # every linear layer, so even one student pass per window would miss real time on the CPU
    # (measured here: 6.3M params at 64 tokens/frame already cost ~184 ms). A 16-px patch still
    # resolves the mouth in ~2x2 tokens, and the audio cross-attention drives it directly.
    patch: int = 2
    width: int = 192  # ~5M params: a 1-2 pass student + decoder fits in 480 ms per 12 new frames
    depth: int = 6
    heads: int = 3  # head dim 64, as in DiT
    mlp_ratio: float = 4.0
    frames: int = 16  # F: window length at 25 fps (architecture.md)
    motion_frames: int = 4  # M: clean frames carried from the previous window
    # Attention and norm+modulation implementation, an inference-time choice that changes no weights:
    # "auto" runs the Triton kernels (kernels/) on CUDA calls large enough to pay (kernels/backend.py) and
    # the torch reference on CPU and for launch-bound calls,
    # "triton" forces the kernels, "torch" the reference. With autograd on, the model always runs
    # the reference (the kernels are forward-only). Checkpoints older than the field load as "auto".
    backend: Literal["auto", "torch", "triton"] = "auto"

    @property
    def grid(self) -> int:
        return self.latent_size // self.patch


@dataclass
class ModelConfig:
    """Everything a checkpoint needs to rebuild the teacher: autoencoder, audio encoder, denoiser."""

    name: str = "tiny"
    fps: int = 25
    autoencoder: Literal["ours", "diffusers"] = "ours"
    autoencoder_path: str = ""  # local folder of a diffusers AutoencoderKL when autoencoder == "diffusers"
    ae: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)


@dataclass
class StudentConfig:
    """A distilled student: the teacher's networks plus CFG tokens, sampled in `steps` single passes."""

    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 2  # K: Euler steps on the grid get_ts(steps, shift); FADA-Fast uses 6, our target is 2
    shift: float = 1.0
    # CFG tokens: the guidance scales enter as a learned embedding added to the timestep's (adaLN), so one
    # pass gives the guided velocity. False: the naive student, sampled with the teacher's 3-pass CFG.
    tokens: bool = True
    # Where the tokens enter (issue 5 asks to measure which): "adaln" adds their embedding to the timestep's, so
    # it modulates every block; "attn" makes them `cfg_tokens` extra key/value tokens that every frame token
    # attends to in each block's spatial attention (a separate softmax behind a zero-initialised gate, so the
    # student starts as the teacher); "both" does both. Checkpoints older than the field load as "adaln".
    token_mode: Literal["adaln", "attn", "both"] = "adaln"
    cfg_tokens: int = 4
    s_ref_range: tuple[float, float] = (1.0, 2.0)  # scales sampled per example in distillation; runtime stays inside
    s_audio_range: tuple[float, float] = (1.0, 4.0)
    s_ref: float = 1.5  # the runtime's default scales
    s_audio: float = 2.5


def _tiny() -> ModelConfig:
    return ModelConfig()


def _base() -> ModelConfig:
    # 512x512 through a latent autoencoder (ours at 512, or a local SD-style AutoencoderKL):
    # 64x64x4 latents, patch 2 -> 1024 tokens per frame, DiT-B-like width and depth.
    return ModelConfig(
        name="base",
        ae=AutoencoderConfig(image_size=512, enc_channels=(64, 128, 256, 256), dec_channels=(256, 128, 64, 32), dec_blocks=(2, 2, 1, 1)),
        audio=AudioConfig(width=256, dim=256),
        dit=DiTConfig(latent_size=64, width=768, depth=12, heads=12),
    )


PRESETS = {"tiny": _tiny, "base": _base}


def preset(name: str, **dit_overrides: Any) -> ModelConfig:
    """A fresh config of preset `name`, with DiT fields overridden (tests and smoke runs shrink it)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    cfg = PRESETS[name]()
    cfg.dit = dataclasses.replace(cfg.dit, **dit_overrides)
    return cfg


def from_dict(cls: type[C], doc: dict[str, Any]) -> C:
    """Rebuild a (nested) config dataclass from its JSON form; unknown keys are refused."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(doc) - set(fields)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    kwargs = {}
    for k, v in doc.items():
        sub = _dataclass_type(fields[k])
        if sub is not None and isinstance(v, dict):
            v = from_dict(sub, v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)


def _dataclass_type(f: dataclasses.Field) -> type | None:
    t = f.type if not isinstance(f.type, str) else globals().get(f.type)
    return t if dataclasses.is_dataclass(t) else None
