"""The LiveKit Agents adapter inside livekit-agents' own AvatarRunner, in-process and without a LiveKit server:
the agent's TTS audio goes through QueueAudioOutput, the runner pushes it to FadaVideoGenerator and forwards the
frames into its real AVSynchronizer; playback start/finish reach the agent's audio output, interrupts too."""
import asyncio

import numpy as np
import pytest

rtc = pytest.importorskip("livekit.rtc")
avatar = pytest.importorskip("livekit.agents.voice.avatar")

from fada_stream import AvatarSession, StreamConfig  # noqa: E402
from fada_stream.integrations.livekit import FadaVideoGenerator  # noqa: E402

RATE = 24000


def tts_frames(tts_chunks, seconds: float) -> list:
    """The agent's TTS as rtc.AudioFrames."""
    return [rtc.AudioFrame(c.tobytes(), RATE, 1, len(c)) for c in tts_chunks(seconds)]


class Pushed:
    """What the runner pushed into its synchroniser."""

    def __init__(self):
        self.video, self.audio = [], []

    async def push(self, frame, *a, **k):
        (self.video if isinstance(frame, rtc.VideoFrame) else self.audio).append(frame)


async def run_avatar(tiny_checkpoint, script):
    """Start a runner (track publishing stubbed: no room to publish to), run `script(agent_audio)`, return what
    reached the synchroniser and the playback events the agent's side saw."""
    gen = await FadaVideoGenerator(AvatarSession(checkpoint=tiny_checkpoint, output_sample_rate=RATE,
                                                 config=StreamConfig(vad=False))).start()
    agent_audio = avatar.QueueAudioOutput(sample_rate=RATE)
    events = []
    agent_audio.on("playback_started", lambda ev: events.append("started"))
    agent_audio.on("playback_finished", lambda ev: events.append(("finished", round(ev.playback_position, 2), ev.interrupted)))
    runner = avatar.AvatarRunner(rtc.Room(), audio_recv=agent_audio, video_gen=gen, options=gen.options())
    pushed = Pushed()

    async def no_publish():
        runner._video_publication = object()

    runner._publish_track = no_publish
    runner._av_sync.push = pushed.push  # the real synchroniser paces to a published track; here it only records
    await runner.start()
    try:
        await script(agent_audio, events, pushed)
    finally:
        await runner.aclose()
        await gen.aclose()
    return pushed, events


async def test_speech_becomes_synced_frames_and_playback_events(tiny_checkpoint, tts_chunks):
    async def script(agent_audio, events, pushed):
        for f in tts_frames(tts_chunks, 1.0):
            await agent_audio.capture_frame(f)
        agent_audio.flush()
        for _ in range(200):
            if any(isinstance(e, tuple) for e in events):
                break
            await asyncio.sleep(0.05)

    pushed, events = await run_avatar(tiny_checkpoint, script)
    assert events[0] == "started" and events[-1][0] == "finished" and events[-1][2] is False
    assert events[-1][1] == pytest.approx(1.0, abs=0.04)  # the whole second was played
    # Audio frames carry the pushed speech only (silence between utterances is the room's): exactly the 1 s pushed.
    assert sum(a.samples_per_channel for a in pushed.audio) == pytest.approx(RATE, abs=RATE // 25)
    assert max(np.abs(np.frombuffer(a.data, np.int16)).max() for a in pushed.audio) > 1000  # and it is the speech
    assert all(a.sample_rate == RATE and a.num_channels == 1 for a in pushed.audio)
    v = pushed.video[0]
    assert (v.width, v.height, v.type) == (128, 128, rtc.VideoBufferType.RGBA)
    assert len(pushed.video) >= 25  # a frame per 40 ms of speech, plus idle frames around it


async def test_interrupt_reaches_the_agent_as_interrupted_playback(tiny_checkpoint, tts_chunks):
    async def script(agent_audio, events, pushed):
        for f in tts_frames(tts_chunks, 3.0):
            await agent_audio.capture_frame(f)
        while not pushed.audio:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        agent_audio.clear_buffer()  # the user barged in
        for _ in range(100):
            if any(isinstance(e, tuple) for e in events):
                break
            await asyncio.sleep(0.05)

    pushed, events = await run_avatar(tiny_checkpoint, script)
    finished = [e for e in events if isinstance(e, tuple)]
    assert len(finished) == 1 and finished[0][2] is True and 0 < finished[0][1] < 3.0


async def test_options_refuse_rates_the_frames_would_not_have(tiny_checkpoint):
    gen = await FadaVideoGenerator(checkpoint=tiny_checkpoint, output_sample_rate=RATE).start()
    try:
        opts = gen.options()
        assert (opts.audio_sample_rate, opts.video_fps, opts.video_width) == (RATE, 25, 128)
        with pytest.raises(ValueError, match="24000 Hz"):
            gen.options(audio_sample_rate=48000)  # LiveKit's source would reject every frame mid-stream
        with pytest.raises(ValueError, match="fps"):
            gen.options(fps=30)
    finally:
        await gen.aclose()
