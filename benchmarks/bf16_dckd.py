"""How bfloat16 moves DCKD's contrastive term, without training (docs/performance.md).

1. Near the teacher: a student output at a given rms distance from the teacher's, the
   contrastive loss (Eq. 5) through an encoder whose passes run in float32, with only the
   targets (positive, negatives) in bfloat16 / float16, and with every pass in it; the loss's
   change and the cosine between its gradient and the float32 one.
2. At initialisation, through the loop's own step on the demo setting: the terms and the
   student's gradient sum with ``runtime.frozen_bf16`` (the encoder in float32, the default,
   and with ``method.encoder.autocast=true``) against float32.

    python benchmarks/bf16_dckd.py --shared ../shared        # a minute; needs bfloat16 units
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import torch

from dckd_cli.engine.build import build_run
from dckd_cli.engine.step import Stepper
from dckd_cli.losses.contrastive import contrastive_loss
from dckd_cli.methods.build import RELEASED_LAYER_WEIGHTS
from dckd_cli.models.checkpoints import read_state_dict
from dckd_cli.models.tiny_ae import TinyAEEncoder
from dckd_cli.models.vqgan import COMPACT_ENCODER, load_encoder
from dckd_cli.pipelines.demo_teacher import resolve_demo_teacher
from dckd_cli.settings.presets import resolve_settings

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def precision(name: str | None) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=DTYPES[name]) if name else contextlib.nullcontext()


def near_teacher(
    encoder: torch.nn.Module, levels: tuple[int, ...], distance: float, targets: str | None, anchor: str | None
) -> tuple[float, torch.Tensor]:
    """The loss and its gradient on the student output for one precision of each pass."""
    g = torch.Generator().manual_seed(0)
    teacher = torch.rand(2, 3, 96, 96, generator=g)
    negatives = (teacher.unsqueeze(0) + 0.05 * torch.randn(5, 2, 3, 96, 96, generator=g)).clamp(0, 1)
    student = (teacher + distance * torch.randn(teacher.shape, generator=g)).clamp(0, 1)
    with torch.inference_mode(), precision(targets):
        pos, _ = encoder(teacher, levels)
        neg, _ = encoder(negatives.flatten(0, 1), levels)
    pos, neg = [p.float() for p in pos], [n.float().view(5, 2, *n.shape[1:]) for n in neg]
    x = student.clone().requires_grad_(True)
    with precision(anchor):
        feats, _ = encoder(x, levels)
    loss = contrastive_loss([f.float() for f in feats], pos, neg, list(RELEASED_LAYER_WEIGHTS[-len(levels) :]))
    loss.backward()
    return float(loss.detach()), x.grad


def near_teacher_table(encoders: dict[str, torch.nn.Module]) -> None:
    print("| encoder | student rms from teacher | passes | dcl change | gradient cosine |")
    print("|---|---|---|---|---|")
    variants = (
        ("targets bfloat16", "bfloat16", None),
        ("all bfloat16", "bfloat16", "bfloat16"),
        ("targets float16", "float16", None),
        ("all float16", "float16", "float16"),
    )
    for name, encoder in encoders.items():
        levels = tuple(range(encoder.levels))
        for distance in (0.05, 0.02, 0.01, 0.005):
            full, full_grad = near_teacher(encoder, levels, distance, None, None)
            for label, targets, anchor in variants:
                value, grad = near_teacher(encoder, levels, distance, targets, anchor)
                cosine = float(torch.nn.functional.cosine_similarity(full_grad.flatten(), grad.flatten(), dim=0))
                print(
                    f"| {name} | {distance} | {label} | {(value / full - 1) * 100:+.1f} % | {cosine:.3f} |", flush=True
                )


def step_terms(extra: list[str]) -> dict[str, float]:
    """One step's weighted terms and the student's gradient sum on the demo setting (float32 student)."""
    flags = {"method.name": "dckd", "optim.iters": 10}
    settings = resolve_settings("demo", flags, ["data.batch_size=4", "data.patch_size=24", *extra])
    run = build_run(resolve_demo_teacher(settings, lambda label: None))
    g = torch.Generator().manual_seed(5)
    lq, gt = torch.rand(4, 3, 24, 24, generator=g), torch.rand(4, 3, 96, 96, generator=g)
    terms, loss = Stepper(run).forward(lq, gt)
    loss.backward()
    out = {k: float(v.detach()) for k, v in terms.items()}
    out["gradient"] = float(sum(p.grad.abs().sum() for p in run.student.parameters() if p.grad is not None))
    return out


def initialisation_table(taesana: Path) -> None:
    encoders = {"compact VQGAN": []}
    if taesana.is_file():
        encoders["taesana"] = [f"method.encoder.checkpoint={taesana}", "method.weights.ce=0"]
    print("\n| encoder | frozen networks in bfloat16 | kd | dcl | ce | student gradient sum |")
    print("|---|---|---|---|---|---|")
    for name, extra in encoders.items():
        base = step_terms(extra)
        for label, more in (
            ("teacher, history (encoder float32)", ["runtime.frozen_bf16=true"]),
            ("teacher, history, encoder", ["runtime.frozen_bf16=true", "method.encoder.autocast=true"]),
        ):
            moved = step_terms([*extra, *more])
            cells = [f"{(moved[k] / base[k] - 1) * 100:+.2f} %" if k in base else "" for k in ("kd", "dcl", "ce")]
            cells.append(f"{(moved['gradient'] / base['gradient'] - 1) * 100:+.1f} %")
            print(f"| {name} | {label} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared"), help="for the taesana encoder")
    args = parser.parse_args()
    encoders: dict[str, torch.nn.Module] = {"compact VQGAN": load_encoder(COMPACT_ENCODER)}
    taesana = args.shared / "weights" / "taesana_encoder.pth"
    if taesana.is_file():
        encoders["taesana"] = TinyAEEncoder(read_state_dict(taesana))
    near_teacher_table(encoders)
    initialisation_table(taesana)


if __name__ == "__main__":
    main()
