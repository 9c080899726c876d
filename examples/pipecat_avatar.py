"""A pipecat pipeline with the fada-stream avatar, runnable offline: text -> espeak-ng "TTS" -> FadaVideoService ->
a sink that writes the avatar's frames and audio to an mp4.

    pip install pipecat-ai        # then restore onnxruntime-gpu if you use it (README, "In pipecat")
    python examples/pipecat_avatar.py --out pipecat.mp4 "hello from pipecat" "this is the avatar speaking"

In a real bot, the TTS is a pipecat TTS service fed by an LLM, and the sink is the transport's output (Daily,
WebRTC, ...); FadaVideoService sits between them unchanged.
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
from pipecat.frames.frames import (
    EndFrame, Frame, OutputImageRawFrame, TextFrame, TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat.workers.runner import WorkerRunner

from fada_stream.integrations.pipecat import FadaVideoService


class EspeakTTS(FrameProcessor):
    """TextFrame -> TTSStartedFrame, 20 ms TTSAudioRawFrames, TTSStoppedFrame (what a TTS service emits)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, TextFrame):
            await self.push_frame(frame, direction)
            return
        wav = subprocess.run(["espeak-ng", "--stdout", frame.text], check=True, capture_output=True).stdout
        with wave.open(io.BytesIO(wav)) as w:
            rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
        await self.push_frame(TTSStartedFrame())
        n = rate // 50
        for i in range(0, len(pcm), n):
            await self.push_frame(TTSAudioRawFrame(audio=pcm[i : i + n].tobytes(), sample_rate=rate, num_channels=1))
        await self.push_frame(TTSStoppedFrame())


class Mp4Sink(FrameProcessor):
    """Collects the avatar's images and audio; writes them to an mp4 at the end."""

    def __init__(self, out: str):
        super().__init__()
        self.out, self.images, self.audio, self.rate = out, [], [], 16000

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputImageRawFrame):
            self.images.append(np.frombuffer(frame.image, np.uint8).reshape(frame.size[1], frame.size[0], 3))
        elif isinstance(frame, TTSAudioRawFrame):
            self.audio.append(np.frombuffer(frame.audio, np.int16))
            self.rate = frame.sample_rate
        elif isinstance(frame, EndFrame) and self.images:
            from fada_stream.video import write_mp4

            audio = np.concatenate(self.audio).astype(np.float32) / 32768.0 if self.audio else None
            write_mp4(self.out, np.stack(self.images), audio, fps=25, sample_rate=self.rate)
            print(f"wrote {self.out}: {len(self.images)} frames, {sum(map(len, self.audio)) / self.rate:.2f} s of speech")
        await self.push_frame(frame, direction)


async def run(lines: list[str], out: str) -> None:
    sink = Mp4Sink(out)
    pipeline = Pipeline([EspeakTTS(), FadaVideoService(), sink])
    worker = PipelineWorker(pipeline, params=PipelineParams(audio_out_sample_rate=16000))
    await worker.queue_frames([TextFrame(line) for line in lines] + [EndFrame()])
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("lines", nargs="+", help="what the avatar says, one utterance each")
    p.add_argument("--out", default="pipecat.mp4")
    args = p.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("this example speaks with espeak-ng: apt-get install espeak-ng")
    asyncio.run(run(args.lines, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
