"""The export formats by name (a plain dict): how each is written and loaded back.

* ``safetensors``: the weights with dckd metadata (``student_file.py``); reloaded by rebuilding
  the zoo network.
* ``onnx``: torch's ``torch.export``-based exporter (it needs onnxscript), opset 18, dynamic
  batch, height and width; run with ONNX Runtime. ``fp16`` exports a half-precision graph
  (float16 input and output).
* ``torchscript``: ``torch.jit.trace`` (none of the families scripts); the traced graph is
  checked at sizes other than the one traced.

Every loader returns a callable ``(N, 3, H, W) float32 tensor -> tensor`` on the CPU, so the
parity check and ``dckd restore`` treat all formats alike. Inputs are padded to the
architecture's multiple outside the graph, as evaluation does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dckd_cli.deploy.student_file import StudentInfo, load_student, save_student
from dckd_cli.engine.switches import convolutional
from dckd_cli.errors import DckdError

ONNX_OPSET = 18
Runner = Callable[[torch.Tensor], torch.Tensor]


class ExportError(DckdError):
    """A student that cannot be exported, or an artefact that does not compute what it did."""


def _example(info: StudentInfo, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    # Batch 2 and a side that is no pad multiple's edge case: torch.export specialises sizes of 1.
    side = max(16, info.multiple * 2)
    return torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0)).to(dtype)


def write_safetensors(model: nn.Module, info: StudentInfo, path: Path, fp16: bool) -> str:
    save_student(model, info, path)
    return "safetensors (weights + metadata)"


def load_safetensors(path: Path) -> Runner:
    model, _ = load_student(path)
    return no_grad_runner(cpu_layout(model))


def cpu_layout(model: nn.Module) -> nn.Module:
    """``model`` in channels-last memory when it is mostly convolutional: faster on the CPU,
    where runners run (the training step's rule, ``engine/switches.convolutional``)."""
    return model.to(memory_format=torch.channels_last) if convolutional(model) else model


def write_onnx(model: nn.Module, info: StudentInfo, path: Path, fp16: bool) -> str:
    net = _copy(model, torch.float16 if fp16 else torch.float32)
    x = _example(info, torch.float16 if fp16 else torch.float32)
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height", min=8, max=16384)
    width = torch.export.Dim("width", min=8, max=16384)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                net,
                (x,),
                dynamo=True,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: batch, 2: height, 3: width},),
                opset_version=ONNX_OPSET,
                verbose=False,
            )
            program.save(str(path))
    except Exception as err:  # noqa: BLE001 - the exporter's many failure types, as one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ExportError(f"onnx: the exporter failed for {info.arch} ({first})") from None
    return f"torch.onnx.export (torch.export), opset {ONNX_OPSET}, dynamic batch / height / width" + (
        ", float16" if fp16 else ""
    )


def load_onnx(path: Path) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32

    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            out = session.run(None, {"input": x.detach().cpu().numpy().astype(wanted)})[0]
        except Exception as err:  # onnxruntime's errors are not RuntimeErrors
            if "allocate" in str(err).lower():  # "Failed to allocate memory for requested buffer ..."
                raise MemoryError(str(err).strip().splitlines()[0]) from None  # the caller names --tile
            raise
        return torch.from_numpy(out.astype(np.float32))

    return run


def write_torchscript(model: nn.Module, info: StudentInfo, path: Path, fp16: bool) -> str:
    if fp16:
        raise ExportError("torchscript: --fp16 applies to onnx only; export torchscript without it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(_copy(model, torch.float32), _example(info), check_trace=False)
            traced.save(str(path))
    except Exception as err:  # noqa: BLE001 - tracing / saving failures, as one line
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)[:200]
        raise ExportError(f"torchscript: tracing {info.arch} failed ({first})") from None
    return "torch.jit.trace (checked at other sizes than the one traced)"


def load_torchscript(path: Path) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch suggests torch.export; the file is TorchScript
        return no_grad_runner(torch.jit.load(str(path), map_location="cpu").eval())


@dataclass(frozen=True)
class Format:
    filename: str
    write: Callable[[nn.Module, StudentInfo, Path, bool], str]
    load: Callable[[Path], Runner]


FORMATS: dict[str, Format] = {
    "safetensors": Format("model.safetensors", write_safetensors, load_safetensors),
    "onnx": Format("model.onnx", write_onnx, load_onnx),
    "torchscript": Format("model.torchscript.pt", write_torchscript, load_torchscript),
}


def _copy(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    import copy

    return copy.deepcopy(model).eval().to(dtype)


def no_grad_runner(model: nn.Module | Callable) -> Runner:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x)

    return run
