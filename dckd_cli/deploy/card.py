"""The model card of an export: ``model.json`` (machine-readable) and ``README.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dckd_cli.deploy.student_file import StudentInfo

FLOP_OUTPUT_SIDE = 256  # FLOPs are counted for one image whose restoration is 256 x 256


def count_flops(model: nn.Module, info: StudentInfo) -> tuple[int, list[int]]:
    """Multiply-adds x 2 (torch's FLOP counter) for one input giving a 256 x 256 output."""
    from torch.utils.flop_counter import FlopCounterMode

    side = FLOP_OUTPUT_SIDE // max(info.scale, 1)
    x = torch.rand(1, 3, side, side)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops()), list(x.shape)


def card_record(model: nn.Module, info: StudentInfo, artefacts: dict[str, Any], command: str) -> dict[str, Any]:
    from dckd_cli import __version__

    flops, shape = count_flops(model, info)
    return {
        "task": info.task,
        "scale": info.scale,
        "architecture": info.arch,
        "size": info.size,
        "weights": info.weights,
        "pad_multiple": info.multiple,
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops": {"value": flops, "input": shape, "note": "torch.utils.flop_counter, 2 FLOPs per multiply-add"},
        "teacher": info.extra.get("teacher"),
        "method": info.extra.get("method"),
        "evaluation": info.extra.get("evaluation"),
        "source": info.extra.get("source"),
        "artefacts": artefacts,
        "dckd_version": __version__,
        "command": command,
    }


def card_markdown(record: dict[str, Any]) -> str:
    method = record.get("method") or {}
    teacher = record.get("teacher") or {}
    lines = [
        f"# {record['architecture']} student ({record['task']}, x{record['scale']})",
        "",
        f"- Task: {record['task']}, scale x{record['scale']}; inputs are padded to a multiple of "
        f"{record['pad_multiple']} (reflect) and the output cropped back.",
        f"- Network: {record['architecture']} size `{record['size']}`, {record['parameters']:,} parameters, "
        f"{record['flops']['value'] / 1e9:.2f} GFLOPs for a {record['flops']['input']} input.",
        f"- Weights: {record['weights']} ({'exponential moving average' if record['weights'] == 'ema' else 'online'}).",
    ]
    if teacher:
        lines.append(f"- Teacher: {teacher.get('arch')} size `{teacher.get('size')}` ({teacher.get('checkpoint')}).")
    if method:
        lines.append(f"- Method: {method.get('name')}, term weights {json.dumps(method.get('weights'))}.")
    evaluation = record.get("evaluation")
    if evaluation:
        lines.append(f"- Evaluation stored in the run: {json.dumps(evaluation)}.")
    lines += ["", "| artefact | file | exporter | max abs error vs PyTorch | bound |", "|---|---|---|---|---|"]
    for name, a in record["artefacts"].items():
        lines.append(f"| {name} | `{a['file']}` | {a['exporter']} | {a['max_abs_error']:.2e} | {a['bound']:.2e} |")
    lines += [
        "",
        "Restore images with any of them:",
        "",
        "```bash",
        "dckd restore photos/ --model THIS_FOLDER --output restored/            # PyTorch",
        "dckd restore photos/ --model THIS_FOLDER --output restored/ --backend onnxruntime",
        "```",
        "",
        f"Made by dckd {record['dckd_version']}: `{record['command']}`",
        "",
    ]
    return "\n".join(lines)


def write_card(folder: Path, record: dict[str, Any]) -> None:
    (folder / "model.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    (folder / "README.md").write_text(card_markdown(record))
