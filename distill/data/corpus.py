"""Building a corpus folder: many clips in worker processes, then one manifest.

The manifest is written once, atomically, after every clip has been written, so
a folder either has a complete `manifest.jsonl` or none at all.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from distill.data.synth import Split, SynthConfig, make_clip, write_clip
from distill.data.manifest import read_manifest, write_manifest
from distill.data.video_io import atomic_path

log = logging.getLogger(__name__)
__all__ = ["synth_corpus", "write_photo_references", "read_manifest", "write_manifest"]


def _worker_init() -> None:
    import torch

    # Each worker is one of N processes: more threads per worker only contend for the cores.
    torch.set_num_threads(1)


def _one(job: tuple[str, Split, int, int, SynthConfig]) -> dict[str, Any]:
    out, split, seed, index, cfg = job
    return write_clip(out, make_clip(split, seed, index, cfg))


def synth_corpus(
    out_dir: str | Path,
    split: Split,
    n_clips: int,
    seed: int,
    cfg: SynthConfig = SynthConfig(),
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Generate clips 0..n_clips-1 of `split` into `out_dir` and write the manifest; return its rows."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(out), split, seed, i, cfg) for i in range(n_clips)]
    workers = max(1, min(workers or os.cpu_count() or 1, n_clips))
    rows: list[dict[str, Any]] = []
    if workers == 1:
        for job in jobs:
            rows.append(_one(job))
            if progress:
                progress(1)
    else:
        with mp.get_context("spawn").Pool(workers, initializer=_worker_init) as pool:
            for row in pool.imap(_one, jobs):
                rows.append(row)
                if progress:
                    progress(1)
    if split == "openset":
        write_photo_references(out)
    write_manifest(out, rows)
    return rows


def write_photo_references(out_dir: str | Path, size: int = 128) -> list[Path]:
    """Real photographs as open-set references, from scikit-image's bundled samples when installed.

    These have no talking ground truth; they test how a model treats a face
    unlike anything procedural. Missing scikit-image just means none are written.
    """
    try:
        from skimage import data as skdata
    except ImportError:
        log.info("scikit-image not installed: no photo references written")
        return []
    from PIL import Image

    # (loader, square crop around the face: top, left, side) picked by eye on the sample images.
    crops = {"astronaut": (skdata.astronaut, 20, 150, 200), "cameraman": (skdata.camera, 50, 120, 150)}
    folder = Path(out_dir) / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (load, top, left, side) in crops.items():
        img = np.asarray(load())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        crop = Image.fromarray(img[top : top + side, left : left + side, :3]).resize((size, size), Image.LANCZOS)
        path = folder / f"photo-{name}.png"
        with atomic_path(path) as tmp:
            crop.save(tmp, format="PNG")
        written.append(path)
    return written
