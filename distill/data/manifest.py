"""`manifest.jsonl`: one row per clip, written once and atomically after all clips exist."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from distill.data.video_io import atomic_path

MANIFEST = "manifest.jsonl"
_ROW_KEYS = ("id", "split", "tier", "identity_id", "n_frames", "duration", "av_offset_frames")


def manifest_row(meta: dict[str, Any]) -> dict[str, Any]:
    """The manifest's summary of a clip's metadata."""
    row = {k: meta[k] for k in _ROW_KEYS if k in meta}
    row["corruptions"] = [c["kind"] for c in meta.get("corruptions", [])]
    return row


def write_manifest(out_dir: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    path = Path(out_dir) / MANIFEST
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return path


def read_manifest(data_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: generate the corpus with `python -m distill.data synth --out {data_dir}`")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
