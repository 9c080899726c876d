"""AvatarSession contract: one clock for frames and audio, flush, interrupt, idle, bursts, odd rates, bad input."""
import asyncio

import numpy as np
import pytest

from fada_stream import AudioFrame, AvatarSession, SegmentEnd, SessionClosed, StreamConfig, VideoFrame
from fada_stream.checkpoint import CheckpointError
from fada_stream.reference import ReferenceError

FAST = StreamConfig(steps=1, adaptive=False)


def session(ckpt, **kw) -> AvatarSession:
    kw.setdefault("config", FAST)
    kw.setdefault("paced", False)
    return AvatarSession(checkpoint=ckpt, **kw)


async def until_end(s: AvatarSession, limit: int = 10_000) -> list:
    """Items up to and including the next SegmentEnd."""
    items = []
    async for item in s:
        items.append(item)
        if isinstance(item, SegmentEnd) or len(items) >= limit:
            return items
    return items


def split(items):
    video = [i for i in items if isinstance(i, VideoFrame)]
    audio = [i for i in items if isinstance(i, AudioFrame)]
    ends = [i for i in items if isinstance(i, SegmentEnd)]
    return video, audio, ends


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


async def test_two_seconds_give_fifty_frames_and_the_same_two_seconds_of_audio(tiny_checkpoint):
    pcm = (tone(2.0, 24000) * 32767).astype(np.int16)
    async with session(tiny_checkpoint) as s:
        await s.push_audio(pcm, sample_rate=24000)
        await s.flush()
        video, audio, ends = split(await until_end(s))
    assert len(video) == 50
    assert [v.pts for v in video] == pytest.approx([k / 25 for k in range(50)])
    assert all(v.image.shape == (128, 128, 3) and v.image.dtype == np.uint8 for v in video)
    assert sum(len(a.pcm) for a in audio) == 48000 and {a.sample_rate for a in audio} == {24000}
    assert {a.pts for a in audio} <= {v.pts for v in video}  # audio rides on its frame's clock
    assert np.abs(np.concatenate([a.pcm for a in audio]).astype(int) - pcm).max() <= 1  # the audio given, unchanged
    assert ends == [SegmentEnd(playback_position=2.0, interrupted=False)]


async def test_odd_rates_bytes_and_output_rate(tiny_checkpoint):
    x = tone(1.3, 11025)
    async with session(tiny_checkpoint, output_sample_rate=48000) as s:
        await s.push_audio((x * 32767).astype("<i2").tobytes(), sample_rate=11025)  # s16le bytes
        await s.flush()
        video, audio, ends = split(await until_end(s))
    assert len(video) == 33  # ceil(1.3 s * 25 fps)
    assert sum(len(a.pcm) for a in audio) == round(len(x) * 48000 / 11025)
    assert ends[0].playback_position == pytest.approx(1.3, abs=1e-3)


async def test_bursts_and_one_push_give_the_same_frames(tiny_checkpoint):
    x = tone(1.0, 16000)
    outs = []
    for pieces in (1, 13):
        async with session(tiny_checkpoint) as s:
            for chunk in np.array_split(x, pieces):
                await s.push_audio(chunk, sample_rate=16000)
            await s.flush()
            video, audio, _ = split(await until_end(s))
        outs.append((np.stack([v.image for v in video]), np.concatenate([a.pcm for a in audio])))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])  # same seed, same windows: identical video
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


async def test_utterances_follow_each_other_and_rates_may_switch(tiny_checkpoint):
    async with session(tiny_checkpoint) as s:
        await s.push_audio(tone(0.4, 16000), 16000)
        await s.push_audio(tone(0.4, 48000), 48000)  # same utterance, new rate
        await s.flush()
        await s.push_audio(tone(0.6, 16000), 16000)
        await s.flush()
        first, second = await until_end(s), await until_end(s)
    v1, a1, e1 = split(first)
    v2, a2, e2 = split(second)
    assert len(v1) == 20 and len(v2) == 15
    assert v2[0].pts == pytest.approx(v1[-1].pts + 1 / 25)  # one clock, no gap in unpaced mode
    assert sum(len(a.pcm) for a in a1) == 12800 and sum(len(a.pcm) for a in a2) == 9600  # at the first push's rate
    assert e1[0].playback_position == pytest.approx(0.8) and e2[0].playback_position == pytest.approx(0.6)


async def test_clear_buffer_interrupts_and_the_session_goes_on(tiny_checkpoint):
    async with session(tiny_checkpoint) as s:
        await s.push_audio(tone(3.0, 16000), 16000)
        await s.flush()
        got = [await s.__anext__() for _ in range(12)]
        s.clear_buffer()
        after = await until_end(s)
        assert isinstance(after[-1], SegmentEnd) and after[-1].interrupted
        assert 0 < after[-1].playback_position < 3.0
        assert not any(isinstance(i, AudioFrame) for i in after)  # the rest of the utterance is dropped
        await s.push_audio(tone(0.4, 16000), 16000)
        await s.flush()
        video, _, ends = split(await until_end(s))
    played = [i for i in got if isinstance(i, VideoFrame)]
    assert video[0].pts > played[-1].pts and len(video) >= 10
    assert ends == [SegmentEnd(0.4, False)]


async def test_idle_frames_keep_coming_with_no_audio_and_no_freeze(tiny_checkpoint):
    async with session(tiny_checkpoint, paced=True) as s:
        items = [await s.__anext__() for _ in range(12)]
    assert all(isinstance(i, VideoFrame) for i in items)  # idle: video only
    pts = [i.pts for i in items]
    assert pts == sorted(pts) and len(set(pts)) == 12
    diffs = [np.abs(a.image.astype(int) - b.image.astype(int)).mean() for a, b in zip(items, items[1:])]
    assert max(diffs) > 0  # never a frozen frame


async def test_paced_iteration_releases_items_in_real_time(tiny_checkpoint):
    async with session(tiny_checkpoint, paced=True) as s:
        loop = asyncio.get_running_loop()
        await s.__anext__()
        t0 = loop.time()
        items = [await s.__anext__() for _ in range(10)]
        elapsed = loop.time() - t0
    # Behaviour, not speed: ten frames at 25 fps cannot be released in less than their duration.
    assert elapsed >= 9 / 25 - 0.02 and items[-1].pts - items[0].pts == pytest.approx(9 / 25)


async def test_events_fire_when_playback_starts_and_finishes(tiny_checkpoint):
    seen = []
    async with session(tiny_checkpoint) as s:
        s.on("playback_started", lambda seg: seen.append(("started", seg)))
        s.on("playback_finished", lambda end: seen.append(("finished", end.interrupted)))
        await s.push_audio(tone(0.3, 16000), 16000)
        await s.flush()
        await until_end(s)
    assert seen == [("started", 0), ("finished", False)]
    with pytest.raises(ValueError, match="unknown event"):
        s.on("nope", print)


async def test_bad_audio_is_refused_or_repaired_and_breaks_nothing(tiny_checkpoint):
    async with session(tiny_checkpoint) as s:
        for bad, rate in [(np.zeros(10, np.float32), 1000), (np.zeros(10, np.float32), 44100.5),
                          (np.zeros((10, 2), np.float32), 16000), (b"\x00\x01\x02", 16000), (np.zeros(10, np.int32), 16000),
                          ("text", 16000)]:
            with pytest.raises(ValueError):
                await s.push_audio(bad, rate)
        x = tone(0.5, 16000)
        x[100:3000] = np.nan
        x[4000:5000] = np.inf
        x[6000:7000] = 40.0  # clipping
        await s.push_audio(x, 16000)
        await s.flush()
        video, audio, ends = split(await until_end(s))
    pcm = np.concatenate([a.pcm for a in audio])
    assert len(video) == 13 and len(pcm) == 8000 and ends[0].playback_position == 0.5
    assert (pcm[100:3000] == 0).all() and pcm.max() <= 32767


async def test_backpressure_bounds_the_buffer_and_loses_nothing(tiny_checkpoint):
    cfg = StreamConfig(steps=1, adaptive=False, max_buffered_seconds=0.5, max_queued_frames=8)
    async with session(tiny_checkpoint, config=cfg) as s:
        async def produce():
            await s.push_audio(tone(3.0, 16000), 16000)
            await s.flush()

        producer = asyncio.create_task(produce())
        await asyncio.sleep(0.3)
        assert not producer.done() and s.stats()["queued_audio_s"] <= 1.0  # waiting, not buffering 3 s
        video, audio, _ = split(await until_end(s))
        await producer
    assert len(video) == 75 and sum(len(a.pcm) for a in audio) == 48000


async def test_guidance_is_adjustable_and_validated(tiny_checkpoint):
    async with session(tiny_checkpoint) as s:
        assert s.stats()["nfe_per_window"] == 1  # s_ref = s_audio = 1: one pass per step
        s.set_guidance(s_ref=1.5, s_audio=4.0)
        assert s.guidance.s_audio == 4.0 and s.stats()["nfe_per_window"] == 3
        for bad in (dict(s_ref=-1.0), dict(s_audio=99.0), dict(s_audio=float("nan"))):
            with pytest.raises(ValueError):
                s.set_guidance(**bad)
        assert s.guidance.s_audio == 4.0


async def test_reference_swap_and_bad_references(tiny_checkpoint, tmp_path):
    async with session(tiny_checkpoint) as s:
        with pytest.raises(ReferenceError):
            await s.set_reference(b"garbage")
        await s.set_reference(np.full((64, 48, 3), 90, np.uint8))
        await s.push_audio(tone(0.2, 16000), 16000)
        await s.flush()
        assert len(split(await until_end(s))[0]) == 5
    with pytest.raises(ReferenceError):
        await session(tiny_checkpoint, reference=tmp_path / "missing.png").start()


async def test_missing_or_foreign_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError):
        await AvatarSession(checkpoint=tmp_path).start()


async def test_closed_session_refuses_input_and_ends_iteration(tiny_checkpoint):
    s = session(tiny_checkpoint)
    with pytest.raises(RuntimeError, match="start"):
        await s.push_audio(tone(0.1, 16000), 16000)
    await s.start()
    await s.aclose()
    await s.aclose()
    with pytest.raises(SessionClosed):
        await s.push_audio(tone(0.1, 16000), 16000)
    assert [i async for i in s] == []


def test_render_is_synchronous_and_matches_the_stream(tiny_checkpoint):
    x = tone(0.7, 22050)
    frames = AvatarSession(checkpoint=tiny_checkpoint, config=FAST).render(x, 22050)
    assert frames.shape == (18, 128, 128, 3)


async def test_shipped_teacher_idles_with_a_living_face():
    """The bundled checkpoint and face: idle frames differ from each other, yet stay the same face."""
    async with AvatarSession(config=StreamConfig(steps=2, adaptive=False)) as s:
        items = [await s.__anext__() for _ in range(20)]
    images = np.stack([i.image for i in items]).astype(np.float32)
    motion = np.abs(np.diff(images, axis=0)).mean()
    assert 0 < motion < 20  # it moves, but no frame is a different picture


async def test_an_utterance_whose_audio_stops_coming_does_not_freeze_the_avatar(tiny_checkpoint):
    async with session(tiny_checkpoint, paced=True) as s:
        await s.push_audio(tone(0.3, 16000), 16000)  # and then nothing, not even a flush
        items = []

        async def watch():
            async for item in s:
                items.append(item)
                if isinstance(item, VideoFrame) and item.pts >= 1.5:
                    return

        await asyncio.wait_for(watch(), 30)  # a stalled stream fails here instead of hanging
    video = [i for i in items if isinstance(i, VideoFrame)]
    assert [v.pts for v in video] == pytest.approx([k / 25 for k in range(len(video))])  # no gap, no stall


async def test_a_real_time_feed_is_never_padded(tiny_checkpoint):
    x = tone(1.0, 16000)
    async with session(tiny_checkpoint, paced=True) as s:
        async def feed():
            for chunk in np.array_split(x, 50):  # 20 ms chunks in real time, like a microphone
                await s.push_audio(chunk, 16000)
                await asyncio.sleep(0.02)
            await s.flush()

        producer = asyncio.create_task(feed())
        items = await until_end(s)
        await producer
    video, audio, ends = split(items)
    assert sum(len(a.pcm) for a in audio) == 16000 and ends == [SegmentEnd(1.0, False)]


async def test_sampler_choice_is_checked_against_what_ships_or_the_folder_holds(tiny_checkpoint):
    with pytest.raises(CheckpointError, match="holds no student"):
        await AvatarSession(checkpoint=tiny_checkpoint, sampler="student").start()
    async with AvatarSession(checkpoint=tiny_checkpoint, sampler="teacher", config=FAST, paced=False) as s:
        assert s.stats()["sampler"] == "teacher"


async def test_pauses_between_utterances_without_idle_frames_are_not_stalls(tiny_checkpoint):
    cfg = StreamConfig(steps=1, adaptive=False, idle=False)
    async with session(tiny_checkpoint, paced=True, config=cfg) as s:
        for _ in range(2):
            await s.push_audio(tone(0.2, 16000), 16000)
            await s.flush()
            await until_end(s)
            await asyncio.sleep(0.3)  # nothing to show: the iterator waits, the clock runs on
        assert s.stats()["stalls"] == 0


async def test_guidance_defaults_to_the_models_own(tiny_checkpoint, tiny_student):
    """Unset scales: 1 and 1 for the teacher (one pass per step), the distilled student's tuned scales for it."""
    async with AvatarSession(checkpoint=tiny_checkpoint, paced=False) as s:
        assert (s.stats()["s_ref"], s.stats()["s_audio"]) == (1.0, 1.0)
    async with AvatarSession(checkpoint=tiny_student, paced=False) as s:
        assert (s.stats()["s_ref"], s.stats()["s_audio"]) == (1.5, 2.5)
    async with AvatarSession(checkpoint=tiny_student, paced=False, config=StreamConfig(s_audio=4.0)) as s:
        assert (s.stats()["s_ref"], s.stats()["s_audio"]) == (1.5, 4.0)

