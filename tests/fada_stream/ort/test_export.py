"""ONNX export and the onnxruntime backend: checked graphs with a dynamic batch, parity with torch per network
and end to end, a cache keyed by the checkpoint, and clear failures."""
import json
import logging

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from fada_stream import AvatarSession, StreamConfig  # noqa: E402
from fada_stream.checkpoint import CheckpointError, save_checkpoint  # noqa: E402
from fada_stream.generator import Guidance, build_window_model, load_window_model, resolve_backend  # noqa: E402
from fada_stream.model import STUDENT_KIND, Autoencoder, StudentConfig, StudentDiT, preset  # noqa: E402
from fada_stream.model.autoencoder import AUTOENCODER_KIND  # noqa: E402
from fada_stream.ort import runtime  # noqa: E402
from fada_stream.ort.export import MANIFEST, export_checkpoint, export_key, read_manifest  # noqa: E402
from fada_stream.ort.parity import TOLERANCES, compare, within  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def teacher_export(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "teacher"
    return out, export_checkpoint(tiny_checkpoint, out)


def test_export_writes_three_checked_graphs_and_a_manifest(teacher_export, tiny_checkpoint):
    out, manifest = teacher_export
    assert {f.name for f in out.iterdir()} == {"denoiser.onnx", "audio_encoder.onnx", "decoder.onnx", MANIFEST}
    assert read_manifest(out) == manifest  # every file's hash checks out
    assert manifest["kind"] == "teacher" and manifest["key"] == export_key(tiny_checkpoint)
    assert manifest["files"]["denoiser"]["inputs"] == ["x", "t", "ref", "audio", "motion", "motion_mask", "drop_ref", "drop_audio",
                                                   "ref_drop"]


@pytest.mark.parametrize("batch", [1, 5])
def test_graphs_take_any_batch(teacher_export, batch):
    out, m = teacher_export
    s = m["shapes"]
    den = runtime.open_session(out / "denoiser.onnx", CPU)
    aud = runtime.open_session(out / "audio_encoder.onnx", CPU)
    dec = runtime.open_session(out / "decoder.onnx", CPU)
    tokens = aud.run(None, {"mel": np.zeros((batch, s["n_mels"], s["mel_span"]), np.float32)})[0]
    lat = np.zeros((batch, s["frames"], s["latent_channels"], s["latent_size"], s["latent_size"]), np.float32)
    flags = np.zeros(batch, bool)
    v = den.run(None, {"x": lat, "t": np.full(batch, 0.5, np.float32), "ref": lat[:, 0], "audio": tokens, "motion": lat[:, :s["motion_frames"]],
                       "motion_mask": flags, "drop_ref": flags, "drop_audio": flags,
                       "ref_drop": np.zeros((batch, s["ref_tokens"]), bool)})[0]
    assert v.shape == lat.shape and tokens.shape[:2] == (batch, s["frames"])
    assert dec.run(None, {"latents": lat[:, 0]})[0].shape == (batch, 3, 128, 128)


def test_teacher_parity_per_network_and_window(tiny_checkpoint, teacher_export):
    out, _ = teacher_export
    errors = compare(build_window_model(tiny_checkpoint, CPU), build_window_model(tiny_checkpoint, CPU, backend="onnx", export_dir=out))
    assert within(errors), errors
    assert errors["velocity"] > 0  # two different runtimes really ran


def test_a_teachers_graph_takes_the_mouth_drop_and_a_students_does_not(tiny_checkpoint, teacher_export, tiny_student, tmp_path):
    out, manifest = teacher_export
    assert manifest["files"]["denoiser"]["inputs"][-1] == "ref_drop"
    torch_model = build_window_model(tiny_checkpoint, CPU)
    onnx_model = build_window_model(tiny_checkpoint, CPU, backend="onnx", export_dir=out)
    errors = compare(torch_model, onnx_model, Guidance(1.5, 2.5, s_audio_early=6.0, mouth_drop_from=0.5), steps=4)
    assert within(errors), errors  # whole windows with the renderer's teacher sampler, on both runtimes
    x, t = torch.randn(2, 6, 4, 16, 16), torch.full((2,), 0.7)
    cond = {"ref": torch.randn(2, 4, 16, 16), "audio": torch_model.audio_encoder(torch.randn(2, 80, torch_model.cfg.audio.mel_span(6)))}
    mouth = torch_model.mouth[None].expand(2, -1)  # (2, N)
    dropped = onnx_model.model(x, t, ref_drop=mouth, **cond)
    with torch.no_grad():
        whole_torch, dropped_torch = torch_model.model(x, t, **cond), torch_model.model(x, t, ref_drop=mouth, **cond)
    torch.testing.assert_close(dropped, dropped_torch, atol=TOLERANCES["velocity"], rtol=0)
    assert (dropped - whole_torch).abs().max() > 3 * (dropped - dropped_torch).abs().max()  # the drop is in the graph
    export_checkpoint(tiny_student, tmp_path / "onnx")
    student = build_window_model(tiny_student, CPU, backend="onnx", export_dir=tmp_path / "onnx")
    with pytest.raises(ValueError, match="takes no ref_drop"):
        student.model(x, t, scales=torch.tensor([[1.5, 2.5]] * 2), ref_drop=mouth, **cond)


def test_a_naive_student_exports_without_scales_or_ref_drop(tmp_path, awake):
    torch.manual_seed(3)
    cfg = StudentConfig(model=preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2), steps=2, tokens=False)
    path = tmp_path / "naive"
    save_checkpoint(path / "student", STUDENT_KIND, cfg, awake(StudentDiT(cfg)).state_dict())
    save_checkpoint(path / "autoencoder", AUTOENCODER_KIND, cfg.model.ae, Autoencoder(cfg.model.ae).state_dict())
    manifest = export_checkpoint(path, tmp_path / "onnx")
    assert manifest["files"]["denoiser"]["inputs"][-1] == "drop_audio"  # the three-branch guidance's flags, nothing more
    errors = compare(build_window_model(path, CPU), build_window_model(path, CPU, backend="onnx", export_dir=tmp_path / "onnx"))
    assert within(errors), errors


def test_student_parity_with_cfg_tokens(tiny_student, tmp_path):
    export_checkpoint(tiny_student, tmp_path / "onnx")
    torch_model = build_window_model(tiny_student, CPU)
    onnx_model = build_window_model(tiny_student, CPU, backend="onnx", export_dir=tmp_path / "onnx")
    assert within(compare(torch_model, onnx_model)), compare(torch_model, onnx_model)
    # The scales are a graph input: changing them changes the exported student's velocity as torch's.
    x, t = torch.randn(2, 6, 4, 16, 16), torch.full((2,), 0.7)
    cond = {"ref": torch.randn(2, 4, 16, 16), "audio": torch_model.audio_encoder(torch.randn(2, 80, torch_model.cfg.audio.mel_span(6)))}
    lo = onnx_model.model(x, t, scales=torch.tensor([[1.0, 1.0]] * 2), **cond)
    hi = onnx_model.model(x, t, scales=torch.tensor([[2.0, 4.0]] * 2), **cond)
    with torch.no_grad():
        hi_torch = torch_model.model(x, t, scales=torch.tensor([[2.0, 4.0]] * 2), **cond)
    assert (lo - hi).abs().max() > 10 * TOLERANCES["velocity"]
    torch.testing.assert_close(hi, hi_torch, atol=TOLERANCES["velocity"], rtol=0)


def test_attention_token_student_exports_with_parity(tmp_path, awake):
    torch.manual_seed(2)
    cfg = StudentConfig(model=preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2), steps=2, token_mode="attn")
    model = awake(StudentDiT(cfg))
    with torch.no_grad():
        model.token_gates.fill_(1.0)  # open gates: the scales reach the velocity only through the attention tokens
    path = tmp_path / "student"
    save_checkpoint(path / "student", STUDENT_KIND, cfg, model.state_dict())
    save_checkpoint(path / "autoencoder", AUTOENCODER_KIND, cfg.model.ae, Autoencoder(cfg.model.ae).state_dict())
    export_checkpoint(path, tmp_path / "onnx")
    onnx_model = build_window_model(path, CPU, backend="onnx", export_dir=tmp_path / "onnx")
    errors = compare(build_window_model(path, CPU), onnx_model)
    assert within(errors), errors
    assert errors["velocity"] > 0
    x, t = torch.randn(2, 6, 4, 16, 16), torch.full((2,), 0.7)
    cond = {"ref": torch.randn(2, 4, 16, 16), "audio": onnx_model.audio_encoder(torch.randn(2, 80, cfg.model.audio.mel_span(6)))}
    lo = onnx_model.model(x, t, scales=torch.tensor([[1.0, 1.0]] * 2), **cond)
    hi = onnx_model.model(x, t, scales=torch.tensor([[2.0, 4.0]] * 2), **cond)
    assert (lo - hi).abs().max() > 10 * TOLERANCES["velocity"]  # the tokens are in the graph


def test_a_reference_aware_decoder_exports_with_the_reference_as_an_input(reference_aware_student, tmp_path):
    manifest = export_checkpoint(reference_aware_student, tmp_path / "onnx")
    assert manifest["files"]["decoder"]["inputs"] == ["latents", "reference"]
    torch_model = build_window_model(reference_aware_student, CPU)
    onnx_model = build_window_model(reference_aware_student, CPU, backend="onnx", export_dir=tmp_path / "onnx")
    errors = compare(torch_model, onnx_model)
    assert within(errors), errors
    lat = torch.randn(5, 4, 16, 16)  # any number of frames share the one reference
    a, b = np.zeros((128, 128, 3), np.uint8), np.full((128, 128, 3), 255, np.uint8)
    assert onnx_model.decode(lat, a).shape == (5, 128, 128, 3)
    assert np.abs(onnx_model.decode(lat, a).astype(int) - onnx_model.decode(lat, b).astype(int)).max() > 0
    for model in (torch_model, onnx_model):
        with pytest.raises(ValueError, match="needs the reference"):
            model.decode(lat)
    two = torch.zeros(2, 3, 128, 128)  # torch takes one reference per frame; the graph one per call, and says so
    with pytest.raises(ValueError, match="one reference image per call"):
        onnx_model.codec.decode(lat[:2], two)


def test_an_audio_aware_decoder_exports_with_each_frames_mel_as_an_input(audio_aware_student, tmp_path):
    manifest = export_checkpoint(audio_aware_student, tmp_path / "onnx")
    assert manifest["files"]["decoder"]["inputs"] == ["latents", "reference", "mel"]
    torch_model = build_window_model(audio_aware_student, CPU)
    onnx_model = build_window_model(audio_aware_student, CPU, backend="onnx", export_dir=tmp_path / "onnx")
    errors = compare(torch_model, onnx_model)  # decodes with the mel of the frames, as the stream does
    assert within(errors), errors
    ac, face = torch_model.cfg.audio, np.full((128, 128, 3), 90, np.uint8)
    lat = torch.randn(5, 4, 16, 16)
    quiet, loud = torch.full((ac.n_mels, ac.mel_span(5)), -11.5), torch.randn(ac.n_mels, ac.mel_span(5))
    for model in (torch_model, onnx_model):
        assert np.abs(model.decode(lat, face, quiet).astype(int) - model.decode(lat, face, loud).astype(int)).max() > 0
        with pytest.raises(ValueError, match="needs the frames' log-mel"):
            model.decode(lat, face)


@pytest.mark.parametrize("student", ["reference_aware_student", "audio_aware_student"])
async def test_a_session_with_a_reference_or_audio_aware_decoder_renders_alike_on_both_backends(student, speech, request):
    cfg = StreamConfig(vad=False, seed=3)
    frames = {}
    for backend in ("torch", "onnx"):
        async with AvatarSession(reference=np.full((128, 128, 3), 60, np.uint8), checkpoint=request.getfixturevalue(student),
                                 device="cpu", backend=backend, paced=False, config=cfg) as s:
            frames[backend] = s.render(speech[:8000], 16000)
    assert frames["torch"].shape == (13, 128, 128, 3)
    assert np.abs(frames["torch"].astype(int) - frames["onnx"].astype(int)).max() <= TOLERANCES["window_uint8"]


async def test_session_on_onnx_renders_what_torch_renders(tiny_student, speech):
    cfg = StreamConfig(vad=False, seed=3)
    frames = {}
    for backend in ("torch", "onnx"):
        async with AvatarSession(checkpoint=tiny_student, device="cpu", backend=backend, paced=False, config=cfg) as s:
            assert s.stats()["backend"] == backend
            frames[backend] = s.render(speech[:16000], 16000)  # 1 s: 25 frames over several chained windows
    assert frames["torch"].shape == frames["onnx"].shape == (25, 128, 128, 3)
    assert np.abs(frames["torch"].astype(int) - frames["onnx"].astype(int)).max() <= TOLERANCES["window_uint8"]


def test_first_use_exports_into_the_cache_once(tiny_student, monkeypatch, tmp_path):
    monkeypatch.setenv("FADA_STREAM_CACHE", str(tmp_path))
    folder, manifest = runtime.ensure_exported(tiny_student)
    assert folder.parent == tmp_path / "onnx" and manifest["key"] == export_key(tiny_student)

    def no_export(*a):
        raise AssertionError("exported again")

    monkeypatch.setattr(runtime, "export_checkpoint", no_export)
    assert runtime.ensure_exported(tiny_student)[0] == folder  # the second use loads
    (folder / "decoder.onnx").write_bytes(b"truncated")  # a damaged cache is noticed, not loaded
    monkeypatch.undo()
    monkeypatch.setenv("FADA_STREAM_CACHE", str(tmp_path))
    assert runtime.ensure_exported(tiny_student)[0] == folder
    assert read_manifest(folder)  # exported afresh: the hashes match again


def test_an_export_beside_the_checkpoint_is_used_when_it_matches(tiny_student, monkeypatch, tmp_path):
    export_checkpoint(tiny_student, tiny_student / "onnx")
    try:
        monkeypatch.setattr(runtime, "export_checkpoint", lambda *a: pytest.fail("exported although one was beside"))
        assert runtime.ensure_exported(tiny_student)[0] == tiny_student / "onnx"
    finally:
        import shutil

        shutil.rmtree(tiny_student / "onnx")


def test_export_key_follows_the_weights(tiny_student, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_student, copy)
    assert export_key(copy) == export_key(tiny_student)
    model = StudentDiT(StudentConfig(model=preset("tiny", width=32, depth=1, heads=2, frames=6, motion_frames=2), steps=2))
    save_checkpoint(copy / "student", STUDENT_KIND, model.cfg, model.state_dict())
    assert export_key(copy) != export_key(tiny_student)


def test_export_refuses_to_replace_a_folder_that_is_not_an_export(tiny_checkpoint, teacher_export, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="not an earlier ONNX export"):
        export_checkpoint(tiny_checkpoint, tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    import shutil

    mixed = tmp_path / "mixed"  # an earlier export with something of the user's added: not ours to delete
    shutil.copytree(teacher_export[0], mixed)
    (mixed / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not an earlier ONNX export"):
        export_checkpoint(tiny_checkpoint, mixed)
    assert (mixed / "notes.txt").is_file()
    with pytest.raises(CheckpointError, match="holds the checkpoint"):  # the checkpoint's own folder, or a parent
        export_checkpoint(tiny_checkpoint, tiny_checkpoint.parent)
    assert (tiny_checkpoint / "teacher.json").is_file()


def test_foreign_or_damaged_manifests_are_refused(teacher_export, tmp_path):
    out, manifest = teacher_export
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a fada-stream ONNX export"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text("{")
    with pytest.raises(CheckpointError, match="no readable"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({**manifest, "files": {"denoiser": 3}}))
    with pytest.raises(CheckpointError, match="three graphs"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))  # a manifest without its files
    with pytest.raises(CheckpointError, match="missing or does not match"):
        read_manifest(tmp_path)


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("FADA_STREAM_BACKEND")
    assert resolve_backend("auto", CPU) == "onnx"  # measured faster on the CPU (docs/onnx.md)
    assert resolve_backend("auto", torch.device("cuda")) == "torch"
    assert resolve_backend("torch", CPU) == "torch"
    monkeypatch.setenv("FADA_STREAM_BACKEND", "torch")
    assert resolve_backend("auto", CPU) == "torch" and resolve_backend("onnx", CPU) == "onnx"
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("tensorrt", CPU)
    monkeypatch.setenv("FADA_STREAM_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="FADA_STREAM_BACKEND"):
        resolve_backend("auto", CPU)


def test_auto_falls_back_to_torch_when_onnx_fails_but_explicit_onnx_raises(tiny_checkpoint, monkeypatch, tmp_path, caplog):
    import shutil

    from fada_stream import generator

    folder = tmp_path / "ckpt"  # a fresh path: the loader caches per folder
    shutil.copytree(tiny_checkpoint, folder)
    monkeypatch.delenv("FADA_STREAM_BACKEND")

    def broken(*a):
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(runtime, "ensure_exported", broken)
    with caplog.at_level(logging.WARNING, logger="fada_stream.generator"):
        assert load_window_model(folder, "cpu").backend == "torch"
    assert "no exporter here" in caplog.text
    with pytest.raises(RuntimeError, match="no exporter here"):
        load_window_model(folder, "cpu", backend="onnx")
    generator._ONNX_FAILED.clear()


def test_onnx_backend_samples_with_euler_only(tiny_checkpoint):
    with pytest.raises(ValueError, match="Euler"):
        build_window_model(tiny_checkpoint, CPU, method="heun", backend="onnx")


def test_a_bad_checkpoint_is_not_hidden_by_the_onnx_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv("FADA_STREAM_BACKEND")
    (tmp_path / "teacher.json").write_text("{")
    with pytest.raises(CheckpointError, match="teacher"):
        load_window_model(tmp_path, "cpu")  # auto: the checkpoint is bad for torch too, so it raises, no fallback
