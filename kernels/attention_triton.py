"""The flash-attention forward kernel (Dao et al. 2022; Triton tutorial 06) and its launcher.

Imported only when a call resolves to the Triton backend (kernels/backend.py), so importing the
package never imports Triton. Under TRITON_INTERPRET=1 the same kernel runs on CPU tensors.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


@triton.jit
def _attn_fwd(
    Q, K, V, O,  # (B, H, Lq, D), (B, H, Lk, D), (B, H, Lk, D), (B, H, Lq, D): any strides
    KV_LENS,  # (B,) int32 valid keys per batch entry; read only when HAS_LENS
    qk_scale,  # softmax scale * log2(e): the kernel exponentiates with exp2, the GPU's native exponential
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_ob, stride_oh, stride_om, stride_od,
    H, LQ, LK, D,  # heads, query and key lengths, head dim (<= BLOCK_D)
    HAS_LENS: tl.constexpr,
    DOT_PRECISION: tl.constexpr,  # "ieee" for fp32 inputs: tf32 would lose 3 decimal digits against torch's fp32
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # Batch-heads on axis 0: its limit is 2**31 - 1, while temporal attention (B*N sequences) can
    # exceed axis 1's 65535.
    pid_bh = tl.program_id(0)
    pid_m = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)  # int64: b * stride overflows int32 on large batches
    h = (pid_bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
    offs_n = tl.arange(0, BLOCK_N)  # (BLOCK_N,)
    offs_d = tl.arange(0, BLOCK_D)  # (BLOCK_D,): padded to a power of two, masked beyond D
    d_ok = offs_d < D

    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd
    q = tl.load(q_ptrs, mask=(offs_m[:, None] < LQ) & d_ok[None, :], other=0.0)  # (BLOCK_M, BLOCK_D)
    kv_len = LK
    if HAS_LENS:
        kv_len = tl.minimum(tl.load(KV_LENS + b), LK)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh

    # Online softmax (Milakov & Gimelshein 2018): running row max m_i and normaliser l_i, so no
    # (Lq, Lk) score matrix is ever stored.
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start_n in range(0, kv_len, BLOCK_N):
        cols = start_n + offs_n  # (BLOCK_N,)
        col_ok = cols < kv_len
        k = tl.load(k_base + cols[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                    mask=col_ok[None, :] & d_ok[:, None], other=0.0)  # (BLOCK_D, BLOCK_N)
        s = tl.dot(q, k, input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N) fp32, log2 units
        s = tl.where(col_ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))  # finite: every block holds at least one valid key
        p = tl.exp2(s - m_new[:, None])  # (BLOCK_M, BLOCK_N)
        alpha = tl.exp2(m_i - m_new)  # rescales what was accumulated under the old max
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd,
                    mask=col_ok[:, None] & d_ok[None, :], other=0.0)  # (BLOCK_N, BLOCK_D)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new
    acc = acc / l_i[:, None]

    o_ptrs = O + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od
    tl.store(o_ptrs, acc.to(O.dtype.element_ty), mask=(offs_m[:, None] < LQ) & d_ok[None, :])


def _config(lq: int, lk: int, d: int) -> dict[str, int]:
    """Tile sizes for our shapes, from kernels.bench --sweep on an H200 (docs/kernels_bench.md): long
    sequences with many keys take 128 x 64 tiles on 8 warps (the base preset's spatial attention: 388
    against 335 TFLOP/s on 4 warps); a handful of keys (audio cross-attention) 64-row tiles (52 against
    62 us); temporal attention's 16-frame sequences tiles no larger than the sequence. 16 is tl.dot's minimum."""
    block_d = max(16, triton.next_power_of_2(d))
    block_m = min(128 if lq >= 512 and lk >= 64 else 64, max(16, triton.next_power_of_2(lq)))
    block_n = min(64, max(16, triton.next_power_of_2(lk)))
    return dict(BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, num_warps=8 if block_m >= 128 else 4, num_stages=3)


def attention_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, kv_lens: torch.Tensor | None, config: dict[str, int] | None = None,
) -> torch.Tensor:
    """softmax(q k^T scale) v for q (B, H, Lq, D), k and v (B, H, Lk, D); returns a contiguous (B, H, Lq, D).

    config overrides _config's tiles (BLOCK_M, BLOCK_N, num_warps, num_stages): kernels.bench --sweep uses it."""
    b, h, lq, d = q.shape
    lk = k.shape[2]
    o = torch.empty(b, h, lq, d, dtype=q.dtype, device=q.device)  # (B, H, Lq, D)
    lens = kv_lens.to(device=q.device, dtype=torch.int32) if kv_lens is not None else o  # o: an unread placeholder pointer
    cfg = {**_config(lq, lk, d), **(config or {})}
    grid = (b * h, triton.cdiv(lq, cfg["BLOCK_M"]))
    _attn_fwd[grid](
        q, k, v, o, lens, scale * math.log2(math.e),
        *q.stride(), *k.stride(), *v.stride(), *o.stride(),
        h, lq, lk, d,
        HAS_LENS=kv_lens is not None,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        **cfg,
    )
    return o
