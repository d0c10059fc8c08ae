"""The speed switches of a run (``runtime.*``, ``optim.fused``), applied where it is built.

An empty switch takes its device default: on CUDA TF32, cuDNN benchmark (unless the run is
deterministic) and the fused optimiser step; on the CPU none of them, but channels-last memory
for convolutional networks and freed host memory kept for reuse (both measured faster there).
``compile`` is off unless asked for; a compiled teacher or encoder, whose weights never change
during a run, has its no-grad passes frozen (``compile_freezing``; on the CPU by default). A
network that torch.compile cannot compile fails at its first step with one line naming
``runtime.compile`` (``engine/step.py``).
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

from dckd_cli.engine.host_memory import apply_host_memory
from dckd_cli.errors import DckdError
from dckd_cli.settings.schema import RunSettings


class SwitchError(DckdError):
    """A speed switch that cannot work here."""


def on_cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def cpu_has_bf16() -> bool:
    """Whether this CPU has the bfloat16 instructions oneDNN computes with (AVX-512 BF16 or AMX);
    True when torch cannot tell."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def check_cpu_bf16(settings: RunSettings, device: torch.device) -> None:
    """bfloat16 on a CPU without bfloat16 instructions is emulated: a VQGAN encoder's pass took
    60x and SwinIR-M's 22x the float32 time on an AVX2 machine (docs/performance.md), so a run
    asking for it there stops before it starts."""
    r = settings.runtime
    if on_cuda(device) or not (r.mixed_precision == "bf16" or r.frozen_bf16) or cpu_has_bf16():
        return
    if r.mixed_precision == "bf16":
        setting, fix = "runtime.mixed_precision=bf16", "runtime.mixed_precision=no"
    else:
        setting, fix = "runtime.frozen_bf16=true", "runtime.frozen_bf16=false"
    raise SwitchError(
        f"{setting}: this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX), where bfloat16 runs "
        f"20-60x slower than float32; set {fix} (or train on a GPU)"
    )


def apply_backend_switches(settings: RunSettings, device: torch.device) -> None:
    """TF32 and cuDNN benchmark (CUDA) and the host-memory policy for this process (they are
    process-wide in torch and in the C library); bfloat16 refused on a CPU that would emulate it."""
    r = settings.runtime
    check_cpu_bf16(settings, device)
    apply_host_memory(r.keep_host_memory, device)
    if not on_cuda(device):
        return
    tf32 = True if r.tf32 is None else r.tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    bench = (not r.deterministic) if r.cudnn_benchmark is None else r.cudnn_benchmark
    torch.backends.cudnn.benchmark = bench


def fused_step(settings: RunSettings, device: torch.device) -> bool:
    return on_cuda(device) if settings.optim.fused is None else settings.optim.fused


def convolutional(network: nn.Module) -> bool:
    """Most of the network's weights are 2-d convolution kernels (RCAN, SPAN, a VQGAN or
    tiny-autoencoder encoder), not linear layers (SwinIR, DCTLSA)."""
    conv = sum(m.weight.numel() for m in network.modules() if isinstance(m, nn.Conv2d))
    total = sum(p.numel() for p in network.parameters())
    return total > 0 and conv > total / 2


def channels_last(network: nn.Module, settings: RunSettings, device: torch.device) -> bool:
    """Whether ``network`` runs in channels-last memory: as ``runtime.channels_last`` says; empty:
    on the CPU for a convolutional network, where oneDNN's convolutions run faster in it (0.71x to
    0.84x the time, docs/performance.md; a transformer such as SwinIR ran 5 % slower), and not
    on CUDA."""
    wanted = settings.runtime.channels_last
    if wanted is None:
        return not on_cuda(device) and convolutional(network)
    return wanted


def laid_out(network: nn.Module, settings: RunSettings, device: torch.device) -> nn.Module:
    """``network``, converted in place to the memory format ``channels_last`` picks for it."""
    return network.to(memory_format=torch.channels_last) if channels_last(network, settings, device) else network


# students whose run has been through ``fresh_compiles`` (a second Stepper over a run keeps its compiles)
_COMPILED_RUNS: weakref.WeakSet[nn.Module] = weakref.WeakSet()


def fresh_compiles(student: nn.Module, settings: RunSettings) -> None:
    """Forget what torch.compile compiled for earlier runs in this process, once per run. A
    model class's networks share its forward's code, whose compiled variants torch caps (8 a
    function, ``torch._dynamo.config.recompile_limit``): past the cap it runs the function
    uncompiled with a warning, so in a process that trains run after run (``dckd ablate``'s
    cells), each compiling it anew (another precision, method, shape), a run past the cap
    trained uncompiled. Each run now compiles as it would in a process of its own (inductor's
    on-disk caches still serve it)."""
    if settings.runtime.compile and student not in _COMPILED_RUNS:
        torch.compiler.reset()
        _COMPILED_RUNS.add(student)


# networks whose weights stay as loaded for the whole run (the history model is blended in place)
FIXED_WEIGHTS = ("teacher", "encoder")


def freezing(name: str, settings: RunSettings, device: torch.device) -> bool:
    """Whether the compiled ``name`` is frozen: inductor folds its weights into the graphs it
    compiles without gradients (the targets' pass, not the anchor's) and, on the CPU, prepacks
    them for oneDNN. As ``runtime.compile_freezing`` says; empty: on the CPU, where the
    ImageNet-size encoder's no-grad pass took 0.93x the time compiled without it
    (docs/performance.md), not on CUDA (unmeasured). Only for weights that never change."""
    r = settings.runtime
    if name not in FIXED_WEIGHTS or r.compile_backend != "inductor":
        return False
    return (not on_cuda(device)) if r.compile_freezing is None else r.compile_freezing


def compiled(network: nn.Module, name: str, settings: RunSettings, device: torch.device) -> nn.Module:
    """``network`` through torch.compile when ``runtime.compile`` names it."""
    r = settings.runtime
    if name not in r.compile:
        return network
    import torch._dynamo
    from torch._dynamo.eval_frame import OptimizedModule

    if isinstance(network, OptimizedModule):  # a second Stepper over the same run (benchmarks)
        return network

    if r.compile_backend not in torch._dynamo.list_backends(exclude_tags=()):
        known = ", ".join(torch._dynamo.list_backends())
        raise SwitchError(f"runtime.compile_backend={r.compile_backend}: unknown to torch.compile; choose from {known}")
    if freezing(name, settings, device):  # torch.compile takes a mode or options, so the mode's options
        import torch._inductor

        options = {**torch._inductor.list_mode_options(r.compile_mode), "freezing": True}
        return torch.compile(network, backend=r.compile_backend, options=options)
    mode = {"mode": r.compile_mode} if r.compile_mode != "default" else {}
    return torch.compile(network, backend=r.compile_backend, **mode)
