"""The three expert networks as one bundle, loaded from (and saved to) safetensors + JSON checkpoints."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.eval import identity, regressor, sync_expert
from distill.eval.identity import IdentityConfig, IdentityEncoder
from distill.eval.regressor import FaceRegressor, RegressorConfig
from distill.eval.sync_expert import SyncConfig, SyncExpert
from fada_stream.checkpoint import load_checkpoint, load_into, save_checkpoint
from fada_stream.model.config import from_dict

DEFAULT_DIR = Path(__file__).parent / "checkpoints"  # shipped as package data
_FILES = {sync_expert.KIND: (SyncConfig, SyncExpert), regressor.KIND: (RegressorConfig, FaceRegressor),
          identity.KIND: (IdentityConfig, IdentityEncoder)}


@dataclass
class Experts:
    sync: SyncExpert
    regressor: FaceRegressor
    identity: IdentityEncoder


def load_expert(directory: str | Path, kind: str) -> torch.nn.Module:
    """Load `<directory>/<kind>` in eval mode."""
    cfg_cls, model_cls = _FILES[kind]
    path = Path(directory) / kind
    cfg_doc, state, _ = load_checkpoint(path, kind)
    model = model_cls(from_dict(cfg_cls, cfg_doc))
    load_into(model, state, str(path))
    return model.eval()


def load_experts(directory: str | Path = DEFAULT_DIR) -> Experts:
    return Experts(*(load_expert(directory, k) for k in (sync_expert.KIND, regressor.KIND, identity.KIND)))


def save_expert(directory: str | Path, model: torch.nn.Module, meta: dict[str, Any]) -> Path:
    """Write `<directory>/<kind>.safetensors/.json` with fp16 weights (the experts tolerate it; it halves the files)."""
    kind = next(k for k, (_, cls) in _FILES.items() if isinstance(model, cls))
    return save_checkpoint(Path(directory) / kind, kind, model.cfg, model.state_dict(), meta=meta, dtype=torch.float16)
