"""A tiny voice bot embedding AvatarSession directly: its replies are spoken by espeak-ng and lip-synced by the
avatar; the conversation is written to an mp4 (frames and the audio they carry).

    python examples/voice_bot.py --out bot.mp4 "hello there" "what is the weather like"   # one reply per line
    echo "tell me a number" | python examples/voice_bot.py --out bot.mp4

A real bot would put its LLM where `reply()` is and a speech-to-text in front; the avatar part is the same:
push the TTS audio, flush at the end of each reply, play what the session yields (clear_buffer() on barge-in).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import subprocess
import sys
import wave

import numpy as np

from fada_stream import AudioFrame, AvatarSession, SegmentEnd, VideoFrame


def reply(text: str) -> str:
    return f"You said: {text}. That is a fine thing to say."


def speak(text: str) -> tuple[np.ndarray, int]:
    """espeak-ng's speech for `text`: (n,) int16 mono and its sample rate."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("this example speaks with espeak-ng: apt-get install espeak-ng")
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16), w.getframerate()


async def converse(lines: list[str], out: str | None, paced: bool) -> dict:
    video, audio = [], []
    async with AvatarSession(paced=paced, output_sample_rate=16000) as session:
        for line in lines:
            pcm, rate = speak(reply(line))
            await session.push_audio(pcm, rate)  # a TTS would stream it in chunks; one push is fine too
            await session.flush()
            async for item in session:
                if isinstance(item, VideoFrame):
                    video.append(item.image)
                elif isinstance(item, AudioFrame):
                    audio.append(item.pcm)
                elif isinstance(item, SegmentEnd):
                    print(f"bot: {reply(line)!r} ({item.playback_position:.2f} s)", flush=True)
                    break
        stats = session.stats()
    if out:
        from fada_stream.video import write_mp4

        write_mp4(out, np.stack(video), np.concatenate(audio).astype(np.float32) / 32768.0, fps=25, sample_rate=16000)
        print(f"wrote {out}: {len(video)} frames", flush=True)
    return {"frames": len(video), "audio_s": sum(map(len, audio)) / 16000, "fps": stats["fps"], "sampler": stats["sampler"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("lines", nargs="*", help="what the user says (default: lines from stdin)")
    p.add_argument("--out", default=None, help="write the conversation to this mp4")
    p.add_argument("--paced", action="store_true", help="yield in real time, as a live bot plays it")
    args = p.parse_args(argv)
    lines = args.lines or [line.strip() for line in sys.stdin if line.strip()]
    if not lines:
        p.error("nothing to reply to")
    print(asyncio.run(converse(lines, args.out, args.paced)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
