"""Set the guidance scales a token student runs at by default, with the evidence that chose them on record.

    python -m distill.set_guidance fada_stream/assets/student --s-audio 3.25 \
        --evidence "docs/distillation.md, 'The student's default s_audio'"

A token student takes (s_ref, s_audio) as an input, so its default scales are a choice made after training, by
evaluation: the distillation run writes the teacher's 1.5 / 2.5, and a sweep with `distill.teacher_eval --s-audio
...` may find a better operating point for the student (docs/distillation.md). This rewrites only the two defaults
in the student's JSON: the weights and their hash stay as they are, so it is still the same trained model, and
every change is appended to `meta.guidance_defaults` (the old and new scales, this command, the evidence), beside the
command that trained it. The scales must lie inside the ranges the student was distilled over (outside them its
CFG token was never trained). Naive students (no tokens) run the teacher's 3-pass CFG, whose default is a question
of passes per step (fada_stream/generator.py), and are refused, as are teachers and anything not a student.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from pathlib import Path

from fada_stream.checkpoint import CheckpointError, load_checkpoint
from fada_stream.model import STUDENT_KIND, StudentConfig, from_dict


def set_defaults(folder: Path, s_ref: float | None, s_audio: float | None, evidence: str, command: str) -> dict:
    """Write new default scales into folder/student.json; return the record appended to its meta."""
    if s_ref is None and s_audio is None:
        raise ValueError("give --s-ref, --s-audio or both")
    if not evidence.strip():
        raise ValueError("--evidence must say which measurement chose the scales")
    doc_cfg, _, _ = load_checkpoint(folder / "student", STUDENT_KIND)  # kind, JSON and weights hash checked here
    try:
        cfg = from_dict(StudentConfig, doc_cfg)
    except (TypeError, KeyError, ValueError) as e:
        raise CheckpointError(f"{folder}: student.json holds no valid student config ({e})") from e
    if not cfg.tokens:
        raise CheckpointError(f"{folder}: a naive student (no CFG tokens) runs the teacher's 3-pass CFG; its scales are not a token input")
    new = {"s_ref": cfg.s_ref if s_ref is None else float(s_ref), "s_audio": cfg.s_audio if s_audio is None else float(s_audio)}
    for name, lo_hi in (("s_ref", cfg.s_ref_range), ("s_audio", cfg.s_audio_range)):
        v = new[name]
        if not math.isfinite(v) or not lo_hi[0] <= v <= lo_hi[1]:
            raise ValueError(f"{name} {v}: outside [{lo_hi[0]}, {lo_hi[1]}], the range this student was distilled over")
    header = folder / "student.json"
    doc = json.loads(header.read_text())
    record = {"from": {"s_ref": cfg.s_ref, "s_audio": cfg.s_audio}, "to": new, "command": command, "evidence": evidence.strip()}
    doc["config"].update(new)
    doc.setdefault("meta", {}).setdefault("guidance_defaults", []).append(record)
    tmp = header.with_name(f".{header.name}.tmp-{os.getpid()}")
    try:  # the header is replaced whole: a crash leaves the old one, never half a file
        with open(tmp, "w") as f:
            f.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before it replaces the old header
        os.chmod(tmp, header.stat().st_mode & 0o777)
        os.replace(tmp, header)
    finally:
        tmp.unlink(missing_ok=True)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m distill.set_guidance", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="a token student folder (student.json + student.safetensors)")
    p.add_argument("--s-ref", type=float, default=None, help="new default reference scale (default: unchanged)")
    p.add_argument("--s-audio", type=float, default=None, help="new default audio scale (default: unchanged)")
    p.add_argument("--evidence", required=True, help="where the measurement that chose these scales is written down")
    args = p.parse_args(argv)
    command = "python -m distill.set_guidance " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        r = set_defaults(args.folder, args.s_ref, args.s_audio, args.evidence, command)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.folder}: default scales s_ref {r['from']['s_ref']} -> {r['to']['s_ref']}, "
          f"s_audio {r['from']['s_audio']} -> {r['to']['s_audio']} (weights unchanged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
