"""Any architecture as teacher or student: the table's efficient SR families, any spandrel
family by name with its options, and a user's own ``package.module:function``."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dckd_cli.catalog.architectures import ARCHITECTURES
from dckd_cli.cli.app import app
from dckd_cli.deploy.formats import FORMATS, ExportError
from dckd_cli.deploy.student_file import load_student, read_info
from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.trainer import train
from dckd_cli.models.families import FamilyError
from dckd_cli.models.zoo import build_network, input_needs
from dckd_cli.pipelines.export import export_student

runner = CliRunner()
NAMED = {"span": "SPAN", "safmn": "SAFMN", "omnisr": "OmniSR", "dctlsa": "DCTLSA"}


def _spandrel_id(state: dict[str, torch.Tensor]) -> tuple[str, int]:
    from spandrel import ModelLoader

    descriptor = ModelLoader().load_from_state_dict(state)
    return descriptor.architecture.id, descriptor.scale


@pytest.mark.parametrize("arch", list(NAMED))
def test_a_named_efficient_student_distils_resumes_exports_and_is_detected(tmp_path: Path, tiny_settings, arch: str):
    settings = tiny_settings("fakd", iters=2, **{"student.arch": arch, "data.patch_size": 16, "runtime.save_every": 2})
    run = tmp_path / "run"
    result = train(settings, run)
    assert result.iterations == 2 and RunFolder(run).has_checkpoint()
    refused = ARCHITECTURES[arch].export_refused
    for fmt in refused:  # refused in one line before any work
        with pytest.raises(ExportError, match=rf"^{fmt}: {arch} cannot be exported: "):
            export_student(run, [fmt], tmp_path / f"refused-{fmt}")
        assert not (tmp_path / f"refused-{fmt}").exists()
    record = export_student(run, [f for f in FORMATS if f not in refused], tmp_path / "export")
    assert "safetensors" in record["artefacts"]
    assert all(a["max_abs_error"] <= a["bound"] for a in record["artefacts"].values())
    student_file = tmp_path / "export" / "model.safetensors"
    info = read_info(student_file)
    assert info is not None and info.arch == arch and info.size == "tiny"
    model, _ = load_student(student_file)  # rebuilt from the file alone
    saved = RunFolder(run).weights("last")
    from safetensors.torch import load_file

    weights = load_file(str(saved))
    assert all(torch.equal(model.state_dict()[k], weights[k]) for k in weights)  # state-dict round trip
    assert _spandrel_id(weights) == (NAMED[arch], 2)  # spandrel recognises the saved student
    # the run continues: two more iterations from its checkpoint
    assert (
        train(
            settings.model_copy(update={"optim": settings.optim.model_copy(update={"iters": 4})}), run, resume=True
        ).iterations
        == 4
    )


def test_any_spandrel_family_by_name_with_options(tmp_path: Path, tiny_settings):
    """Compact (Real-ESRGAN's SRVGG) is not in the table: built from its constructor with the
    options given, scale filled in, FAKD's layer derived, and distilled."""
    extra = {"student.arch": "Compact", "student.options": {"num_feat": 8, "num_conv": 2}}
    settings = tiny_settings("fakd", iters=2, **extra)
    train(settings, tmp_path / "run")
    model = build_network("Compact", "tiny", 2, {"num_feat": 8, "num_conv": 2}).model
    assert type(model).__name__ == "SRVGGNetCompact" and sum(p.numel() for p in model.parameters()) < 5000
    from dckd_cli.methods.feature_taps import derived_taps

    assert derived_taps(model, input_needs(model)) == ["body.5"]  # the last activation before the upsampler


@pytest.mark.parametrize(
    "arch,options,message",
    [
        (
            "SPAN",
            {"feature_chanels": 16},
            r"student.options.feature_chanels: SPAN has no option 'feature_chanels'; "
            r"its options: feature_channels=48, bias=True",
        ),
        ("SPAN", {"feature_channels": "wide"}, r"student.options.feature_channels: expected int, got 'wide'"),
        ("SPAN", {"upscale": 3}, r"student.options.upscale: set by dckd from the run"),
        ("SAFMN", {}, r"student.options: SAFMN needs dim; set student.options.dim"),
        ("DnCNN", {}, r"student.arch: DnCNN restores at scale 1 with these options; the run is x2"),
        ("GFPGAN", {}, r"student.arch: GFPGAN is a FaceSR model"),
        ("Nope", {}, r"student.arch: unknown architecture 'Nope': use swinir, rcan, .*a spandrel family"),
        ("span", {}, None),
    ],
)
def test_bad_families_and_options_are_one_line(arch: str, options: dict, message: str | None):
    if message is None:  # the table's span has no 'teacher' size
        with pytest.raises(Exception, match=r"span has no size 'teacher'; its sizes: student, lite, tiny"):
            build_network(arch, "teacher", 2, options, "student.arch")
        return
    with pytest.raises(FamilyError, match=message):
        build_network(arch, "tiny", 2, options, "student.arch")


USER_MODULE = """
import torch
from torch import nn


class Tiny(nn.Module):
    pad_multiple = 4

    def __init__(self, channels, scale):
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Conv2d(channels, channels, 3, padding=1)
        self.tail = nn.Sequential(nn.Conv2d(channels, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, x):
        f = self.head(x)
        return self.tail(torch.relu(self.body(f)) + f)


def build_student(channels: int = 8, scale: int = 1):
    return Tiny(channels, scale)


def broken(channels: int = 8):
    return nn.Conv2d(3, 3, 3)  # no upscaling: the dummy check refuses it
"""


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch):
    package = tmp_path / "site" / "mylab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "students.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield "mylab.students"
    for name in [m for m in sys.modules if m.startswith("mylab")]:
        del sys.modules[name]


def test_a_users_own_student_distils_exports_and_rebuilds_from_its_file(tmp_path: Path, tiny_settings, user_package):
    arch = f"{user_package}:build_student"
    settings = tiny_settings("fakd", iters=2, **{"student.arch": arch, "student.options": {"channels": 12}})
    train(settings, tmp_path / "run")
    built = build_network(arch, "tiny", 2, {"channels": 12})
    assert input_needs(built.model) == (4, 0)  # the model's own pad_multiple
    export_student(tmp_path / "run", ["safetensors"], tmp_path / "export")
    model, info = load_student(tmp_path / "export" / "model.safetensors")
    assert info.arch == arch and info.options == {"channels": 12} and model.head.out_channels == 12
    student_file = str(tmp_path / "export" / "model.safetensors")
    result = runner.invoke(app, ["evaluate", "--checkpoint", student_file, "--datasets", "builtin", "-q"])
    assert result.exit_code == 0, result.output
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "small.png"), np.full((20, 24, 3), 90, np.uint8))
    result = runner.invoke(
        app, ["restore", str(tmp_path / "small.png"), "--model", student_file, "--output", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "out" / "small.png")).shape == (40, 48, 3)  # x2, by the user's own network


@pytest.mark.parametrize(
    "arch,options,message",
    [
        ("no_such_pkg.models:build", {}, r"student.arch: cannot import no_such_pkg.models \(No module named"),
        ("{pkg}:missing", {}, r"student.arch: mylab.students has no callable 'missing'"),
        ("{pkg}:build_student", {"width": 3}, r"student.options.width: mylab.students:build_student has no option"),
        ("{pkg}:build_student", {"channels": "x"}, r"student.options.channels: expected int, got 'x'"),
        ("{pkg}:broken", {}, r"student.arch: mylab.students:broken maps a 16x16 RGB input to \(1, 3, 14, 14\)"),
    ],
)
def test_a_user_module_that_cannot_be_used_is_one_line_before_the_run_folder(
    tmp_path: Path, user_package, arch: str, options: dict, message: str
):
    arch = arch.format(pkg=user_package)
    args = ["distill", "--preset", "demo", "--method", "scratch", "--output", str(tmp_path / "run"), "-q"]
    args += ["--set", f"student.arch={arch}", "--iters", "2"]
    args += [a for key, value in options.items() for a in ("--set", f"student.options.{key}={value}")]
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "Traceback" not in result.output, result.output
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


def test_any_family_as_teacher_from_its_checkpoint(tmp_path: Path, tiny_settings):
    """A teacher named by family and options with its weights file: built, loaded strictly, run."""
    from safetensors.torch import save_file

    options = {"num_feat": 8, "num_conv": 2}
    teacher = build_network("Compact", "teacher", 2, options).model
    path = tmp_path / "compact.safetensors"
    save_file({k: v.contiguous() for k, v in teacher.state_dict().items()}, str(path))
    extra = {"teacher.arch": "Compact", "teacher.options": options, "teacher.checkpoint": str(path)}
    assert train(tiny_settings("fakd", iters=2, **extra), tmp_path / "run").iterations == 2
    without = tiny_settings("logits", iters=2, **extra)
    without.teacher.checkpoint = None
    with pytest.raises(Exception, match=r"Compact: dckd knows no official weights of this network; pass"):
        train(without, tmp_path / "run2")
    assert not (tmp_path / "run2").exists()
