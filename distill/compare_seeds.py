"""Two methods, several training runs each: is the gap between them more than training noise and clip noise?

    python -m distill.compare_seeds --out docs/gpu_seeds_holdout \
        --side "ours=out/holdout/gpu_student_s1,out/holdout/gpu_student_s2,out/holdout/gpu_student_s3" \
        --side "naive=out/holdout/gpu_naive_s1,out/holdout/gpu_naive_s2,out/holdout/gpu_naive_s3"

Each --side is LABEL=DIR,DIR,...: `teacher_eval` folders of runs of one method that differ only in their training
seed, all scored on the same clips from the same noise. `compare_evals --against` pairs two single runs clip by
clip, which says nothing about how much a second training run of either method would move. Here the first side is
compared with the second three ways, per split and metric:

- clip by clip on seed-averaged metrics (each clip's mean over a side's runs): mean difference, on how many clips
  the first side is higher, and the sign-flip p of `compare_evals`: the clip noise, with the seed noise averaged;
- run against run: on how many of the n_a x n_b pairings of run means the first side is higher;
- a two-level bootstrap that resamples both the runs of each side and the clips: the 95 % interval of the
  difference and the share of resamples at or below zero, which carries both noises. With three runs a side it
  is narrower than the truth (resampling three of three sees (n - 1) / n of their spread): read it with the rest.

`--by-identity` pairs faces instead of clips: each identity's clips are averaged first (the faces come from the
manifests of the corpus folders teacher_eval scored). A split of 32 clips of 8 faces is 8 independent draws of
"what does the method do with a new face", not 32: one face that a method copies badly moves all four of its
clips together, and a clip-level test counts it four times.

Writes OUT.md (per-run means and the comparison) and OUT.png (run means per side, split and metric).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from distill.compare_evals import PAIRED, load_run, sign_flip_p


def parse_side(text: str) -> tuple[str, list[str]]:
    label, sep, dirs = text.rpartition("=")
    runs = [d for d in dirs.split(",") if d]
    if not sep or not label or not runs:
        raise ValueError(f"--side wants LABEL=DIR[,DIR...], got {text!r}")
    return label, runs


def clip_matrix(runs: list[dict], split: str, key: str, ids: list[str]) -> np.ndarray:
    """(runs, clips) of one metric on the clips `ids`."""
    return np.array([[run[split]["clips"][i][key] for i in ids] for run in runs], dtype=np.float64)


def common_clips(runs: list[dict], split: str, key: str) -> list[str]:
    """The clips every run scored with a value for `key`, sorted: the paired comparison's support."""
    sets = [{i for i, c in run[split]["clips"].items() if c.get(key) is not None} for run in runs if split in run]
    return sorted(set.intersection(*sets)) if len(sets) == len(runs) else []


def two_level_bootstrap(a: np.ndarray, b: np.ndarray, samples: int = 20_000, seed: int = 0) -> np.ndarray:
    """(samples,) resampled differences mean(a) - mean(b): runs drawn with replacement within each side, clips drawn
    with replacement once per resample and shared by both sides (they are the same clips). a: (n_a, clips), b: (n_b, clips)."""
    rng = np.random.default_rng(seed)
    n_clips = a.shape[1]
    clips = rng.integers(n_clips, size=(samples, n_clips))  # (S, clips)

    def side(m: np.ndarray) -> np.ndarray:
        pick = rng.integers(m.shape[0], size=(samples, m.shape[0]))  # (S, runs)
        per_clip = m[pick].mean(axis=1)  # (S, clips): the resampled runs' mean per clip
        return np.take_along_axis(per_clip, clips, axis=1).mean(axis=1)  # (S,)

    return side(a) - side(b)


def clip_identities(run_dir: str | Path) -> dict[str, dict[str, str]]:
    """{split: {clip id: identity id}} of a teacher_eval folder, from the manifests of the corpus folders it scored."""
    doc = json.loads((Path(run_dir) / "teacher_eval.json").read_text())
    out = {}
    for split in doc["splits"]:
        rows = [json.loads(line) for line in (Path(split["data"]) / "manifest.jsonl").read_text().splitlines() if line.strip()]
        out[split["split"]] = {r["id"]: r.get("identity_id", r["id"]) for r in rows}
    return out


def by_identity(m: np.ndarray, ids: list[str], identity: dict[str, str]) -> np.ndarray:
    """(runs, clips) -> (runs, identities): each identity's mean over its clips. Clips of one face are not independent
    draws of what a method does with a new face, so the face is the unit that the tests resample."""
    groups = sorted({identity[i] for i in ids})
    cols = [[n for n, i in enumerate(ids) if identity[i] == g] for g in groups]
    return np.stack([m[:, c].mean(axis=1) for c in cols], axis=1)


def compare(sides: dict[str, list[dict]], samples: int = 20_000,
            identities: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """One row per split and PAIRED metric: the first side against the second; with `identities` ({split: {clip:
    identity}}) the paired unit is the identity (its clips averaged), else the clip."""
    (la, ra), (lb, rb) = list(sides.items())[:2]
    rows = []
    for split in ra[0]:
        for name, key in PAIRED:
            ids = common_clips(ra + rb, split, key)
            if not ids:
                continue
            a, b = clip_matrix(ra, split, key, ids), clip_matrix(rb, split, key, ids)  # (n_a, clips), (n_b, clips)
            if identities is not None:
                a, b = by_identity(a, ids, identities[split]), by_identity(b, ids, identities[split])  # (n, identities)
            d = a.mean(axis=0) - b.mean(axis=0)  # (clips,) seed-averaged
            ma, mb = a.mean(axis=1), b.mean(axis=1)  # run means
            boot = two_level_bootstrap(a, b, samples)
            rows.append({"split": split, "metric": name, "key": key, "clips": a.shape[1], "a": la, "b": lb,
                         "unit": "identities" if identities is not None else "clips",
                         "a_runs": ma, "b_runs": mb, "diff": float(d.mean()), "clips_higher": int((d > 0).sum()),
                         "p": sign_flip_p(d), "pairings_higher": int((ma[:, None] > mb[None, :]).sum()),
                         "pairings": ma.size * mb.size, "ci": (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))),
                         "boot_le_0": float(np.mean(boot <= 0))})
    return rows


def report(rows: list[dict], sides: dict[str, list[str]]) -> str:
    (la, da), (lb, db) = list(sides.items())[:2]
    unit = rows[0]["unit"] if rows else "clips"
    runs = "\n".join(f"- {label}: " + ", ".join(f"`{d}`" for d in dirs) for label, dirs in sides.items())
    lines = [f"Runs (a side's runs differ in their training seed only):\n\n{runs}\n",
             *(["Paired unit: the identity (each face's clips averaged first).\n"] if unit == "identities" else []),
             f"| split | metric | {unit} | " + f"{la}: run means | {lb}: run means | difference | higher on {unit} (seed-averaged) "
             "| sign-flip p | run pairings higher | two-level bootstrap 95 % | bootstrap share <= 0 |",
             "|---" * 11 + "|"]
    for r in rows:
        lines.append(f"| {r['split']} | {r['metric']} | {r['clips']} | " + " / ".join(f"{v:.3f}" for v in r["a_runs"]) + " | "
                     + " / ".join(f"{v:.3f}" for v in r["b_runs"]) + f" | {r['diff']:+.4f} | {r['clips_higher']}/{r['clips']} | "
                     f"{r['p']:.3g} | {r['pairings_higher']}/{r['pairings']} | [{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}] | {r['boot_le_0']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(r["split"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    fig, axes = plt.subplots(len(splits), len(metrics), figsize=(3.0 * len(metrics), 3.0 * len(splits)), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for r in rows:
        ax = axes[splits.index(r["split"]), metrics.index(r["metric"])]
        ax.set_visible(True)
        for x, (label, vals) in enumerate(((r["a"], r["a_runs"]), (r["b"], r["b_runs"]))):
            ax.scatter(np.full(len(vals), x), vals, s=30, zorder=3)
            ax.hlines(vals.mean(), x - 0.25, x + 0.25, color="k")
        ax.set_xticks([0, 1], [r["a"], r["b"]], fontsize=7, rotation=15)
        ax.set_xlim(-0.6, 1.6)
        # At least the interval's width on the y axis: with one run a side, autoscale would blow a gap of a
        # ten-thousandth up to the whole panel.
        vals = np.concatenate([r["a_runs"], r["b_runs"]])
        span = 1.3 * max(float(np.ptp(vals)), float(r["ci"][1] - r["ci"][0]), 1e-3)
        mid = (float(vals.min()) + float(vals.max())) / 2
        ax.set_ylim(mid - span / 2, mid + span / 2)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_title(f"{r['split']}: {r['metric']}\n{r['diff']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle("run means (dots), side means (bars); difference and its two-level bootstrap 95 % interval", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--side", action="append", required=True, metavar="LABEL=DIR[,DIR...]",
                   help="a method's runs (teacher_eval folders); give two, the first is compared with the second")
    p.add_argument("--out", required=True, help="output stem: writes OUT.md and OUT.png")
    p.add_argument("--samples", type=int, default=20_000, help="bootstrap resamples")
    p.add_argument("--by-identity", action="store_true",
                   help="pair identities, not clips (each face's clips averaged; the faces from the corpus manifests)")
    args = p.parse_args(argv)
    try:
        sides = dict(parse_side(s) for s in args.side)
        if len(sides) != 2:
            raise ValueError(f"give exactly two --side with different labels, got {list(sides)}")
        loaded = {label: [load_run(d) for d in dirs] for label, dirs in sides.items()}
        identities = clip_identities(next(iter(sides.values()))[0]) if args.by_identity else None
    except (OSError, ValueError, KeyError, StopIteration) as e:
        print(f"compare_seeds: {e}", file=sys.stderr)
        return 2
    rows = compare(loaded, args.samples, identities)
    if not rows:
        print("compare_seeds: the two sides share no scored clips", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = report(rows, sides)
    out.with_suffix(".md").write_text(f"# {' vs '.join(sides)}\n\n`python -m distill.compare_seeds " + " ".join(
        f'--side "{s}"' for s in args.side) + (" --by-identity" if args.by_identity else "") + f" --out {args.out}`\n\n" + text)
    plot(rows, out.with_suffix(".png"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
