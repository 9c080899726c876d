"""Checkpoints are safetensors + JSON only; anything else, or anything mismatched, is refused before use."""
import json

import pytest
import torch

from fada_stream.checkpoint import CheckpointError, load_checkpoint, load_into, save_checkpoint


@pytest.fixture
def saved(tmp_path):
    model = torch.nn.Linear(3, 2)
    stem = save_checkpoint(tmp_path / "lin", "linear", {"n_in": 3}, model.state_dict(), meta={"command": "test"})
    return model, stem


def test_round_trip(saved):
    model, stem = saved
    cfg, state, meta = load_checkpoint(stem, "linear")
    assert cfg == {"n_in": 3} and meta == {"command": "test"}
    fresh = torch.nn.Linear(3, 2)
    load_into(fresh, state, str(stem))
    assert torch.equal(fresh.weight, model.weight)
    assert not [p for p in stem.parent.iterdir() if ".tmp" in p.name]


def test_fp16_storage_loads_as_float32(tmp_path):
    stem = save_checkpoint(tmp_path / "h", "linear", {}, {"w": torch.ones(4)}, dtype=torch.float16)
    assert load_checkpoint(stem, "linear")[1]["w"].dtype == torch.float32


def test_another_kind_is_refused(saved):
    with pytest.raises(CheckpointError, match="expected 'teacher'"):
        load_checkpoint(saved[1], "teacher")


def test_pickles_are_never_opened(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04 not even looked at")
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path, "linear")


def test_truncated_or_swapped_weights_are_refused(saved):
    _, stem = saved
    weights = stem.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(stem, "linear")


def test_missing_half_and_foreign_json_are_refused(saved, tmp_path):
    _, stem = saved
    with pytest.raises(CheckpointError, match="needs both"):
        load_checkpoint(tmp_path / "nothing", "linear")
    stem.with_suffix(".json").write_text(json.dumps({"model_type": "something else"}))
    with pytest.raises(CheckpointError, match="not a fada-stream"):
        load_checkpoint(stem, "linear")


def test_weights_of_another_shape_are_refused(saved):
    _, stem = saved
    _, state, _ = load_checkpoint(stem, "linear")
    with pytest.raises(CheckpointError, match="do not match"):
        load_into(torch.nn.Linear(4, 2), state, str(stem))
