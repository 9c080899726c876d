"""Control messages parse strictly: every documented command, and a clear error for anything else."""
import base64
import json

import pytest

from fada_stream.serve import control
from fada_stream.serve.control import ControlError, parse_command


@pytest.mark.parametrize("msg, command", [
    ({"type": "interrupt"}, control.Interrupt()),
    ({"type": "guidance", "s_ref": 2, "s_audio": 4.5}, control.Guidance(2.0, 4.5)),
    ({"type": "guidance", "s_audio": 0}, control.Guidance(None, 0.0)),
    ({"type": "guidance", "audio_boost": 0.5}, control.Guidance(None, None, 0.5)),
    ({"type": "reference", "image": base64.b64encode(b"png").decode()}, control.Reference(b"png")),
    ({"type": "reference", "image": "data:image/png;base64," + base64.b64encode(b"png").decode()}, control.Reference(b"png")),
    ({"type": "sample", "name": "a.wav"}, control.Sample("a.wav")),
    ({"type": "audio", "data": base64.b64encode(b"RIFF").decode()}, control.Audio(b"RIFF")),
    ({"type": "mirror", "enabled": False}, control.Mirror(False)),
])
def test_documented_commands(msg, command):
    assert parse_command(json.dumps(msg)) == command


@pytest.mark.parametrize("text, error", [
    ("{", "not valid JSON"),
    ("[" * 100_000, "not valid JSON"),
    ('"interrupt"', "JSON object"),
    ('{"kind": "interrupt"}', "JSON object"),
    ('{"type": 3}', "JSON object"),
    ('{"type": "dance"}', "unknown message type"),
    ('{"type": "interrupt", "x": 1}', "unexpected"),
    ('{"type": "guidance"}', "give s_ref"),
    ('{"type": "guidance", "s_ref": true}', "finite number"),
    ('{"type": "guidance", "s_ref": "2"}', "finite number"),
    ('{"type": "guidance", "s_ref": NaN}', "finite number"),
    ('{"type": "guidance", "s_ref": 1e999}', "finite number"),
    ('{"type": "guidance", "audio_boost": null}', "give s_ref"),
    ('{"type": "guidance", "audio_boost": "0.5"}', "finite number"),
    ('{"type": "reference"}', "missing"),
    ('{"type": "reference", "image": 5}', "base64 string"),
    ('{"type": "reference", "image": "!!!"}', "not valid base64"),
    ('{"type": "reference", "image": ""}', "empty"),
    ('{"type": "sample", "name": ["a"]}', "must be a string"),
    ('{"type": "mirror", "enabled": 1}', "true or false"),
])
def test_anything_else_is_a_control_error(text, error):
    with pytest.raises(ControlError, match=error):
        parse_command(text)
