"""Window scheduler: the streamed mel equals the whole stream's, windows chain through their motion latents,
speech takes over idle frames without a jump, interrupts keep only a short guard, slow windows lower the steps."""
import time

import numpy as np
import pytest
import torch

from fada_stream.frames import AudioFrame, SegmentEnd, VideoFrame
from fada_stream.generator import load_window_model
from fada_stream.model import mel_window, stream_mel
from fada_stream.stream import StreamConfig, StreamScheduler, render_offline, window_count

FACE = np.full((128, 128, 3), 120, np.uint8)


class Spy:
    """The real window model, recording what each window was given (and optionally slowed down)."""

    def __init__(self, model, delay: float = 0.0):
        self.model, self.delay, self.calls = model, delay, []
        self.cfg, self.device, self.name, self.steps = model.cfg, model.device, model.name, model.steps
        self.default_guidance = model.default_guidance
        self.decoded_with: list[np.ndarray | None] = []
        self.decoded_mel: list[tuple[int, torch.Tensor | None]] = []  # (frames decoded, their mel span)

    def passes(self, g):
        return self.model.passes(g)

    def check_guidance(self, g):
        return self.model.check_guidance(g)

    def encode_reference(self, image):
        return self.model.encode_reference(image)

    def decode(self, latents, reference=None, mel=None):
        self.decoded_with.append(reference)
        self.decoded_mel.append((len(latents), mel))
        return self.model.decode(latents, reference, mel)

    def sample(self, ref, mel, motion, noise, steps, guidance, cancel):
        time.sleep(self.delay)
        out = self.model.sample(ref, mel, motion, noise, steps, guidance, cancel)
        self.calls.append({"mel": mel, "motion": motion, "steps": steps, "out": out})
        return out


def drain(s: StreamScheduler, jobs: int | None = None) -> list:
    items = []
    while (jobs is None or jobs > 0) and (job := s.plan()) is not None:
        s.commit(job, *s.run(job))
        jobs = None if jobs is None else jobs - 1
        while (e := s.pop()) is not None:
            items.append(e.item)
    return items


@pytest.fixture()
def spy(tiny_checkpoint):
    return Spy(load_window_model(tiny_checkpoint, "cpu"))


def test_streamed_window_mel_equals_the_whole_stream_cut(spy, speech):
    cfg = StreamConfig(steps=1, vad=False, adaptive=False)
    s = StreamScheduler(spy, FACE, cfg, paced=False, out_rate=16000)
    x = speech[:32000]
    s.push(x, 16000)
    s.flush()
    drain(s)
    whole = stream_mel(torch.from_numpy(x), spy.cfg.audio)
    F, M = spy.cfg.dit.frames, spy.cfg.dit.motion_frames
    starts = [0] + [F + k * (F - M) - M for k in range(len(spy.calls) - 1)]
    for call, w0 in list(zip(spy.calls, starts))[:-1]:  # the last window reaches past the end of the audio
        torch.testing.assert_close(call["mel"], mel_window(whole, w0, F, spy.cfg.audio), atol=1e-4, rtol=1e-5)


def test_windows_decode_with_the_reference_image_their_latent_came_from(spy):
    cfg = StreamConfig(steps=1, vad=False, adaptive=False)
    s = StreamScheduler(spy, FACE, cfg, paced=False, out_rate=16000)
    s.push(np.zeros(8000, np.float32), 16000)
    drain(s, jobs=1)
    other = np.full((128, 128, 3), 30, np.uint8)
    s.set_reference(spy.encode_reference(other), other)  # a face swap changes the latent and the picture together
    s.push(np.zeros(8000, np.float32), 16000)
    s.flush()
    drain(s)
    assert spy.decoded_with[0] is FACE and len(spy.decoded_with) > 1
    assert all(r is other for r in spy.decoded_with[1:])


def test_windows_chain_through_the_latents_of_the_frames_before_them(spy):
    cfg = StreamConfig(steps=1, vad=False, adaptive=False)
    s = StreamScheduler(spy, FACE, cfg, paced=False, out_rate=16000)
    s.push(np.zeros(16000, np.float32), 16000)
    s.flush()
    video = [i for i in drain(s) if isinstance(i, VideoFrame)]
    F, M = spy.cfg.dit.frames, spy.cfg.dit.motion_frames
    assert len(video) == 25 and len(spy.calls) == window_count(25, F, M)
    assert spy.calls[0]["motion"] is None
    for prev, call in zip(spy.calls, spy.calls[1:]):
        assert torch.equal(call["motion"], prev["out"][-M:])  # clean motion frames, never re-encoded


def test_the_decoder_hears_the_mel_of_exactly_the_frames_it_decodes(spy):
    # An audio-aware decoder draws each frame's mouth from its sound: the span handed over must be the window's mel
    # cut at the new frames, past context before the first and look-ahead after the last, nothing shifted.
    cfg = StreamConfig(steps=1, vad=False, adaptive=False)
    s = StreamScheduler(spy, FACE, cfg, paced=False, out_rate=16000)
    s.push(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    s.flush()
    drain(s)
    ac, F, M = spy.cfg.audio, spy.cfg.dit.frames, spy.cfg.dit.motion_frames
    assert len(spy.decoded_mel) == len(spy.calls) > 1
    for call, (n, mel) in zip(spy.calls, spy.decoded_mel):
        k = 0 if call["motion"] is None else M
        assert mel.shape == (ac.n_mels, ac.mel_span(n)) and 0 < n <= F - k
        assert torch.equal(mel, call["mel"][:, k * ac.mel_per_frame : k * ac.mel_per_frame + ac.mel_span(n)])


def test_speech_takes_over_unplayed_idle_frames_without_a_jump(spy):
    cfg = StreamConfig(steps=1, vad=False, adaptive=False)
    s = StreamScheduler(spy, FACE, cfg, paced=True, out_rate=16000)
    s.window_s.update(0.05)  # a fast model: the guard against compute is short
    while (job := s.plan()) is not None:  # idle windows fill the lead
        s.commit(job, *s.run(job))
    idle_end = s.gen_end
    s.pop()  # one frame played
    s.push(np.full(8000, 0.1, np.float32), 16000)
    s.flush()
    start = s.segments[0].start
    assert s.played < start < idle_end  # unplayed idle frames beyond the guard were dropped ...
    assert s.gen_end == start  # ... and the utterance begins right after the ones kept
    job = s.plan()
    assert job.first == start and not job.idle
    kept = torch.stack([s.latents[f] for f in range(start - job.motion.shape[0], start)])
    assert torch.equal(job.motion, kept)  # continuing from the frames that will be shown


def test_interrupt_keeps_a_short_guard_of_video_and_reports_the_cut(spy):
    cfg = StreamConfig(steps=1, vad=False, adaptive=False)
    s = StreamScheduler(spy, FACE, cfg, paced=False, out_rate=16000)
    s.push(np.full(48000, 0.1, np.float32), 16000)
    s.flush()
    for _ in range(4):
        job = s.plan()
        s.commit(job, *s.run(job))
    for _ in range(3):
        while not isinstance(s.pop().item, VideoFrame):
            pass
    (end,) = s.clear()
    assert end == SegmentEnd(3 / 25, True)
    first = s.pop().item
    assert first == end  # reported before anything else
    rest = list(iter(s.pop, None))
    assert rest and all(isinstance(e.item, VideoFrame) for e in rest)  # the guard: video only, no more speech
    assert not s._speech_pending() and s.buffered_seconds() == 0


def test_slow_windows_lower_the_steps_and_fast_ones_restore_them(tiny_checkpoint):
    model = load_window_model(tiny_checkpoint, "cpu")
    slow = Spy(model, delay=0.6)  # a window of 4 frames has 0.16 s of playback time
    # budget 2: a window may take up to 0.32 s: far above the tiny model's own time, far below the delay.
    s = StreamScheduler(slow, FACE, StreamConfig(steps=4, min_steps=1, budget=2.0), paced=False, out_rate=16000)
    s.push(np.zeros(64000, np.float32), 16000)
    s.flush()
    drain(s, jobs=3)
    assert s.steps == 1 and s.stats()["nfe_per_window"] == 1
    slow.delay = 0.0
    drain(s)
    assert s.steps > 1


def test_render_offline_emits_the_whole_audio_on_the_frames(spy, speech):
    frames, pcm = render_offline(spy, FACE, speech, 16000, StreamConfig(steps=1, adaptive=False))
    assert len(frames) == int(np.ceil(len(speech) / 640)) and len(pcm) == len(speech)
    with pytest.raises(ValueError, match="empty"):
        render_offline(spy, FACE, np.zeros(0, np.float32), 16000, StreamConfig())


def test_audio_frames_carry_exactly_their_frame_of_audio(spy):
    s = StreamScheduler(spy, FACE, StreamConfig(steps=1, vad=False), paced=False, out_rate=48000)
    s.push(np.full(16000, 0.25, np.float32), 16000)
    s.flush()
    audio = [i for i in drain(s) if isinstance(i, AudioFrame)]
    assert [len(a.pcm) for a in audio] == [1920] * 25  # 40 ms at 48 kHz per frame


def test_speech_right_after_an_interrupt_starts_where_the_cut_left_off(spy):
    s = StreamScheduler(spy, FACE, StreamConfig(steps=1, vad=False, adaptive=False), paced=False, out_rate=16000)
    s.push(np.full(48000, 0.1, np.float32), 16000)
    s.flush()
    for _ in range(3):
        job = s.plan()
        s.commit(job, *s.run(job))
    running = s.plan()  # a speech window in flight when the interrupt comes
    s.clear()
    s.push(np.full(8000, 0.1, np.float32), 16000)  # barge-in: the next reply arrives before the worker notices
    assert s.segments[0].start == s.gen_end < running.first + running.n_new  # not after the cancelled window
    s.abandon(running)  # what the worker does when the sampler raises Cancelled
    assert s.plan().first == s.segments[0].start
