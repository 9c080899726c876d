"""Export a checkpoint folder's networks to ONNX: the denoiser (one sampler step's velocity, with the
student's CFG tokens), the audio encoder and the latent decoder, each with a dynamic batch.

    export_checkpoint("fada_stream/assets/teacher", "out/onnx")   # or: python -m distill.export

The denoiser graph takes the audio encoder's tokens rather than the log-mel, so a sampler encodes a
window's audio once and runs only the DiT at each step. Every graph is validated by onnx.checker and
described in `onnx.json` beside the files (each file's sha256, and a key hashing the checkpoint's config and
weights, the model code and the exporter's versions): the runtime (`fada_stream/ort/runtime.py`) uses a folder
only when that key matches the checkpoint it serves.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path

import torch
from torch import nn

from fada_stream.checkpoint import CheckpointError, sha256_file
from fada_stream.model import STUDENT_KIND, TEACHER_KIND, load_student, load_teacher

log = logging.getLogger(__name__)


class OnnxExportError(CheckpointError):
    """An ONNX export or its files are unusable (the checkpoint itself may be fine: torch can still serve it)."""

MANIFEST = "onnx.json"
FORMAT = "fada-stream-onnx"
EXPORT_VERSION = 4  # 2: the decoder of a reference-aware autoencoder takes the reference; 3: an audio-aware one each
# frame's mel window; 4: a teacher's denoiser takes ref_drop (the mouth drop). Bump when the graphs' inputs or outputs change
OPSET = 18
MAX_BATCH = 256  # the batch dimension's upper bound in the graphs (3 guidance branches x many windows)
# What the traced graphs depend on besides the checkpoint: the model code (and the kernels' torch references it
# traces), the feature code, this exporter. Hashed into the cache key so a code change never reuses a stale graph.
_SOURCE_TREES = ("fada_stream/model", "kernels")
_SOURCE_FILES = ("fada_stream/features.py", "fada_stream/ort/export.py")


class DenoiserGraph(nn.Module):
    """The velocity network with every optional input made explicit (ONNX graphs have fixed inputs)."""

    def __init__(self, model: nn.Module, tokens: bool):
        super().__init__()
        self.model, self.tokens = model, tokens

    def forward(self, x, t, ref, audio, motion, motion_mask, drop_ref, drop_audio, last=None):
        """x (B, F, C, h, w), t (B,), ref (B, C, h, w), audio (B, F, A, Da) tokens, motion (B, M, C, h, w),
        motion_mask / drop_ref / drop_audio (B,) bool, then `last`: scales (B, 2) for token students, a teacher's
        ref_drop (B, N) bool (the reference tokens replaced by the null reference's) -> v (B, F, C, h, w)."""
        extra = {"scales": last} if self.tokens else ({} if last is None else {"ref_drop": last})  # a naive student: neither
        return self.model(x, t, ref, motion=motion, motion_mask=motion_mask, drop_ref=drop_ref, drop_audio=drop_audio,
                          audio=audio, **extra)


class DecoderGraph(nn.Module):
    def __init__(self, codec: nn.Module):
        super().__init__()
        self.codec = codec

    def forward(self, latents, reference=None, mel=None):
        """(n, C, h, w) standardised latents [, (1, 3, H, W) reference image in [-1, 1] for a reference-aware
        decoder] [, (n, n_mels, W) each frame's log-mel window for an audio-aware one] -> (n, 3, H, W) in [-1, 1]."""
        return self.codec.decode(latents, reference, mel)


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
    root = Path(__file__).resolve().parents[2]  # the folder holding fada_stream/ and kernels/ (source or site-packages)
    sources = [p for tree in _SOURCE_TREES for p in sorted((root / tree).glob("*.py"))] + [root / f for f in _SOURCE_FILES]
    for path in sources:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    import onnx
    import onnxscript

    h.update(f"{EXPORT_VERSION}/{OPSET}/{torch.__version__}/{onnx.__version__}/{onnxscript.__version__}".encode())
    return h.hexdigest()


def _export(module: nn.Module, args: tuple, names: list[str], out_name: str, path: Path, fixed: tuple[str, ...] = ()) -> None:
    """Export with a dynamic batch dimension on every input but those named in `fixed`."""
    module = module.eval()  # the wrappers are new modules, in training mode by default
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    chatter = io.StringIO()  # the exporter prints its progress; shown only when it fails
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    # stdout and the warning filters are process-wide: quieted only from the main thread (a CLI), never under a
    # server whose other threads are printing or warning meanwhile.
    main = threading.current_thread() is threading.main_thread()
    try:
        with warnings.catch_warnings() if main else contextlib.nullcontext(), torch.no_grad(), \
                contextlib.redirect_stdout(chatter) if main else contextlib.nullcontext():
            if main:
                warnings.simplefilter("ignore")  # the exporter's deprecation notices, not ours to fix
            prog = torch.onnx.export(module, args, input_names=names, output_names=[out_name], opset_version=OPSET, dynamo=True,
                                     dynamic_shapes=tuple(None if n in fixed else {0: batch} for n in names), verbose=False)
    except Exception as e:
        raise OnnxExportError(f"ONNX export of {path.stem} failed: {e}\n{chatter.getvalue()[-2000:]}") from e
    finally:
        quiet.setLevel(level)
    prog.save(str(path), external_data=False)


def _check(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise OnnxExportError(f"{path}: onnx.checker refused the exported graph: {e}") from e


def export_checkpoint(folder: str | Path, out: str | Path) -> dict:
    """Write denoiser.onnx, audio_encoder.onnx, decoder.onnx and onnx.json for a teacher or student folder
    into `out` (a new or empty folder, or an earlier export, which is replaced as a whole); returns the manifest."""
    folder, out = Path(folder), Path(out)
    name = checkpoint_kind(folder)
    _check_replaceable(out, folder)
    if name == "student":
        model, codec, scfg = load_student(folder)
        mcfg, tokens, steps = scfg.model, scfg.tokens, scfg.steps
    else:
        model, codec, mcfg = load_teacher(folder)
        tokens, steps = False, None
    if not isinstance(codec, nn.Module) or type(codec).__name__ == "DiffusersAutoencoder":
        raise OnnxExportError(f"{folder}: ONNX export covers our own autoencoder only, not {type(codec).__name__}")
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
    elif name == "teacher":  # a student's network takes the whole reference (generator.StudentModel.check_guidance)
        den_args.append(torch.rand(b, dc.grid * dc.grid, generator=gen) < 0.5)  # (B, N)
        den_names.append("ref_drop")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))  # unique even across containers
    try:
        graphs = {
            "denoiser": (DenoiserGraph(model, tokens), tuple(den_args), den_names, "v"),
            "audio_encoder": (dit.audio_encoder, (mel,), ["mel"], "audio"),
        }
        dec_args, dec_names = [torch.randn(3, c, hw, hw, generator=gen)], ["latents"]
        if getattr(codec, "reference_aware", False):  # one reference image for every frame of a call
            size = hw * codec.downsample
            dec_args.append(torch.rand(1, 3, size, size, generator=gen) * 2 - 1)
            dec_names.append("reference")
        if getattr(codec, "audio_aware", False):  # each frame's own mel window, cut in torch (OrtCodec.decode)
            if dec_names[-1] != "reference":  # the graph's inputs are positional: mel comes third
                raise OnnxExportError(f"{folder}: an audio-aware decoder without the reference has no ONNX form here")
            dec_args.append(torch.randn(3, codec.cfg.audio_mels, codec.cfg.audio_window, generator=gen))
            dec_names.append("mel")
        graphs["decoder"] = (DecoderGraph(codec), tuple(dec_args), dec_names, "images")
        files = {}
        for gname, (module, args, names, out_name) in graphs.items():
            log.info("exporting %s of %s to ONNX", gname, folder)
            path = tmp / f"{gname}.onnx"
            _export(module, args, names, out_name, path, fixed=("reference",))
            _check(path)
            files[gname] = {"file": path.name, "sha256": sha256_file(path), "inputs": names, "output": out_name}
        manifest = {
            "format": FORMAT, "version": EXPORT_VERSION, "opset": OPSET, "torch": torch.__version__, "key": export_key(folder),
            "source": str(folder.resolve()), "kind": name, "tokens": tokens, "steps": steps, "files": files,
            "shapes": {"frames": f, "motion_frames": m, "latent_channels": c, "latent_size": hw, "n_mels": ac.n_mels,
                       "mel_span": ac.mel_span(f), "ref_tokens": dc.grid * dc.grid},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; an export is as readable as the checkpoint
        _publish(tmp, out, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _check_replaceable(out: Path, folder: Path) -> None:
    """Refuse an `out` that holds anything but an earlier export's own files, or that contains the checkpoint."""
    if not out.exists():
        return
    if not out.is_dir():
        raise OnnxExportError(f"{out}: exists and is not a folder")
    if folder.resolve() == out.resolve() or out.resolve() in folder.resolve().parents:
        raise OnnxExportError(f"{out}: holds the checkpoint {folder}; export into a subfolder such as {folder}/onnx")
    names = set(os.listdir(out))
    if not names:
        return
    try:
        ours = {MANIFEST, *(Path(e["file"]).name for e in read_manifest(out, verify=False)["files"].values())}
    except CheckpointError:
        ours = set()
    if not ours or not names <= ours:
        raise OnnxExportError(f"{out}: exists and is not an earlier ONNX export; choose an empty or new folder")


def _publish(tmp: Path, out: Path, folder: Path) -> None:
    """Move a finished export into place. The old one is moved aside first and deleted after, so a reader never
    sees a half-deleted folder; when another process published meanwhile, its export stands and ours is dropped."""
    if out.exists():
        _check_replaceable(out, folder)
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        try:
            os.replace(out, aside / "export")
        except FileNotFoundError:
            pass  # someone else moved it meanwhile
        try:
            os.replace(tmp, out)
        except OSError:
            if not out.exists():
                raise
        shutil.rmtree(aside, ignore_errors=True)
        return
    try:
        os.replace(tmp, out)
    except OSError:
        if not (out / MANIFEST).is_file():  # not another process's finished export: a real failure
            raise


def read_manifest(directory: str | Path, verify: bool = True) -> dict:
    """The manifest of an export folder; with `verify`, every file's sha256 is checked. Raises CheckpointError."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise OnnxExportError(f"{directory}: no readable {MANIFEST}: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != EXPORT_VERSION:
        raise OnnxExportError(f"{directory}: not a fada-stream ONNX export of version {EXPORT_VERSION}")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {"denoiser", "audio_encoder", "decoder"} or \
            not all(isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("sha256"), str) for e in files.values()):
        raise OnnxExportError(f"{directory}: {MANIFEST} does not list the three graphs with their files and hashes")
    for entry in files.values():
        path = directory / Path(entry["file"]).name
        if verify and (not path.is_file() or sha256_file(path) != entry["sha256"]):
            raise OnnxExportError(f"{path}: missing or does not match {MANIFEST}")
    return manifest
