"""Finding a named image set on disk and matching its inputs to its targets: one rule for
training and benchmark sets alike.

A set is a folder path, or a name looked up under the data root (``ROOT`` = ``--data-root``
or ``$DCKD_DATA``), under the name and its aliases (``B100`` = ``BSD100``), in these places:

* training: ``ROOT/NAME/DIV2K_train_HR``, ``ROOT/NAME/HR``, ``ROOT/NAME/train``, ``ROOT/NAME``;
* benchmarks: ``ROOT/NAME/test``, ``ROOT/NAME``, ``ROOT/test/NAME``.

A paired set (deblurring, deraining) is a folder with ``input/`` and ``target/`` whose files
match by stem; an SR set is a folder of HR images (or with ``HR/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from dckd_cli.data.images import list_images
from dckd_cli.errors import DckdError

ALIASES = {"B100": "BSD100", "BSDS100": "BSD100"}
Role = Literal["training", "benchmark"]
SUBFOLDERS: dict[Role, tuple[str, ...]] = {
    "training": ("NAME/DIV2K_train_HR", "NAME/HR", "NAME/train", "NAME"),
    "benchmark": ("NAME/test", "NAME", "test/NAME"),
}


class DatasetError(DckdError):
    """A benchmark or training set that cannot be found or read."""


def canonical_name(name: str) -> str:
    """The name a set is shown under: a folder's own name, or the canonical benchmark name."""
    return Path(name).name if Path(name).expanduser().is_dir() else ALIASES.get(name, name)


def candidates(name: str, root: Path | None, role: Role) -> list[Path]:
    """Where set ``name`` may be, in the order looked at."""
    as_path = Path(name).expanduser()
    if as_path.is_dir():
        return [as_path]
    if root is None:
        return []
    canonical = ALIASES.get(name, name)
    names = dict.fromkeys([canonical, name, *[a for a, c in ALIASES.items() if c == canonical]])
    return [root / sub.replace("NAME", n) for n in names for sub in SUBFOLDERS[role]]


def find_set(name: str, root: Path | None, role: Role, paired: bool, layout: str) -> Path:
    """The folder of set ``name``: for a paired set the first candidate with ``input/``, else the
    first folder. Not found: one line naming the set, the root and the layout expected."""
    for folder in candidates(name, root, role):
        if (folder / "input").is_dir() if paired else folder.is_dir():
            return folder
    if root is None:
        raise DatasetError(f"{role} set '{name}': not found, and no data root; pass --data-root DIR or set DCKD_DATA")
    raise DatasetError(f"{role} set '{name}': not found under {root} (expected {layout})")


def matched_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """``(input, target)`` files of a paired set, matched by stem, in the order of the inputs."""
    inputs = list_images(folder / "input")
    targets = {p.stem: p for p in list_images(folder / "target")}
    unmatched = sorted({p.stem for p in inputs} ^ set(targets))
    if unmatched:
        raise DatasetError(f"{folder}: input/ and target/ do not match (first unmatched: {unmatched[0]})")
    if not inputs:
        raise DatasetError(f"{folder}: no images in input/")
    return [(p, targets[p.stem]) for p in inputs]
