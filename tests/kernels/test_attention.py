"""flash_attention: the Triton kernel matches torch's SDPA at the model's three attention shapes and awkward ones."""
import pytest
import torch

from kernels.attention import attention_reference, flash_attention

# (B, H, Lq, Lk, D): odd lengths, Lq != Lk, head dims 32-128 with non-powers of two.
SHAPES = [
    (2, 3, 17, 34, 64),  # spatial: frame tokens + appended reference tokens (Lk = 2 Lq)
    (9, 2, 6, 6, 48),  # temporal: short sequences over many batches
    (3, 2, 19, 7, 80),  # audio cross-attention: a few audio tokens per frame
    (1, 1, 70, 65, 32),  # lengths past one tile, ragged last tiles on both axes
    (1, 2, 5, 23, 96),
    (1, 1, 9, 13, 128),
]


def _qkv(shape, dtype, device, seed=0):
    b, h, lq, lk, d = shape
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=g) for n in (lq, lk, lk))
    return [t.to(device=device, dtype=dtype) for t in (q, k, v)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_matches_sdpa(shape, dtype, device, as_accurate_as_torch):
    q, k, v = _qkv(shape, dtype, device)
    out = flash_attention(q, k, v, backend="triton")
    ref = attention_reference(*(t.double() for t in (q, k, v)))
    assert out.dtype == dtype and out.shape == q.shape
    as_accurate_as_torch(out, attention_reference(q, k, v), ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 Triton needs a GPU (the interpreter lacks bf16 dots)")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_sdpa_bf16(shape, device, as_accurate_as_torch):
    q, k, v = _qkv(shape, torch.bfloat16, device)
    ref = attention_reference(*(t.double() for t in (q, k, v)))
    as_accurate_as_torch(flash_attention(q, k, v, backend="triton"), attention_reference(q, k, v), ref)


def test_key_padding_lengths_ignore_the_padding(device):
    q, k, v = _qkv((3, 2, 11, 21, 40), torch.float32, device)
    lens = torch.tensor([21, 5, 1])
    out = flash_attention(q, k, v, kv_lens=lens, scale=0.3, backend="triton")  # (3, 2, 11, 40)
    for i, n in enumerate(lens.tolist()):
        expected = attention_reference(q[i : i + 1], k[i : i + 1, :, :n], v[i : i + 1, :, :n], scale=0.3)
        torch.testing.assert_close(out[i : i + 1], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, attention_reference(q, k, v, scale=0.3, kv_lens=lens), atol=1e-5, rtol=1e-5)


def test_reads_strided_views_in_place(device):
    """The model hands over heads as transposed views of (B, L, H, D) projections."""
    b, lq, lk, h, d = 2, 13, 26, 3, 64
    q = torch.randn(b, lq, h, d, device=device).transpose(1, 2)  # (B, H, Lq, D), non-contiguous
    kv = torch.randn(b, lk, 2, h, d, device=device).permute(2, 0, 3, 1, 4)  # (2, B, H, Lk, D)
    torch.testing.assert_close(flash_attention(q, kv[0], kv[1], backend="triton"), attention_reference(q, kv[0], kv[1]), atol=1e-5, rtol=1e-5)


def test_auto_on_cpu_is_exactly_sdpa():
    q, k, v = _qkv((2, 3, 17, 34, 64), torch.float32, "cpu")
    assert torch.equal(flash_attention(q, k, v), torch.nn.functional.scaled_dot_product_attention(q, k, v))


def test_rejects_head_dims_past_128(device):
    q, k, v = _qkv((1, 1, 4, 4, 160), torch.float32, device)
    with pytest.raises(ValueError, match="head dims"):
        flash_attention(q, k, v, backend="triton")
