"""Side-by-side table and plot of several `teacher_eval` runs (the ablation of docs/distillation.md).

    python -m distill.compare_evals --out docs/ablation_cpu teacher=out/teacher75 naive=out/ablation_cpu/naive ...

Each LABEL=DIR names a teacher_eval output folder (LABEL=DIR@SETTING one of its sweep's settings, e.g.
"ours, s_audio 3.5=out/run@s_audio=3.5"); its default setting's summary is one row per split, beside
the ground truth of the first run. Writes OUT.md (the table) and OUT.png (Sync-C and identity per model and
split, and each as a share of the first run's, the reference the ship bars are stated against).

`--against LABEL` adds a paired table and OUT_paired.png: every run renders the same clips from the same
noise, so each other run is compared with LABEL clip by clip (mean difference, on how many clips it is higher,
and the two-sided p of a sign-flip permutation test on the mean difference; the plot shows each clip's
difference), which says whether a gap of a few hundredths is more than the spread between clips.

`--tradeoff` adds OUT_tradeoff.png: Sync-C against identity, a panel per split, one curve per model through
its settings. Labels that share the text before their first comma ("ours, s_audio 4", "ours, s_audio 2.5")
are one model's curve, joined in the order given: a guidance scale buys lip sync with identity, so two models
are compared by where their curves lie, not at one setting only.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

COLUMNS = (("NFE / window", "nfe_per_window", "{:.0f}"), ("Sync-C", "sync_c", "{:.3f}"), ("Sync-D", "sync_d", "{:.3f}"),
           ("abs offset", "abs_offset", "{:.2f}"), ("mouth corr", "mouth_corr", "{:.3f}"),
           ("closed in silence", "closed_in_silence", "{:.3f}"), ("identity", "identity_sim", "{:.3f}"),
           ("seam jitter", "seam_jitter", "{:.2f}"), ("ms / window", "ms_per_window", "{:.0f}"))


def load_run(directory: str | Path, setting_name: str = "default") -> dict[str, dict]:
    """{split: {"model": summary + nfe/ms of one setting, "ground_truth": summary}} of one teacher_eval folder."""
    doc = json.loads((Path(directory) / "teacher_eval.json").read_text())
    out = {}
    for split in doc["splits"]:
        setting = next(s for s in split["settings"] if s["name"] == setting_name)
        row = {**setting["summary"], "nfe_per_window": setting["nfe_per_window"], "ms_per_window": setting["ms_per_window"]}
        clips = {Path(c["path"]).stem: c for c in setting.get("clips", []) if not c.get("error")}
        gt = {Path(c["path"]).stem: c for c in split["ground_truth"].get("clips", []) if not c.get("error")}
        out[split["split"]] = {"model": row, "ground_truth": split["ground_truth"]["summary"], "clips": clips, "gt_clips": gt}
    return out


MEANS = ("sync_c", "sync_d", "mouth_corr", "closed_in_silence", "identity_sim", "seam_jitter")  # summary keys that are clip means


def clip_summary(clips: list[dict]) -> dict:
    """A summary's clip means over `clips` (score.py's, Frechet distance left out: not a mean over clips)."""
    out = {}
    for k in MEANS:
        vals = [c[k] for c in clips if c.get(k) is not None]
        out[k] = float(np.mean(vals)) if vals else None
    offsets = [abs(c["offset"]) for c in clips if c.get("offset") is not None]
    out["abs_offset"] = float(np.mean(offsets)) if offsets else None
    return out


def common_clips(runs: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """Every run cut to the clips that every run holding the split scored, its and the ground truth's summaries
    recomputed over them: runs over different numbers of faces (a short probe beside a long baseline) then share
    one table."""
    out = {label: {} for label in runs}
    for split in dict.fromkeys(sp for run in runs.values() for sp in run):
        have = [run[split] for run in runs.values() if split in run]
        ids = sorted(set.intersection(*(set(r["clips"]) for r in have)))
        if not ids:
            raise ValueError(f"split {split!r}: no clip scored by every run")
        for label, run in runs.items():
            if split not in run:
                continue
            r = run[split]
            model = {**r["model"], **clip_summary([r["clips"][i] for i in ids])}
            gt = r["ground_truth"]
            if all(i in r["gt_clips"] for i in ids):
                gt = {**gt, **clip_summary([r["gt_clips"][i] for i in ids]), "frechet_sync_visual": None}
            out[label][split] = {"model": {**model, "frechet_sync_visual": None}, "ground_truth": gt,
                                 "clips": {i: r["clips"][i] for i in ids}, "gt_clips": {i: r["gt_clips"][i] for i in ids if i in r["gt_clips"]}}
    return out


def merge_split(a: dict, b: dict) -> dict:
    """One split scored by two runs on disjoint clips (a confirmation run with teacher_eval --skip): the per-clip
    records joined, the summaries' means weighted by clip counts (they are means over clips). A Frechet distance
    is not a mean over clips, so it is left out of the merged summary."""
    na, nb = len(a["clips"]), len(b["clips"])

    def mean(x: dict, y: dict) -> dict:
        out = {}
        for k in x.keys() | y.keys():
            u, v = x.get(k), y.get(k)
            numbers = isinstance(u, (int, float)) and isinstance(v, (int, float))
            out[k] = (u * na + v * nb) / (na + nb) if numbers and not k.startswith("frechet") else None
        return out

    return {"model": mean(a["model"], b["model"]), "ground_truth": mean(a["ground_truth"], b["ground_truth"]),
            "clips": {**a["clips"], **b["clips"]}, "gt_clips": {**a.get("gt_clips", {}), **b.get("gt_clips", {})}}


def sign_flip_p(diffs: np.ndarray, samples: int = 100_000, seed: int = 0) -> float:
    """Two-sided p of a paired sign-flip permutation test on the mean of `diffs` (n,): under the null each clip's
    difference is as likely to have the other sign. Exact for n <= 16, else `samples` random flips (seeded),
    counting the observed signs as one of them so that a sampled p is never 0."""
    n = len(diffs)
    if n == 0:
        return float("nan")
    observed = abs(diffs.mean()) - 1e-12  # the tolerance keeps ties of float sums in
    if n <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))  # (2^n, n)
        return float(np.mean(np.abs(signs @ diffs) / n >= observed))
    signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(samples, n))  # (samples, n)
    return float((np.sum(np.abs(signs @ diffs) / n >= observed) + 1) / (samples + 1))


PAIRED = (("Sync-C", "sync_c"), ("mouth corr", "mouth_corr"), ("identity", "identity_sim"))


def paired_diffs(runs: dict[str, dict[str, dict]], against: str) -> dict[tuple[str, str, str], np.ndarray]:
    """{(split, label, metric key): (n,) per-clip differences run - against} on the clips both scored."""
    out = {}
    for split, ref in runs[against].items():
        for label, run in runs.items():
            if label == against or split not in run:
                continue
            ids = sorted(set(ref["clips"]) & set(run[split]["clips"]))
            for _, key in PAIRED:
                pairs = [(run[split]["clips"][i][key], ref["clips"][i][key]) for i in ids]
                out[split, label, key] = np.array([a - b for a, b in pairs if a is not None and b is not None], dtype=np.float64)
    return out


def paired_table(diffs: dict[tuple[str, str, str], np.ndarray], against: str) -> str:
    """Per split and run: mean difference, clips higher, sign-flip p, for each PAIRED metric."""
    lines = ["| split | model | vs | " + " | ".join(f"{name}: mean diff | {name}: higher on | {name}: p" for name, _ in PAIRED) + " |",
             "|---" * (3 + 3 * len(PAIRED)) + "|"]
    for split, label in dict.fromkeys((sp, lb) for sp, lb, _ in diffs):
        cells = []
        for _, key in PAIRED:
            d = diffs[split, label, key]
            cells += ["-", "-", "-"] if len(d) == 0 else [f"{d.mean():+.3f}", f"{int((d > 0).sum())}/{len(d)}", f"{sign_flip_p(d):.3f}"]
        lines.append(f"| {split} | {label} | {against} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_paired(diffs: dict[tuple[str, str, str], np.ndarray], against: str, path: Path) -> None:
    """One panel per split and metric: each run's per-clip differences (dots) and their mean (bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(sp for sp, _, _ in diffs))
    labels = list(dict.fromkeys(lb for _, lb, _ in diffs))
    fig, axes = plt.subplots(len(splits), len(PAIRED), figsize=(4.2 * len(PAIRED), 0.6 + 2.6 * len(splits)), squeeze=False)
    for r, split in enumerate(splits):
        for c, (name, key) in enumerate(PAIRED):
            ax = axes[r][c]
            for x, label in enumerate(labels):
                d = diffs.get((split, label, key), np.zeros(0))
                ax.scatter(np.full(len(d), x) + np.linspace(-0.15, 0.15, len(d)), d, s=9, alpha=0.7, color=f"C{x}")
                if len(d):
                    ax.hlines(d.mean(), x - 0.3, x + 0.3, color="k", lw=2)
            ax.axhline(0.0, color="grey", lw=0.8, ls=":")
            ax.set_xticks(range(len(labels)), labels if r == len(splits) - 1 else [""] * len(labels), rotation=20, ha="right")
            ax.set_title(f"{split}: {name}", fontsize=9)
    # The reference run's label once, above the grid: in every subplot title it ran into its neighbours.
    fig.suptitle(f"each clip's difference: run - {against} (bar: mean)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves(labels: list[str]) -> dict[str, list[str]]:
    """{model: its labels in the order given}: a model is the text of a label before its first comma."""
    out: dict[str, list[str]] = {}
    for label in labels:
        out.setdefault(label.split(",")[0].strip(), []).append(label)
    return out


def plot_tradeoff(runs: dict[str, dict[str, dict]], path: Path) -> None:
    """Sync-C (y) against identity (x), a panel per split; each model's settings joined into a curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(sp for run in runs.values() for sp in run))
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 4.2), squeeze=False)
    for ax, split in zip(axes[0], splits):
        for i, (model, labels) in enumerate(curves(list(runs)).items()):
            rows = [(label, runs[label][split]["model"]) for label in labels if split in runs[label]]
            points = [(r["identity_sim"], r["sync_c"], label) for label, r in rows
                      if r.get("identity_sim") is not None and r.get("sync_c") is not None]
            if not points:
                continue
            xs, ys, names = zip(*points)
            ax.plot(xs, ys, "o-", color=f"C{i}", label=model)
            for x, y, name in points:
                setting = name.partition(",")[2].strip()
                if setting:
                    ax.annotate(setting, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=f"C{i}")
        ax.set_xlabel("identity similarity")
        ax.set_ylabel("Sync-C")
        ax.set_title(f"{split}: up and right is better", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(runs: dict[str, dict[str, dict]]) -> str:
    first = next(iter(runs.values()))
    lines = ["| split | model | " + " | ".join(c[0] for c in COLUMNS) + " | Sync-C vs first | identity vs first |",
             "|---" * (len(COLUMNS) + 4) + "|"]
    for split in first:
        rows = [("ground truth", {**first[split]["ground_truth"], "nfe_per_window": None, "ms_per_window": None})]
        rows += [(label, run[split]["model"]) for label, run in runs.items() if split in run]
        ref = first[split]["model"]
        for label, r in rows:
            cells = ["-" if r.get(key) is None else fmt.format(r[key]) for _, key, fmt in COLUMNS]
            share = [f"{100 * r[k] / ref[k]:.0f} %" if label != "ground truth" and ref.get(k) and r.get(k) is not None else "-"
                     for k in ("sync_c", "identity_sim")]
            lines.append(f"| {split} | {label} | " + " | ".join(cells + share) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, dict[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(next(iter(runs.values())))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = list(runs)
    width = 0.8 / max(1, len(splits))
    for ax, (key, name) in zip(axes, (("sync_c", "Sync-C"), ("identity_sim", "identity similarity"))):
        for i, split in enumerate(splits):
            # A run without this split, or without this metric, leaves a gap.
            values = [float("nan") if runs[label].get(split, {}).get("model", {}).get(key) is None else runs[label][split]["model"][key]
                      for label in labels]
            ax.bar([x + i * width for x in range(len(labels))], values, width, label=split)
            if (gt := runs[labels[0]][split]["ground_truth"].get(key)) is not None:
                ax.axhline(gt, ls=":", lw=1, color=f"C{i}")
        ax.set_xticks([x + width * (len(splits) - 1) / 2 for x in range(len(labels))], labels, rotation=20, ha="right")
        ax.set_title(f"{name} (dotted: ground truth)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m distill.compare_evals", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", metavar="LABEL=DIR[@SETTING]",
                   help="teacher_eval output folders (their default setting, or SETTING), the reference first; a label "
                        "given twice joins two folders of one model: different splits, or different clips of a split")
    p.add_argument("--out", required=True, help="output stem: writes OUT.md and OUT.png (and OUT_paired.png with --against)")
    p.add_argument("--against", metavar="LABEL", help="add a clip-by-clip paired comparison of every run with this one")
    p.add_argument("--tradeoff", action="store_true",
                   help="add OUT_tradeoff.png: Sync-C against identity, one curve per model (labels up to their first comma)")
    p.add_argument("--common", action="store_true",
                   help="cut every run to the clips all runs of a split scored (summaries recomputed over them)")
    args = p.parse_args(argv)
    runs = {}
    for spec in args.runs:
        head, at, setting = spec.rpartition("@")  # setting names hold "=" ("s_audio=3.5"): split them off first
        if not at:
            head, setting = spec, "default"
        label, sep, directory = head.rpartition("=")  # labels may hold "=" ("K=2"), paths rarely do
        if not sep or not label:
            print(f"error: {spec!r}: expected LABEL=DIR or LABEL=DIR@SETTING", file=sys.stderr)
            return 2
        try:
            run = load_run(directory, setting)
            # A label given again adds that folder's splits (one model whose splits were evaluated by separate runs),
            # or more clips of a split it has (a run over the next clips, teacher_eval --skip).
            joined = dict(runs.get(label, {}))
            for split, part in run.items():
                if split in joined:
                    a, b = set(joined[split]["clips"]), set(part["clips"])
                    if not a or not b or a & b:
                        print(f"error: {label!r} is given twice with split {split!r} in both folders, and not on disjoint "
                              f"clips ({len(a & b)} shared, {len(a)} and {len(b)} scored)", file=sys.stderr)
                        return 2
                joined[split] = merge_split(joined[split], part) if split in joined else part
            runs[label] = joined
        except StopIteration:
            print(f"error: {directory}: no setting {setting!r}", file=sys.stderr)
            return 2
        except (OSError, json.JSONDecodeError, KeyError) as e:
            print(f"error: {directory}: not a teacher_eval output ({e!r})", file=sys.stderr)
            return 2
    if args.against is not None and args.against not in runs:
        print(f"error: --against {args.against!r} is not one of the labels {list(runs)}", file=sys.stderr)
        return 2
    if args.common:
        try:
            runs = common_clips(runs)
        except ValueError as e:
            print(f"error: --common: {e}", file=sys.stderr)
            return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = table(runs)
    written = [out.with_suffix(".md"), out.with_suffix(".png")]
    if args.against is not None:
        diffs = paired_diffs(runs, args.against)
        text += f"\nClip by clip against {args.against} (same clips, same noise):\n\n" + paired_table(diffs, args.against)
        written.append(out.with_name(out.name + "_paired.png"))
        plot_paired(diffs, args.against, written[-1])
    if args.tradeoff:
        written.append(out.with_name(out.name + "_tradeoff.png"))
        plot_tradeoff(runs, written[-1])
    out.with_suffix(".md").write_text(text)
    plot(runs, out.with_suffix(".png"))
    print(text, end="")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
