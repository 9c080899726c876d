"""A LiveKit Agents voice agent with the fada-stream avatar in the same process.

    pip install "fada-stream[livekit]" livekit-plugins-openai   # or any STT/LLM/TTS plugins you use
    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... python examples/livekit_avatar.py dev

The agent's TTS audio goes to a QueueAudioOutput instead of the room; AvatarRunner feeds it to the avatar and
publishes the avatar's synced video and audio as the agent's tracks. Needs a LiveKit server (cloud or
`livekit-server --dev`); the adapter itself is tested without one (tests/fada_stream/integrations).
"""
from __future__ import annotations

from livekit.agents import Agent, AgentSession, JobContext, WorkerOptions, cli
from livekit.agents.voice.avatar import AvatarRunner, QueueAudioOutput

from fada_stream.integrations.livekit import FadaVideoGenerator

RATE = 24000


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    generator = await FadaVideoGenerator(output_sample_rate=RATE).start()  # the bundled face and model
    audio = QueueAudioOutput(sample_rate=RATE)
    runner = AvatarRunner(ctx.room, audio_recv=audio, video_gen=generator, options=generator.options(audio_sample_rate=RATE))
    await runner.start()
    ctx.add_shutdown_callback(runner.aclose)
    ctx.add_shutdown_callback(generator.aclose)

    # Configure stt/llm/tts to taste: these strings name LiveKit's inference gateway models.
    session = AgentSession(stt="deepgram/nova-3", llm="openai/gpt-4.1-mini", tts="cartesia/sonic-2")
    session.output.audio = audio  # speech goes to the avatar, which speaks it in the room with its face
    await session.start(agent=Agent(instructions="You are a friendly assistant. Keep answers short."), room=ctx.room)


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint))
