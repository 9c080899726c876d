"""Videos of the same clip next to each other, each under its label, with the first one's audio.

    python -m distill.eval.side_by_side --out docs/ablation_side_by_side.mp4 \
        "ground truth=corpus/test/test-0-000001.mp4" "teacher 75 NFE=out/teacher75/videos/test/s_ref1.5_s_audio2.5/test-0-000001.mp4" ...

Every input is read at 25 fps and centre-cropped to 128 x 128 as the harness scores it; the output is as long as
the shortest input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

LABEL_H = 16  # pixels of caption above each panel


def caption(text: str, width: int) -> np.ndarray:
    """(LABEL_H, width, 3) uint8: white text on black."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, LABEL_H))
    ImageDraw.Draw(im).text((3, 2), text, fill=(255, 255, 255))
    return np.asarray(im)


def compose(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """[(label, (T_i, S, S, 3))] -> (min T_i, LABEL_H + S, n S, 3) uint8."""
    t = min(len(frames) for _, frames in panels)
    columns = []
    for label, frames in panels:
        head = np.broadcast_to(caption(label, frames.shape[2]), (t, LABEL_H, frames.shape[2], 3))
        columns.append(np.concatenate([head, frames[:t]], axis=1))  # (T, LABEL_H + S, S, 3)
    return np.concatenate(columns, axis=2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m distill.eval.side_by_side", description=__doc__.split("\n")[0])
    p.add_argument("videos", nargs="+", metavar="LABEL=PATH", help="a panel: its caption and its mp4")
    p.add_argument("--out", required=True, help="output .mp4")
    args = p.parse_args(argv)

    from distill.eval.score import ClipReadError, load_video
    from fada_stream.video import write_mp4

    panels, audio = [], None
    for spec in args.videos:
        label, sep, path = spec.rpartition("=")  # labels may hold "=" ("K=2"), paths rarely do
        if not sep or not label or not path:
            print(f"error: {spec!r}: expected LABEL=PATH", file=sys.stderr)
            return 2
        try:
            frames, clip_audio, _ = load_video(Path(path), fps=25.0, n_min=1)
        except (ClipReadError, FileNotFoundError, OSError, ValueError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
        panels.append((label, frames))
        audio = clip_audio if audio is None else audio
    grid = compose(panels)
    n = len(grid)
    write_mp4(args.out, grid, audio[: n * 16000 // 25], fps=25, sample_rate=16000)
    print(f"wrote {args.out}: {len(panels)} panels, {n} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
