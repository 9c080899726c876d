"""Issue 3's quality bars checked on `teacher_eval` runs: each bar's value on a split, how far the clips let it move,
and whether it passes.

    python -m distill.bars out/render/openset_0 out/render/openset_16 out/render/test_0 ... [--setting default] [--json]

The folders' clips of one split are pooled (folders from `teacher_eval --skip` runs over disjoint faces; a clip
scored twice counts once), so the figures are over every face given. A bar stated against the ground truth (Sync-C,
identity) is the ratio of the two means over the same clips. Beside each value, the 95 % interval of a bootstrap over
clips (the wide splits hold one clip a face: over faces) and the share of draws that fail the bar: a bar passed by a
hair on 16 faces can fail on the next 16.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distill.compare_evals import load_run


@dataclass(frozen=True)
class Bar:
    name: str
    key: str  # the per-clip score (distill/eval/score.py)
    limit: float
    at_least: bool  # True: value >= limit passes; False: value <= limit
    of_ground_truth: bool = False  # the bar is on mean(model) / mean(ground truth) over the same clips
    absolute: bool = False  # the clip values' magnitudes (a lip-sync offset either way)


# Issue 3, "Quality bar (128x128, measured with the harness)": the same on the test and the open-set split.
BARS = (
    Bar("Sync-C / ground truth", "sync_c", 0.8, True, of_ground_truth=True),
    Bar("abs offset (frames)", "offset", 1.0, False, absolute=True),
    Bar("mouth-opening correlation", "mouth_corr", 0.7, True),
    Bar("identity / ground truth", "identity_sim", 0.9, True, of_ground_truth=True),
    Bar("seam jitter ratio", "seam_jitter", 1.5, False),
)
DRAWS = 10_000


def pooled(folders: list[Path], setting: str) -> dict[str, tuple[dict[str, dict], dict[str, dict]]]:
    """{split: (clips of the model, clips of the ground truth)} over every folder, keyed by clip id."""
    out: dict[str, tuple[dict[str, dict], dict[str, dict]]] = {}
    for folder in folders:
        for split, run in load_run(folder, setting).items():
            model, gt = out.setdefault(split, ({}, {}))
            model.update(run["clips"])
            gt.update(run["gt_clips"])
    return out


def check(bar: Bar, model: dict[str, dict], gt: dict[str, dict], seed: int = 0) -> dict[str, Any]:
    """The bar's value, its bootstrap interval over clips, the share of draws that fail, and the verdict."""
    ids = sorted(i for i in model if model[i].get(bar.key) is not None
                 and (not bar.of_ground_truth or (i in gt and gt[i].get(bar.key) is not None)))
    if not ids:
        return {"bar": bar.name, "clips": 0, "value": None, "low": None, "high": None, "fail_share": None, "passes": False}
    a = np.array([model[i][bar.key] for i in ids], dtype=float)  # (n,)
    if bar.absolute:
        a = np.abs(a)
    b = np.array([gt[i][bar.key] for i in ids], dtype=float) if bar.of_ground_truth else np.ones_like(a)  # (n,)
    pick = np.random.default_rng(seed).integers(0, len(ids), (DRAWS, len(ids)))  # (DRAWS, n) clips drawn with replacement
    value = a.mean() / b.mean() if bar.of_ground_truth else a.mean()
    draws = a[pick].mean(1) / b[pick].mean(1) if bar.of_ground_truth else a[pick].mean(1)  # (DRAWS,)
    fails = draws < bar.limit if bar.at_least else draws > bar.limit
    low, high = np.percentile(draws, [2.5, 97.5])
    passes = bool(value >= bar.limit if bar.at_least else value <= bar.limit)
    return {"bar": bar.name, "clips": len(ids), "value": float(value), "low": float(low), "high": float(high),
            "fail_share": float(fails.mean()), "passes": passes}


def evaluate(folders: list[Path], setting: str = "default") -> dict[str, list[dict[str, Any]]]:
    return {split: [check(bar, model, gt) for bar in BARS] for split, (model, gt) in pooled(folders, setting).items()}


def markdown(result: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| split | bar | clips | value | 95 % interval over clips | draws failing | verdict |", "|---|---|---|---|---|---|---|"]
    for split, rows in result.items():
        for r, bar in zip(rows, BARS):
            if r["value"] is None:
                lines.append(f"| {split} | {r['bar']} | 0 | - | - | - | no scores |")
                continue
            fmt = (lambda v: f"{100 * v:.1f} %") if bar.of_ground_truth else (lambda v: f"{v:.3f}")
            sign = ">=" if bar.at_least else "<="
            limit = f"{100 * bar.limit:.0f} %" if bar.of_ground_truth else f"{bar.limit:g}"
            lines.append(f"| {split} | {r['bar']} ({sign} {limit}) | {r['clips']} | {fmt(r['value'])} | {fmt(r['low'])} - "
                         f"{fmt(r['high'])} | {100 * r['fail_share']:.1f} % | {'passes' if r['passes'] else 'FAILS'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m distill.bars", description=__doc__.split("\n\n")[0])
    p.add_argument("folders", type=Path, nargs="+", help="teacher_eval output folders")
    p.add_argument("--setting", default="default", help="which setting of each folder's sweep (default: default)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    try:
        result = evaluate(a.folders, a.setting)
    except (OSError, ValueError, KeyError, StopIteration) as e:
        print(f"error: {a.folders[0] if len(a.folders) == 1 else 'a folder'}: not a teacher_eval output with setting "
              f"{a.setting!r} ({e!r})", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({"bars": [asdict(b) for b in BARS], "splits": result}, indent=2))
    else:
        print(markdown(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
