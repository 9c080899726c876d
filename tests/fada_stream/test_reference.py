"""Reference images: any size, path, bytes or array; bad or huge inputs are clear errors before decoding."""
import io

import numpy as np
import pytest
from PIL import Image

from fada_stream.reference import DEFAULT_FACE, MAX_IMAGE_BYTES, ReferenceError, load_reference


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_reference_any_size_is_cropped_and_resized(tmp_path):
    Image.fromarray(np.zeros((300, 500, 3), np.uint8)).save(tmp_path / "wide.jpg")
    Image.fromarray(np.zeros((40, 30), np.uint8)).save(tmp_path / "small.png")
    assert load_reference(tmp_path / "wide.jpg", 128).shape == (128, 128, 3)
    assert load_reference(tmp_path / "small.png", 128).shape == (128, 128, 3)


def test_bytes_arrays_and_the_default_face_load_alike():
    face = load_reference(None, 128)
    assert DEFAULT_FACE.is_file() and face.shape == (128, 128, 3) and face.dtype == np.uint8
    np.testing.assert_array_equal(load_reference(png_bytes(face), 128), face)
    np.testing.assert_array_equal(load_reference(face, 128), face)
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(load_reference(rgba, 128), face)


def test_centre_crop_keeps_the_middle():
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, 100:200] = 255  # the centre square is white, the sides black
    assert load_reference(img, 32).min() == 255


@pytest.mark.parametrize("bad,match", [
    (b"not an image", "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a readable image"),
    (np.zeros((10, 10), np.uint8), "must be"),
    (np.zeros((10, 10, 3), np.float32), "must be"),
    (np.zeros((0, 10, 3), np.uint8), "out of range"),
])
def test_bad_inputs_are_clear_errors(bad, match):
    with pytest.raises(ReferenceError, match=match):
        load_reference(bad, 64)


def test_missing_file_and_oversized_upload_are_refused(tmp_path):
    with pytest.raises(ReferenceError, match="not found"):
        load_reference(tmp_path / "missing.png", 128)
    with pytest.raises(ReferenceError, match="bytes"):
        load_reference(b"\0" * (MAX_IMAGE_BYTES + 1), 128)


def test_decompression_bomb_is_refused_from_its_header():
    # A 1-bit PNG of 20000 x 20000 pixels compresses to a few kB but would decode to 1.2 GB of RGB.
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG")
    with pytest.raises(ReferenceError, match="too large"):
        load_reference(buf.getvalue(), 128)
