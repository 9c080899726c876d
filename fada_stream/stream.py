"""The chunked window scheduler: turns the audio timeline into overlapping windows and queued frames.

Every window has F latent frames; the first M are the last M frames already generated, given
clean in latent space (never decoded and re-encoded: that drifts colour). A window commits up to
F - M new frames. One clock: frame k plays at k / fps, and the audio pushed for an utterance is
emitted with the frames it drives.

The scheduler is synchronous and holds no thread: `plan` (under the caller's lock) picks the next
window, `run` (outside the lock) samples and decodes it, `commit` (under the lock again) appends the
frames to the output queue unless the stream changed meanwhile (an interrupt or new speech bumps
`epoch`, which also cancels a running window between sampler steps).

Policy, in order (documented in README's runtime section):
1. Speech windows run as soon as the audio of their F - M new frames, plus the encoder's bounded
   look-ahead, is known; a flushed utterance's last window pads with silence.
2. Idle (paced sessions only): when no speech is pending, silence windows keep the avatar alive
   (blinks, small motion, mouth closed), generated just ahead of playback.
3. New speech takes over from idle: unplayed idle frames beyond what covers one window's compute
   are dropped and the utterance starts right after, continuing from those frames' latents.
4. An open utterance whose audio stops arriving is padded with silence once frames run out
   (`pad_after_s`), so the avatar goes on (mouth closed) instead of freezing.
5. Falling behind: the adaptive controller lowers the sampler steps (down to min_steps) to keep
   a window's compute under `budget` of its playback time; if it still falls behind, playback
   stalls (audio and video wait together), so they never drift apart.
"""
from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from fada_stream.frames import AudioFrame, Item, SegmentEnd, VideoFrame
from fada_stream.generator import Guidance, WindowModel, frames_mel
from fada_stream.model import stream_mel
from fada_stream.timeline import Segment, Tape
from fada_stream.vad import GateConfig


@dataclass
class StreamConfig:
    steps: int = 4  # most sampler steps per window; the adaptive controller may use fewer
    min_steps: int = 1
    # Guidance scales; None: the model's own default (WindowModel.default_guidance): 1 and 1 for the teacher (a
    # single pass per step, sampling.cfg_passes), the tuned scales a distilled student was evaluated at.
    s_ref: float | None = None
    s_audio: float | None = None
    audio_boost: float = 0.0  # token students: one more pass of audio guidance on their output (generator.Guidance)
    s_audio_early: float | None = None  # an audio guidance interval: this scale at flow times >= early_from (generator.Guidance)
    early_from: float = 0.5
    adaptive: bool = True
    budget: float = 0.75  # share of a window's playback time its generation may take before steps drop
    vad: bool = True  # gate the model's audio with webrtcvad (noise between words keeps the mouth still)
    idle: bool = True  # paced sessions animate idle frames between utterances
    seed: int = 0
    max_queued_frames: int = 50  # generated but unplayed frames (2 s at 25 fps): bounds memory and latency
    max_buffered_seconds: float = 60.0  # pushed audio not yet turned into frames; push_audio waits beyond
    # An open utterance whose audio stops coming (a stalled TTS, a muted microphone) would stall playback:
    # after this long without a push, while frames are running out, it is padded with silence instead.
    # Longer than any real-time feed's chunk interval, so a live microphone is never padded (that would add latency).
    pad_after_s: float = 0.3
    # The teacher only: drop the reference's mouth at flow times >= this (generator.Guidance; None: off). The box is
    # fixed on a face-aligned crop (fada_stream.mouth_region), so it needs a reference framed like the bundled face.
    # Last, so configs built positionally before it keep their meaning.
    mouth_drop_from: float | None = None


@dataclass
class Job:
    """One window to generate: new frames [first, first + n_new), window starting at first - len(motion)."""

    epoch: int
    first: int
    n_new: int
    motion: torch.Tensor | None  # (M, C, h, w)
    mel: torch.Tensor  # (n_mels, mel_span(F))
    noise: torch.Tensor  # (F, C, h, w)
    ref: torch.Tensor  # (C, h, w)
    steps: int
    guidance: Guidance
    idle: bool
    ref_image: np.ndarray | None = None  # (S, S, 3) uint8, the image `ref` encodes: a reference-aware decoder needs it


@dataclass
class Entry:
    """A queued output item, with the frame it belongs to (for roll-back) and its release time."""

    item: Item
    frame: int
    due: float  # seconds on the session clock
    segment: int | None  # segment id, for playback events


class Ema:
    def __init__(self, alpha: float = 0.3):
        self.alpha, self.value = alpha, None

    def update(self, x: float) -> float:
        self.value = x if self.value is None else self.alpha * x + (1 - self.alpha) * self.value
        return self.value


class StreamScheduler:
    def __init__(self, model: WindowModel, reference: np.ndarray, cfg: StreamConfig, *, paced: bool, out_rate: int | None):
        self.model, self.cfg, self.paced = model, cfg, paced
        mc = model.cfg
        self.fps = mc.fps
        self.F, self.M = mc.dit.frames, mc.dit.motion_frames
        self.audio_cfg = mc.audio
        self.spf = mc.audio.sample_rate // mc.fps  # model samples per frame
        self.lookahead = mc.audio.lookahead_samples
        self.ref = model.encode_reference(reference)  # (C, h, w)
        self.ref_image = reference  # (S, S, 3) uint8
        d = model.default_guidance
        self.guidance = Guidance(d.s_ref if cfg.s_ref is None else cfg.s_ref, d.s_audio if cfg.s_audio is None else cfg.s_audio,
                                 cfg.audio_boost, cfg.s_audio_early, cfg.early_from, cfg.mouth_drop_from)
        model.check_guidance(self.guidance)  # a setting the model cannot sample fails here, not in the first window
        self.steps = model.steps or cfg.steps  # a student's K is fixed
        self.out_rate = out_rate
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.tape = Tape()
        self.segments: collections.deque[Segment] = collections.deque()  # not yet fully generated or played
        self.queue: collections.deque[Entry] = collections.deque()
        self.latents: dict[int, torch.Tensor] = {}  # frame -> (C, h, w), kept for motion frames and roll-back
        self.gen_end = 0  # frames generated so far (committed)
        self.played = 0  # video frames taken by the consumer
        self.epoch = 0
        self.inflight: Job | None = None
        self.next_segment_id = 0
        self.window_s = Ema()  # seconds per window, for the roll-back guard
        self.nfe_s = Ema()  # seconds per denoiser pass
        self.decode_s = Ema()
        self.history: collections.deque[dict] = collections.deque(maxlen=200)  # per-window stats
        self.last_push = time.monotonic()

    # ------------------------------------------------------------------ audio in
    @property
    def open_segment(self) -> Segment | None:
        return self.segments[-1] if self.segments and not self.segments[-1].flushed else None

    def buffered_seconds(self) -> float:
        """Pushed audio not yet turned into frames."""
        pending = sum(max(0, s.model_samples - max(0, self.gen_end - s.start) * self.spf) for s in self.segments)
        return pending / self.audio_cfg.sample_rate

    def push(self, x: np.ndarray, rate: int) -> None:
        """(N,) float32 audio at `rate`: appended to the open utterance, or opening a new one."""
        if self.out_rate is None:
            self.out_rate = rate
        seg = self.open_segment
        if seg is None:
            seg = Segment(self.next_segment_id, self._start_new_segment(), rate, self.out_rate, self.audio_cfg.sample_rate,
                          self.fps, GateConfig(self.audio_cfg.sample_rate) if self.cfg.vad else None)
            self.next_segment_id += 1
            self.segments.append(seg)
        seg.push(x, rate, self.tape)
        self.last_push = time.monotonic()

    def flush(self) -> None:
        seg = self.open_segment
        if seg is not None:
            seg.flush(self.tape)
            if seg.end == seg.start:  # nothing audible was pushed: no utterance, no SegmentEnd
                self.segments.pop()

    def _start_new_segment(self) -> int:
        """Frame where a new utterance starts: after any pending speech; over unplayed idle frames."""
        speech_end = max([s.end for s in self.segments if s.end is not None], default=0)
        # A job of an older epoch was cancelled (an interrupt) and will not commit: it holds no place.
        live = self.inflight if self.inflight is not None and self.inflight.epoch == self.epoch else None
        if live is not None and not live.idle:
            return max(speech_end, live.first + live.n_new)
        if live is not None:
            self.epoch += 1  # abandon the idle window being generated: speech starts where it would have
        cut = max(self.played + self._compute_frames(), speech_end)
        if cut < self.gen_end:
            self._drop_from(cut)
        return max(self.gen_end, speech_end)

    def _drop_from(self, frame: int) -> None:
        """Forget generated frames from `frame` on (they were never played)."""
        self.queue = collections.deque(e for e in self.queue if e.frame < frame)
        for f in [f for f in self.latents if f >= frame]:
            del self.latents[f]
        self.gen_end = frame

    def clear(self) -> list[SegmentEnd]:
        """Interrupt: drop queued speech and its audio; keep a few unplayed frames (video only) to cover
        the next window's compute, so the avatar moves on without a jump. Returns the SegmentEnds."""
        self.epoch += 1
        keep = min(self.gen_end, self.played + self._compute_frames())
        ends = [(s.id, SegmentEnd(min(s.frames_played / self.fps, s.duration), True)) for s in self.segments]
        self.segments.clear()
        self._drop_from(keep)
        self.queue = collections.deque(e for e in self.queue if isinstance(e.item, VideoFrame))
        for e in self.queue:
            e.segment = None
        self.tape.clear_from(keep * self.spf)
        due = self.played / self.fps
        for sid, end in reversed(ends):
            self.queue.appendleft(Entry(end, self.played, due, sid))
        return [end for _, end in ends]

    def set_reference(self, ref_latent: torch.Tensor, image: np.ndarray) -> None:
        """The latent and the image it encodes change together: a window decodes with the image it sampled from."""
        self.ref, self.ref_image = ref_latent, image

    def set_guidance(self, guidance: Guidance) -> None:
        self.model.check_guidance(guidance)
        self.guidance = guidance

    # ------------------------------------------------------------------ windows
    def queued_frames(self) -> int:
        return self.gen_end - self.played

    def _speech_pending(self) -> bool:
        return any(s.end is None or s.end > self.gen_end for s in self.segments)

    def _known_frames(self) -> float:
        seg = self.open_segment
        if seg is None:
            return math.inf
        return seg.start + seg.known_frames(self.lookahead)

    def _compute_frames(self, factor: float = 1.0, margin: int = 1, least: int = 2) -> int:
        """Frames of playback that `factor` windows' compute takes (0.5 s per window until measured), plus a margin."""
        return max(least, math.ceil((self.window_s.value or 0.5) * self.fps * factor) + margin)

    def idle_lead(self) -> int:
        """Frames to keep queued while idle: one and a half windows' compute plus a margin."""
        return self._compute_frames(1.5, 2, 3)

    def plan(self) -> Job | None:
        """The next window to generate, or None (wait for audio, or for the consumer)."""
        if self.inflight is not None or self.queued_frames() >= self.cfg.max_queued_frames:
            return None
        a = self.gen_end
        motion = self._motion(a)
        n_max = self.F - (0 if motion is None else self.M)
        speech = self._speech_pending()
        if not speech:
            if not (self.paced and self.cfg.idle and self.queued_frames() < self.idle_lead()):
                return None
            n = n_max
        else:
            starving = self.paced and self.queued_frames() < self.idle_lead()
            seg = self.open_segment
            if starving and seg is not None and self._known_frames() <= a and time.monotonic() - self.last_push > self.cfg.pad_after_s:
                seg.push(np.zeros(seg.in_rate // 5, np.float32), seg.in_rate, self.tape)  # 200 ms of silence
            known = self._known_frames()
            n = int(min(n_max, known - a))
            if n <= 0:
                return None
            if n < n_max and self.open_segment is not None and not starving:
                return None  # wait for more audio: full windows are cheaper per frame
            if not (self.paced and self.cfg.idle):
                n = min(n, max(s.end for s in self.segments if s.end is not None) - a) if math.isinf(known) else n
        w0 = a - (0 if motion is None else self.M)
        noise = torch.randn((self.F, *self.ref.shape), generator=self.gen)  # (F, C, h, w)
        self.inflight = Job(self.epoch, a, n, motion, self._window_mel(w0), noise, self.ref, self.steps, self.guidance, not speech,
                            self.ref_image)
        return self.inflight

    def _motion(self, a: int) -> torch.Tensor | None:
        if a < self.M or any(f not in self.latents for f in range(a - self.M, a)):
            return None
        return torch.stack([self.latents[f] for f in range(a - self.M, a)])  # (M, C, h, w)

    def _window_mel(self, w0: int) -> torch.Tensor:
        """Log-mel (n_mels, mel_span(F)) of the window starting at frame w0, equal to cutting it from
        the whole stream's mel: the slice carries two hops of margin on each side, wider than the
        STFT's half window, so the slice edges never reach the frames kept."""
        ac = self.audio_cfg
        j0 = w0 * ac.mel_per_frame - ac.past_mel  # first mel frame
        span = ac.mel_span(self.F)
        audio = self.tape.read((j0 - 2) * ac.hop, (j0 + span + 1) * ac.hop)  # ((span + 3) hop,)
        return stream_mel(torch.from_numpy(audio), ac)[:, 2 : 2 + span]  # (n_mels, span)

    def run(self, job: Job) -> tuple[torch.Tensor, np.ndarray, float]:
        """Sample and decode a window (no lock held). Returns (latents of the new frames, their images, seconds).
        Raises generator.Cancelled if `epoch` moves on while it runs."""
        t0 = time.perf_counter()
        lat = self.model.sample(job.ref, job.mel, job.motion, job.noise, job.steps, job.guidance,
                                cancel=lambda: self.epoch != job.epoch)  # (F, C, h, w)
        k = 0 if job.motion is None else self.M
        new = lat[k : k + job.n_new]  # (n_new, C, h, w)
        t1 = time.perf_counter()
        images = self.model.decode(new, job.ref_image, frames_mel(job.mel, k, job.n_new, self.audio_cfg))  # (n_new, H, W, 3)
        t2 = time.perf_counter()
        self.decode_s.update(t2 - t1)
        self.nfe_s.update((t1 - t0) / max(1, job.steps * self.model.passes(job.guidance)))
        return new.cpu(), images, t2 - t0

    def abandon(self, job: Job) -> None:
        if self.inflight is job:
            self.inflight = None

    def commit(self, job: Job, latents: torch.Tensor, images: np.ndarray, seconds: float) -> bool:
        """Queue the window's frames (and their audio) unless the stream changed while it ran."""
        self.inflight = None
        if job.epoch != self.epoch or job.first != self.gen_end:
            return False
        for i in range(job.n_new):
            f = job.first + i
            self.latents[f] = latents[i]
            seg = next((s for s in self.segments if s.start <= f and (s.end is None or f < s.end)), None)
            pts = f / self.fps
            if seg is not None:
                pcm = seg.take_audio(f)
                if len(pcm):
                    self.queue.append(Entry(AudioFrame((np.clip(pcm, -1, 1) * 32767).astype(np.int16), self.out_rate, pts), f, pts, seg.id))
            self.queue.append(Entry(VideoFrame(images[i], pts), f, pts, seg.id if seg else None))
            if seg is not None and seg.end is not None and f + 1 == seg.end:
                self.queue.append(Entry(SegmentEnd(seg.duration, False), f, seg.start / self.fps + seg.duration, seg.id))
        self.gen_end = job.first + job.n_new
        self._forget_history()
        self._record(job, seconds)
        return True

    def _forget_history(self) -> None:
        oldest = min(self.played, self.gen_end) - self.M
        for f in [f for f in self.latents if f < oldest]:
            del self.latents[f]
        keep_from = (min(self.played, self.gen_end) - self.F) * self.spf - 4 * self.audio_cfg.hop - self.audio_cfg.past_mel * self.audio_cfg.hop
        self.tape.trim(keep_from)

    def _record(self, job: Job, seconds: float) -> None:
        self.window_s.update(seconds)
        nfe = job.steps * self.model.passes(job.guidance)
        self.history.append({"ms": 1000 * seconds, "frames": job.n_new, "nfe": nfe, "steps": job.steps, "idle": job.idle})
        if self.cfg.adaptive and self.model.steps is None and self.nfe_s.value:
            budget = self.cfg.budget * (self.F - self.M) / self.fps - (self.decode_s.value or 0.0)
            fit = int(budget / (self.nfe_s.value * self.model.passes(self.guidance)))
            self.steps = max(self.cfg.min_steps, min(self.cfg.steps, fit))

    # ------------------------------------------------------------------ output
    def pop(self) -> Entry | None:
        if not self.queue:
            return None
        e = self.queue.popleft()
        if isinstance(e.item, VideoFrame):
            self.played = max(self.played, e.frame + 1)
            seg = next((s for s in self.segments if s.id == e.segment), None)
            if seg is not None:
                seg.frames_played += 1
        if isinstance(e.item, SegmentEnd) and e.segment is not None:
            self.segments = collections.deque(s for s in self.segments if s.id != e.segment)
        return e

    def stats(self) -> dict:
        recent = [h for h in self.history if not h["idle"]] or list(self.history)
        ms = np.array([h["ms"] for h in recent]) if recent else np.zeros(1)
        frames = sum(h["frames"] for h in recent)
        gen_s = ms.sum() / 1000
        return {
            "fps": round(float(frames / gen_s), 2) if gen_s else 0.0,
            "rtf": round(float(gen_s / (frames / self.fps)), 3) if frames else 0.0,
            "window_ms_p50": round(float(np.percentile(ms, 50)), 1),
            "window_ms_p95": round(float(np.percentile(ms, 95)), 1),
            "steps": self.steps,
            "nfe_per_window": self.steps * self.model.passes(self.guidance),
            "queued_frames": self.queued_frames(),
            "queued_audio_s": round(self.buffered_seconds(), 3),
            "frames": self.played,
            "sampler": self.model.name,
            "backend": getattr(self.model, "backend", "torch"),
        }


def render_offline(model: WindowModel, reference: np.ndarray, audio: np.ndarray, sample_rate: int, cfg: StreamConfig,
                   progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Whole audio -> ((T, H, W, 3) uint8 frames, (N,) int16 audio at sample_rate), through the same
    windows a live session runs, as fast as the model goes. The video lasts as long as the audio."""
    if len(audio) == 0:
        raise ValueError("audio is empty")
    s = StreamScheduler(model, reference, cfg, paced=False, out_rate=sample_rate)
    s.push(audio, sample_rate)
    s.flush()
    frames, pcm = [], []
    while (job := s.plan()) is not None:
        s.commit(job, *s.run(job))
        if progress:
            progress(1)
        while (e := s.pop()) is not None:
            if isinstance(e.item, VideoFrame):
                frames.append(e.item.image)
            elif isinstance(e.item, AudioFrame):
                pcm.append(e.item.pcm)
    return np.stack(frames), np.concatenate(pcm) if pcm else np.zeros(0, np.int16)


def window_count(n_frames: int, frames: int, motion: int) -> int:
    """Windows a stream of n_frames takes: the first makes `frames` frames, each later one frames - motion."""
    return 1 + max(0, math.ceil((n_frames - frames) / (frames - motion)))
