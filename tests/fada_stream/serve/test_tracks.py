"""Outbound tracks: audio re-chunked by pts with silence in gaps; strictly increasing timestamps."""
import asyncio

import numpy as np
import pytest

from fada_stream.serve.tracks import AUDIO_CHUNK, AudioTimeline, MediaClock, SessionAudioTrack, SessionVideoTrack


def ramp(n: int, start: int = 1) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int16)


def test_contiguous_frames_of_any_length_read_back_exactly():
    line = AudioTimeline(start=10.0)
    pcm = ramp(1920 * 3)
    line.write(pcm[:1900], 10.0)
    line.write(pcm[1900:3850], 10.0 + 1900 / 48000 + 0.0004)  # pts rounded: continues the previous frame
    line.write(pcm[3850:], 10.0 + 3850 / 48000)
    out = np.concatenate([line.read_chunk() for _ in range(6)])
    np.testing.assert_array_equal(out, pcm)


def test_gaps_are_silence_and_late_audio_is_dropped():
    line = AudioTimeline(start=0.0)
    line.write(ramp(480), 0.03)  # starts 10 ms into the second chunk
    first, second = line.read_chunk(), line.read_chunk()
    assert not first.any()
    assert not second[:480].any() and (second[480:] == ramp(480)).all()
    line.write(ramp(960), 0.03)  # its first 480 samples belonged to a chunk already read
    assert line.late_samples == 480
    np.testing.assert_array_equal(line.read_chunk()[:480], ramp(480, start=481))


def test_skip_to_drops_what_a_late_consumer_missed():
    line = AudioTimeline(start=0.0)
    line.write(ramp(4 * AUDIO_CHUNK), 0.0)
    line.skip_to(3 * AUDIO_CHUNK)
    np.testing.assert_array_equal(line.read_chunk(), ramp(AUDIO_CHUNK, start=3 * AUDIO_CHUNK + 1))


async def test_tracks_stamp_strictly_increasing_timestamps():
    clock = MediaClock()
    video, audio = SessionVideoTrack(clock), SessionAudioTrack(clock)
    image = np.zeros((16, 16, 3), np.uint8)
    for pts in (5.0, 5.04, 5.04, 5.08):  # a repeated pts must not repeat a timestamp
        video.put(image, clock.observe(pts))
    audio.write(ramp(1920), clock.start)
    a = [await asyncio.wait_for(audio.recv(), 2) for _ in range(3)]
    v = [await asyncio.wait_for(video.recv(), 2) for _ in range(3)]  # the queue kept the newest 3
    assert [f.pts for f in v] == [3600, 3601, 7200]
    assert (video.dropped, video.sent, video.queued) == (0, 3, 0)  # nothing was sending yet when it overflowed
    for pts in (5.12, 5.16, 5.2, 5.24):
        video.put(image, clock.observe(pts))
    assert video.dropped == 1
    assert clock.slips == 0
    assert [f.pts for f in a] == [0, 960, 1920]
    assert a[0].to_ndarray().any() and not a[2].to_ndarray().any()


async def test_clock_follows_a_session_that_slips():
    clock = MediaClock()
    t0 = clock.observe(0.0)
    assert clock.observe(0.0) == t0  # on time
    await asyncio.sleep(0.15)  # the session stalled: the item stamped 0.04 arrives 0.11 s late
    t1 = clock.observe(0.04)
    assert clock.slips == 1 and t1 - t0 > 0.1
    assert clock.observe(0.08) == pytest.approx(t1 + 0.04)  # later items follow the new offset
