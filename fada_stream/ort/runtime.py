"""onnxruntime behind the window sampler: the exported denoiser, audio encoder and decoder.

The sampling loop (pure functions in fada_stream/sampling.py, the multi-CFG wrapper, cancellation)
stays in Python and is the same for both backends; only the networks' calls change. ONNX files are
not shipped: the first use of a checkpoint exports it (tens of seconds on a small CPU) into
`<checkpoint>/onnx/` when an export there matches, else into the user cache
(`$FADA_STREAM_CACHE`, default `~/.cache/fada-stream`), keyed by a hash of the checkpoint's weights
and config, the model code and torch's version; later starts load it directly.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path

import numpy as np
import torch

from fada_stream.checkpoint import CheckpointError
from fada_stream.model.autoencoder import frame_mel_windows
from fada_stream.ort.export import OnnxExportError, checkpoint_kind, export_checkpoint, export_key, read_manifest

log = logging.getLogger(__name__)

_EXPORT_LOCK = threading.Lock()  # one export per process at a time; other processes wait on the cache's file lock


def cache_root() -> Path:
    env = os.environ.get("FADA_STREAM_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fada-stream"


def _matches(directory: Path, key: str) -> dict | None:
    if not (directory / "onnx.json").is_file():
        return None
    try:
        manifest = read_manifest(directory)
    except CheckpointError as e:
        log.warning("ignoring the ONNX export in %s: %s", directory, e)
        return None
    return manifest if manifest.get("key") == key else None


def ensure_exported(checkpoint: str | Path) -> tuple[Path, dict]:
    """(folder, manifest) of an ONNX export matching `checkpoint`, exporting it into the cache if none does."""
    checkpoint = Path(checkpoint)
    key = export_key(checkpoint)
    beside = checkpoint / "onnx"
    if (manifest := _matches(beside, key)) is not None:
        return beside, manifest
    cached = cache_root() / "onnx" / f"{checkpoint_kind(checkpoint)}-{key[:16]}"
    if (manifest := _matches(cached, key)) is not None:
        return cached, manifest
    cached.parent.mkdir(parents=True, exist_ok=True)
    with _EXPORT_LOCK, open(cached.parent / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # processes sharing the cache export one at a time; the others then load it
        try:
            if (manifest := _matches(cached, key)) is None:
                log.warning("exporting %s to ONNX once (cached in %s)", checkpoint, cached)
                manifest = export_checkpoint(checkpoint, cached)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return cached, manifest


def providers(device: torch.device) -> list[str]:
    """CUDA first when the session asked for a GPU and this onnxruntime build has it, else the CPU."""
    import onnxruntime as ort

    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path: Path, device: torch.device):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()  # the same thread budget the torch backend would use
    opts.inter_op_num_threads = 1
    # Each session has its own worker pool, and spinning workers of one (or torch's) steal the cores the next
    # call needs: measured on 2 cores, a student window took 203 ms spinning, 131 ms not (torch: 182 ms).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: the CUDA provider's fallback notices are not the user's concern
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers(device))
    except Exception as e:  # onnxruntime raises its own exception types for unreadable or invalid graphs
        raise OnnxExportError(f"{path}: onnxruntime cannot load it: {e}") from e


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu").contiguous().numpy()


class OrtDenoiser:
    """The exported denoiser behind the torch module's call signature (what `multi_cfg` and the samplers call).

    Takes the audio encoder's tokens (`audio=`), not the log-mel; optional inputs the graph needs explicitly
    are filled the way the torch module treats their absence (no motion frames, no condition dropped).
    """

    def __init__(self, session, manifest: dict):
        self.session, self.tokens = session, bool(manifest["tokens"])
        self.shapes = manifest["shapes"]
        self.takes_ref_drop = "ref_drop" in {i.name for i in session.get_inputs()}  # a teacher's graph

    def __call__(self, x: torch.Tensor, t: torch.Tensor, ref: torch.Tensor, mel: torch.Tensor | None = None,
                 motion: torch.Tensor | None = None, motion_mask: torch.Tensor | None = None, drop_ref: torch.Tensor | None = None,
                 drop_audio: torch.Tensor | None = None, scales: torch.Tensor | None = None, audio: torch.Tensor | None = None,
                 ref_drop: torch.Tensor | None = None) -> torch.Tensor:
        if audio is None:
            raise ValueError("the ONNX denoiser takes audio tokens (audio=), not the log-mel")
        if self.tokens and scales is None:
            raise ValueError("this student's graph needs the guidance scales (scales=)")
        if ref_drop is not None and not self.takes_ref_drop:
            raise ValueError("this denoiser's graph takes no ref_drop (only a teacher's does)")
        b = x.shape[0]
        no = torch.zeros(b, dtype=torch.bool)
        if motion is None:
            m = self.shapes["motion_frames"]
            motion, motion_mask = torch.zeros(b, m, *x.shape[2:]), no  # (B, M, C, h, w): unused when the mask is False
        feeds = {
            "x": _np(x.float()), "t": _np(t.float().expand(b)), "ref": _np(ref.float()), "audio": _np(audio.float()),
            "motion": _np(motion.float()), "motion_mask": _np(torch.ones(b, dtype=torch.bool) if motion_mask is None else motion_mask),
            "drop_ref": _np(no if drop_ref is None else drop_ref), "drop_audio": _np(no if drop_audio is None else drop_audio),
        }
        if self.tokens:
            feeds["scales"] = _np(scales.float())
        if self.takes_ref_drop:  # (B, N) bool; none dropped, as the torch module treats its absence
            n = self.shapes["ref_tokens"]
            feeds["ref_drop"] = _np(torch.zeros(b, n, dtype=torch.bool) if ref_drop is None else ref_drop.expand(b, n))
        return torch.from_numpy(self.session.run(None, feeds)[0]).to(x.device)  # (B, F, C, h, w)


class OrtAudioEncoder:
    """(B, n_mels, T) log-mel -> (B, F, A, Da) tokens."""

    def __init__(self, session):
        self.session = session

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"mel": _np(mel.float())})[0]).to(mel.device)


class OrtCodec:
    """The latent codec with the exported decoder; encoding (once per reference image) stays in torch."""

    def __init__(self, session, torch_codec):
        self.session, self.torch_codec = session, torch_codec
        self.latent_channels = torch_codec.latent_channels
        self.downsample = torch_codec.downsample
        inputs = {i.name for i in session.get_inputs()}
        self.reference_aware = "reference" in inputs
        self.audio_aware = "mel" in inputs

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.torch_codec.encode(images)

    def decode(self, latents: torch.Tensor, reference: torch.Tensor | None = None, mel: torch.Tensor | None = None) -> torch.Tensor:
        """(n, C, h, w) -> (n, 3, H, W); `reference` (1, 3, H, W) feeds a reference-aware decoder's graph, `mel` (the
        frames' (n_mels, past + 4 n + ahead) log-mel span, or (n, n_mels, W) windows) an audio-aware one's."""
        feeds = {"latents": _np(latents.float())}
        if self.audio_aware:
            if mel is None:
                raise ValueError("this decoder is audio-aware: decode(latents, reference, mel) needs the frames' log-mel")
            c = self.torch_codec.cfg
            windows = mel if mel.dim() == 3 else frame_mel_windows(mel, latents.shape[0], c)  # (n, n_mels, W)
            if tuple(windows.shape) != (latents.shape[0], c.audio_mels, c.audio_window):
                raise ValueError(f"the ONNX decoder takes one ({c.audio_mels}, {c.audio_window}) log-mel window a frame, "
                                 f"got {tuple(windows.shape)} for {latents.shape[0]} frames")
            feeds["mel"] = _np(windows.float())
        if self.reference_aware:
            if reference is None:
                raise ValueError("this decoder is reference-aware: decode(latents, reference) needs the reference image")
            if reference.dim() == 4 and reference.shape[0] != 1:
                raise ValueError(f"the ONNX decoder takes one reference image per call, got {reference.shape[0]}")
            feeds["reference"] = _np(reference.float().reshape(1, *reference.shape[-3:]))
        return torch.from_numpy(self.session.run(None, feeds)[0]).to(latents.device)  # (n, 3, H, W)


def open_export(directory: str | Path, device: torch.device, torch_codec) -> tuple[OrtDenoiser, OrtAudioEncoder, OrtCodec, dict]:
    """The three onnxruntime sessions of an export folder, and its manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    files = manifest["files"]
    open_ = lambda name: open_session(directory / files[name]["file"], device)  # noqa: E731
    return OrtDenoiser(open_("denoiser"), manifest), OrtAudioEncoder(open_("audio_encoder")), OrtCodec(open_("decoder"), torch_codec), manifest


def load_onnx(checkpoint: str | Path, device: torch.device, torch_codec) -> tuple[OrtDenoiser, OrtAudioEncoder, OrtCodec, dict]:
    """open_export of the export matching a checkpoint folder, exported first if none does."""
    return open_export(ensure_exported(checkpoint)[0], device, torch_codec)
