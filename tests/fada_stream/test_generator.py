"""What ships: the distilled student is the bundled default, the teacher stays one switch away, and the
student's folder is a complete, self-describing checkpoint."""
import json

import numpy as np
import pytest

from fada_stream.checkpoint import CheckpointError
from fada_stream.generator import BUNDLED_STUDENT, DEFAULT_CHECKPOINT, StudentModel, TeacherModel, bundled_checkpoint, load_window_model
from fada_stream.reference import load_reference
from fada_stream.stream import StreamConfig, render_offline


def test_the_default_is_the_bundled_student_and_the_teacher_is_one_switch_away():
    assert bundled_checkpoint() == BUNDLED_STUDENT == bundled_checkpoint("student")
    assert bundled_checkpoint("teacher") == DEFAULT_CHECKPOINT
    with pytest.raises(ValueError, match="unknown sampler"):
        bundled_checkpoint("fast")
    with pytest.raises(CheckpointError, match="holds no teacher"):
        load_window_model(BUNDLED_STUDENT, "cpu", sampler="teacher")


def test_the_bundled_student_is_a_two_step_one_pass_model_with_its_provenance():
    model = load_window_model(None, "cpu", backend="torch")
    assert isinstance(model, StudentModel) and model.steps == 2
    assert model.passes(model.default_guidance) == 1  # CFG tokens: the guidance scales cost no extra pass
    assert isinstance(load_window_model(None, "cpu", sampler="teacher", backend="torch"), TeacherModel)
    meta = json.loads((BUNDLED_STUDENT / "student.json").read_text())["meta"]
    assert meta["command"].startswith("python -m distill.distill") and meta["distill_config"]["steps"] == 2
    teacher_ae = (DEFAULT_CHECKPOINT / "autoencoder.safetensors").read_bytes()
    assert (BUNDLED_STUDENT / "autoencoder.safetensors").read_bytes() == teacher_ae  # the latents it was distilled in


def test_the_bundled_students_lips_follow_the_speech_it_is_given():
    from fada_stream.bench import output_sync, sample_speech

    model = load_window_model(None, "cpu", backend="torch")
    audio = sample_speech(4.0)
    frames, pcm = render_offline(model, load_reference(None, 128), audio, 16000, StreamConfig())
    assert frames.shape == (100, 128, 128, 3) and len(pcm) == len(audio)
    given = output_sync(frames, audio)
    other = output_sync(frames, np.roll(audio, len(audio) // 2))  # the same speech, two seconds out of step
    assert abs(given["av_offset_frames"]) <= 1 and given["sync_c"] > other["sync_c"] + 0.05, (given, other)
