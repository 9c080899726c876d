"""The parametric face: deterministic identities, a readable mouth inside its box, anti-aliased motion."""
import colorsys
import itertools
import json

import numpy as np
import pytest

from distill.data.face import HEAD_Y, PARAM_KEYS, Identity, mouth_box, render_frames, sample_identity


def ident(seed: int, style: str = "train") -> Identity:
    return sample_identity(np.random.default_rng(seed), style)


def frames(identity: Identity, **tracks) -> np.ndarray:
    """Render one frame per entry of the given tracks; other parameters stay neutral."""
    return render_frames(identity, {k: np.asarray(v, np.float32) for k, v in tracks.items()}).astype(np.float64)


def luma(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114])


def outside(mask_box: tuple[int, int, int, int], size: int = 128) -> np.ndarray:
    top, bottom, left, right = mask_box
    m = np.ones((size, size), bool)
    m[top:bottom, left:right] = False
    return m


def test_shape_dtype_and_size():
    out = render_frames(ident(0), {k: np.zeros(3, np.float32) for k in PARAM_KEYS})
    assert out.shape == (3, 128, 128, 3) and out.dtype == np.uint8
    assert render_frames(ident(0), {"jaw": np.zeros(2, np.float32)}, size=64).shape == (2, 64, 64, 3)
    with pytest.raises(KeyError):
        render_frames(ident(0), {"jaws": np.zeros(1, np.float32)})


@pytest.mark.parametrize("style", ["train", "openset"])
def test_identity_json_round_trip_renders_identically(style):
    a = ident(3, style)
    text = json.dumps(a.to_dict(), sort_keys=True)
    b = Identity.from_dict(json.loads(text))
    assert b == a and json.dumps(b.to_dict(), sort_keys=True) == text
    tracks = dict(jaw=[0.0, 0.7], yaw=[0.3, -0.5], roll=[0.05, -0.1])
    assert np.array_equal(frames(a, **tracks), frames(b, **tracks))


def test_same_rng_same_face_different_seeds_different_faces():
    tracks = dict(jaw=[0.0, 0.5], blink=[0.0, 0.3])
    assert ident(5) == ident(5)
    assert np.array_equal(frames(ident(5), **tracks), frames(ident(5), **tracks))
    faces = [frames(ident(s), jaw=[0.0])[0] for s in range(6)]
    for a, b in itertools.combinations(faces, 2):
        assert np.abs(a - b).mean() > 5


@pytest.mark.parametrize("seed,style", [(0, "train"), (1, "train"), (7, "train"), (2, "openset")])
def test_open_jaw_darkens_the_mouth_box_and_nothing_else(seed, style):
    box = mouth_box()
    top, bottom, left, right = box
    closed, opened = frames(ident(seed, style), jaw=[0.0, 1.0])
    darker = luma(closed[top:bottom, left:right]) - luma(opened[top:bottom, left:right])
    assert (darker > 20).sum() >= 60  # the dark inner mouth appears, on the darkest skin too
    assert np.abs(opened - closed)[top:bottom, left:right].mean() > 2
    assert np.abs(opened - closed)[outside(box)].max() <= 1


def test_blink_changes_only_the_eyes():
    idt = ident(2)
    opened, shut = frames(idt, blink=[0.0, 1.0])
    diff = np.abs(shut - opened).max(-1)  # (H, W)
    rows = np.flatnonzero(diff.max(1) > 8)
    eye_row = (HEAD_Y + idt.eye_y) * 128
    assert len(rows) > 3 and abs(rows.mean() - eye_row) < 4
    assert rows.max() - rows.min() < 4 * idt.eye_h * 128


@pytest.mark.parametrize("key,lo,hi", [("jaw", 0.2, 0.24), ("width", -0.02, 0.02), ("round", 0.5, 0.54),
                                       ("blink", 0.4, 0.44), ("yaw", 0.3, 0.34), ("roll", 0.0, 0.004),
                                       ("tx", 0.0, 0.002), ("ty", 0.0, 0.002), ("brow", 0.5, 0.54)])
def test_tiny_parameter_steps_give_tiny_image_changes(key, lo, hi):
    """Anti-aliasing: moving an edge by a fraction of a pixel changes pixels by a fraction, never flips them."""
    steps = np.linspace(lo, hi, 5)
    seq = frames(ident(6), **{key: steps, "jaw": steps if key == "jaw" else np.full(5, 0.4)})
    assert np.abs(np.diff(seq, axis=0)).max() < 32  # a hard edge crossing a pixel centre would jump by ~100+
    assert np.abs(seq[-1] - seq[0]).max() > 0  # the parameter does move something


@pytest.mark.parametrize("seed,style", [(0, "train"), (2, "train"), (3, "openset")])
def test_mouth_stays_in_its_box_over_the_pose_range(seed, style):
    poses = np.array(list(itertools.product([-1, 1], [-1, 1], [-0.12, 0.12], [-0.04, 0.04], [-0.04, 0.04])))  # (32, 5)
    n = len(poses)
    pose = dict(zip(["yaw", "pitch", "roll", "tx", "ty"], poses.T))
    idt = ident(seed, style)
    rest = frames(idt, jaw=np.zeros(n), **pose)
    out = outside(mouth_box())
    for jaw, width, rnd in [(1, 1, 0), (1, -1, 1)]:  # widest spread, tallest rounded opening
        moved = frames(idt, jaw=np.full(n, jaw), width=np.full(n, width), round=np.full(n, rnd), **pose)
        assert np.abs(moved - rest)[:, out].max() <= 1


def test_openset_skin_is_never_a_human_tone():
    def cheek_hue(idt: Identity) -> float:
        img = frames(idt, jaw=[0.0])[0] / 255
        r, c = int((HEAD_Y + idt.nose_y) * 128), int((0.5 + idt.eye_dx) * 128)
        return colorsys.rgb_to_hsv(*np.median(img[r - 1 : r + 2, c - 1 : c + 2].reshape(-1, 3), 0))[0] * 360

    train = [cheek_hue(ident(s)) for s in range(8)]
    openset = [cheek_hue(ident(s, "openset")) for s in range(8)]
    assert all(h < 50 or h > 340 for h in train)  # reds through oranges: human skin
    assert all(70 < h < 320 for h in openset)


def test_a_frame_renders_the_same_alone_or_in_a_batch():
    """The reference frame of a clip is rendered on its own; it must match the clip's frames."""
    idt = ident(8)
    batch = frames(idt, jaw=[0.0, 0.8, 0.3], yaw=[0.0, 1.0, -0.7], roll=[0.0, 0.1, -0.12], tx=[0.0, 0.04, -0.03])
    for i, (jaw, yaw, roll, tx) in enumerate([(0.0, 0.0, 0.0, 0.0), (0.8, 1.0, 0.1, 0.04)]):
        assert np.array_equal(batch[i], frames(idt, jaw=[jaw], yaw=[yaw], roll=[roll], tx=[tx])[0])
