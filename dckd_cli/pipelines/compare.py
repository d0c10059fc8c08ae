"""Visual comparisons like the paper's Figs. 4-7: one benchmark image, the same crop from
bicubic (SR) or the input (other tasks), the teacher and each student, each labelled with its
PSNR / SSIM on the whole image (the published protocol).

Without a crop, the crop is where the compared students differ most: the window (a fifth of
the shorter side, at least 32 pixels) with the largest spread of the students' mean squared
errors; with one student, where it differs most from the reference restoration (bicubic or
the input).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dckd_cli.atomic import atomic_path
from dckd_cli.data.benchmarks import load_benchmark
from dckd_cli.errors import DckdError
from dckd_cli.metrics.inference import run_on_image
from dckd_cli.metrics.psnr_ssim import psnr, ssim
from dckd_cli.metrics.scoring import protocol
from dckd_cli.models.bicubic import BicubicUpsampler
from dckd_cli.pipelines.evaluate import ModelChoice, ResolvedModel, resolve_model
from dckd_cli.settings.schema import RunSettings

Crop = tuple[int, int, int, int]  # x, y, width, height in target pixels


@dataclass
class Panel:
    label: str
    image: np.ndarray  # (H, W, 3) uint8, the whole restoration
    psnr: float | None
    ssim: float | None


def parse_crop(text: str) -> Crop:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise DckdError(f"--crop '{text}': expected x,y,w,h in target pixels, e.g. 120,80,96,96") from None
    if w < 4 or h < 4 or x < 0 or y < 0:
        raise DckdError(f"--crop '{text}': needs x, y >= 0 and a width and height of at least 4")
    return x, y, w, h


def choice_for(entry: str) -> ModelChoice:
    path = Path(entry)
    if path.is_dir():
        return ModelChoice(run=path)
    if path.is_file():
        return ModelChoice(checkpoint=path)
    raise DckdError(f"--compare {entry}: no such run folder or checkpoint")


def _run_teacher(choices: list[ModelChoice]) -> ModelChoice | None:
    """The teacher of the first compared run, when its weights are at hand (a path or the cache)."""
    from dckd_cli.engine.run_folder import RunFolder

    for choice in choices:
        if choice.run is None:
            continue
        t = RunFolder(choice.run).read_settings().teacher
        if t.checkpoint is not None and Path(t.checkpoint).is_file():
            return ModelChoice(arch=t.arch, size=t.size, checkpoint=Path(t.checkpoint), options=t.options)
        return ModelChoice(arch=t.arch, size=t.size, options=t.options) if t.size == "teacher" else None
    return None


def _label(path: Path) -> str:
    """A run's name; ablation cells (``<cell>/seed-K``) keep their cell's name."""
    name = path.stem if path.is_file() else path.name
    return f"{path.parent.name} {name}" if name.startswith("seed-") else name


def _restore(resolved: ResolvedModel, lq: np.ndarray) -> np.ndarray:
    return run_on_image(resolved.model.eval(), lq, resolved.scale, multiple=resolved.multiple)


def pick_crop(gt: np.ndarray, students: list[np.ndarray], reference: np.ndarray) -> Crop:
    """The window where the students' errors differ most (or one student from the reference)."""
    h, w = gt.shape[:2]
    side = max(32, min(h, w) // 5)
    side = min(side, h, w)
    errors = [((s.astype(np.float64) - gt) ** 2).mean(axis=2) for s in students]
    if len(errors) == 1:
        errors.append(((reference.astype(np.float64) - gt) ** 2).mean(axis=2))
    stack = np.stack(errors)
    # Window means through an integral image, on a grid of a quarter window.
    integral = np.pad(stack.cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0)))
    best, where = -1.0, (0, 0)
    step = max(1, side // 4)
    for y in range(0, h - side + 1, step):
        for x in range(0, w - side + 1, step):
            sums = (
                integral[:, y + side, x + side]
                - integral[:, y, x + side]
                - integral[:, y + side, x]
                + integral[:, y, x]
            )
            spread = float(sums.max() - sums.min())
            if spread > best:
                best, where = spread, (x, y)
    return where[0], where[1], side, side


def compare(
    entries: list[str], dataset: str, image: str, settings: RunSettings, crop: Crop | None
) -> tuple[list[Panel], np.ndarray, Crop]:
    """The panels (reference, teacher, students), the ground truth and the crop used."""
    choices = [choice_for(e) for e in entries]
    resolved = [resolve_model(c, settings) for c in choices]
    task, scale = resolved[0].task, resolved[0].scale
    if any((r.task, r.scale) != (task, scale) for r in resolved):
        raise DckdError("--compare: the models restore different tasks or scales; compare like with like")
    bench = load_benchmark(dataset, task, scale, settings.data.root, settings.data.lr_source)
    pair = next((p for p in bench.pairs if p.name == image or Path(p.name).stem == image), None)
    if pair is None:
        names = ", ".join(p.name for p in bench.pairs[:8])
        raise DckdError(f"--image {image}: not in {bench.name} (e.g. {names})")
    lq, gt = pair.load()
    channel, border = protocol(task, scale)

    def panel(label: str, out: np.ndarray) -> Panel:
        return Panel(label, out, psnr(out, gt, channel, border), ssim(out, gt, channel, border))

    if scale > 1:
        reference = panel("bicubic", _restore(ResolvedModel(BicubicUpsampler(scale), "bicubic", task, scale, 1), lq))
    else:
        reference = panel("input", lq)
    panels = [reference]
    teacher_choice = _run_teacher(choices)
    if teacher_choice is not None:
        try:
            teacher = resolve_model(teacher_choice, settings.model_copy(update={"task": task, "scale": scale}))
            panels.append(panel("teacher", _restore(teacher, lq)))
        except DckdError:
            pass  # the teacher's weights are not here (official ones offline): compare the students alone
    students = [panel(_label(Path(e)), _restore(r, lq)) for e, r in zip(entries, resolved)]
    panels += students
    if crop is None:
        crop = pick_crop(gt, [s.image for s in students], reference.image)
    x, y, w, h = crop
    if x + w > gt.shape[1] or y + h > gt.shape[0]:
        raise DckdError(f"--crop {x},{y},{w},{h}: outside the {gt.shape[1]}x{gt.shape[0]} image")
    return panels, gt, crop


def draw_grid(panels: list[Panel], gt: np.ndarray, crop: Crop, title: str, path: Path) -> None:
    """HR with the crop box on the left; the crops in a grid on the right, each labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    x, y, w, h = crop
    items = [("HR (target)", gt, None, None)] + [(p.label, p.image, p.psnr, p.ssim) for p in panels]
    cols = min(4, len(items))
    rows = -(-len(items) // cols)
    fig = plt.figure(figsize=(4.0 + 2.2 * cols, max(3.2, 2.5 * rows)), dpi=120)
    grid = fig.add_gridspec(rows, cols + 2)
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(gt)
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="red", linewidth=1.5))
    ax.set_title(title, fontsize="small")
    ax.axis("off")
    for i, (label, img, p, s) in enumerate(items):
        cell = fig.add_subplot(grid[i // cols, 2 + i % cols])
        cell.imshow(img[y : y + h, x : x + w], interpolation="nearest")
        score = "PSNR / SSIM of the image" if p is None else f"{p:.2f} dB / {s:.4f}"
        cell.set_title(f"{label}\n{score}", fontsize="small")
        cell.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
