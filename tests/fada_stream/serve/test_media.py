"""Audio inputs: any file decodes in memory to 48 kHz mono int16; bad uploads are clear errors."""
import io

import av
import numpy as np
import pytest

from fada_stream.serve import media


def encode(fmt: str, codec: str, rate: int = 22050, seconds: float = 0.5) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as box:
        stream = box.add_stream(codec, rate=rate)
        stream.layout = "stereo"
        t = np.arange(int(rate * seconds)) / rate
        pcm = np.stack([np.sin(2 * np.pi * 300 * t)] * 2).astype(np.float32)  # (2, n)
        frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="stereo")
        frame.sample_rate = rate
        box.mux(stream.encode(frame))
        box.mux(stream.encode())
    return buf.getvalue()


@pytest.mark.parametrize("fmt, codec, rate", [("wav", "pcm_s16le", 22050), ("ogg", "libopus", 48000), ("mp3", "libmp3lame", 22050)])
def test_any_audio_file_decodes_from_memory(fmt, codec, rate):
    pcm = media.decode_audio(encode(fmt, codec, rate), 48000)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert abs(len(pcm) - 24000) < 4800  # 0.5 s, give or take codec padding
    assert np.abs(pcm).max() > 10000


def test_bad_uploads_are_audio_input_errors(wav_bytes, monkeypatch):
    with pytest.raises(media.AudioInputError, match="not a readable"):
        media.decode_audio(b"\x00" * 1000, 48000)
    with pytest.raises(media.AudioInputError, match="bytes"):
        media.decode_audio(b"\x00" * (media.MAX_UPLOAD_BYTES + 1), 48000)
    monkeypatch.setattr(media, "MAX_UPLOAD_SECONDS", 0.5)
    with pytest.raises(media.AudioInputError, match="longer than"):
        media.decode_audio(wav_bytes(2.0), 48000)


@pytest.mark.parametrize("fmt, layout", [("s16", "stereo"), ("fltp", "stereo"), ("s16", "mono")])
def test_microphone_frames_become_mono_int16(fmt, layout):
    left, right = np.full(480, 1000), np.full(480, 3000)
    if fmt == "s16":
        data = (np.stack([left, right], 1).reshape(1, -1) if layout == "stereo" else left[None]).astype(np.int16)
    else:
        data = np.stack([left, right]).astype(np.float32) / 32767
    frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
    pcm = media.mono_int16(frame)
    assert pcm.dtype == np.int16 and pcm.shape == (480,)
    assert abs(int(pcm[0]) - (2000 if layout == "stereo" else 1000)) <= 1


def test_bundled_samples_lists_wavs(samples_dir):
    assert list(media.bundled_samples()) == ["hello.wav"]
