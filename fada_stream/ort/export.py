"""Export a checkpoint folder's networks to ONNX: the denoiser (one sampler step's velocity, with the
student's CFG tokens), the audio encoder and the latent decoder, each with a dynamic batch.

    export_checkpoint("fada_stream/assets/teacher", "out/onnx")   # or: python -m distill.export

The denoiser graph takes the audio encoder's tokens rather than the log-mel, so a sampler encodes a
window's audio once and runs only the DiT at each step. Every graph is validated by onnx.checker and
described, with the checkpoint's weight hashes, in `onnx.json` beside the files: the runtime
(`fada_stream/ort/runtime.py`) uses a folder only when that manifest matches the checkpoint it serves.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from fada_stream.checkpoint import CheckpointError, sha256_file
from fada_stream.model import STUDENT_KIND, TEACHER_KIND, load_student, load_teacher

log = logging.getLogger(__name__)

MANIFEST = "onnx.json"
FORMAT = "fada-stream-onnx"
EXPORT_VERSION = 1  # bump when the graphs' inputs or outputs change
OPSET = 18
MAX_BATCH = 256  # the batch dimension's upper bound in the graphs (3 guidance branches x many windows)
_SOURCES = ("model/dit.py", "model/student.py", "model/audio_encoder.py", "model/autoencoder.py", "ort/export.py")


class DenoiserGraph(nn.Module):
    """The velocity network with every optional input made explicit (ONNX graphs have fixed inputs)."""

    def __init__(self, model: nn.Module, tokens: bool):
        super().__init__()
        self.model, self.tokens = model, tokens

    def forward(self, x, t, ref, audio, motion, motion_mask, drop_ref, drop_audio, scales=None):
        """x (B, F, C, h, w), t (B,), ref (B, C, h, w), audio (B, F, A, Da) tokens, motion (B, M, C, h, w),
        motion_mask / drop_ref / drop_audio (B,) bool, scales (B, 2) for token students -> v (B, F, C, h, w)."""
        extra = {"scales": scales} if self.tokens else {}
        return self.model(x, t, ref, motion=motion, motion_mask=motion_mask, drop_ref=drop_ref, drop_audio=drop_audio,
                          audio=audio, **extra)


class DecoderGraph(nn.Module):
    def __init__(self, codec: nn.Module):
        super().__init__()
        self.codec = codec

    def forward(self, latents):
        """(n, C, h, w) standardised latents -> (n, 3, H, W) in [-1, 1]."""
        return self.codec.decode(latents)


def checkpoint_kind(folder: str | Path) -> str:
    folder = Path(folder)
    for name, kind in (("student", STUDENT_KIND), ("teacher", TEACHER_KIND)):
        if (folder / f"{name}.json").is_file():
            return name
    raise CheckpointError(f"{folder}: holds neither student.json nor teacher.json")


def _weights_hash(stem: Path) -> str:
    """The weights' sha256 as the checkpoint's JSON records it (checked on load), else computed."""
    try:
        recorded = json.loads(stem.with_suffix(".json").read_text()).get("weights_sha256")
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{stem}.json: unreadable: {e}") from e
    return recorded or sha256_file(stem.with_suffix(".safetensors"))


def export_key(folder: str | Path) -> str:
    """What an export depends on: the checkpoint's config and weights, the model code, torch's version."""
    folder = Path(folder)
    name = checkpoint_kind(folder)
    h = hashlib.sha256()
    for stem in (folder / name, folder / "autoencoder"):
        if stem.with_suffix(".json").is_file():
            h.update(stem.with_suffix(".json").read_bytes())
            h.update(_weights_hash(stem).encode())
    pkg = Path(__file__).resolve().parents[1]
    for rel in _SOURCES:
        h.update((pkg / rel).read_bytes())
    h.update(f"{EXPORT_VERSION}/{OPSET}/{torch.__version__}".encode())
    return h.hexdigest()


def _export(module: nn.Module, args: tuple, names: list[str], out_name: str, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    chatter = io.StringIO()  # the exporter prints its progress; shown only when it fails
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(chatter):
            warnings.simplefilter("ignore")  # the exporter's deprecation notices, not ours to fix
            prog = torch.onnx.export(module, args, input_names=names, output_names=[out_name], opset_version=OPSET, dynamo=True,
                                     dynamic_shapes=tuple({0: batch} for _ in args), verbose=False)
    except Exception as e:
        raise RuntimeError(f"ONNX export of {path.stem} failed: {e}\n{chatter.getvalue()[-2000:]}") from e
    finally:
        quiet.setLevel(level)
    prog.save(str(path), external_data=False)


def _check(path: Path) -> None:
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def export_checkpoint(folder: str | Path, out: str | Path) -> dict:
    """Write denoiser.onnx, audio_encoder.onnx, decoder.onnx and onnx.json for a teacher or student folder
    into `out` (replaced as a whole, atomically); returns the manifest."""
    folder, out = Path(folder), Path(out)
    name = checkpoint_kind(folder)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise CheckpointError(f"{out}: exists and is not an earlier ONNX export; choose an empty or new folder")
    if name == "student":
        model, codec, scfg = load_student(folder)
        mcfg, tokens, steps = scfg.model, scfg.tokens, scfg.steps
    else:
        model, codec, mcfg = load_teacher(folder)
        tokens, steps = False, None
    if not isinstance(codec, nn.Module) or type(codec).__name__ == "DiffusersAutoencoder":
        raise CheckpointError(f"{folder}: ONNX export covers our own autoencoder only, not {type(codec).__name__}")
    model, codec = model.float().eval(), codec.float().eval()
    dit = model.dit if name == "student" else model
    dit.cfg.backend = "torch"  # the Triton kernels have no ONNX form; this model copy serves only the export

    dc, ac = mcfg.dit, mcfg.audio
    b, f, c, hw, m = 2, dc.frames, dc.latent_channels, dc.grid * dc.patch, dc.motion_frames
    gen = torch.Generator().manual_seed(0)
    mel = torch.randn(b, ac.n_mels, ac.mel_span(f), generator=gen)  # (B, n_mels, T)
    with torch.no_grad():
        audio = dit.audio_encoder(mel)  # (B, F, A, Da)
    den_args = [torch.randn(b, f, c, hw, hw, generator=gen), torch.rand(b, generator=gen), torch.randn(b, c, hw, hw, generator=gen),
                audio, torch.randn(b, m, c, hw, hw, generator=gen), torch.tensor([True, False]), torch.tensor([False, True]),
                torch.tensor([True, False])]
    den_names = ["x", "t", "ref", "audio", "motion", "motion_mask", "drop_ref", "drop_audio"]
    if tokens:
        den_args.append(torch.tensor([[1.5, 2.5], [1.0, 4.0]]))
        den_names.append("scales")

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        graphs = {
            "denoiser": (DenoiserGraph(model, tokens), tuple(den_args), den_names, "v"),
            "audio_encoder": (dit.audio_encoder, (mel,), ["mel"], "audio"),
            "decoder": (DecoderGraph(codec), (torch.randn(3, c, hw, hw, generator=gen),), ["latents"], "images"),
        }
        files = {}
        for gname, (module, args, names, out_name) in graphs.items():
            log.info("exporting %s of %s to ONNX", gname, folder)
            path = tmp / f"{gname}.onnx"
            _export(module, args, names, out_name, path)
            _check(path)
            files[gname] = {"file": path.name, "sha256": sha256_file(path), "inputs": names, "output": out_name}
        manifest = {
            "format": FORMAT, "version": EXPORT_VERSION, "opset": OPSET, "torch": torch.__version__, "key": export_key(folder),
            "source": str(folder.resolve()), "kind": name, "tokens": tokens, "steps": steps, "files": files,
            "shapes": {"frames": f, "motion_frames": m, "latent_channels": c, "latent_size": hw, "n_mels": ac.n_mels,
                       "mel_span": ac.mel_span(f)},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def read_manifest(directory: str | Path, verify: bool = True) -> dict:
    """The manifest of an export folder; with `verify`, every file's sha256 is checked. Raises CheckpointError."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{directory}: no readable {MANIFEST}: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != EXPORT_VERSION:
        raise CheckpointError(f"{directory}: not a fada-stream ONNX export of version {EXPORT_VERSION}")
    for entry in manifest.get("files", {}).values():
        path = directory / Path(entry["file"]).name
        if verify and (not path.is_file() or sha256_file(path) != entry["sha256"]):
            raise CheckpointError(f"{path}: missing or does not match {MANIFEST}")
    if set(manifest.get("files", {})) != {"denoiser", "audio_encoder", "decoder"}:
        raise CheckpointError(f"{directory}: {MANIFEST} lists {sorted(manifest.get('files', {}))}, expected three graphs")
    return manifest
