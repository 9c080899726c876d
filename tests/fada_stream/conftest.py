import numpy as np
import pytest

from fada_stream.checkpoint import save_checkpoint
from fada_stream.model import TEACHER_KIND, build_teacher, preset
from fada_stream.model.autoencoder import AUTOENCODER_KIND, Autoencoder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, awake):
    """A small random teacher (windows of 6 frames, 2 of them motion): fast enough to run many windows in a test."""
    import torch

    torch.manual_seed(0)
    cfg = preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2)
    model = awake(build_teacher(cfg))
    path = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(path / "autoencoder", AUTOENCODER_KIND, cfg.ae, Autoencoder(cfg.ae).state_dict())
    save_checkpoint(path / "teacher", TEACHER_KIND, cfg, model.state_dict())
    return path


@pytest.fixture(scope="session")
def speech():
    """(N,) float32 16 kHz speech: the bundled greeting sample."""
    from fada_stream.video import read_audio
    from pathlib import Path
    import fada_stream

    return read_audio(Path(fada_stream.__file__).parent / "assets" / "samples" / "greeting.wav", 16000).astype(np.float32)
