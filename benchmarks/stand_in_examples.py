"""Draw the built-in stand-in degradations (motion blur, rain) as a PNG grid for the docs.

python benchmarks/stand_in_examples.py docs/images/stand-ins.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from dckd_cli.data import builtin
from dckd_cli.data.degrade import add_rain, blur, motion_kernel

SIDE = 192


def tile(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(builtin.centre_crop(img, SIDE))


def kernel_panel(kernel: np.ndarray) -> np.ndarray:
    k = cv2.resize(kernel / kernel.max(), (SIDE, SIDE), interpolation=cv2.INTER_NEAREST)
    return np.repeat((k * 255).astype(np.uint8)[:, :, None], 3, axis=2)


def main(out: Path) -> None:
    images = [tile(img) for _, img in builtin.eval_images()]
    rows = []
    for i, img in enumerate(images):
        kernel = motion_kernel(np.random.default_rng(100 + i))
        rows.append([img, kernel_panel(kernel), blur(img, kernel), add_rain(img, np.random.default_rng(200 + i))])
    grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {out} (columns: clean, motion kernel, motion-blurred, rain; rows: seeds)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/stand-ins.png"))
