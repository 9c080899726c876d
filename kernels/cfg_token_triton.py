"""The fused CFG-token kernels (modulated LayerNorm, gated residual, multi-CFG combine) and launchers.

Memory-bound element-wise work: each kernel reads its inputs once and writes once, computing in fp32.
Structure follows Triton tutorial 05 (layer norm) with a tile of rows per program, because our rows
are short (C = 192 at the tiny preset): one row per program would leave most of a warp idle.
Imported only when a call resolves to the Triton backend (kernels/backend.py).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

_TILE = 4096  # elements per program: enough bytes in flight per SM to approach peak bandwidth


@triton.jit
def _group_rows(rows, L, G):
    """Row r of a (B*L, C) token matrix -> its (b, g) row of a (B, G, C) modulation: b = r // L, g = (r % L) // (L / G)."""
    return rows // L, (rows % L) // (L // G)


@triton.jit
def _modulated_ln_fwd(
    X, SHIFT, SCALE, Y,  # X, Y (R, C) rows with unit column stride; SHIFT, SCALE (B, G, C)
    stride_xr, stride_yr,
    stride_sb, stride_sg,  # SHIFT's batch and group strides (its column stride is 1)
    stride_cb, stride_cg,  # SCALE's
    R, C, L, G,  # rows (B*L), channels, tokens per batch entry, modulation groups per batch entry
    eps,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
    ONE_GROUP: tl.constexpr,  # BLOCK_R divides L / G: a tile's rows share one modulation row, loaded once
):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # (BLOCK_R,)
    cols = tl.arange(0, BLOCK_C)  # (BLOCK_C,)
    mask = (rows[:, None] < R) & (cols[None, :] < C)
    rows64 = rows.to(tl.int64)
    x = tl.load(X + rows64[:, None] * stride_xr + cols[None, :], mask=mask, other=0.0).to(tl.float32)  # (BLOCK_R, BLOCK_C)
    mean = tl.sum(x, 1) / C
    xc = tl.where(mask, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, 1) / C + eps)  # biased variance, as nn.LayerNorm
    if ONE_GROUP:
        b, g = _group_rows(tl.program_id(0).to(tl.int64) * BLOCK_R, L, G)  # scalars
        col_ok = cols < C
        shift = tl.load(SHIFT + b * stride_sb + g * stride_sg + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]  # (1, BLOCK_C)
        scale = tl.load(SCALE + b * stride_cb + g * stride_cg + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    else:
        b, g = _group_rows(rows64, L, G)  # (BLOCK_R,) each
        shift = tl.load(SHIFT + b[:, None] * stride_sb + g[:, None] * stride_sg + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        scale = tl.load(SCALE + b[:, None] * stride_cb + g[:, None] * stride_cg + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    y = xc * rstd[:, None] * (1.0 + scale) + shift
    tl.store(Y + rows64[:, None] * stride_yr + cols[None, :], y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _gated_residual_fwd(
    X, GATE, Y, OUT,  # X, Y, OUT (R, C) contiguous; GATE (B, G, C) with unit column stride
    stride_gb, stride_gg,
    R, C, L, G,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
    ONE_GROUP: tl.constexpr,  # as in _modulated_ln_fwd
):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # (BLOCK_R,)
    cols = tl.arange(0, BLOCK_C)  # (BLOCK_C,)
    mask = (rows[:, None] < R) & (cols[None, :] < C)
    rows64 = rows.to(tl.int64)
    offs = rows64[:, None] * C + cols[None, :]  # (BLOCK_R, BLOCK_C)
    if ONE_GROUP:
        b, g = _group_rows(tl.program_id(0).to(tl.int64) * BLOCK_R, L, G)  # scalars
        gate = tl.load(GATE + b * stride_gb + g * stride_gg + cols, mask=cols < C, other=0.0).to(tl.float32)[None, :]  # (1, BLOCK_C)
    else:
        b, g = _group_rows(rows64, L, G)  # (BLOCK_R,) each
        gate = tl.load(GATE + b[:, None] * stride_gb + g[:, None] * stride_gg + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    x = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)
    y = tl.load(Y + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(OUT + offs, (x + gate * y).to(OUT.dtype.element_ty), mask=mask)


@triton.jit
def _multi_cfg_fwd(
    U, RF, FL, OUT,  # v(0,0), v(ref,0), v(ref,audio), output: N contiguous elements each
    s_ref, s_audio,
    N,
    BLOCK: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,)
    mask = offs < N
    u = tl.load(U + offs, mask=mask).to(tl.float32)
    r = tl.load(RF + offs, mask=mask).to(tl.float32)
    f = tl.load(FL + offs, mask=mask).to(tl.float32)
    tl.store(OUT + offs, (u + s_ref * (r - u) + s_audio * (f - r)).to(OUT.dtype.element_ty), mask=mask)


def _row_tiles(r: int, c: int, rows_per_group: int, config: dict[str, int] | None) -> tuple[dict[str, int], tuple[int]]:
    """Launch parameters for a (R, C) row kernel: about _TILE elements a program unless config names BLOCK_R
    (and num_warps); ONE_GROUP when no tile straddles two modulation rows."""
    block_c = triton.next_power_of_2(c)
    block_r = (config or {}).get("BLOCK_R") or max(1, min(_TILE // block_c, triton.next_power_of_2(r)))
    launch = dict(BLOCK_R=block_r, BLOCK_C=block_c, ONE_GROUP=rows_per_group % block_r == 0)
    if config and "num_warps" in config:
        launch["num_warps"] = config["num_warps"]
    return launch, (triton.cdiv(r, block_r),)


def modulated_layer_norm_forward(
    x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float, config: dict[str, int] | None = None,
) -> torch.Tensor:
    """x (B, L, C), shift/scale (B, G, C) with unit column stride -> LayerNorm(x) (1 + scale) + shift, (B, L, C).
    config: BLOCK_R and num_warps, for kernels.bench --sweep."""
    b, l, c = x.shape
    x2 = x.reshape(b * l, c)  # (R, C); copies only if x's rows cannot be strided
    y = torch.empty_like(x2)  # (R, C)
    g = shift.shape[1]
    launch, grid = _row_tiles(b * l, c, l // g, config)
    _modulated_ln_fwd[grid](
        x2, shift, scale, y, x2.stride(0), y.stride(0), shift.stride(0), shift.stride(1), scale.stride(0), scale.stride(1),
        b * l, c, l, g, eps, **launch,
    )
    return y.view(b, l, c)


def gated_residual_forward(x: torch.Tensor, gate: torch.Tensor, y: torch.Tensor, config: dict[str, int] | None = None) -> torch.Tensor:
    """x, y (B, L, C), gate (B, G, C) -> x + gate * y, (B, L, C)."""
    b, l, c = x.shape
    x, y = x.contiguous(), y.contiguous()
    out = torch.empty_like(x)  # (B, L, C)
    g = gate.shape[1]
    launch, grid = _row_tiles(b * l, c, l // g, config)
    _gated_residual_fwd[grid](x, gate, y, out, gate.stride(0), gate.stride(1), b * l, c, l, g, **launch)
    return out


def multi_cfg_forward(u: torch.Tensor, r: torch.Tensor, f: torch.Tensor, s_ref: float, s_audio: float) -> torch.Tensor:
    """u + s_ref (r - u) + s_audio (f - r), element-wise over same-shaped tensors."""
    u, r, f = u.contiguous(), r.contiguous(), f.contiguous()
    out = torch.empty_like(u)
    n = u.numel()
    _multi_cfg_fwd[(triton.cdiv(n, _TILE),)](u, r, f, out, s_ref, s_audio, n, BLOCK=_TILE)
    return out
