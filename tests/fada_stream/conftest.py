import numpy as np
import pytest


@pytest.fixture(scope="session")
def speech():
    """(N,) float32 16 kHz speech: the bundled greeting sample."""
    from fada_stream.video import read_audio
    from pathlib import Path
    import fada_stream

    return read_audio(Path(fada_stream.__file__).parent / "assets" / "samples" / "greeting.wav", 16000).astype(np.float32)
