"""Flash attention for the video DiT: a Triton forward kernel on CUDA, torch's SDPA as the reference.

The denoiser attends in three shapes (fada_stream/model/dit.py): spatial self-attention whose keys
append the reference image's tokens (Lk = 2 Lq), temporal attention over 16 frames at each of
B*N positions (short sequences, very many batches), and cross-attention to the frame's few audio
tokens (Lk != Lq). One kernel covers all three: any lengths (masked at the tile edges), head dims up
to 128 (padded to a power of two), fp32/fp16/bf16, and optional key-padding lengths.
The kernel itself is in kernels/attention_triton.py, imported on first use.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.backend import Backend, eager_launch, use_triton

MAX_HEAD_DIM = 128  # a (BLOCK_M, 128) fp32 accumulator per program still fits an SM's registers


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None, kv_lens: torch.Tensor | None = None) -> torch.Tensor:
    """torch's SDPA; without kv_lens exactly the call the model made before the kernels existed."""
    mask = None
    if kv_lens is not None:
        mask = (torch.arange(k.shape[2], device=k.device) < kv_lens.to(k.device)[:, None])[:, None, None]  # (B, 1, 1, Lk)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)  # (B, H, Lq, D)


@torch.library.custom_op("fada::flash_attention", mutates_args=())
def _flash_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, kv_lens: torch.Tensor | None) -> torch.Tensor:
    from kernels.attention_triton import attention_forward

    return attention_forward(q, k, v, scale, kv_lens)


@_flash_attention_op.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, kv_lens: torch.Tensor | None) -> torch.Tensor:
    return q.new_empty(q.shape)  # (B, H, Lq, D), contiguous like the kernel's output


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    scale: float | None = None,
    kv_lens: torch.Tensor | None = None,
    backend: Backend = "auto",
) -> torch.Tensor:
    """softmax(q k^T * scale) v for q (B, H, Lq, D), k and v (B, H, Lk, D) -> (B, H, Lq, D).

    scale defaults to 1/sqrt(D), as SDPA's. kv_lens (B,) ints: keys at positions >= kv_lens[b] are
    padding and ignored (each length >= 1). Inputs may be strided views (the model's transposed
    heads): the kernel reads them in place. The Triton path is forward-only; see kernels/backend.py
    for how `backend` resolves.
    """
    if not use_triton(backend, q, k, v):
        return attention_reference(q, k, v, scale, kv_lens)
    d = q.shape[-1]
    if d > MAX_HEAD_DIM or k.shape[-1] != d or v.shape[-1] != d:
        raise ValueError(f"flash_attention: head dims must match and be <= {MAX_HEAD_DIM}; got q {d}, k {k.shape[-1]}, v {v.shape[-1]}")
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3]:
        raise ValueError(f"flash_attention: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} disagree on (B, H) or Lk")
    if not (q.dtype == k.dtype == v.dtype and q.dtype in (torch.float32, torch.float16, torch.bfloat16)):
        raise ValueError(f"flash_attention: q, k, v must share one of fp32/fp16/bf16; got {q.dtype}, {k.dtype}, {v.dtype}")
    scale = d**-0.5 if scale is None else scale
    if eager_launch():
        from kernels.attention_triton import attention_forward

        return attention_forward(q, k, v, scale, kv_lens)
    return _flash_attention_op(q, k, v, scale, kv_lens)
