"""Fused element-wise kernels around the CFG-token conditioning: modulated LayerNorm, gated residual, multi-CFG combine.

Every DiT block normalises its tokens and modulates them with the (shift, scale) that the timestep +
CFG-token embedding produced (adaLN, DiT sec. 3.2), then adds each sub-layer's output back through a
gate. In eager torch each of these is 3-4 kernels and as many round trips to memory; fused, each is
one read of the inputs and one write. The guidance combine fuses the teacher's three velocities.
Triton kernels are in kernels/cfg_token_triton.py, imported on first use.

Modulation broadcasting: shift/scale/gate are (B, C) for every token of a batch entry, or (B, G, C)
for G equal groups of L / G consecutive tokens: the model's per-frame modulation, with the frames'
(B, F, N, C) tokens flattened to (B, F*N, C).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.backend import Backend, eager_launch, use_triton


def _groups(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, C) or (B, G, C) -> (B, G, C), checked against x (B, L, C)."""
    m = m[:, None] if m.ndim == 2 else m
    b, l, c = x.shape
    if m.ndim != 3 or m.shape[0] != b or m.shape[2] != c or l % m.shape[1]:
        raise ValueError(f"modulation of shape {tuple(m.shape)} does not fit tokens {tuple(x.shape)}: need (B, C) or (B, G, C) with G dividing L")
    return m


#################################################################################
#                               Torch references                                #
#################################################################################


def modulated_layer_norm_reference(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LayerNorm(x) (1 + scale) + shift, in the operation order the model has always used."""
    b, l, c = x.shape
    shift, scale = _groups(shift, x), _groups(scale, x)  # (B, G, C)
    g = shift.shape[1]
    h = F.layer_norm(x, (c,), eps=eps).view(b, g, l // g, c)  # (B, G, L/G, C)
    return (h * (1 + scale[:, :, None]) + shift[:, :, None]).view(b, l, c)


def gated_residual_reference(x: torch.Tensor, gate: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x + gate * y (adaLN-Zero's gated residual)."""
    b, l, c = x.shape
    gate = _groups(gate, x)  # (B, G, C)
    g = gate.shape[1]
    return (x.view(b, g, l // g, c) + gate[:, :, None] * y.reshape(b, g, l // g, c)).view(b, l, c)


def multi_cfg_reference(v_uncond: torch.Tensor, v_ref: torch.Tensor, v_full: torch.Tensor, s_ref: float | torch.Tensor, s_audio: float | torch.Tensor) -> torch.Tensor:
    """v(0,0) + s_ref (v(ref,0) - v(0,0)) + s_audio (v(ref,audio) - v(ref,0)) (FADA, arXiv 2412.16915)."""
    return v_uncond + s_ref * (v_ref - v_uncond) + s_audio * (v_full - v_ref)


#################################################################################
#                        Triton kernels as torch operators                      #
#################################################################################


@torch.library.custom_op("fada::modulated_layer_norm", mutates_args=())
def _modulated_layer_norm_op(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    from kernels.cfg_token_triton import modulated_layer_norm_forward

    return modulated_layer_norm_forward(x, shift, scale, eps)


@_modulated_layer_norm_op.register_fake
def _(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("fada::gated_residual", mutates_args=())
def _gated_residual_op(x: torch.Tensor, gate: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from kernels.cfg_token_triton import gated_residual_forward

    return gated_residual_forward(x, gate, y)


@_gated_residual_op.register_fake
def _(x: torch.Tensor, gate: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("fada::multi_cfg_combine", mutates_args=())
def _multi_cfg_op(v_uncond: torch.Tensor, v_ref: torch.Tensor, v_full: torch.Tensor, s_ref: float, s_audio: float) -> torch.Tensor:
    from kernels.cfg_token_triton import multi_cfg_forward

    return multi_cfg_forward(v_uncond, v_ref, v_full, s_ref, s_audio)


@_multi_cfg_op.register_fake
def _(v_uncond: torch.Tensor, v_ref: torch.Tensor, v_full: torch.Tensor, s_ref: float, s_audio: float) -> torch.Tensor:
    return torch.empty_like(v_uncond, memory_format=torch.contiguous_format)


#################################################################################
#                                 Public API                                    #
#################################################################################


def _unit_columns(m: torch.Tensor) -> torch.Tensor:
    return m if m.stride(-1) == 1 else m.contiguous()  # the kernels index channels with unit stride


def modulated_layer_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, *, eps: float = 1e-6, backend: Backend = "auto") -> torch.Tensor:
    """LayerNorm(x) (1 + scale) + shift, without affine LayerNorm weights; x (B, L, C), shift/scale (B, C) or (B, G, C)."""
    if not use_triton(backend, x, shift, scale):
        return modulated_layer_norm_reference(x, shift, scale, eps)
    shift, scale = _unit_columns(_groups(shift, x)), _unit_columns(_groups(scale, x))
    if shift.shape != scale.shape:
        raise ValueError(f"shift {tuple(shift.shape)} and scale {tuple(scale.shape)} must have one shape")
    # x too: the reference image's tokens arrive channel-major ((B, C, N) patches seen as (B, N, C)), and with one
    # batch entry such a view reshapes to (N, C) without a copy, keeping its column stride of N.
    x = _unit_columns(x)
    if eager_launch():
        from kernels.cfg_token_triton import modulated_layer_norm_forward

        return modulated_layer_norm_forward(x, shift, scale, eps)
    return _modulated_layer_norm_op(x, shift, scale, eps)


def gated_residual(x: torch.Tensor, gate: torch.Tensor, y: torch.Tensor, *, backend: Backend = "auto") -> torch.Tensor:
    """x + gate * y for x, y (B, L, C) and gate (B, C) or (B, G, C): the adaLN-Zero residual epilogue."""
    if not use_triton(backend, x, gate, y):
        return gated_residual_reference(x, gate, y)
    if y.shape != x.shape:
        raise ValueError(f"gated_residual: y {tuple(y.shape)} must match x {tuple(x.shape)}")
    gate = _unit_columns(_groups(gate, x))
    if eager_launch():
        from kernels.cfg_token_triton import gated_residual_forward

        return gated_residual_forward(x, gate, y)
    return _gated_residual_op(x, gate, y)


def multi_cfg_combine(
    v_uncond: torch.Tensor,
    v_ref: torch.Tensor,
    v_full: torch.Tensor,
    s_ref: float | torch.Tensor,
    s_audio: float | torch.Tensor,
    *,
    backend: Backend = "auto",
) -> torch.Tensor:
    """v(0,0) + s_ref (v(ref,0) - v(0,0)) + s_audio (v(ref,audio) - v(ref,0)) in one pass over memory.

    The kernel takes scalar scales and three same-shaped, same-dtype velocities; anything else
    (per-sample scale tensors, broadcasting) is the reference's job whatever the backend.
    """
    scalar = isinstance(s_ref, (int, float)) and isinstance(s_audio, (int, float))
    same = v_uncond.shape == v_ref.shape == v_full.shape and v_uncond.dtype == v_ref.dtype == v_full.dtype
    if not (scalar and same and use_triton(backend, v_uncond, v_ref, v_full)):
        return multi_cfg_reference(v_uncond, v_ref, v_full, s_ref, s_audio)
    if eager_launch():
        from kernels.cfg_token_triton import multi_cfg_forward

        return multi_cfg_forward(v_uncond, v_ref, v_full, float(s_ref), float(s_audio))
    return _multi_cfg_op(v_uncond, v_ref, v_full, float(s_ref), float(s_audio))
