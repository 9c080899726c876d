"""The pipecat adapter in a real pipecat pipeline (pipecat.tests.utils.run_test) with a scripted TTS: TTS audio in,
the avatar's RGB frames and re-timed audio out; an interruption cuts the reply; EndFrame lets it play out first."""
import pytest

frames = pytest.importorskip("pipecat.frames.frames")
pipecat_tests = pytest.importorskip("pipecat.tests.utils")

from fada_stream import StreamConfig  # noqa: E402
from fada_stream.integrations.pipecat import FadaVideoService  # noqa: E402

RATE = 24000


def tts(tts_chunks, seconds: float) -> list:
    """A scripted TTS reply as TTSAudioRawFrames."""
    return [frames.TTSAudioRawFrame(audio=c.tobytes(), sample_rate=RATE, num_channels=1) for c in tts_chunks(seconds)]


def split(down: list) -> tuple[list, list]:
    images = [f for f in down if isinstance(f, frames.OutputImageRawFrame)]
    audio = [f for f in down if isinstance(f, frames.TTSAudioRawFrame)]
    return images, audio


async def test_tts_reply_becomes_avatar_frames(tiny_checkpoint, tts_chunks):
    service = FadaVideoService(checkpoint=tiny_checkpoint, config=StreamConfig(vad=False))
    down, _ = await pipecat_tests.run_test(service, frames_to_send=[*tts(tts_chunks, 1.0), frames.TTSStoppedFrame()])
    images, audio = split(down)
    assert sum(len(a.audio) // 2 for a in audio) == pytest.approx(RATE, abs=RATE // 25)  # the reply, all of it, re-timed
    assert all(a.sample_rate == RATE for a in audio)
    assert len(images) >= 25 and images[0].size == (128, 128) and images[0].format == "RGB"
    assert len(images[0].image) == 128 * 128 * 3
    pts = [f.pts for f in images]
    assert all(b > a for a, b in zip(pts, pts[1:]))  # one clock, strictly increasing
    stops = [i for i, f in enumerate(down) if isinstance(f, frames.TTSStoppedFrame)]
    last_audio = max(i for i, f in enumerate(down) if isinstance(f, frames.TTSAudioRawFrame))
    assert len(stops) == 1 and stops[0] > last_audio  # "stopped speaking" only once the avatar has said it all
    assert service.session is not None and service.session.stats()["frames"] >= 25


async def test_interruption_cuts_the_reply(tiny_checkpoint, tts_chunks):
    service = FadaVideoService(checkpoint=tiny_checkpoint, config=StreamConfig(vad=False))
    # The interruption is a system frame (pipecat delivers it ahead of queued data): sleep so the reply is playing.
    down, _ = await pipecat_tests.run_test(
        service, frames_to_send=[*tts(tts_chunks, 3.0), pipecat_tests.SleepFrame(sleep=1.0), frames.InterruptionFrame()])
    _, audio = split(down)
    assert sum(len(a.audio) // 2 for a in audio) < 2 * RATE  # far less than the 3 s pushed
    assert any(isinstance(f, frames.InterruptionFrame) for f in down)


async def test_a_bad_checkpoint_is_a_fatal_error_upstream_and_the_pipeline_still_ends(tmp_path, tts_chunks):
    service = FadaVideoService(checkpoint=tmp_path)  # an empty folder: no model
    down, up = await pipecat_tests.run_test(service, frames_to_send=[*tts(tts_chunks, 0.2), frames.TTSStoppedFrame()])
    errors = [f for f in up if isinstance(f, frames.ErrorFrame)]
    assert len(errors) == 1 and "teacher.json" in errors[0].error
    assert not split(down)[0]  # no frames, and run_test returned: StartFrame and EndFrame went through
