"""Checkpoints: a safetensors file of weights beside a JSON config, nothing else.

A checkpoint is a pair `<stem>.safetensors` + `<stem>.json`. The JSON records the
kind of model (so a checkpoint of another model is refused before any weight is
touched), its config, and free-form metadata such as the command that made it.
Pickle-based formats are never opened: they can run code on load.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
_PICKLE_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle"}


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, of the wrong kind, or not safetensors."""


def _stem(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.suffix in _PICKLE_SUFFIXES:
        raise CheckpointError(f"{p}: pickle checkpoints are refused (they can execute code); use safetensors + JSON")
    return p.with_suffix("") if p.suffix in {".safetensors", ".json"} else p


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    kind: str,
    config: Any,
    state_dict: dict[str, torch.Tensor],
    meta: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write `<stem>.safetensors` and `<stem>.json` atomically; return the stem.

    `dtype` (e.g. torch.float16) stores floating tensors compactly; they are cast
    back to float32 on load.
    """
    from safetensors.torch import save_file

    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in state_dict.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    cfg = asdict(config) if is_dataclass(config) else dict(config)
    doc = {"format": "fada-stream", "format_version": FORMAT_VERSION, "kind": kind, "config": cfg, "meta": meta or {}}
    weights, header = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    tmp_w = weights.with_name(f".{weights.name}.tmp-{os.getpid()}")
    tmp_h = header.with_name(f".{header.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp_w), metadata={"kind": kind})
        os.chmod(tmp_w, 0o644)  # safetensors creates 0600 files; package data must be readable by every user
        # The JSON names the exact weights it belongs with: a crash between the two renames, or a
        # weights file swapped or truncated later, is caught on load instead of pairing mismatched halves.
        doc["weights_sha256"] = sha256_file(tmp_w)
        tmp_h.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_w, weights)
        os.replace(tmp_h, header)
    finally:
        for tmp in (tmp_w, tmp_h):
            tmp.unlink(missing_ok=True)
    return stem


def load_checkpoint(path: str | os.PathLike, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Return (config, float32 state_dict, meta) of a checkpoint of `kind`, or raise CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    stem = _stem(path)
    weights, header = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not header.is_file() or not weights.is_file():
        raise CheckpointError(f"{stem}: checkpoint needs both {header.name} and {weights.name}")
    try:
        doc = json.loads(header.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{header}: not valid JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != "fada-stream":
        raise CheckpointError(f"{header}: not a fada-stream checkpoint config")
    if doc.get("kind") != kind:
        raise CheckpointError(f"{header}: holds a {doc.get('kind')!r} model, expected {kind!r}")
    expected = doc.get("weights_sha256")
    if expected is not None and sha256_file(weights) != expected:
        raise CheckpointError(f"{weights}: does not match {header.name} (truncated, or from another save)")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: unreadable safetensors file: {e}") from e
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
    return doc.get("config", {}), state, doc.get("meta", {})


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load weights strictly, turning shape/key mismatches into a CheckpointError."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: weights do not match the model its config describes: {e}") from e
