"""Reference faces: any image (path, encoded bytes or array) -> a square RGB image at the model's size.

Uploads come from untrusted clients, so sizes are checked before anything is decoded: the pixel
count from the header (decompression bombs), the encoded size, and the array shape.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

MAX_IMAGE_PIXELS = 40_000_000  # a reference is a face photo; anything larger is refused before decoding
MAX_IMAGE_BYTES = 16 << 20  # encoded size of an uploaded image
DEFAULT_FACE = Path(__file__).parent / "assets" / "face.png"

ImageLike = str | Path | bytes | bytearray | np.ndarray


class ReferenceError(ValueError):
    """The reference image is missing, unreadable, or unreasonably large."""


def _square(rgb, size: int) -> np.ndarray:
    """PIL RGB image -> (size, size, 3) uint8: centre square crop, then resize."""
    from PIL import Image

    side = min(rgb.size)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    return np.array(rgb.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS))


def _decode(source, name: str, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ReferenceError(f"{name}: {img.width}x{img.height} image is too large (max {MAX_IMAGE_PIXELS} pixels)")
            img.load()
            return _square(img.convert("RGB"), size)
    except Image.DecompressionBombError as e:  # PIL's own header check can fire before ours
        raise ReferenceError(f"{name}: image is too large: {e}") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ReferenceError):
            raise
        raise ReferenceError(f"{name}: not a readable image: {e}") from e


def load_reference(image: ImageLike | None, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB from a file path, encoded image bytes, an (H, W, 3) uint8 array, or
    None for the bundled default face."""
    from PIL import Image

    if image is None:
        image = DEFAULT_FACE
    if isinstance(image, (bytes, bytearray)):
        if len(image) > MAX_IMAGE_BYTES:
            raise ReferenceError(f"uploaded image is {len(image)} bytes (max {MAX_IMAGE_BYTES})")
        return _decode(io.BytesIO(bytes(image)), "uploaded image", size)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise ReferenceError(f"reference array must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS or min(image.shape[:2]) < 1:
            raise ReferenceError(f"reference array of {image.shape[1]}x{image.shape[0]} pixels is out of range")
        return _square(Image.fromarray(np.ascontiguousarray(image[..., :3])), size)
    path = Path(image)
    if not path.is_file():
        raise ReferenceError(f"{path}: reference image not found")
    return _decode(path, str(path), size)
