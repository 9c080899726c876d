import numpy as np
import pytest

RATE = 24000  # what TTS services commonly emit, and what the frameworks' avatar outputs default to


@pytest.fixture(scope="session")
def tts_chunks(speech):
    """tts_chunks(seconds) -> the bundled greeting's first `seconds` as 20 ms int16 chunks at 24 kHz, a TTS's output."""
    from fada_stream.audio import resample

    def chunks(seconds: float) -> list[np.ndarray]:
        pcm = (resample(speech[: int(16000 * seconds)], 16000, RATE) * 32767).astype(np.int16)
        n = RATE // 50
        return [pcm[i : i + n] for i in range(0, len(pcm) - n + 1, n)]

    return chunks
