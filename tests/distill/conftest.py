"""A fake corpus in the real layout (mp4 + wav + png + json + manifest), its cache and a tiny autoencoder.

A coloured disc per identity whose dark mouth opens with the audio's loudness; every third clip is
`moderate`, so distillation's mixed supervision has both tiers.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distill import train_autoencoder, train_teacher
from distill.data.windows import build_cache
from fada_stream.checkpoint import save_checkpoint
from fada_stream.model import TEACHER_KIND, load_teacher

SIZE, FPS, SR = 128, 25, 16000
TINY = dict(width=32, depth=1, heads=2, frames=6, motion_frames=2)  # a DiT that trains in a second


def face(colour: np.ndarray, mouth: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    img = np.full((SIZE, SIZE, 3), 40, np.uint8)
    img[(yy - 64) ** 2 + (xx - 64) ** 2 < 48**2] = colour
    img[((yy - 88) / (2 + 10 * mouth)) ** 2 + ((xx - 64) / 14.0) ** 2 < 1] = (30, 10, 10)
    return img


def make_fake_corpus(out: Path, n_clips: int = 6, n_frames: int = 24) -> Path:
    from distill.data.manifest import write_manifest
    from distill.data.video_io import write_mp4, write_wav

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_clips):
        rng, ident = np.random.default_rng(i), i // 2
        colour = np.random.default_rng(100 + ident).integers(90, 250, 3).astype(np.uint8)
        t = np.arange(n_frames * SR // FPS) / SR
        env = np.clip(np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * t + rng.uniform(0, 6)), 0, None)  # (N,)
        audio = (0.4 * env * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        mouth = env.reshape(n_frames, -1).mean(1)  # (T,)
        cid, tier = f"fake-{i:03d}", "moderate" if i % 3 == 2 else "high"
        write_mp4(out / f"{cid}.mp4", np.stack([face(colour, m) for m in mouth]), audio, fps=FPS)
        write_wav(out / f"{cid}.wav", audio)
        Image.fromarray(face(colour, 0.0)).save(out / f"{cid}.png")
        meta = {"id": cid, "tier": tier, "identity_id": f"id{ident}", "n_frames": n_frames, "fps": FPS,
                "params": {"jaw": [round(float(m), 4) for m in mouth], "yaw": [0.0] * n_frames},
                "speaking": [int(m > 0.2) for m in mouth]}
        (out / f"{cid}.json").write_text(json.dumps(meta))
        rows.append({"id": cid, "tier": tier, "identity_id": meta["identity_id"], "n_frames": n_frames})
    write_manifest(out, rows)
    return out


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return make_fake_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def cache_file(corpus, tmp_path_factory):
    return build_cache(corpus, tmp_path_factory.mktemp("cache") / "high.safetensors", frame_format="jpeg")


@pytest.fixture(scope="session")
def ae_ckpt(cache_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("ae")
    torch.manual_seed(0)
    return train_autoencoder.main(train_autoencoder.TrainConfig(data=str(cache_file), out=str(out), steps=2, batch=4, device="cpu"))


@pytest.fixture(scope="session")
def teacher_dir(cache_file, ae_ckpt, tmp_path_factory, awake):
    """A teacher checkpoint from two training steps, its zero-initialised output layers then randomised: a
    velocity field that depends on every condition, as a trained teacher's does."""
    out = tmp_path_factory.mktemp("teacher")
    train_teacher.main(train_teacher.TrainConfig(data=str(cache_file), autoencoder=str(ae_ckpt), out=str(out), steps=2,
                                                 batch=2, device="cpu", **TINY))
    model, _, cfg = load_teacher(out)
    save_checkpoint(out / "teacher", TEACHER_KIND, cfg, awake(model).state_dict())
    return out


@pytest.fixture(scope="session")
def moderate_cache(corpus, tmp_path_factory):
    return build_cache(corpus, tmp_path_factory.mktemp("mod") / "moderate.safetensors", tier="moderate", frame_format="jpeg")


@pytest.fixture(scope="session")
def torchrun():
    """Run `python -m torch.distributed.run --standalone --nproc_per_node 2 -m MODULE ARGS` from `cwd` (outside the
    checkout, so workers import the installed package, as CI tests it); returns (exit code, stderr)."""

    def run(module: str, args: list[str], cwd: Path) -> tuple[int, str]:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", module, *args]
        # Own session: on a timeout the whole group (launcher and both workers) is killed, not just the launcher.
        proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=100)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        return proc.returncode, err

    return run
