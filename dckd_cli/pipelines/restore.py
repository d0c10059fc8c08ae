"""`restore`: run a student (an export folder, a run folder or a checkpoint) over image files.

Inputs are files or folders (their images, not recursive); each output is ``OUTPUT/<stem>.png``
(a folder's images keep their names under ``OUTPUT/<folder name>/``). Every output path is
checked before any image is read: none may be an input, and none may exist without
``force``. A file that cannot be read is reported and skipped; the others are restored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dckd_cli.atomic import check_writable
from dckd_cli.data.images import (
    IMAGE_SUFFIXES,
    ImageError,
    list_images,
    read_image,
    write_image,
)
from dckd_cli.deploy.formats import FORMATS, Runner, cpu_layout, no_grad_runner
from dckd_cli.deploy.student_file import StudentInfo
from dckd_cli.engine.host_memory import apply_host_memory
from dckd_cli.errors import DckdError, OutputExists
from dckd_cli.metrics.inference import ImageTooLarge, run_on_image

BACKENDS = ("torch", "onnxruntime")


@dataclass
class RestoreReport:
    written: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)


def plan_outputs(inputs: list[Path], output: Path, force: bool) -> list[tuple[Path, Path]]:
    """``(input, output)`` pairs; refuses collisions, missing inputs and existing outputs first."""
    pairs: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            pairs += [(p, output / item.name / f"{p.stem}.png") for p in list_images(item)]
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_SUFFIXES:
                raise DckdError(f"{item}: not an image file ({', '.join(IMAGE_SUFFIXES)})")
            pairs.append((item, output / f"{item.stem}.png"))
        else:
            raise DckdError(f"{item}: no such file or folder")
    if not pairs:
        raise DckdError(f"no images in {', '.join(map(str, inputs))}")
    check_writable(output / "x.png")
    sources = {p.resolve() for p, _ in pairs}
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst.resolve() in sources:
            raise DckdError(f"{dst} would overwrite an input; choose another --output")
        if dst in seen:
            raise DckdError(f"{src} and {seen[dst]} would both be written to {dst}; restore them separately")
        seen[dst] = src
        if dst.exists() and not force:
            raise OutputExists(str(dst))
    return pairs


def load_runner(model: Path, backend: str) -> tuple[Runner, StudentInfo]:
    """A callable student and what it is, from an export folder, a run folder or a checkpoint."""
    if backend not in BACKENDS:
        raise DckdError(f"--backend {backend}: choose from {', '.join(BACKENDS)}")
    model = Path(model)
    if model.is_dir() and (model / "model.json").is_file():  # an export folder
        info = _card_info(model / "model.json")
        wanted = ("onnx",) if backend == "onnxruntime" else ("safetensors", "torchscript")
        fmt = next((f for f in wanted if (model / FORMATS[f].filename).is_file()), None)
        if fmt is None:
            files = " or ".join(FORMATS[f].filename for f in wanted)
            raise DckdError(f"{model}: holds no {files} for --backend {backend}; export that format first")
        return FORMATS[fmt].load(model / FORMATS[fmt].filename), info
    if model.suffix == ".onnx":
        raise DckdError(f"{model}: pass the export folder (its metadata is in model.safetensors), not the .onnx file")
    if backend == "onnxruntime":
        raise DckdError("--backend onnxruntime needs an export folder with model.onnx (dckd export --format onnx)")
    from dckd_cli.pipelines.export import load_source

    student = load_source(model)
    return no_grad_runner(cpu_layout(student.model.eval())), student.info


def _card_info(path: Path) -> StudentInfo:
    try:
        card = json.loads(path.read_text())
        extra = {"multiple": int(card["pad_multiple"])}
        return StudentInfo(card["architecture"], card["size"], int(card["scale"]), card["task"], card["weights"], extra)
    except (OSError, ValueError, KeyError, TypeError):
        raise DckdError(f"{path}: not a readable model card; export the student again") from None


def restore_images(
    inputs: list[Path],
    model: Path,
    output: Path,
    *,
    backend: str = "torch",
    tile: int | None = None,
    overlap: int = 16,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_image: Callable[[Path, str | None], None] | None = None,
) -> RestoreReport:
    if tile is not None and overlap >= tile:
        raise DckdError(f"--tile-overlap {overlap} must be smaller than --tile {tile}")
    pairs = plan_outputs(inputs, output, force)
    runner, info = load_runner(model, backend)
    apply_host_memory(None, torch.device("cpu"))  # restoring runs on the CPU
    report = RestoreReport()
    if on_start is not None:
        on_start(len(pairs))
    for src, dst in pairs:
        try:  # an unreadable image, or one too large for memory, is reported; the others go on
            img = read_image(src)
            out = run_on_image(runner, img, info.scale, tile, overlap, info.multiple, name=str(src))  # type: ignore[arg-type]
        except (ImageError, ImageTooLarge) as err:
            report.failed[src] = str(err)
            if on_image is not None:
                on_image(src, str(err))
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_image(dst, out)
        report.written.append(dst)
        if on_image is not None:
            on_image(src, None)
    return report
