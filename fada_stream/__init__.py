"""fada-stream: streaming speech in, a live talking-avatar video out, with a few-step diffusion model."""
from fada_stream.frames import AudioFrame, SegmentEnd, VideoFrame
from fada_stream.session import AvatarSession, SessionClosed
from fada_stream.stream import StreamConfig

__all__ = ["AudioFrame", "AvatarSession", "SegmentEnd", "SessionClosed", "StreamConfig", "VideoFrame"]
