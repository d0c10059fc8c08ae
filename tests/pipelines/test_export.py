from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from dckd_cli.catalog.architectures import ARCHITECTURES
from dckd_cli.cli.app import app
from dckd_cli.deploy import formats
from dckd_cli.deploy.formats import FORMATS, ExportError
from dckd_cli.engine.trainer import train
from dckd_cli.models.zoo import build_model
from dckd_cli.pipelines.evaluate import ModelChoice, resolve_model
from dckd_cli.pipelines.export import export_student
from dckd_cli.settings.presets import resolve_settings

runner = CliRunner()
FAMILIES = [("rcan", 2, "sr"), ("swinir", 2, "sr"), ("nafnet", 1, "deblur"), ("restormer", 1, "derain")]


def _run(tmp_path: Path, arch: str, scale: int, task: str) -> Path:
    teacher = tmp_path / f"teacher-{arch}.safetensors"
    torch.manual_seed(3)
    save_file({k: v.contiguous() for k, v in build_model(arch, "tiny", scale).state_dict().items()}, str(teacher))
    flags = {
        "task": task,
        "scale": scale,
        "teacher.arch": arch,
        "student.arch": arch,
        "teacher.size": "tiny",
        "student.size": "tiny",
        "teacher.checkpoint": str(teacher),
        "method.name": "logits",
        "optim.iters": 2,
        "data.patch_size": 16,
        "data.batch_size": 2,
        "runtime.save_every": 2,
        "runtime.val_every": 2,
    }
    folder = tmp_path / f"run-{arch}"
    train(resolve_settings("demo", flags), folder)
    return folder


@pytest.mark.parametrize("arch,scale,task", FAMILIES)
def test_every_family_exports_what_it_can_and_refuses_the_rest_in_one_line(tmp_path, arch, scale, task):
    run = _run(tmp_path, arch, scale, task)
    refused = ARCHITECTURES[arch].export_refused
    allowed = [f for f in FORMATS if f not in refused]
    record = export_student(run, allowed, tmp_path / "out")
    for fmt in allowed:
        artefact = record["artefacts"][fmt]
        assert (tmp_path / "out" / artefact["file"]).is_file()
        assert artefact["max_abs_error"] < 1e-4 == artefact["bound"]
    card = json.loads((tmp_path / "out" / "model.json").read_text())
    assert card["task"] == task and card["scale"] == scale and card["architecture"] == arch
    assert card["parameters"] == sum(p.numel() for p in build_model(arch, "tiny", scale).parameters())
    assert card["flops"]["value"] > 0 and card["method"]["name"] == "logits" and card["command"] == ""
    assert "max abs error" in (tmp_path / "out" / "README.md").read_text()
    for fmt, reason in refused.items():
        result = runner.invoke(app, ["export", str(run), "--format", fmt, "--output", str(tmp_path / "no")])
        assert result.exit_code == 1 and reason[:40] in result.output.replace("\n", " ").replace("  ", " ")
        assert not (tmp_path / "no").exists()
    # The exported student file reloads with no run folder and scores what the run's student scores.
    settings = resolve_settings(None, {"task": task, "scale": scale})
    from_file = resolve_model(ModelChoice(checkpoint=tmp_path / "out" / "model.safetensors"), settings)
    x = torch.rand(1, 3, 32, 32)
    from dckd_cli.engine.run_folder import RunFolder
    from dckd_cli.models.checkpoints import build_with_weights

    original = build_with_weights(arch, "tiny", scale, task, RunFolder(run).weights("last")).eval()
    with torch.no_grad():
        assert torch.equal(from_file.model.eval()(x), original(x))


def test_a_tampered_artefact_fails_parity_and_leaves_nothing(tmp_path, monkeypatch):
    run = _run(tmp_path, "rcan", 2, "sr")

    def tampered(model, info, path, fp16):  # noqa: ANN001
        broken = build_model("rcan", "tiny", 2)
        broken.load_state_dict(model.state_dict())
        with torch.no_grad():
            broken.tail[-1].bias += 0.255  # RCAN divides by rgb_range 255: the output moves by 1e-3
        return formats.write_safetensors(broken, info, path, fp16)

    monkeypatch.setitem(FORMATS, "safetensors", replace(FORMATS["safetensors"], write=tampered))
    with pytest.raises(ExportError, match=r"safetensors: .*differs from the PyTorch student by (9\.9\d|1\.00)e-0[34]"):
        export_student(run, ["safetensors", "onnx"], tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-rcan", "teacher-rcan.safetensors"]


def test_existing_export_refused_and_fp16_bound(tmp_path):
    run = _run(tmp_path, "rcan", 2, "sr")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    result = runner.invoke(app, ["export", str(run), "--output", str(tmp_path / "out")])
    assert result.exit_code == 1 and "--force" in result.output
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep"
    record = export_student(run, ["onnx"], tmp_path / "half", fp16=True)
    assert 0 < record["artefacts"]["onnx"]["max_abs_error"] < 1 / 255 == record["artefacts"]["onnx"]["bound"]


def _image(path: Path, h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_restore_a_folder_with_one_corrupt_image(tmp_path):
    run = _run(tmp_path, "rcan", 2, "sr")
    export_student(run, ["safetensors", "onnx"], tmp_path / "export")
    photos = tmp_path / "photos"
    photos.mkdir()
    _image(photos / "a.png", 20, 30, 0)
    _image(photos / "b.jpg", 17, 23, 1)
    (photos / "broken.png").write_bytes(b"not an image")
    result = runner.invoke(
        app, ["restore", str(photos), "--model", str(tmp_path / "export"), "--output", str(tmp_path / "t")]
    )
    assert result.exit_code == 1 and "broken.png" in result.output and "restored 2" in result.output
    torch_a = cv2.imread(str(tmp_path / "t" / "photos" / "a.png"))
    assert torch_a.shape == (40, 60, 3) and cv2.imread(str(tmp_path / "t" / "photos" / "b.png")).shape == (34, 46, 3)
    assert not (tmp_path / "t" / "photos" / "broken.png").exists()
    args = ["restore", str(photos / "a.png"), "--model", str(tmp_path / "export"), "--backend", "onnxruntime"]
    assert runner.invoke(app, [*args, "--output", str(tmp_path / "o")]).exit_code == 0
    onnx_a = cv2.imread(str(tmp_path / "o" / "a.png"))
    assert np.abs(onnx_a.astype(int) - torch_a).max() <= 1  # the same student, within 8-bit rounding
    again = runner.invoke(app, [*args, "--output", str(tmp_path / "o")])
    assert again.exit_code == 1 and "--force" in again.output
    onto_input = runner.invoke(app, ["restore", str(photos / "a.png"), "--model", str(run), "--output", str(photos)])
    assert onto_input.exit_code == 1 and "overwrite an input" in onto_input.output
    hang = runner.invoke(app, [*args, "--output", str(tmp_path / "x"), "--tile", "8", "--tile-overlap", "8"])
    assert hang.exit_code == 1 and "--tile-overlap" in hang.output


def test_a_student_file_has_the_same_bytes_every_time_it_is_written(tmp_path: Path) -> None:
    from safetensors import safe_open

    from dckd_cli.deploy.student_file import StudentInfo, load_student, save_student

    torch.manual_seed(0)
    model = build_model("rcan", "tiny", 2)
    info = StudentInfo("rcan", "tiny", 2, "sr", extra={f"key{i}": i for i in range(12)})  # many keys: many orders
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_student(model, info, first)
    blobs = set()
    for _ in range(6):  # safetensors alone gives a new metadata order (and SHA-256) nearly every time
        save_student(model, info, second)
        blobs.add(second.read_bytes())
    assert blobs == {first.read_bytes()}
    loaded, back = load_student(first)
    assert back == info
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    with safe_open(str(first), framework="pt") as handle:
        assert handle.metadata() == info.metadata()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_runs_own_checkpoint_files_export_and_pass_parity(tmp_path):
    run = _run(tmp_path, "rcan", 2, "sr")
    for name in ("model", "student"):
        source = run / "checkpoints" / "last" / f"{name}.safetensors"
        record = export_student(source, ["safetensors", "onnx"], tmp_path / f"out-{name}")
        assert all(a["max_abs_error"] <= a["bound"] for a in record["artefacts"].values()), name
        assert (tmp_path / f"out-{name}").stat().st_mode & 0o777 == 0o755  # not the temporary folder's 0700


def test_a_killed_exports_temporary_folder_is_cleaned_and_a_busy_export_refused(tmp_path):
    from dckd_cli.folders import FolderInUse, FolderLock

    run = _run(tmp_path, "rcan", 2, "sr")
    leftover, other = tmp_path / ".out-k3x_9abz", tmp_path / ".out-notes"  # tempfile's 8-character names only
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half")
    other.mkdir()
    export_student(run, ["safetensors"], tmp_path / "out")
    assert not leftover.exists() and other.is_dir() and (tmp_path / "out" / "model.safetensors").is_file()
    with FolderLock(tmp_path / "busy", "dckd export"):
        with pytest.raises(FolderInUse, match=r"busy is in use by process \d+ on .* \(dckd export\)"):
            export_student(run, ["safetensors"], tmp_path / "busy")


@pytest.mark.parametrize("arch,size,convolutional", [("rcan", "tiny", True), ("swinir", "student", False)])
def test_a_reloaded_student_runs_in_the_cpu_layout_its_family_is_faster_in(tmp_path: Path, arch, size, convolutional):
    from dckd_cli.deploy.student_file import StudentInfo, save_student

    torch.manual_seed(0)
    model = build_model(arch, size, 2).eval()
    save_student(model, StudentInfo(arch, size, 2, "sr"), tmp_path / "model.safetensors")
    runner = formats.load_safetensors(tmp_path / "model.safetensors")
    convs = [m for m in runner.__closure__[0].cell_contents.modules() if isinstance(m, torch.nn.Conv2d)]
    wide = next(m for m in convs if m.kernel_size != (1, 1))
    assert wide.weight.is_contiguous(memory_format=torch.channels_last) is convolutional
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert (runner(x) - model(x)).abs().max() < 1e-5  # channels-last sums in another order


def test_onnxruntime_out_of_memory_is_the_one_line_naming_tile(tmp_path, monkeypatch):
    import onnxruntime
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    run = _run(tmp_path, "rcan", 2, "sr")
    export_student(run, ["onnx"], tmp_path / "export")
    _image(tmp_path / "a.png", 20, 30, 0)

    def exhausted(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - what the arena raises when full
        raise RuntimeException("[ONNXRuntimeError] : 6 : Failed to allocate memory for requested buffer of size 9")

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", exhausted)
    args = ["restore", str(tmp_path / "a.png"), "--model", str(tmp_path / "export"), "--backend", "onnxruntime"]
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "o")])
    said = " ".join(result.output.split())  # as one line, whatever the console's width
    assert result.exit_code == 1 and "a.png: 30x20 at x2 does not fit in memory; pass --tile 256" in said
    assert not (tmp_path / "o" / "a.png").exists()
