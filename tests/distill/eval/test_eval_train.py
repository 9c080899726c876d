"""train-experts on a tiny hand-made corpus: a few steps run, checkpoints load, the scorer uses them."""
import json

import numpy as np
from PIL import Image

from distill.data.video_io import write_mp4
from distill.eval.__main__ import main as cli
from distill.eval.experts import load_experts
from distill.eval.regressor import PARAMS
from fada_stream.checkpoint import load_checkpoint


def write_tiny_corpus(root, n_clips=3, n_frames=45):
    root.mkdir()
    rows = []
    for i in range(n_clips):
        rng = np.random.default_rng(i)
        cid = f"train-0-{i:06d}"
        jaw = np.clip(np.sin(np.arange(n_frames) / 3.0 + i), 0, 1).astype(np.float32)
        frames = np.full((n_frames, 128, 128, 3), 40 * i + 60, np.uint8)
        for t in range(n_frames):
            frames[t, 80 : 81 + int(jaw[t] * 30), 40:90] = 0  # a dark mouth that opens with jaw
        audio = (rng.standard_normal(n_frames * 640) * 0.2 * np.repeat(jaw, 640)).astype(np.float32)
        write_mp4(root / f"{cid}.mp4", frames, audio)
        Image.fromarray(frames[0]).save(root / f"{cid}.png")
        meta = {"id": cid, "split": "train", "tier": "high", "fps": 25, "n_frames": n_frames,
                "identity_id": f"train-0-id{i % 2:05d}", "speaking": (jaw > 0.1).astype(int).tolist(),
                "params": {k: (jaw if k == "jaw" else np.zeros(n_frames)).tolist() for k in PARAMS}}
        (root / f"{cid}.json").write_text(json.dumps(meta))
        rows.append({"id": cid, "split": "train", "tier": "high", "identity_id": meta["identity_id"], "n_frames": n_frames})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_train_experts_writes_loadable_checkpoints_that_score(tmp_path):
    data = write_tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "experts"
    argv = ["train-experts", "--data", str(data), "--out", str(out), "--sync-steps", "2", "--regressor-steps", "2",
            "--identity-steps", "2", "--batch", "4"]
    assert cli(argv) == 0
    experts = load_experts(out)
    _, _, meta = load_checkpoint(out / "sync_expert", "sync_expert")
    assert meta["command"] == "python -m distill.eval " + " ".join(argv) and meta["steps"] == 2
    assert all(f.stat().st_size < 5_000_000 for f in out.glob("*.safetensors"))
    assert experts.identity.cfg.dim == 128
    rc = cli(["score", "--videos", str(data), "--out", str(tmp_path / "report"), "--experts", str(out)])
    assert rc == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["summary"]["n_errors"] == 0
    assert all(r["mouth_corr"] is not None and r["reference"].endswith(".png") for r in report["clips"])
