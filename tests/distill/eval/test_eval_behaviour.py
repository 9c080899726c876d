"""The shipped experts on freshly generated test-split clips (identities never seen in training)."""
import shutil

import numpy as np
import pytest

SHIFTS = (-5, -3, -1, 1, 3, 5)


@pytest.fixture(scope="session")
def scored(tmp_path_factory):
    """Four clean test clips (two identities), their shifted / swapped / still variants, all scored once."""
    from distill.data.synth import SynthConfig, make_clip, write_clip
    from distill.data.video_io import write_mp4
    from distill.eval.experts import load_experts
    from distill.eval.score import ScoreConfig, score_videos
    from distill.data.corrupt import shift_audio
    from distill.eval.selfcheck import fit_length

    root = tmp_path_factory.mktemp("eval_behaviour")
    gt, var = root / "gt", root / "variants"
    gt.mkdir()
    var.mkdir()
    cfg = SynthConfig(moderate_fraction=0.0, clips_per_identity=2)
    clips = [make_clip("test", 7, i, cfg) for i in range(4)]
    for c in clips:
        write_clip(gt, c)
    a, b = clips[0], clips[2]  # different identities
    for k in SHIFTS:
        write_mp4(var / f"delay{k:+d}.mp4", a.frames, shift_audio(a.audio, -k, 640))
    write_mp4(var / "swapped.mp4", a.frames, fit_length(b.audio, len(a.audio)))
    write_mp4(var / "still.mp4", np.repeat(a.frames[:1], len(a.frames), axis=0), a.audio)
    experts = load_experts()
    gt_paths = sorted(gt.glob("*.mp4"))
    report, _ = score_videos(gt_paths + sorted(var.glob("*.mp4")), experts, ScoreConfig())
    rows = {p.stem: r for p, r in zip(gt_paths + sorted(var.glob("*.mp4")), report["clips"])}
    # The same clip, away from its own <id>.png, scored against another identity's reference image.
    alone = root / "alone"
    alone.mkdir()
    shutil.copy(gt / f"{a.meta['id']}.mp4", alone)
    other, _ = score_videos([alone / f"{a.meta['id']}.mp4"], experts, ScoreConfig(reference=gt / f"{b.meta['id']}.png"))
    return {"rows": rows, "gt": [rows[p.stem] for p in gt_paths], "other_ref": other["clips"][0], "gt_dir": gt,
            "first": a.meta["id"]}


def test_ground_truth_is_in_sync(scored):
    for r in scored["gt"]:
        assert r["error"] is None and abs(r["offset"]) <= 1, r


@pytest.mark.parametrize("k", SHIFTS)
def test_delayed_audio_is_found_at_minus_k(scored, k):
    assert scored["rows"][f"delay{k:+d}"]["offset"] == -k


def test_swapped_audio_and_still_mouth_have_low_confidence(scored):
    gt = scored["rows"][scored["first"]]["sync_c"]
    assert scored["rows"]["swapped"]["sync_c"] < 0.5 * gt
    assert scored["rows"]["still"]["sync_c"] < 0.5 * gt
    assert min(r["sync_c"] for r in scored["gt"]) > max(scored["rows"]["swapped"]["sync_c"], scored["rows"]["still"]["sync_c"])


def test_regressor_follows_the_jaw(scored):
    corrs = [r["mouth_corr"] for r in scored["gt"]]
    assert np.mean(corrs) >= 0.8 and min(corrs) >= 0.6, corrs
    closed = [r["closed_in_silence"] for r in scored["gt"]]
    assert np.mean(closed) >= 0.8 and min(closed) >= 0.6, closed


def test_identity_is_closer_to_its_own_reference(scored):
    own = scored["rows"][scored["first"]]
    assert own["reference"].endswith(f"{scored['first']}.png")
    assert own["identity_sim"] > scored["other_ref"]["identity_sim"] + 0.1
