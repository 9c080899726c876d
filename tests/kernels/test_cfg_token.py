"""Fused modulated LayerNorm, gated residual and multi-CFG combine against their torch references."""
import pytest
import torch
import torch.nn.functional as F

from kernels.cfg_token import (
    gated_residual, gated_residual_reference, modulated_layer_norm, modulated_layer_norm_reference, multi_cfg_combine, multi_cfg_reference,
)

DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
# (B, L, C, G): G = None gives (B, C) modulation; otherwise (B, G, C), one row per group of L / G tokens.
# The last two let each row tile lie inside one modulation group (the kernels' ONE_GROUP path); the others straddle.
SHAPES = [(2, 15, 48, None), (3, 12, 96, 3), (1, 7, 130, 7), (2, 40, 192, 4), (2, 128, 64, 2), (1, 64, 256, None)]
SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))


def _tokens(shape, dtype, device, seed=0):
    b, l, c, g = shape
    gen = torch.Generator().manual_seed(seed)
    mod = (b, c) if g is None else (b, g, c)
    x, y = torch.randn(b, l, c, generator=gen) * 3 + 1, torch.randn(b, l, c, generator=gen)  # LayerNorm must remove the offset
    shift, scale = torch.randn(mod, generator=gen), torch.randn(mod, generator=gen)
    return [t.to(device=device, dtype=dtype) for t in (x, y, shift, scale)]


@SHAPE
@DTYPES
def test_modulated_layer_norm_matches_reference(shape, dtype, device, as_accurate_as_torch):
    x, _, shift, scale = _tokens(shape, dtype, device)
    out = modulated_layer_norm(x, shift, scale, backend="triton")
    ref = modulated_layer_norm_reference(x.double(), shift.double(), scale.double())
    assert out.dtype == dtype and out.shape == x.shape
    as_accurate_as_torch(out, modulated_layer_norm_reference(x, shift, scale), ref)


@SHAPE
@DTYPES
def test_gated_residual_matches_reference(shape, dtype, device, as_accurate_as_torch):
    x, y, gate, _ = _tokens(shape, dtype, device)
    ref = gated_residual_reference(x.double(), gate.double(), y.double())
    as_accurate_as_torch(gated_residual(x, gate, y, backend="triton"), gated_residual_reference(x, gate, y), ref)


@DTYPES
@pytest.mark.parametrize("shape", [(2, 16, 4, 3, 3), (4099,)], ids=str)  # a ragged last tile, and more than one tile
def test_multi_cfg_combine_matches_reference(shape, dtype, device, as_accurate_as_torch):
    g = torch.Generator().manual_seed(0)
    u, r, f = (torch.randn(shape, generator=g).to(device=device, dtype=dtype) for _ in range(3))
    ref = multi_cfg_reference(u.double(), r.double(), f.double(), 1.5, 2.5)
    as_accurate_as_torch(multi_cfg_combine(u, r, f, 1.5, 2.5, backend="triton"), multi_cfg_reference(u, r, f, 1.5, 2.5), ref)


def test_modulation_may_be_a_strided_slice(device):
    """The model passes shift/scale as slices of its (B, F, 12, D) modulation table."""
    x, _, _, _ = _tokens((2, 12, 40, 3), torch.float32, device)
    table = torch.randn(2, 3, 12, 40, device=device)  # (B, G, 12, C)
    shift, scale = table[:, :, 4], table[:, :, 7]  # (B, G, C), row stride 12 C
    out = modulated_layer_norm(x, shift, scale, backend="triton")
    torch.testing.assert_close(out, modulated_layer_norm_reference(x, shift, scale), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("b", [1, 2])
def test_tokens_may_be_a_channel_major_view(b, device):
    """The reference image's tokens are its (B, C, N) patch grid seen as (B, N, C); with B = 1 (one stream, the
    student) a row-major reshape keeps that view's column stride, which the kernel must not take for 1."""
    x = torch.randn(b, 40, 12, device=device).transpose(1, 2)  # (B, N, C), strides (C N, 1, N)
    y = torch.randn(b, 40, 12, device=device).transpose(1, 2)
    shift, scale = torch.randn(b, 40, device=device), torch.randn(b, 40, device=device)
    torch.testing.assert_close(modulated_layer_norm(x, shift, scale, backend="triton"),
                               modulated_layer_norm_reference(x, shift, scale), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gated_residual(x, shift, y, backend="triton"), gated_residual_reference(x, shift, y), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rows", [1, 2, 8, 16, 32])
def test_any_row_tile_gives_the_same_result(rows, device):
    """kernels.bench --sweep times other tiles (BLOCK_R rows a program); a tile inside one group of L / G = 8 tokens
    (1, 2, 8) loads the modulation once, one that straddles groups (16, 32) gathers it row by row: all must agree."""
    from kernels.cfg_token_triton import gated_residual_forward, modulated_layer_norm_forward

    x, y, shift, scale = _tokens((2, 24, 40, 3), torch.float32, device)
    torch.testing.assert_close(modulated_layer_norm_forward(x, shift, scale, 1e-6, {"BLOCK_R": rows}),
                               modulated_layer_norm_reference(x, shift, scale), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gated_residual_forward(x, shift, y, {"BLOCK_R": rows}), gated_residual_reference(x, shift, y), atol=1e-5, rtol=1e-5)


def test_references_are_the_models_previous_math():
    """Bit for bit: the CPU path must leave the bundled checkpoint's outputs unchanged."""
    x, y, shift, scale = _tokens((2, 12, 40, 3), torch.float32, "cpu")
    x4, y4 = x.view(2, 3, 4, 40), y.view(2, 3, 4, 40)  # (B, F, N, D), the model's layout
    old_ln = F.layer_norm(x4, (40,), eps=1e-6) * (1 + scale[:, :, None]) + shift[:, :, None]
    assert torch.equal(modulated_layer_norm(x, shift, scale), old_ln.view(2, 12, 40))
    assert torch.equal(gated_residual(x, shift, y), (x4 + shift[:, :, None] * y4).view(2, 12, 40))
    assert torch.equal(multi_cfg_combine(x, y, shift[:, :1], 1.5, 2.5), x + 1.5 * (y - x) + 2.5 * (shift[:, :1] - y))


def test_tensor_scales_fall_back_to_the_reference(device):
    u, r, f = (torch.randn(3, 5, device=device) for _ in range(3))
    s_ref, s_audio = torch.tensor([[1.0], [2.0], [3.0]], device=device), torch.tensor([[0.5], [1.0], [4.0]], device=device)
    assert torch.equal(multi_cfg_combine(u, r, f, s_ref, s_audio, backend="triton"), multi_cfg_reference(u, r, f, s_ref, s_audio))


def test_modulation_must_fit_the_tokens():
    x = torch.randn(2, 10, 8)
    with pytest.raises(ValueError, match="does not fit"):
        modulated_layer_norm(x, torch.randn(2, 3, 8), torch.randn(2, 3, 8))  # 3 groups do not divide 10 tokens
