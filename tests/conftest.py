import pytest
import torch

from fada_stream.checkpoint import save_checkpoint
from fada_stream.model import STUDENT_KIND, TEACHER_KIND, StudentConfig, StudentDiT, build_teacher, preset
from fada_stream.model.autoencoder import AUTOENCODER_KIND, Autoencoder


@pytest.fixture(scope="session")
def awake():
    """awake(model) -> model with its zero-initialised parameters (adaLN-Zero gates, tables, output layers) drawn
    small and random, as training would make them: an untrained DiT's output would not depend on its inputs."""

    def fill(model: torch.nn.Module, std: float = 0.05, seed: int = 0) -> torch.nn.Module:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                if not p.any():
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
        return model

    return fill


@pytest.fixture(autouse=True)
def _denormals_restored():
    """CLIs called in-process (teacher_eval, eval) turn on flush-to-zero for speed, a process-wide CPU state;
    put the default back so no test depends on which ran before it."""
    yield
    torch.set_flush_denormal(False)


@pytest.fixture(scope="session")
def _onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(autouse=True)
def _torch_backend_by_default(monkeypatch, _onnx_cache):
    """"auto" means onnxruntime on the CPU, and its first use of a checkpoint is an ONNX export (seconds for a tiny
    model, ~30 s for the bundled one): tests run torch unless they ask for onnx (tests/fada_stream/ort), and any
    export lands in a per-run cache, never in the user's."""
    monkeypatch.setenv("FADA_STREAM_BACKEND", "torch")
    monkeypatch.setenv("FADA_STREAM_CACHE", str(_onnx_cache))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, awake):
    """A small random teacher (windows of 6 frames, 2 of them motion): fast enough to run many windows in a test."""
    torch.manual_seed(0)
    cfg = preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2)
    model = awake(build_teacher(cfg))
    path = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(path / "autoencoder", AUTOENCODER_KIND, cfg.ae, Autoencoder(cfg.ae).state_dict())
    save_checkpoint(path / "teacher", TEACHER_KIND, cfg, model.state_dict())
    return path


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory, awake):
    """A small random token student (K = 2), its CFG-token embedding awake so the scales matter."""
    torch.manual_seed(1)
    cfg = StudentConfig(model=preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2), steps=2)
    model = awake(StudentDiT(cfg))
    path = tmp_path_factory.mktemp("student")
    save_checkpoint(path / "autoencoder", AUTOENCODER_KIND, cfg.model.ae, Autoencoder(cfg.model.ae).state_dict())
    save_checkpoint(path / "student", STUDENT_KIND, cfg, model.state_dict())
    return path


def _with_decoder(tiny_student, tmp_path_factory, awake, name: str, seed: int, **ae_fields):
    """A copy of the tiny student whose autoencoder has the decoder `ae_fields` ask for, its fusions awake (trained
    ones are not zero)."""
    from fada_stream.model import AutoencoderConfig

    path = tmp_path_factory.mktemp(name)
    for f in tiny_student.glob("student.*"):
        (path / f.name).write_bytes(f.read_bytes())
    torch.manual_seed(seed)
    ae = awake(Autoencoder(AutoencoderConfig(**ae_fields)), std=0.02)
    save_checkpoint(path / "autoencoder", AUTOENCODER_KIND, ae.cfg, ae.state_dict())
    return path


@pytest.fixture(scope="session")
def reference_aware_student(tiny_student, tmp_path_factory, awake):
    """The tiny student with a reference-aware decoder."""
    return _with_decoder(tiny_student, tmp_path_factory, awake, "refdec", 4, ref_channels=(4, 8, 8, 16))


@pytest.fixture(scope="session")
def audio_aware_student(tiny_student, tmp_path_factory, awake):
    """The tiny student with a reference- and audio-aware decoder."""
    return _with_decoder(tiny_student, tmp_path_factory, awake, "audiodec", 5, ref_channels=(4, 8, 8, 16), audio_channels=8)
