"""The corpus generator: deterministic, aligned, truthful metadata, disjoint splits, atomic output."""
import json

import numpy as np
import pytest

from distill.data import corpus
from distill.data.synth import SynthConfig, make_clip, speaking_frames, write_clip
from distill.data.video_io import read_mp4, read_wav

CFG = SynthConfig()


@pytest.fixture(scope="module")
def clip():
    return make_clip("train", 7, 0, CFG)


def test_lengths_line_up(clip):
    t = clip.meta["n_frames"]
    assert clip.frames.shape == (t, 128, 128, 3)
    assert len(clip.audio) == t * CFG.samples_per_frame
    assert all(len(v) == t for v in clip.meta["params"].values())
    assert len(clip.meta["speaking"]) == t
    phon = clip.meta["phonemes"]
    assert phon[0][1] == 0.0 and abs(phon[-1][2] - t / 25) < 1e-3
    assert all(abs(a[2] - b[1]) < 1e-3 for a, b in zip(phon, phon[1:]))  # no gaps


def test_same_seed_same_clip_and_json_bytes(tmp_path, clip):
    again = make_clip("train", 7, 0, CFG)
    assert np.array_equal(clip.frames, again.frames) and np.array_equal(clip.audio, again.audio)
    for name, c in (("a", clip), ("b", again)):
        (tmp_path / name).mkdir()
        write_clip(tmp_path / name, c)
    cid = clip.meta["id"]
    assert (tmp_path / "a" / f"{cid}.json").read_bytes() == (tmp_path / "b" / f"{cid}.json").read_bytes()
    assert (tmp_path / "a" / f"{cid}.mp4").read_bytes() == (tmp_path / "b" / f"{cid}.mp4").read_bytes()


def test_mouth_follows_speech(clip):
    jaw = np.asarray(clip.meta["params"]["jaw"])
    speaking = np.asarray(clip.meta["speaking"], bool)
    assert jaw[speaking].mean() > 3 * jaw[~speaking].mean()
    assert jaw[:3].max() < 0.05  # leading silence: mouth closed


def test_audio_energy_matches_speaking_frames():
    clean = make_clip("train", 7, 0, SynthConfig(moderate_fraction=0.0))  # no noise or offset corruptions
    spf = CFG.samples_per_frame
    rms = np.sqrt((clean.audio.reshape(-1, spf) ** 2).mean(axis=1))  # (T,)
    speaking = np.asarray(clean.meta["speaking"], bool)
    assert np.median(rms[speaking]) > 10 * (np.median(rms[~speaking]) + 1e-4)


def test_splits_have_disjoint_identities():
    ids_train = [json.dumps(make_clip("train", 0, i, CFG).meta["identity"], sort_keys=True) for i in (0, 4)]
    ids_test = [json.dumps(make_clip("test", 0, i, CFG).meta["identity"], sort_keys=True) for i in (0, 4)]
    assert not set(ids_train) & set(ids_test)
    same = [make_clip("train", 0, i, CFG).meta for i in (0, 1)]
    assert same[0]["identity_id"] == same[1]["identity_id"] and same[0]["identity"] == same[1]["identity"]


def test_moderate_tier_records_its_corruptions():
    cfg = SynthConfig(moderate_fraction=1.0)
    for i in range(3):
        m = make_clip("train", 3, i, cfg).meta
        assert m["tier"] == "moderate" and m["corruptions"]
        offs = [c["frames"] for c in m["corruptions"] if c["kind"] == "av_offset"]
        assert m["av_offset_frames"] == (offs[0] if offs else 0)


def test_speaking_frames_from_timeline():
    flags = speaking_frames([("_", 0.0, 0.2), ("a", 0.2, 0.4), ("_", 0.4, 0.6)], 15, 25)
    assert flags.tolist() == [False] * 5 + [True] * 5 + [False] * 5


def test_corpus_folder_and_manifest(tmp_path):
    rows = corpus.synth_corpus(tmp_path, "test", 2, seed=1, workers=1)
    assert [r["id"] for r in corpus.read_manifest(tmp_path)] == [r["id"] for r in rows]
    for r in rows:
        meta = json.loads((tmp_path / f"{r['id']}.json").read_text())
        clip = read_mp4(tmp_path / f"{r['id']}.mp4")
        wav, rate = read_wav(tmp_path / f"{r['id']}.wav")
        assert len(clip.frames) == meta["n_frames"] and rate == 16000 and len(wav) == meta["n_frames"] * 640
        assert (tmp_path / f"{r['id']}.png").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_no_manifest_when_generation_fails(tmp_path, monkeypatch):
    import distill.data.corpus as c

    def boom(*a, **k):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(c, "make_clip", boom)
    with pytest.raises(RuntimeError):
        c.synth_corpus(tmp_path, "train", 2, seed=0, workers=1)
    assert not (tmp_path / "manifest.jsonl").exists()


def test_openset_photo_references(tmp_path):
    from PIL import Image

    paths = corpus.write_photo_references(tmp_path)
    assert len(paths) == 2
    for p in paths:
        with Image.open(p) as im:
            assert im.size == (128, 128) and im.mode == "RGB"


def test_one_clip_per_identity_gives_independent_faces(tmp_path, capsys):
    """`synth --clips-per-identity 1`: an evaluation split whose every clip is a new face (the default 4 repeats each)."""
    from distill.data.__main__ import main

    assert main(["synth", "--out", str(tmp_path / "wide"), "--clips", "3", "--seed", "5", "--split", "openset",
                 "--moderate-fraction", "0", "--clips-per-identity", "1", "--workers", "1"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "wide" / "manifest.jsonl").read_text().splitlines()]
    assert len({r["identity_id"] for r in rows}) == 3 and all(r["tier"] == "high" for r in rows)
    assert make_clip("openset", 5, 1).meta["identity_id"] == make_clip("openset", 5, 3).meta["identity_id"]  # default: 4 a face
    with pytest.raises(SystemExit, match="at least 1"):
        main(["synth", "--out", str(tmp_path / "bad"), "--clips", "1", "--clips-per-identity", "0"])
