"""`export`: a trained student as deployable artefacts, each proved equal to it, with a model card.

Everything is written into a temporary folder beside ``output`` and renamed into place only
when every artefact has passed its parity check, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from dckd_cli.atomic import check_writable
from dckd_cli.catalog.architectures import ARCHITECTURES
from dckd_cli.catalog.methods import METHODS
from dckd_cli.deploy.card import card_record, write_card
from dckd_cli.deploy.formats import FORMATS, ExportError
from dckd_cli.deploy.parity import FP16_BOUND, FP32_BOUND, max_abs_error
from dckd_cli.deploy.student_file import StudentInfo, read_info
from dckd_cli.engine.run_folder import RunFolder, RunFolderError
from dckd_cli.errors import OutputExists
from dckd_cli.folders import FolderLock, refuse_foreign, refuse_overlap
from dckd_cli.models.checkpoints import build_with_weights, detect_model_info
from dckd_cli.models.zoo import input_needs

WEIGHTS = {"ema": "model", "student": "student"}  # --weights -> the run folder's file


@dataclass
class Student:
    model: nn.Module
    info: StudentInfo


def _run_evaluation(folder: RunFolder) -> dict[str, Any] | None:
    """What the run recorded about its quality: its scores, else its last validation."""
    if folder.scores.is_file():
        try:
            return json.loads(folder.scores.read_text()).get("results")
        except json.JSONDecodeError:
            return None
    if not folder.metrics.is_file():
        return None
    last = None
    for line in folder.metrics.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "val_psnr" in record:
            last = {"validation_psnr": record["val_psnr"], "iteration": record["iter"]}
    return last


def _run_of(path: Path) -> RunFolder | None:
    """The run folder whose ``checkpoints/<tag>/`` holds the weights file ``path``, if any."""
    if (
        path.suffix != ".safetensors"
        or path.stem not in ("model", "student")
        or path.parent.parent.name != "checkpoints"
    ):
        return None
    run = RunFolder(path.parent.parent.parent)
    return run if run.settings.is_file() else None


def load_source(source: Path, weights: str = "ema") -> Student:
    """The student a run folder, a dckd student file or any recognised checkpoint holds."""
    source = Path(source)
    if weights not in WEIGHTS:
        raise ExportError(f"--weights {weights}: choose from {', '.join(WEIGHTS)}")
    if source.is_dir():
        folder = RunFolder(source)
        settings = folder.read_settings()
        path = folder.weights("last", WEIGHTS[weights])
        if not path.is_file():
            raise RunFolderError(f"{source}: the run has no 'last' checkpoint yet ({path})")
        spec, t = settings.student, settings.teacher
        model = build_with_weights(spec.arch, spec.size, settings.scale, settings.task, path, options=spec.options)
        model.eval()
        method = settings.method
        extra = {
            "source": str(source),
            "teacher": {
                "arch": t.arch,
                "size": t.size,
                "checkpoint": str(t.checkpoint) if t.checkpoint else "official",
            },
            "method": {
                "name": method.name,
                "weights": {t: getattr(method.weights, t) for t in METHODS[method.name].terms},
                "settings": method.model_dump(mode="json"),
            },
            "evaluation": _run_evaluation(folder),
            "multiple": input_needs(model)[0],
        }
        info = StudentInfo(spec.arch, spec.size, settings.scale, settings.task, weights, extra, spec.options)
        return Student(model, info)
    if not source.is_file():
        raise ExportError(f"{source}: no such run folder or checkpoint file")
    run = _run_of(source)
    if run is not None:  # a run's own checkpoint file: built as the run built it
        settings, spec = run.read_settings(), run.read_settings().student
        model = build_with_weights(spec.arch, spec.size, settings.scale, settings.task, source, options=spec.options)
        model.eval()
        which = "student" if source.stem == "student" else "ema"
        extra = {"source": str(source), "run": str(run.root), "multiple": input_needs(model)[0]}
        info = StudentInfo(spec.arch, spec.size, settings.scale, settings.task, which, extra, spec.options)
        return Student(model, info)
    exported = read_info(source)
    if exported is not None:
        model = build_with_weights(
            exported.arch, exported.size, exported.scale, exported.task, source, options=exported.options
        )
        return Student(model.eval(), exported)
    model, scale, multiple, name = detect_model_info(source)
    arch = name.lower() if name.lower() in ARCHITECTURES else "auto"
    task = "sr" if scale > 1 else "deblur"  # a detected model says nothing of its task; only the parity image differs
    extra = {"source": str(source), "detected": arch, "multiple": multiple}
    return Student(model.eval(), StudentInfo("auto", name, scale, task, "checkpoint", extra))


def check_export(student: Student, formats: list[str], fp16: bool) -> None:
    """Refuse unknown formats and known-impossible ones before anything is written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(f"--format {','.join(unknown) or '(none)'}: choose from {', '.join(FORMATS)}")
    arch = student.info.arch if student.info.arch != "auto" else student.info.extra.get("detected", "auto")
    refused = ARCHITECTURES[arch].export_refused if arch in ARCHITECTURES else {}
    for fmt in formats:
        if fmt in refused:
            raise ExportError(f"{fmt}: {arch} cannot be exported: {refused[fmt]}")
    if fp16 and "onnx" not in formats:
        raise ExportError("--fp16 applies to the onnx format; add onnx to --format")


def export_student(
    source: Path,
    formats: list[str],
    output: Path,
    *,
    weights: str = "ema",
    fp16: bool = False,
    force: bool = False,
    command: str = "",
    on_artefact: Callable[[str, float, float], None] | None = None,
) -> dict[str, Any]:
    """Write every format into ``output`` with the model card; each is reloaded and checked first."""
    output = Path(output)
    refuse_overlap(output, {"the source": Path(source)})
    if output.exists() and (output.is_file() or any(output.iterdir())) and not force:
        raise OutputExists(f"export folder {output}")
    if output.is_dir():
        refuse_foreign(output)
    check_writable(output)
    student = load_source(source, weights)
    check_export(student, formats, fp16)
    output.parent.mkdir(parents=True, exist_ok=True)
    with FolderLock(output, "dckd export"):  # a second export to this folder is refused while this one runs
        _drop_leftovers(output)
        return _write_export(student, formats, output, fp16, command, on_artefact)


def _drop_leftovers(output: Path) -> None:
    """Remove the temporary folders an export to ``output`` that was killed left beside it."""
    name = re.compile(rf"\.{re.escape(output.name)}-[a-z0-9_]{{8}}")
    for leftover in output.parent.iterdir():
        if name.fullmatch(leftover.name) and leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def _write_export(
    student: Student,
    formats: list[str],
    output: Path,
    fp16: bool,
    command: str,
    on_artefact: Callable[[str, float, float], None] | None,
) -> dict[str, Any]:
    artefacts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}-") as tmp:
        folder = Path(tmp)
        for fmt in formats:
            spec = FORMATS[fmt]
            half = fp16 and fmt == "onnx"
            exporter = spec.write(student.model, student.info, folder / spec.filename, half)
            try:
                error, where = max_abs_error(student.model, spec.load(folder / spec.filename), student.info)
            except Exception as err:  # noqa: BLE001 - the artefact does not run (e.g. a size baked in)
                first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
                raise ExportError(
                    f"{fmt}: the exported {student.info.arch} does not run at other input sizes ({first}); "
                    "nothing was written; use safetensors"
                ) from None
            bound = FP16_BOUND if half else FP32_BOUND
            if on_artefact is not None:
                on_artefact(fmt, error, bound)
            if not error <= bound:
                raise ExportError(
                    f"{fmt}: the reloaded artefact differs from the PyTorch student by {error:.2e} on {where} "
                    f"(bound {bound:.0e}); nothing was written"
                )
            artefacts[fmt] = {"file": spec.filename, "exporter": exporter, "max_abs_error": error, "bound": bound}
        record = card_record(student.model, student.info, artefacts, command)
        write_card(folder, record)
        if output.exists():
            shutil.rmtree(output) if output.is_dir() else output.unlink()
        folder.chmod(0o755)  # a temporary folder is private (0700); an export is an ordinary folder
        folder.rename(output)
        folder.mkdir()  # the context manager removes its (now empty) folder
    return record
