"""How far the onnxruntime backend's outputs are from torch's: per network and for whole windows.

Tolerances (float32 on the CPU; measured errors are ~1e-5, the bounds leave room for other CPUs' kernels):
the denoiser's velocity and the audio tokens within 1e-3 absolute, decoded pixels within 2e-3 of the
[-1, 1] range (under one 8-bit level), a whole window sampled and decoded within 2 levels of 255.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fada_stream.generator import Guidance, WindowModel, frames_mel
from fada_stream.model.autoencoder import images_to_unit

TOLERANCES = {"audio_tokens": 1e-3, "velocity": 1e-3, "decoded": 2e-3, "window_uint8": 2}


def random_window(cfg, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs of one window for `WindowModel.sample`: ref (C, h, w), mel, motion (M, C, h, w), noise (F, C, h, w),
    and ref_image (S, S, 3) uint8 for `WindowModel.decode`."""
    g = torch.Generator().manual_seed(seed)
    f, c, hw = cfg.dit.frames, cfg.dit.latent_channels, cfg.dit.grid * cfg.dit.patch
    s = cfg.ae.image_size
    return {"ref": torch.randn(c, hw, hw, generator=g), "mel": torch.randn(cfg.audio.n_mels, cfg.audio.mel_span(f), generator=g) - 4.0,
            "motion": torch.randn(cfg.dit.motion_frames, c, hw, hw, generator=g), "noise": torch.randn(f, c, hw, hw, generator=g),
            "ref_image": torch.randint(0, 256, (s, s, 3), dtype=torch.uint8, generator=g).numpy()}


@torch.inference_mode()
def compare(torch_model: WindowModel, onnx_model: WindowModel, guidance: Guidance = Guidance(1.5, 2.5), steps: int = 2,
            seed: int = 0) -> dict[str, float]:
    """Max absolute differences between the two backends of one checkpoint, on seeded random inputs."""
    w = random_window(torch_model.cfg, seed)
    mel = w["mel"][None]  # (1, n_mels, T)
    a_t, a_o = torch_model.audio_encoder(mel), onnx_model.audio_encoder(mel)  # (1, F, A, Da)
    x = w["noise"][None].repeat(3, 1, 1, 1, 1)  # (3, F, C, h, w): a batch, as the guidance branches make
    t = torch.tensor([0.9, 0.5, 0.1])
    cond = {"ref": w["ref"][None].expand(3, -1, -1, -1), "audio": a_t.expand(3, -1, -1, -1),
            "motion": w["motion"][None].expand(3, -1, -1, -1, -1), "motion_mask": torch.tensor([True, False, True]),
            "drop_ref": torch.tensor([True, False, False]), "drop_audio": torch.tensor([True, True, False])}
    if getattr(torch_model, "student_cfg", None) is not None and torch_model.student_cfg.tokens:
        cond["scales"] = torch.tensor([[1.0, 1.0], [1.5, 2.5], [2.0, 4.0]])
    elif getattr(torch_model, "student_cfg", None) is None:  # a teacher's graph also takes the mouth drop
        cond["ref_drop"] = torch_model.mouth[None].repeat(3, 1) & torch.tensor([[True], [False], [True]])  # (3, N)
    v_t, v_o = torch_model.model(x, t, **cond), onnx_model.model(x, t, **cond)
    lat = w["noise"][:4]
    img = images_to_unit(torch.from_numpy(w["ref_image"]))[None]  # (1, 3, H, W)
    lat_mel = frames_mel(w["mel"], 0, len(lat), torch_model.cfg.audio)  # (n_mels, mel_span(4)): an audio-aware decoder's
    d_t, d_o = torch_model.codec.decode(lat, img, lat_mel), onnx_model.codec.decode(lat, img, lat_mel)
    windows = []
    for motion in (None, w["motion"]):
        never = lambda: False  # noqa: E731
        a = torch_model.sample(w["ref"], w["mel"], motion, w["noise"], steps, guidance, never)
        b = onnx_model.sample(w["ref"], w["mel"], motion, w["noise"], steps, guidance, never)
        whole = w["mel"]  # every frame of the window decoded: its whole mel span
        windows.append(np.abs(torch_model.decode(a, w["ref_image"], whole).astype(int) - onnx_model.decode(b, w["ref_image"], whole).astype(int)).max())
    return {"audio_tokens": float((a_t - a_o).abs().max()), "velocity": float((v_t - v_o).abs().max()),
            "decoded": float((d_t - d_o).abs().max()), "window_uint8": float(max(windows))}


def within(errors: dict[str, float]) -> bool:
    return all(errors[k] <= TOLERANCES[k] for k in TOLERANCES)


def describe(errors: dict[str, float], path: Path | str = "") -> str:
    rows = [f"{k:<13} max |torch - onnx| {errors[k]:.3g}  (tolerance {TOLERANCES[k]:g})" for k in TOLERANCES]
    return "\n".join(([f"parity of {path}:"] if path else []) + rows)
