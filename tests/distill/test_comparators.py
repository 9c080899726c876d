"""The students committed under checkpoints/ for comparisons (docs/distillation.md) load as what they claim to be.

They are not package data: they stay in the repository so that a session without a GPU can score the bundled
student against them without retraining (the naive one costs 80 minutes of this 2-core CPU).
"""
import json
from pathlib import Path

import pytest
import torch

from fada_stream.generator import BUNDLED_STUDENT as BUNDLED, Guidance, StudentModel, build_window_model

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


def _meta(folder: Path) -> dict:
    return json.loads((folder / "student.json").read_text())["meta"]


@pytest.mark.skipif(not CHECKPOINTS.is_dir(), reason="runs from a checkout of the repository")
def test_naive_comparator_is_a_six_step_three_pass_student_made_by_its_recorded_command():
    folder = CHECKPOINTS / "naive-k6-cpu"
    model = build_window_model(folder, torch.device("cpu"))  # checks the weights' sha256 against student.json
    assert isinstance(model, StudentModel)
    assert not model.student_cfg.tokens and model.steps == 6
    assert model.passes(Guidance(1.5, 2.5)) == 3  # real CFG over its three branches: 18 NFE per window
    meta = _meta(folder)
    assert meta["step"] == 1046
    for flag in ("--steps 6", "--tokens false", "--mixed false", "--iters 1046", "--batch 4", "--substeps 2"):
        assert flag in meta["command"]


@pytest.mark.skipif(not CHECKPOINTS.is_dir(), reason="runs from a checkout of the repository")
def test_naive_comparator_of_the_bundled_student_continued_the_first_on_the_bundled_teacher():
    """The bundled student's equal-budget comparator: the first naive student taken 1,200 steps further with the
    bundled teacher as its target, as the bundled student was (docs/distillation.md, "From the bundled teacher",
    "A third stage" and "A fourth stage")."""
    folder = CHECKPOINTS / "naive-k6-t2-cpu"
    model = build_window_model(folder, torch.device("cpu"))
    assert isinstance(model, StudentModel) and not model.student_cfg.tokens and model.steps == 6
    assert model.passes(Guidance(1.5, 2.5)) == 3
    meta, bundled = _meta(folder), json.loads((BUNDLED / "student.json").read_text())["meta"]
    assert meta["step"] == bundled["step"] == 1200
    assert meta["distill_config"]["init"] == "checkpoints/naive-k6-cpu" and meta["teacher"] == bundled["teacher"]
    same = ("iters", "batch", "substeps", "lr", "warmup", "seed", "data", "moderate", "teacher")
    assert all(meta["distill_config"][k] == bundled["distill_config"][k] for k in same)


@pytest.mark.skipif(not CHECKPOINTS.is_dir(), reason="runs from a checkout of the repository")
def test_first_stage_student_is_a_two_step_one_pass_token_student():
    folder = CHECKPOINTS / "student-k2-cpu"
    model = build_window_model(folder, torch.device("cpu"))
    assert model.student_cfg.tokens and model.steps == 2
    assert model.passes(Guidance(1.5, 2.5)) == 1
    assert model.passes(Guidance(1.5, 2.5, audio_boost=0.5)) == 2
    assert _meta(folder)["step"] == 846


@pytest.mark.skipif(not CHECKPOINTS.is_dir(), reason="runs from a checkout of the repository")
def test_the_bundled_decoder_fine_tune_kept_the_encoder_every_model_was_trained_on():
    """The comparators keep the autoencoder the teacher and students were trained with; the bundled one is its
    decoder fine-tune (docs/autoencoder.md): same encoder, same latent statistics, another decoder, which also
    sees the reference image."""
    from fada_stream.generator import BUNDLED_STUDENT, DEFAULT_CHECKPOINT
    from fada_stream.model.autoencoder import load_autoencoder

    original = load_autoencoder(str(CHECKPOINTS / "naive-k6-cpu" / "autoencoder"))
    for folder in (BUNDLED_STUDENT, DEFAULT_CHECKPOINT):
        bundled = load_autoencoder(str(folder / "autoencoder"))
        enc = bundled.encoder.state_dict()
        assert all(torch.equal(v, enc[k]) for k, v in original.encoder.state_dict().items())
        assert bundled.cfg.latent_mean == original.cfg.latent_mean and bundled.cfg.latent_std == original.cfg.latent_std
        assert bundled.reference_aware and not original.reference_aware
        dec = bundled.decoder.state_dict()
        assert not all(torch.equal(v, dec[k]) for k, v in original.decoder.state_dict().items())
        meta = json.loads((folder / "autoencoder.json").read_text())["meta"]
        assert "--train decoder" in meta["command"] and "--restyle 0.5" in meta["command"]
        chain = []  # each fine-tune records the checkpoint it started from, back to the original autoencoder
        while "init" in meta:
            meta = meta["init"]["meta"]
            chain.append(meta["command"])
        assert chain[-1] == json.loads((CHECKPOINTS / "naive-k6-cpu" / "autoencoder.json").read_text())["meta"]["command"]
        assert all("--train decoder" in c for c in chain[:-1])  # only decoders changed on the way
