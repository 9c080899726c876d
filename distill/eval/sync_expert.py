"""SyncNet-style lip-sync expert (Chung & Zisserman 2016): a mouth-video tower and an audio tower
mapping 0.2 s windows to L2-normalised embeddings that are close when lips and sound agree.

Video window t covers frames t..t+4 (5 mouth crops stacked on channels); its audio is mel
frames 4t..4t+19 (4 mel frames per video frame at 25 fps).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distill.eval.crops import crop_box, mouth_box, to_input
from distill.eval.layers import conv_bn

KIND = "sync_expert"


@dataclass(frozen=True)
class SyncConfig:
    mouth_box: tuple[int, int, int, int] = field(default_factory=mouth_box)  # in the 128x128 frame; recorded so scoring crops as training did
    crop_hw: tuple[int, int] = (48, 64)  # the 65x76 lower-face box at ~0.75x: SyncNet-like small input
    n_frames: int = 5  # 0.2 s at 25 fps, SyncNet's window
    mel_per_frame: int = 4  # 100 mel frames/s over 25 video frames/s
    n_mels: int = 80
    video_width: int = 32  # base channels of the video tower
    audio_width: int = 192  # channels of the audio tower
    dim: int = 128  # embedding size

    @property
    def mel_window(self) -> int:
        return self.n_frames * self.mel_per_frame


class VideoTower(nn.Module):
    """(B, n_frames, 3, H, W) in [-1, 1] -> (B, dim) unit vectors; frames stacked on channels (early fusion)."""

    def __init__(self, cfg: SyncConfig):
        super().__init__()
        w = cfg.video_width
        self.net = nn.Sequential(
            conv_bn(3 * cfg.n_frames, w, 2),
            conv_bn(w, 2 * w),
            conv_bn(2 * w, 4 * w, 2),
            conv_bn(4 * w, 4 * w, 2),
            conv_bn(4 * w, 8 * w, 2),
        )
        self.n_features = 8 * w * (cfg.crop_hw[0] // 16) * (cfg.crop_hw[1] // 16)
        self.proj = nn.Linear(self.n_features, cfg.dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1, 2)).flatten(1)  # (B, n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.features(x)), dim=-1)  # (B, dim)


class AudioTower(nn.Module):
    """(B, n_mels, 4 n + 4 (W - 1)) log-mel -> (B, W, dim) unit vectors, one per window at stride 4 mel frames.

    Mel bins are channels of unpadded 1-D convolutions: a stride-4 patch conv makes one token per
    video frame and (n_frames - 1) / 2 kernel-3 convs widen the receptive field to exactly one
    window, so one pass over a long spectrogram embeds every window, each independently of its
    neighbours (the same numbers as embedding the windows one by one).
    """

    def __init__(self, cfg: SyncConfig):
        super().__init__()
        assert cfg.n_frames % 2 == 1, "receptive field grows by 2 tokens per kernel-3 conv"
        c = cfg.audio_width
        layers: list[nn.Module] = [
            nn.BatchNorm1d(cfg.n_mels),  # log-mel sits around -11.5 in silence: learn the input scale
            nn.Conv1d(cfg.n_mels, c, cfg.mel_per_frame, cfg.mel_per_frame, bias=False),
            nn.BatchNorm1d(c),
            nn.ReLU(inplace=True),
        ]
        for _ in range((cfg.n_frames - 1) // 2):
            layers += [nn.Conv1d(c, c, 3, bias=False), nn.BatchNorm1d(c), nn.ReLU(inplace=True)]
        layers += [nn.Conv1d(c, c, 1, bias=False), nn.BatchNorm1d(c), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)
        self.n_features = c
        self.proj = nn.Conv1d(c, cfg.dim, 1)

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel)  # (B, n_features, W)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.features(mel)).transpose(1, 2), dim=-1)  # (B, W, dim)


class SyncExpert(nn.Module):
    def __init__(self, cfg: SyncConfig):
        super().__init__()
        self.cfg = cfg
        self.video = VideoTower(cfg)
        self.audio = AudioTower(cfg)


def mouth_crops(frames: np.ndarray, cfg: SyncConfig) -> torch.Tensor:
    """(T, 128, 128, 3) uint8 -> (T, 3, h, w) expert input."""
    return to_input(crop_box(frames, cfg.mouth_box), cfg.crop_hw)


@torch.no_grad()
def embed_video(model: SyncExpert, crops: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """(T, 3, h, w) crops -> (T - n_frames + 1, dim): window t stacks crops t..t+n_frames-1."""
    n = model.cfg.n_frames
    windows = crops.unfold(0, n, 1).permute(0, 4, 1, 2, 3)  # (T - n + 1, n, 3, h, w)
    return torch.cat([model.video(windows[i : i + chunk]) for i in range(0, len(windows), chunk)])


@torch.no_grad()
def embed_audio(model: SyncExpert, mel: torch.Tensor) -> torch.Tensor:
    """(n_mels, M) -> ((M - mel_window) // mel_per_frame + 1, dim): window t covers mel frames 4t..4t+19."""
    cfg = model.cfg
    n_win = (mel.shape[-1] - cfg.mel_window) // cfg.mel_per_frame + 1
    used = cfg.mel_window + (n_win - 1) * cfg.mel_per_frame
    return model.audio(mel[None, :, :used])[0]  # (n_win, dim)
