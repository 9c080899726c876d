"""Distillation losses as pure functions: teacher targets on the student's step grid, ground truth, balance.

Notation: the student takes K Euler steps on the grid t_0 = 1 > t_1 > ... > t_K = 0 (`get_ts(K)`).
For interval k the teacher integrates its guided flow from the same noise through the grid with
`substeps` Euler steps per interval, giving x_k and x_{k+1}; the student must land on x_{k+1} from
x_k in one step:

    L_teacher = || x_k + (t_{k+1} - t_k) v_student(x_k, t_k, s) - x_{k+1} ||^2

(trajectory distillation on the student's own grid, Luhman & Luhman 2021, with the guidance scales
s as an input: FADA's multi-CFG distillation). On `high` clips the ground truth also supervises the
student's last step, unguided (s = (1, 1)): from x_t = (1 - t) x0 + t eps at t = t_{K-1},

    L_gt = || x_t - t v_student(x_t, t, (1, 1)) - x0 ||^2

Two other base methods share the same inputs, for the comparison in docs/distillation.md:
progressive distillation (after Salimans & Ho 2022) is the same regression with a frozen 2K-step
student as the trajectory (`teacher_states` over its velocity; like our trajectory method it starts
from noise, where theirs starts from data noised to t), and consistency distillation (Song et al.
2023, LCM's guided form) maps x at t_{n+1} and the teacher's one-step estimate at t_n on a fine grid
to the same x0 prediction, f(x, t) = x - t v(x, t):

    L_cd = || f_student(x_{t_{n+1}}, t_{n+1}, s) - sg(f_student(x^_{t_n}, t_n, s)) ||^2,
    x^_{t_n} = x_{t_{n+1}} + (t_n - t_{n+1}) v_T(x_{t_{n+1}}),   f(x, 0) = x

and the two are balanced by an adaptive weight, lambda = alpha * EMA(L_teacher) / EMA(L_gt), so the
ground truth contributes a fixed share of the teacher term's size whatever their raw scales
(docs/distillation.md).
"""
from __future__ import annotations

from typing import Callable

import torch

from fada_stream.sampling import BRANCHES
from kernels.cfg_token import multi_cfg_reference

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _repeat(v, k: int):
    return v.repeat(k, *([1] * (v.ndim - 1))) if isinstance(v, torch.Tensor) else v


def guided_velocity(teacher: torch.nn.Module, s_ref: torch.Tensor, s_audio: torch.Tensor, **cond) -> VelocityFn:
    """The teacher's multi-CFG velocity with per-sample scales s_ref, s_audio (B,): 3 branches in one 3B batch."""

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        flags = torch.tensor(BRANCHES, dtype=torch.bool, device=x.device).repeat_interleave(b, 0)  # (3B, 2)
        rep = {k: _repeat(v, 3) for k, v in cond.items()}
        v_uncond, v_ref, v_full = teacher(_repeat(x, 3), t.repeat(3), drop_ref=flags[:, 0], drop_audio=flags[:, 1], **rep).chunk(3)
        return multi_cfg_reference(v_uncond, v_ref, v_full, s_ref.view(-1, 1, 1, 1, 1), s_audio.view(-1, 1, 1, 1, 1))  # (B, F, C, h, w)

    return fn


@torch.no_grad()
def teacher_states(velocity: VelocityFn, noise: torch.Tensor, ts: torch.Tensor, k: int, substeps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x at ts[k], x at ts[k+1]) on the teacher's Euler trajectory from `noise` at ts[0] = 1."""
    x, start = noise, noise
    for j in range(k + 1):
        if j == k:
            start = x
        sub = torch.linspace(float(ts[j]), float(ts[j + 1]), substeps + 1, device=noise.device)
        for i in range(substeps):
            x = x + (sub[i + 1] - sub[i]) * velocity(x, sub[i].expand(x.shape[0]))
    return start, x


def frame_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared error over (C, h, w), averaged over frames with weight (B, F) (0 on given motion frames)."""
    err = (pred.float() - target.float()).square().mean(dim=(2, 3, 4))  # (B, F)
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


def teacher_loss(v: torch.Tensor, x_k: torch.Tensor, x_next: torch.Tensor, t_k: float, t_next: float, weight: torch.Tensor) -> torch.Tensor:
    """L_teacher: the student's one step x_k + (t_{k+1} - t_k) v, v = v_student(x_k, t_k), should land on x_{k+1}."""
    return frame_mse(x_k + (t_next - t_k) * v, x_next, weight)


def gt_loss(v: torch.Tensor, xt: torch.Tensor, x0: torch.Tensor, t: float, weight: torch.Tensor) -> torch.Tensor:
    """L_gt: from xt = (1 - t) x0 + t eps at the last grid time, the student's step xt - t v should give x0.
    (L_cd is the same regression with the consistency target in place of x0.)"""
    return frame_mse(x0_prediction(xt, t, v), x0, weight)


def adaptive_weight(ema_teacher: float, ema_gt: float, alpha: float) -> float:
    """lambda = alpha * EMA(L_teacher) / EMA(L_gt): the ground-truth term's share stays alpha."""
    return alpha * ema_teacher / max(ema_gt, 1e-8)


def x0_prediction(x: torch.Tensor, t: float, v: torch.Tensor) -> torch.Tensor:
    """f(x, t) = x - t v: where one Euler step from t lands at time 0 (a flow model's clean-sample estimate)."""
    return x - t * v


@torch.no_grad()
def consistency_target(teacher: VelocityFn, student: VelocityFn, x_hi: torch.Tensor, t_hi: float, t_lo: float) -> torch.Tensor:
    """sg(f_student(x^, t_lo)), x^ = x_hi + (t_lo - t_hi) v_T(x_hi, t_hi) the teacher's one step; at t_lo = 0, x^ itself
    (the boundary f(x, 0) = x). The student's own stop-gradient estimate is the target (iCT: no EMA copy)."""
    b = x_hi.shape[0]
    x_lo = x_hi + (t_lo - t_hi) * teacher(x_hi, x_hi.new_full((b,), t_hi))  # (B, F, C, h, w)
    if t_lo == 0.0:
        return x_lo
    return x0_prediction(x_lo, t_lo, student(x_lo, x_hi.new_full((b,), t_lo)))

