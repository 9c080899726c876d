"""Expert networks: shapes, unit embeddings, the audio tower's one-pass windowing, checkpoint round trip."""
import pytest
import torch

from distill.eval.experts import load_experts, save_expert
from distill.eval.identity import IdentityConfig, IdentityEncoder
from distill.eval.regressor import PARAMS, FaceRegressor, RegressorConfig, predict_params
from distill.eval.sync_expert import SyncConfig, SyncExpert, embed_audio, embed_video

TINY_SYNC = SyncConfig(video_width=4, audio_width=8, dim=8)


def _randomise_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial running statistics so eval-mode BatchNorm is not the identity."""
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_audio_tower_on_a_long_spectrogram_equals_window_by_window():
    torch.manual_seed(0)
    model = _randomise_bn(SyncExpert(TINY_SYNC))
    mel = torch.randn(80, 4 * 30 + 1)  # 30 video frames of log-mel
    seq = embed_audio(model, mel)  # (26, 8)
    assert seq.shape == (26, 8)
    for t in (0, 7, 25):
        one = model.audio(mel[None, :, 4 * t : 4 * t + 20])[0, 0]
        torch.testing.assert_close(seq[t], one, atol=1e-5, rtol=1e-5)
    assert torch.allclose(seq.norm(dim=-1), torch.ones(26))


def test_video_windows_stack_five_consecutive_crops():
    torch.manual_seed(0)
    model = _randomise_bn(SyncExpert(TINY_SYNC))
    crops = torch.randn(12, 3, 48, 64)
    emb = embed_video(model, crops)  # (8, 8)
    assert emb.shape == (8, 8)
    torch.testing.assert_close(emb[3], model.video(crops[None, 3:8])[0], atol=1e-5, rtol=1e-5)


def test_regressor_and_identity_shapes():
    frames = torch.randint(0, 255, (6, 128, 128, 3), dtype=torch.uint8).numpy()
    params = predict_params(FaceRegressor(RegressorConfig(width=4)).eval(), frames)
    assert set(params) == set(PARAMS) and all(v.shape == (6,) for v in params.values())
    enc = IdentityEncoder(IdentityConfig(width=4)).eval()
    from distill.eval.identity import embed_faces

    emb = embed_faces(enc, frames)
    assert emb.shape == (6, 128) and torch.allclose(emb.norm(dim=-1), torch.ones(6))


def test_checkpoints_round_trip_in_fp16(tmp_path):
    torch.manual_seed(0)
    models = [_randomise_bn(SyncExpert(TINY_SYNC)), _randomise_bn(FaceRegressor(RegressorConfig(width=4, target_std=(2.0,) * 7))),
              _randomise_bn(IdentityEncoder(IdentityConfig(width=4)))]
    for m in models:
        save_expert(tmp_path, m, {"command": "test"})
    loaded = load_experts(tmp_path)
    assert loaded.sync.cfg == TINY_SYNC and loaded.regressor.cfg.target_std == (2.0,) * 7
    crops = torch.randn(9, 3, 48, 64)
    torch.testing.assert_close(embed_video(loaded.sync, crops), embed_video(models[0], crops), atol=2e-2, rtol=0)
    for f in tmp_path.iterdir():
        assert f.suffix in {".json", ".safetensors"}


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    from fada_stream.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="needs both"):
        load_experts(tmp_path)
