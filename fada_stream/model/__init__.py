"""The teacher's networks: latent autoencoder, audio encoder, video DiT; and loading them from a checkpoint."""
from __future__ import annotations

from pathlib import Path

from fada_stream.checkpoint import CheckpointError, load_checkpoint, load_into
from fada_stream.model.autoencoder import Autoencoder, DiffusersAutoencoder, LatentCodec, load_autoencoder
from fada_stream.model.audio_encoder import AudioEncoder, mel_window, stream_mel
from fada_stream.model.config import PRESETS, AudioConfig, AutoencoderConfig, DiTConfig, ModelConfig, StudentConfig, from_dict, preset
from fada_stream.model.dit import VideoDiT
from fada_stream.model.student import STUDENT_KIND, StudentDiT

TEACHER_KIND = "fada-teacher"

__all__ = [
    "PRESETS", "AudioConfig", "AudioEncoder", "Autoencoder", "AutoencoderConfig", "DiTConfig", "DiffusersAutoencoder",
    "LatentCodec", "ModelConfig", "STUDENT_KIND", "StudentConfig", "StudentDiT", "TEACHER_KIND", "VideoDiT", "build_teacher",
    "from_dict", "load_autoencoder", "load_student", "load_teacher", "mel_window", "preset", "stream_mel",
]


def build_teacher(cfg: ModelConfig) -> VideoDiT:
    return VideoDiT(cfg.dit, cfg.audio)


def _codec(directory: Path, cfg: ModelConfig) -> LatentCodec:
    if cfg.autoencoder == "diffusers":
        return load_autoencoder(cfg.autoencoder_path, kind="diffusers")
    codec = load_autoencoder(str(directory / "autoencoder"), cfg=cfg.ae)
    ae, ac = codec.cfg, cfg.audio
    # An audio-aware decoder hears the mel the denoiser's window carries: its window must be the audio encoder's,
    # or it would need audio the stream has not read yet (look-ahead is latency).
    if codec.audio_aware and not ae.hears(ac):
        raise CheckpointError(f"{directory}/autoencoder: its decoder hears mel windows ({ae.audio_mels} mels, "
                              f"{ae.audio_past} + {ae.audio_per_frame} + {ae.audio_ahead}) unlike the model's audio encoder "
                              f"({ac.n_mels}, {ac.past_mel} + {ac.mel_per_frame} + {ac.lookahead_mel})")
    return codec


def load_teacher(directory: str | Path) -> tuple[VideoDiT, LatentCodec, ModelConfig]:
    """(denoiser, autoencoder, config) from a folder holding teacher.{json,safetensors} and, for our
    autoencoder, autoencoder.{json,safetensors}."""
    directory = Path(directory)
    doc, state, _ = load_checkpoint(directory / "teacher", TEACHER_KIND)
    cfg = from_dict(ModelConfig, doc)
    model = build_teacher(cfg)
    load_into(model, state, str(directory / "teacher"))
    return model.eval(), _codec(directory, cfg), cfg


def load_student(directory: str | Path) -> tuple[StudentDiT, LatentCodec, StudentConfig]:
    """(student, autoencoder, config) from a folder holding student.{json,safetensors} and the autoencoder."""
    directory = Path(directory)
    doc, state, _ = load_checkpoint(directory / "student", STUDENT_KIND)
    cfg = from_dict(StudentConfig, doc)
    model = StudentDiT(cfg)
    load_into(model, state, str(directory / "student"))
    return model.eval(), _codec(directory, cfg.model), cfg
