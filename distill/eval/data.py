"""A corpus decoded once into memory for training the experts: mouth crops, small frames, log-mel, labels."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from distill.data.video_io import read_mp4
from distill.eval.crops import SIZE, crop_box, resize_frames
from distill.eval.regressor import PARAMS
from fada_stream.features import log_mel

log = logging.getLogger(__name__)


@dataclass
class Corpus:
    """Frames of all clips concatenated; clip c owns frames starts[c]:starts[c + 1]."""

    ids: list[str]
    tiers: list[str]
    identities: list[str]  # identity names; identity[c] indexes this list
    identity: np.ndarray  # (C,) int64 identity index per clip
    starts: np.ndarray  # (C + 1,) int64
    crops: np.ndarray  # (F, h + 2m, w + 2m, 3) uint8 mouth box grown by the jitter margin
    faces: np.ndarray  # (F, S, S, 3) uint8 downscaled frames
    params: np.ndarray  # (F, 7) float32 renderer parameters in PARAMS order
    speaking: np.ndarray  # (F,) bool
    mels: list[torch.Tensor]  # per clip (n_mels, M) log-mel of the mp4's own audio track
    references: np.ndarray  # (C, S, S, 3) uint8 neutral reference image per clip

    def frames_of(self, c: int) -> slice:
        return slice(int(self.starts[c]), int(self.starts[c + 1]))


def load_corpus(
    data_dir: str | Path,
    mouth_box: tuple[int, int, int, int],
    margin: int,
    face_size: int,
    max_clips: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Corpus:
    """Decode every clip of `data_dir/manifest.jsonl` (mp4 frames and audio, JSON labels, PNG reference)."""
    from PIL import Image

    from distill.data.manifest import read_manifest

    root = Path(data_dir)
    rows = read_manifest(root)[:max_clips]
    ids, tiers, id_names, crops, faces, params, speaking, mels, refs = [], [], [], [], [], [], [], [], []
    for row in rows:
        meta = json.loads((root / f"{row['id']}.json").read_text())
        if "params" not in meta:  # an ingested real clip: without ground-truth labels it cannot teach the experts
            log.info("%s: no face parameters, skipped", row["id"])
            continue
        clip = read_mp4(root / f"{row['id']}.mp4", fps=meta["fps"])
        frames = resize_frames(clip.frames, SIZE)
        n = min(len(frames), meta["n_frames"])
        frames = frames[:n]
        ids.append(row["id"])
        tiers.append(meta["tier"])
        id_names.append(meta["identity_id"])
        crops.append(crop_box(frames, mouth_box, margin))
        faces.append(resize_frames(frames, face_size))
        params.append(np.stack([np.asarray(meta["params"][k][:n], np.float32) for k in PARAMS], axis=1))
        speaking.append(np.asarray(meta["speaking"][:n], bool))
        mels.append(log_mel(torch.from_numpy(clip.audio)))
        with Image.open(root / f"{row['id']}.png") as im:
            refs.append(resize_frames(resize_frames(np.asarray(im.convert("RGB"))[None], SIZE), face_size)[0])
        if progress:
            progress(1)
    names = sorted(set(id_names))
    lengths = [len(c) for c in crops]
    log.info("decoded %d clips, %d frames, %d identities from %s", len(ids), sum(lengths), len(names), root)
    return Corpus(
        ids=ids, tiers=tiers, identities=names,
        identity=np.asarray([names.index(i) for i in id_names], np.int64),
        starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        crops=np.concatenate(crops), faces=np.concatenate(faces), params=np.concatenate(params),
        speaking=np.concatenate(speaking), mels=mels, references=np.stack(refs),
    )
