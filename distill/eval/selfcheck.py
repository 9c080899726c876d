"""How good are the experts? Known answers on held-out corpus clips: true offset 0, audio delayed by k
frames, another clip's audio, a still mouth, the regressor's jaw against metadata, identity against
the clip's own and other identities' references.

These are the figures quoted for the shipped checkpoints (`python -m distill.eval check-experts`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from distill.data.corrupt import shift_audio
from distill.data.video_io import read_mp4
from distill.eval import metrics
from distill.eval.experts import Experts
from distill.eval.identity import embed_faces
from distill.eval.regressor import PARAMS, predict_params
from distill.eval.score import _read_image, sync_curve_of

log = logging.getLogger(__name__)
SPF = 640  # audio samples per video frame: 16 kHz at 25 fps


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Audio zero-padded or cut to n samples."""
    return np.pad(audio, (0, max(0, n - len(audio))))[:n]


def check_experts(data_dir: str | Path, experts: Experts, n_clips: int = 24, shifts: tuple[int, ...] = (-5, -3, -1, 1, 3, 5),
                  progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Per-clip results and a summary over the first `n_clips` high-tier clips of a corpus folder."""
    from distill.data.manifest import read_manifest

    root = Path(data_dir)
    rows = [r for r in read_manifest(root) if r["tier"] == "high" and r.get("split") != "ingest"][:n_clips]
    clips = []
    for r in rows:
        c = read_mp4(root / f"{r['id']}.mp4", fps=25)
        meta = json.loads((root / f"{r['id']}.json").read_text())
        clips.append((r["id"], meta, c.frames, c.audio))
    refs = torch.cat([embed_faces(experts.identity, _read_image(root / f"{cid}.png")) for cid, *_ in clips])  # (C, D)
    ident = [m["identity_id"] for _, m, _, _ in clips]
    out = []
    for i, (cid, meta, frames, audio) in enumerate(clips):
        res: dict[str, Any] = {"id": cid}
        curve, _ = sync_curve_of(frames, audio, experts)
        res["sync_c"], res["sync_d"], res["offset"] = metrics.sync_scores(curve)
        res["shift_offsets"] = {k: metrics.sync_scores(sync_curve_of(frames, shift_audio(audio, -k, SPF), experts)[0])[2] for k in shifts}
        j = (i + 1) % len(clips)
        res["swapped_sync_c"] = metrics.sync_scores(sync_curve_of(frames, fit_length(clips[j][3], len(audio)), experts)[0])[0]
        still = np.repeat(frames[:1], len(frames), axis=0)
        res["still_sync_c"] = metrics.sync_scores(sync_curve_of(still, audio, experts)[0])[0]
        pred = predict_params(experts.regressor, frames)
        n = min(len(frames), len(meta["params"]["jaw"]))
        res["corr"] = {k: metrics.pearson(pred[k][:n], torch.tensor(meta["params"][k][:n])) for k in PARAMS}
        rest = max(0.0, float(predict_params(experts.regressor, _read_image(root / f"{cid}.png"))["jaw"][0]))
        res["closed_in_silence"] = metrics.closed_in_silence(pred["jaw"][:n] - rest, torch.tensor(meta["speaking"][:n]) == 0)
        res["closed_in_silence_raw"] = metrics.closed_in_silence(pred["jaw"][:n], torch.tensor(meta["speaking"][:n]) == 0)
        sims = (embed_faces(experts.identity, frames) @ refs.T).mean(0)  # (C,)
        others = [s for s, name in zip(sims.tolist(), ident) if name != ident[i]]
        res["identity_own"] = float(sims[i])
        res["identity_other_mean"] = float(np.mean(others)) if others else None
        res["identity_other_max"] = float(np.max(others)) if others else None
        out.append(res)
        if progress:
            progress(1)
    return {"clips": out, "summary": summarise(out, shifts)}


def summarise(out: list[dict[str, Any]], shifts: tuple[int, ...]) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        vals = [r[key] for r in out if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    s: dict[str, Any] = {"n_clips": len(out)}
    for key in ("sync_c", "sync_d", "swapped_sync_c", "still_sync_c", "closed_in_silence", "closed_in_silence_raw", "identity_own",
                "identity_other_mean", "identity_other_max"):
        s[key] = mean(key)
    s["offset_within_1"] = float(np.mean([abs(r["offset"]) <= 1 for r in out]))
    s["offset_exact"] = float(np.mean([r["offset"] == 0 for r in out]))
    s["shift_found"] = {k: float(np.mean([r["shift_offsets"][k] == -k for r in out])) for k in shifts}
    s["shift_found_all"] = float(np.mean([r["shift_offsets"][k] == -k for r in out for k in shifts]))
    s["corr"] = {p: float(np.nanmean([r["corr"][p] for r in out])) for p in PARAMS}
    s["identity_own_beats_every_other"] = float(np.mean([r["identity_own"] > (r["identity_other_max"] or -1) for r in out]))
    return s
