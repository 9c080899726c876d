"""Audio tokens: bounded look-ahead (the streaming contract), window alignment, silence padding."""
import torch

from fada_stream.model import AudioConfig, AudioEncoder, mel_window, stream_mel
from fada_stream.model.audio_encoder import SILENCE

SPF = 640  # samples per video frame at 16 kHz, 25 fps


def tokens(enc, audio, first, n):
    return enc(mel_window(stream_mel(audio, enc.cfg), first, n, enc.cfg)[None])[0]  # (n, A, D)


def test_lookahead_is_within_the_configured_budget():
    for ms in (0.0, 40.0, 80.0, 120.0):
        cfg = AudioConfig(lookahead_ms=ms)
        assert cfg.lookahead_samples <= ms * 16 or cfg.lookahead_mel == 0
    assert AudioConfig().lookahead_samples <= 80 * 16


def test_audio_beyond_the_lookahead_does_not_change_a_frames_tokens():
    torch.manual_seed(0)
    enc = AudioEncoder(AudioConfig()).eval()
    cfg, n = enc.cfg, 8
    audio = torch.randn(40 * SPF) * 0.1
    base = tokens(enc, audio, 10, n)
    for f in (0, 3, 7):
        limit = (10 + f + 1) * SPF + cfg.lookahead_samples  # first sample frame f may not hear
        changed = audio.clone()
        changed[limit:] = torch.randn(len(audio) - limit)
        out = tokens(enc, changed, 10, n)
        assert torch.equal(out[: f + 1], base[: f + 1])
        inside = audio.clone()
        inside[limit - 40 : limit] += 0.5  # just inside the look-ahead: it is heard
        assert not torch.allclose(tokens(enc, inside, 10, n)[f], base[f])


def test_windows_cut_from_the_stream_match_windows_of_the_whole_clip():
    torch.manual_seed(0)
    enc = AudioEncoder(AudioConfig()).eval()
    audio = torch.randn(30 * SPF) * 0.1
    whole = tokens(enc, audio, 0, 30)
    assert torch.allclose(tokens(enc, audio, 12, 16), whole[12:28], atol=1e-6)


def test_mel_window_outside_the_stream_is_silence():
    cfg = AudioConfig()
    mel = stream_mel(torch.randn(10 * SPF), cfg)
    win = mel_window(mel, 0, 16, cfg)
    assert win.shape == (cfg.n_mels, cfg.mel_span(16))
    assert (win[:, : cfg.past_mel] == SILENCE).all()
    assert (win[:, -4:] == SILENCE).all()
