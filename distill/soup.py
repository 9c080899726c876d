"""Average the weights of several student runs of one recipe into one student (a "model soup").

    python -m distill.soup --out runs/soup_student \
        runs/gpu_seeds_2/student_s1 runs/gpu_seeds_2/student_s2 runs/gpu_seeds_2/student_s3

Training runs that start from the same weights and differ only in their seed (`distill/gpu_seeds.sh`) end a short
distance apart (for the H200 runs of docs/distillation.md, "Training seeds on a GPU": about 9 % of the weights' norm
for token students, 4 % for naive ones), close enough that their mean is itself a good model (Wortsman et al.
2022, "Model soups"). The mean removes much of the seed-to-seed noise that moves a single run's scores by up to
0.010, at no cost at run time: the soup is one student of the same size, sampled as any other.

Every input must be a servable student folder (student.* and autoencoder.*) with the same config, the same teacher
and the same autoencoder weights, or the tool refuses: averaging the weights of different architectures, or of
students that decode through different latents, makes no sense. The output is a servable folder of the same kind;
its JSON records the command and each source's weights hash and step.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from fada_stream.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, sha256_file
from fada_stream.model import STUDENT_KIND


def average_states(states: list[dict[str, torch.Tensor]], weights: list[float] | None = None) -> dict[str, torch.Tensor]:
    """The weighted mean of state dicts with the same keys and shapes; non-float tensors must agree and are kept."""
    if not states:
        raise ValueError("nothing to average")
    w = torch.tensor(weights if weights is not None else [1.0] * len(states), dtype=torch.float64)
    if w.numel() != len(states) or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(f"weights must be {len(states)} non-negative numbers with a positive sum, got {weights}")
    w = w / w.sum()
    keys = set(states[0])
    out = {}
    for i, s in enumerate(states[1:], start=1):
        if set(s) != keys:
            raise ValueError(f"state {i} has other tensors than state 0: {sorted(keys ^ set(s))[:5]}")
    for k, v0 in states[0].items():
        if any(s[k].shape != v0.shape for s in states):
            raise ValueError(f"tensor {k!r} differs in shape between the states")
        if v0.is_floating_point():
            acc = torch.zeros(v0.shape, dtype=torch.float64)
            for wi, s in zip(w.tolist(), states):
                acc += wi * s[k].double()
            out[k] = acc.to(v0.dtype)
        else:
            if any(not torch.equal(s[k], v0) for s in states):
                raise ValueError(f"integer tensor {k!r} differs between the states: it cannot be averaged")
            out[k] = v0.clone()
    return out


def load_run(folder: Path) -> tuple[dict, dict[str, torch.Tensor], dict, str]:
    """(config, state, meta, autoencoder weights hash) of a servable student folder, or CheckpointError."""
    cfg, state, meta = load_checkpoint(folder / "student", STUDENT_KIND)
    ae = folder / "autoencoder.safetensors"
    if not ae.is_file() or not (folder / "autoencoder.json").is_file():
        raise CheckpointError(f"{folder}: no autoencoder.json/.safetensors beside the student: not a servable folder")
    return cfg, state, meta, sha256_file(ae)


def make_soup(folders: list[Path], out: Path, weights: list[float] | None = None, command: str = "") -> Path:
    """Average the students in `folders` into the servable folder `out`; return its student stem."""
    if len(folders) < 2:
        raise ValueError("a soup needs at least two student folders")
    runs = [load_run(f) for f in folders]
    cfg0, _, meta0, ae0 = runs[0]
    for f, (cfg, _, meta, ae) in zip(folders[1:], runs[1:]):
        if cfg != cfg0:
            raise CheckpointError(f"{f}: its student config differs from {folders[0]}'s: only runs of one recipe average")
        if meta.get("teacher_sha256") != meta0.get("teacher_sha256"):
            raise CheckpointError(f"{f}: distilled from another teacher than {folders[0]}")
        if ae != ae0:
            raise CheckpointError(f"{f}: its autoencoder differs from {folders[0]}'s: the students decode other latents")
    soup = average_states([r[1] for r in runs], weights)
    sources = [{"folder": str(f), "weights_sha256": sha256_file(f / "student.safetensors"), "step": r[2].get("step")}
               for f, r in zip(folders, runs)]
    meta = {k: v for k, v in meta0.items() if k not in ("command", "step", "distill_config")}
    meta.update(command=command, soup={"sources": sources, "weights": weights or [1.0] * len(folders)},
                step=min((s["step"] or 0) for s in sources), distill_commands=[r[2].get("command") for r in runs])
    out.mkdir(parents=True, exist_ok=True)
    stem = save_checkpoint(out / "student", STUDENT_KIND, cfg0, soup, meta=meta, dtype=torch.float16)
    for ext in (".json", ".safetensors"):
        shutil.copyfile(folders[0] / f"autoencoder{ext}", out / f"autoencoder{ext}")
    return stem


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m distill.soup", description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="servable student folders of one recipe (2 or more)")
    p.add_argument("--out", type=Path, required=True, help="output folder (student.* and autoencoder.*)")
    p.add_argument("--weights", type=float, nargs="+", default=None, help="one weight per folder (default: equal)")
    args = p.parse_args(argv)
    if args.out.resolve() in {f.resolve() for f in args.folders}:
        p.error("--out must not be one of the input folders")
    try:
        stem = make_soup(args.folders, args.out, args.weights, command="python -m distill.soup " + " ".join(sys.argv[1:] if argv is None else argv))
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {stem}.safetensors (+ .json, autoencoder.*): the mean of {len(args.folders)} students")
    return 0


if __name__ == "__main__":
    sys.exit(main())
