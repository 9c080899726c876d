"""The model side of streaming: one window of latents from noise, motion frames, reference and audio.

`WindowModel` is what the stream scheduler needs from a sampler: the teacher (multi-CFG, pruned to
the branches whose guidance weight is non-zero) implements it now; the distilled student drops in
beside it. Loaded models are shared by every session of a process: weights are read-only at
inference and torch's inference mode is thread-safe.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from fada_stream.checkpoint import CheckpointError
from fada_stream.model import AudioConfig, ModelConfig, StudentConfig, StudentDiT, load_student, load_teacher
from fada_stream.model.autoencoder import LatentCodec, images_to_unit, unit_to_images
from fada_stream.mouth_region import region_tokens
from fada_stream.sampling import SAMPLERS, boost_audio, cfg_passes, get_ts, guidance_interval, multi_cfg

DEFAULT_CHECKPOINT = Path(__file__).parent / "assets" / "teacher"
BUNDLED_STUDENT = Path(__file__).parent / "assets" / "student"
log = logging.getLogger(__name__)
GUIDANCE_RANGE = (0.0, 8.0)  # accepted guidance scales; the teacher was trained for roughly 1-6
BOOST_RANGE = (0.0, 4.0)  # accepted audio_boost: measured up to 1 (docs/distillation.md)


class Cancelled(Exception):
    """A window's generation was abandoned because the stream changed under it (interrupt, new speech)."""


@dataclass(frozen=True)
class Guidance:
    s_ref: float = 1.0
    s_audio: float = 1.0
    # Token students only: one more pass without the audio, and v + audio_boost * (v - v_no_audio). The student's
    # learned guidance extrapolates less to out-of-style references than real CFG does (docs/distillation.md,
    # "Audio boost"); 0 keeps one pass. The teacher and naive students already guide the audio with real CFG.
    audio_boost: float = 0.0
    # A guidance interval for the audio: s_audio_early replaces s_audio at flow times t >= early_from (high noise,
    # where a window's coarse motion, the mouth's opening among it, is decided), so lip sync can be pushed harder
    # there without the late steps' cost in detail (docs/models.md, "The sampler's side"). None: one scale.
    s_audio_early: float | None = None
    early_from: float = 0.5
    # The teacher only: at flow times t >= mouth_drop_from the reference's mouth tokens (mouth_region.MOUTH_BOX) are
    # replaced by the null reference's in every pass, so the window's mouth opening, laid down at high noise, follows
    # the audio rather than the reference's own mouth; the later steps get the mouth back for lips, teeth and
    # identity (docs/models.md, "The mouth dropped at high noise only"). 0: every step; None: off. Costs no pass.
    mouth_drop_from: float | None = None

    def __post_init__(self) -> None:
        for name in ("s_ref", "s_audio", "s_audio_early"):
            v = getattr(self, name)
            if name == "s_audio_early" and v is None:
                continue
            if not isinstance(v, (int, float)) or not GUIDANCE_RANGE[0] <= v <= GUIDANCE_RANGE[1]:
                raise ValueError(f"{name} must be a number in [{GUIDANCE_RANGE[0]}, {GUIDANCE_RANGE[1]}], got {v!r}")
        b = self.audio_boost
        if not isinstance(b, (int, float)) or not BOOST_RANGE[0] <= b <= BOOST_RANGE[1]:
            raise ValueError(f"audio_boost must be a number in [{BOOST_RANGE[0]}, {BOOST_RANGE[1]}], got {b!r}")
        e = self.early_from
        if not isinstance(e, (int, float)) or not 0.0 < e <= 1.0:
            raise ValueError(f"early_from must be a flow time in (0, 1], got {e!r}")
        m = self.mouth_drop_from
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, float)) or not 0.0 <= m < 1.0):
            raise ValueError(f"mouth_drop_from must be a flow time in [0, 1) or None, got {m!r}")

    def phases(self) -> tuple[Guidance, ...]:
        """The scales each part of the trajectory uses: (early, late) with an interval, else (self,)."""
        if self.s_audio_early is None:
            return (self,)
        return replace(self, s_audio=self.s_audio_early, s_audio_early=None), replace(self, s_audio_early=None)


class WindowModel(Protocol):
    cfg: ModelConfig
    device: torch.device
    name: str
    steps: int | None  # fixed sampler steps (a distilled student), or None: the scheduler chooses

    default_guidance: Guidance  # the scales a stream uses unless configured

    def passes(self, guidance: Guidance) -> int: ...

    def check_guidance(self, guidance: Guidance) -> None: ...  # ValueError for a setting this model cannot sample

    def encode_reference(self, image: np.ndarray) -> torch.Tensor: ...

    def sample(self, ref: torch.Tensor, mel: torch.Tensor, motion: torch.Tensor | None, noise: torch.Tensor,
               steps: int, guidance: Guidance, cancel: Callable[[], bool]) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor, reference: np.ndarray | None = None, mel: torch.Tensor | None = None) -> np.ndarray: ...


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def frames_mel(mel: torch.Tensor, first: int, n: int, ac: AudioConfig) -> torch.Tensor:
    """The log-mel span (n_mels, mel_span(n)) of frames [first, first + n) of a window, cut from the window's
    (n_mels, mel_span(F)): what an audio-aware decoder hears for those frames."""
    if first < 0 or (first + n) * ac.mel_per_frame + ac.past_mel + ac.lookahead_mel > mel.shape[-1]:
        raise ValueError(f"frames [{first}, {first + n}) reach past a window's mel of {mel.shape[-1]} frames")
    return mel[:, first * ac.mel_per_frame : first * ac.mel_per_frame + ac.mel_span(n)]


@torch.inference_mode()
def decode_images(codec: LatentCodec, latents: torch.Tensor, reference: np.ndarray | None, device: torch.device,
                  who: str = "model", mel: torch.Tensor | None = None) -> np.ndarray:
    """(n, C, h, w) latents -> (n, H, W, 3) uint8 through `codec`, with the (S, S, 3) uint8 reference image
    where its decoder is reference-aware and the frames' (n_mels, mel_span(n)) log-mel where it is audio-aware
    (plain decoders ignore them)."""
    ref = None if reference is None else images_to_unit(torch.from_numpy(np.ascontiguousarray(reference)))[None].to(device)
    if ref is None and getattr(codec, "reference_aware", False):
        raise ValueError(f"{who}: its decoder is reference-aware: decode(latents, reference) needs the reference image")
    if mel is None and getattr(codec, "audio_aware", False):
        raise ValueError(f"{who}: its decoder is audio-aware: decode(latents, reference, mel) needs the frames' log-mel")
    return unit_to_images(codec.decode(latents.to(device), ref, None if mel is None else mel.to(device))).cpu().numpy()


class TeacherModel:
    """The teacher as a window sampler: `steps` Euler (or Heun) steps x up to 3 guidance passes."""

    name = "teacher"
    steps = None
    shift = 1.0
    default_guidance = Guidance(1.0, 1.0)  # live: one pass per step fits the CPU budget (docs/runtime.md)

    def __init__(self, model: Callable[..., torch.Tensor], codec: LatentCodec, cfg: ModelConfig, device: torch.device, method: str = "euler",
                 audio_encoder: Callable[[torch.Tensor], torch.Tensor] | None = None, backend: str = "torch"):
        self.model, self.codec, self.cfg, self.device = model, codec, cfg, device
        self.sampler = SAMPLERS[method]
        # The audio tokens depend on the window's mel only: encoded once per window, not at every step.
        self.audio_encoder = audio_encoder or _dit(model).audio_encoder
        self.backend = backend
        self.mouth = region_tokens(cfg.dit.grid)  # (N,) bool: the reference tokens Guidance.mouth_drop_from drops

    def check_guidance(self, guidance: Guidance) -> None:
        """The teacher samples every Guidance (its boost is ignored: real CFG already guides the audio)."""

    def passes(self, guidance: Guidance) -> int:
        per_step = max(cfg_passes(g.s_ref, g.s_audio) for g in guidance.phases())  # the costlier phase: budgets stay safe
        return per_step * (2 if self.sampler is SAMPLERS["heun"] else 1)

    def _model_fn(self, guidance: Guidance, **cond: torch.Tensor | None):
        return multi_cfg(self.model, guidance.s_ref, guidance.s_audio, **cond)

    def guided_fn(self, guidance: Guidance, **cond: torch.Tensor | None):
        """model_fn(x, t) under `guidance`, its audio guidance interval included."""
        fns = [self._model_fn(g, **cond) for g in guidance.phases()]
        return fns[0] if len(fns) == 1 else guidance_interval(fns[0], fns[1], guidance.early_from)

    @torch.inference_mode()
    def encode_reference(self, image: np.ndarray) -> torch.Tensor:
        """(S, S, 3) uint8 -> (C, h, w) latent."""
        return self.codec.encode(images_to_unit(torch.from_numpy(image))[None].to(self.device))[0]

    @torch.inference_mode()
    def sample(self, ref: torch.Tensor, mel: torch.Tensor, motion: torch.Tensor | None, noise: torch.Tensor,
               steps: int, guidance: Guidance, cancel: Callable[[], bool]) -> torch.Tensor:
        """Latents (F, C, h, w) of one window. ref (C, h, w); mel (n_mels, mel_span(F)); motion (M, C, h, w)
        or None; noise (F, C, h, w). Raises Cancelled between steps when cancel() turns true."""
        dev = self.device
        x = noise.to(dev)[None].clone()  # (1, F, C, h, w)
        mot = None if motion is None else motion.to(dev)[None]  # (1, M, C, h, w)
        if mot is not None:
            x[:, : mot.shape[1]] = mot
        audio = self.audio_encoder(mel.to(dev)[None])  # (1, F, A, Da)
        cond = {"ref": ref.to(dev)[None], "audio": audio, "motion": mot}
        self.check_guidance(guidance)
        fn = self.guided_fn(guidance, **cond)
        if guidance.mouth_drop_from is not None:
            dropped = self.guided_fn(guidance, ref_drop=self.mouth.to(dev)[None], **cond)  # ref_drop (1, N)
            fn = dropped if guidance.mouth_drop_from <= 0 else guidance_interval(dropped, fn, guidance.mouth_drop_from)

        def check(_: dict) -> None:
            if cancel():
                raise Cancelled

        return self.sampler(fn, x, get_ts(self.steps or steps, self.shift, device=dev), check)[0]  # (F, C, h, w)

    def decode(self, latents: torch.Tensor, reference: np.ndarray | None = None, mel: torch.Tensor | None = None) -> np.ndarray:
        """(n, C, h, w) -> (n, H, W, 3) uint8. `reference` is the (S, S, 3) uint8 image `encode_reference` took:
        a reference-aware decoder draws what the latents cannot hold (patterns, outlines) from it; `mel`, the
        frames' log-mel span (`frames_mel`), lets an audio-aware one draw the mouth the sound calls for."""
        return decode_images(self.codec, latents, reference, self.device, self.name, mel)


class StudentModel(TeacherModel):
    """A distilled student: its own K steps, one pass each with CFG tokens (a naive student: the teacher's
    multi-CFG over its branches)."""

    name = "student"

    def __init__(self, model: StudentDiT | Callable[..., torch.Tensor], codec: LatentCodec, cfg: StudentConfig, device: torch.device,
                 audio_encoder: Callable[[torch.Tensor], torch.Tensor] | None = None, backend: str = "torch"):
        super().__init__(model, codec, cfg.model, device, audio_encoder=audio_encoder, backend=backend)
        self.student_cfg = cfg
        self.steps, self.shift = cfg.steps, cfg.shift
        # A token student pays one pass whatever the scales, so the stream uses the scales it was tuned at; a naive
        # student pays a pass per guidance branch at its fixed K, so it defaults to one pass, as the teacher.
        self.default_guidance = Guidance(cfg.s_ref, cfg.s_audio) if cfg.tokens else TeacherModel.default_guidance

    def check_guidance(self, guidance: Guidance) -> None:
        """A student was distilled from the teacher's full reference: a partly dropped one is unmeasured for a naive
        student and outside what a token student's CFG tokens learnt, so it is refused rather than guessed at."""
        if guidance.mouth_drop_from is not None:
            raise ValueError("mouth_drop_from is a teacher sampler setting: a distilled student samples with the whole reference")

    def passes(self, guidance: Guidance) -> int:
        if not self.student_cfg.tokens:
            return max(cfg_passes(g.s_ref, g.s_audio) for g in guidance.phases())
        return 2 if guidance.audio_boost > 0 else 1

    def _model_fn(self, guidance: Guidance, **cond: torch.Tensor | None):
        if not self.student_cfg.tokens:
            return super()._model_fn(guidance, **cond)
        scales = torch.tensor([[guidance.s_ref, guidance.s_audio]], device=self.device)  # (1, 2)
        if guidance.audio_boost <= 0:
            return lambda x, t: self.model(x, t, scales=scales.expand(x.shape[0], 2), **cond)
        boost = guidance.audio_boost
        pair = {k: (torch.cat([v, v]) if isinstance(v, torch.Tensor) else v) for k, v in cond.items()}  # (2B, ...)

        def boosted(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            b = x.shape[0]
            drop = torch.arange(2 * b, device=x.device) >= b  # (2B,): the second half without audio
            v = self.model(torch.cat([x, x]), torch.cat([t, t]), scales=scales.expand(2 * b, 2), drop_audio=drop, **pair)
            return boost_audio(*v.chunk(2), boost)  # halves (B, F, C, h, w): with and without the audio

        return boosted


_LOAD_LOCK = threading.Lock()
_ONNX_FAILED: set[tuple[str, str, str]] = set()
BACKENDS = ("auto", "torch", "onnx")


def _dit(model) -> torch.nn.Module:
    return model.dit if isinstance(model, StudentDiT) else model


def _on(module, dev: torch.device):
    return module.to(dev) if isinstance(module, torch.nn.Module) else module


def resolve_backend(backend: str, device: torch.device) -> str:
    """"auto": $FADA_STREAM_BACKEND if set, else onnxruntime on the CPU (measured faster there: docs/onnx.md)
    and torch on CUDA (the Triton kernels)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = os.environ.get("FADA_STREAM_BACKEND", "auto")
        if backend not in BACKENDS:
            raise ValueError(f"FADA_STREAM_BACKEND={backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "onnx" if device.type == "cpu" else "torch"
    return backend


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str, method: str, backend: str) -> WindowModel:
    return build_window_model(path, torch.device(device), method, backend)


def build_window_model(path: str | Path, dev: torch.device, method: str = "euler", backend: str = "torch",
                       export_dir: str | Path | None = None) -> WindowModel:
    """A new window model (not the process-wide cached one); with backend "onnx", from `export_dir` if given,
    else from the export matching the checkpoint (made on first use)."""
    if backend not in ("torch", "onnx"):
        raise ValueError(f"backend must be torch or onnx here, got {backend!r}")
    is_student = (Path(path) / "student.json").is_file()
    if is_student:
        model, codec, cfg = load_student(path)
    else:
        model, codec, cfg = load_teacher(path)
    if backend != "torch":
        if method != "euler":
            raise ValueError(f"the onnx backend samples with Euler steps; method {method!r} needs backend='torch'")
        from fada_stream.ort.runtime import load_onnx, open_export

        opened = open_export(export_dir, dev, codec) if export_dir is not None else load_onnx(path, dev, codec)
        denoiser, audio_encoder, ort_codec, _ = opened
        # The sampling loop runs on the host; onnxruntime's provider decides where the networks run.
        host = torch.device("cpu")
        if is_student:
            return StudentModel(denoiser, ort_codec, cfg, host, audio_encoder=audio_encoder, backend="onnx")
        return TeacherModel(denoiser, ort_codec, cfg, host, audio_encoder=audio_encoder, backend="onnx")
    if is_student:
        return StudentModel(model.to(dev), _on(codec, dev), cfg, dev)
    return TeacherModel(model.to(dev), _on(codec, dev), cfg, dev, method)


def bundled_checkpoint(sampler: str = "auto") -> Path:
    """The bundled folder for `sampler`: "student" (the default: one ships in the package), "teacher", or "auto"."""
    if sampler not in ("auto", "student", "teacher"):
        raise ValueError(f"unknown sampler {sampler!r}; choose auto, student or teacher")
    has_student = (BUNDLED_STUDENT / "student.json").is_file()
    if sampler == "student" and not has_student:
        raise CheckpointError("no distilled student is bundled yet: pass the folder of one (python -m distill.distill)")
    return BUNDLED_STUDENT if sampler == "student" or (sampler == "auto" and has_student) else DEFAULT_CHECKPOINT


def load_window_model(checkpoint: str | Path | None = None, device: str | torch.device = "auto", sampler: str = "auto",
                      method: str = "euler", backend: str = "auto") -> WindowModel:
    """The sampler of a checkpoint folder (student.* or teacher.*, plus the autoencoder), or of the bundled
    one for `sampler`; loaded once per process, device, ODE method (a teacher's; students use Euler) and
    backend ("torch", "onnx": onnxruntime, "auto": see resolve_backend). With "auto", a failed ONNX export
    or onnxruntime load falls back to torch with a warning; an explicit "onnx" raises."""
    if checkpoint is not None and sampler != "auto" and not (Path(checkpoint) / f"{sampler}.json").is_file():
        raise CheckpointError(f"{checkpoint}: holds no {sampler} (expected {sampler}.json and {sampler}.safetensors)")
    path = Path(checkpoint) if checkpoint is not None else bundled_checkpoint(sampler)
    dev = resolve_device(device)
    chosen = resolve_backend(backend, dev)
    if chosen == "onnx" and backend == "auto" and method != "euler":
        chosen = "torch"  # only torch has the other ODE methods
    key = (str(path.resolve()), str(dev), method)
    with _LOAD_LOCK:
        if chosen == "onnx" and backend == "auto" and key not in _ONNX_FAILED:
            try:
                return _load(*key, "onnx")
            except CheckpointError as e:
                from fada_stream.ort.export import OnnxExportError

                if not isinstance(e, OnnxExportError):
                    raise  # the checkpoint itself is bad: torch would refuse it too
                log.warning("onnx backend unavailable for %s (%s): using torch", path, e)
                _ONNX_FAILED.add(key)
            except Exception as e:  # noqa: BLE001 - export or onnxruntime failures of any type; torch still serves
                log.warning("onnx backend unavailable for %s (%s): using torch", path, e)
                _ONNX_FAILED.add(key)  # not retried (an export costs tens of seconds) until the process restarts
        return _load(*key, "torch" if chosen == "onnx" and backend == "auto" else chosen)
