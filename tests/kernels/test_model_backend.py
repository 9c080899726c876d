"""The denoiser's backend switch: old checkpoints load, the torch path is the previous math bit for bit, Triton matches it."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import fada_stream
from fada_stream.model import ModelConfig, build_teacher, from_dict, load_teacher, preset
from fada_stream.model.dit import FinalLayer, VideoDiTBlock

TEACHER = Path(fada_stream.__file__).parent / "assets" / "teacher"
FIRST_TEACHER = Path(__file__).resolve().parents[2] / "checkpoints" / "teacher-first"


def _inputs(cfg, b=1, seed=1):
    g = torch.Generator().manual_seed(seed)
    f, m, c, s = cfg.dit.frames, cfg.dit.motion_frames, cfg.dit.latent_channels, cfg.dit.latent_size
    return dict(
        x=torch.randn(b, f, c, s, s, generator=g), t=torch.rand(b, generator=g), ref=torch.randn(b, c, s, s, generator=g),
        mel=torch.randn(b, cfg.audio.n_mels, cfg.audio.mel_span(f), generator=g) - 5, motion=torch.randn(b, m, c, s, s, generator=g),
    )


def _previous_block_forward(self, x, r, a, mod, mod_ref, backend="torch", extra=None, extra_gate=None):
    """VideoDiTBlock.forward before the kernels, verbatim but for nn.LayerNorm -> F.layer_norm (same call); a teacher
    has no extra (CFG) tokens."""
    assert extra is None and extra_gate is None
    def norm(t):
        return F.layer_norm(t, (t.shape[-1],), eps=1e-6)

    def modulate(t, shift, scale):
        return t * (1 + scale) + shift

    def attend(att, x, context=None):
        b, n, d = x.shape
        ctx = x if context is None else context
        q = att.q(x).view(b, n, att.heads, -1).transpose(1, 2)
        k, v = att.kv(ctx).view(b, ctx.shape[1], 2, att.heads, -1).permute(2, 0, 3, 1, 4)
        return att.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))

    b, f, n, d = x.shape
    sa, ca, ga, st, ct, gt, sx, cx, gx, sm, cm, gm = (mod + self.table).unsqueeze(3).unbind(2)
    rs, rc, rg, _, _, _, _, _, _, rsm, rcm, rgm = (mod_ref + self.table).unsqueeze(2).unbind(1)
    hr = modulate(norm(r), rs, rc)
    h = modulate(norm(x), sa, ca).reshape(b * f, n, d)
    keys = torch.cat([h.view(b, f, n, d), hr[:, None].expand(b, f, -1, d)], dim=2).reshape(b * f, -1, d)
    x = x + ga * attend(self.spatial, h, keys).view(b, f, n, d)
    r = r + rg * attend(self.spatial, hr)
    h = modulate(norm(x), st, ct).transpose(1, 2).reshape(b * n, f, d)
    x = x + gt * attend(self.temporal, h).view(b, n, f, d).transpose(1, 2)
    h = modulate(norm(x), sx, cx).reshape(b * f, n, d)
    x = x + gx * attend(self.audio, h, a.reshape(b * f, a.shape[2], a.shape[3])).view(b, f, n, d)
    x = x + gm * self.mlp(modulate(norm(x), sm, cm))
    r = r + rgm * self.mlp(modulate(norm(r), rsm, rcm))
    return x, r


def _previous_final_forward(self, x, c, backend="torch"):
    shift, scale = (self.table + c[:, :, None]).unsqueeze(3).unbind(2)
    return self.linear(F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + scale) + shift)


def test_checkpoints_without_the_field_load_as_auto():
    doc = json.loads((FIRST_TEACHER / "teacher.json").read_text())["config"]  # written before the field existed
    assert "backend" not in doc["dit"]
    assert from_dict(ModelConfig, doc).dit.backend == "auto"
    cfg = preset("tiny", backend="torch")
    assert from_dict(ModelConfig, json.loads(json.dumps(dataclasses.asdict(cfg)))).dit.backend == "torch"


@pytest.mark.slow
def test_bundled_teacher_on_cpu_is_the_previous_math_bit_for_bit(monkeypatch):
    model, _, cfg = load_teacher(TEACHER)
    inputs = _inputs(cfg)
    with torch.no_grad():
        now = model(**inputs)
        monkeypatch.setattr(VideoDiTBlock, "forward", _previous_block_forward)
        monkeypatch.setattr(FinalLayer, "forward", _previous_final_forward)
        before = model(**inputs)
    assert torch.equal(now, before)


@pytest.fixture
def perturbed(awake):
    """perturbed(backend): a small teacher (the same weights for every backend) with non-zero gates and tables."""

    def make(backend):
        cfg = preset("tiny", latent_size=8, width=40, depth=1, heads=2, frames=5, motion_frames=2, backend=backend)
        torch.manual_seed(0)
        return awake(build_teacher(cfg).eval()), cfg

    return make


@pytest.mark.parametrize("b", [1, 2], ids=["one stream", "two branches"])
def test_triton_backend_matches_torch_backend(b, device, perturbed):
    model, cfg = perturbed("triton")
    reference, _ = perturbed("torch")
    inputs = {k: v.to(device) for k, v in _inputs(cfg, b=b).items()}
    drop_audio = torch.tensor([False, True][:b], device=device)
    model.to(device)
    reference.to(device)
    with torch.no_grad():
        v = model(**inputs, drop_audio=drop_audio)
        expected = reference(**inputs, drop_audio=drop_audio)
    torch.testing.assert_close(v, expected, atol=1e-4, rtol=1e-4)


def test_training_takes_the_torch_path_whatever_the_backend(perturbed):
    model, cfg = perturbed("triton")
    reference, _ = perturbed("torch")
    inputs = _inputs(cfg)
    v = model(**inputs)  # autograd on: a forward-only kernel here would fail at backward
    v.square().mean().backward()
    assert torch.equal(v, reference(**inputs))
