"""Speed switches: each keeps the method's numbers, resumes bitwise, and fails in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from dckd_cli.engine import switches
from dckd_cli.engine.build import build_run
from dckd_cli.engine.checkpoint import load_checkpoint
from dckd_cli.engine.step import Stepper
from dckd_cli.engine.switches import SwitchError
from dckd_cli.engine.trainer import Trainer, train


def _terms(settings, dtype: torch.dtype = torch.float64) -> dict[str, float]:  # noqa: ANN001
    """One step's weighted terms and the gradient checksum, through the loop's own step."""
    run = build_run(settings)
    # float64 by default: as the golden test, so a switch's numbers compare at its tolerance
    for network in (run.student, run.teacher, *run.method.resources.networks()):
        if network is not None:
            network.to(dtype)
    stepper = Stepper(run)
    g = torch.Generator().manual_seed(5)
    lq, gt = (torch.rand(2, 3, s, s, generator=g, dtype=dtype) for s in (16, 32))
    terms, loss = stepper.forward(lq, gt) if not settings.runtime.compile else stepper._compiled_forward(lq, gt)
    loss.backward()
    out = {name: float(value) for name, value in terms.items()}
    out["grad"] = float(sum(p.grad.abs().sum() for p in run.student.parameters() if p.grad is not None))
    return out


@pytest.mark.parametrize(
    "switch",
    [
        ("runtime.channels_last=true",),
        ("runtime.compile=[student, teacher, encoder, history]", "runtime.compile_backend=eager"),
        ("optim.fused=true",),
        (  # the memory switches under compile: checkpointed blocks through AOT autograd
            "runtime.compile=[student, teacher, encoder, history]",
            "runtime.compile_backend=aot_eager",
            "method.encoder.recompute=true",
            "method.encoder.chunk=3",
        ),
    ],
)
def test_each_switch_keeps_the_terms_and_the_gradient(dckd_settings, switch):
    contiguous = ("runtime.channels_last=false",)  # the CPU default is channels-last
    plain = _terms(dckd_settings("dckd-star", overrides=contiguous))
    switched = _terms(dckd_settings("dckd-star", overrides=(*contiguous, *switch)))
    assert switched.keys() == plain.keys()
    for key, value in plain.items():
        assert switched[key] == pytest.approx(value, rel=1e-6), key  # the golden test's tolerance


def test_frozen_bf16_moves_the_terms_by_little_and_the_student_stays_float32(dckd_settings, monkeypatch):
    monkeypatch.setattr(switches, "cpu_has_bf16", lambda: True)  # the numbers, on any CPU (slow without units)
    plain = _terms(dckd_settings("dckd"), torch.float32)
    half = _terms(dckd_settings("dckd", overrides=("runtime.frozen_bf16=true",)), torch.float32)
    for key in ("rec", "kd"):  # rec does not see a frozen network; kd sees the bf16 teacher
        assert half[key] == pytest.approx(plain[key], rel=2e-2), key
    assert half["rec"] == plain["rec"]


def test_a_compiled_run_resumes_bitwise(tmp_path: Path, dckd_settings):
    extra = ("runtime.compile=[student, teacher, encoder, history]", "runtime.compile_backend=eager")
    extra += ("runtime.channels_last=true", "runtime.save_every=3")
    train(dckd_settings("dckd", iters=6, overrides=extra), tmp_path / "whole")
    train(dckd_settings("dckd", iters=3, overrides=extra), tmp_path / "part")
    Trainer.of(dckd_settings("dckd", iters=6, overrides=extra), tmp_path / "part").run(resume=True)
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "part")
    assert not any(k.startswith("_orig_mod") for k in a.student)  # checkpoints do not depend on the switch
    assert all(torch.equal(a.student[k], b.student[k]) for k in a.student)


def test_channels_last_is_the_cpu_default_for_convolutional_networks(dckd_settings):
    from dckd_cli.engine.switches import channels_last
    from dckd_cli.models.zoo import build_model

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    default, off = dckd_settings("dckd"), dckd_settings("dckd", overrides=("runtime.channels_last=false",))
    rcan, swinir = build_model("rcan", "tiny", 2), build_model("swinir", "student", 2)
    assert channels_last(rcan, default, cpu) and not channels_last(swinir, default, cpu)
    assert not channels_last(rcan, default, cuda) and not channels_last(rcan, off, cpu)
    on = dckd_settings("dckd", overrides=("runtime.channels_last=true",))
    assert channels_last(swinir, on, cuda)
    run = build_run(default)
    Stepper(run)
    conv = next(m for m in run.method.resources.encoder.network.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()


def test_a_second_stepper_over_a_compiled_run_compiles_nothing_twice(dckd_settings):
    extra = ("runtime.compile=[student, teacher, encoder, history]", "runtime.compile_backend=eager")
    run = build_run(dckd_settings("dckd", overrides=extra))
    Stepper(run)
    res = run.method.resources
    first = (res.teacher, res.encoder.network, res.history.runner)
    Stepper(run)  # as a benchmark does: FLOP count, then timing
    assert (res.teacher, res.encoder.network, res.history.runner) == first
    assert all(isinstance(n, torch.nn.Module) for n in first)


def test_run_after_run_in_one_process_stays_compiled(dckd_settings):
    """Runs trained one after another in one process (an ablation's cells) each compile their
    networks. The student's and the teacher's model class share one forward, and every run that
    compiles it differently (here another backend; in an ablation, another precision, method or
    shape) adds a compiled variant: past torch's cap of 8 the forward ran uncompiled, silently,
    from the fifth run on."""
    import torch._dynamo

    graphs: dict[str, int] = {}

    def counting(name: str):  # noqa: ANN202
        def backend(gm, example_inputs):  # noqa: ANN001
            graphs[name] = graphs.get(name, 0) + 1
            return gm.forward

        return backend

    for run in range(6):
        name = f"dckd_counting_{run}"
        if name not in torch._dynamo.list_backends(exclude_tags=()):
            torch._dynamo.register_backend(counting(name), name=name)
        _terms(
            dckd_settings("logits", overrides=("runtime.compile=[student, teacher]", f"runtime.compile_backend={name}"))
        )
    assert [graphs.get(f"dckd_counting_{run}", 0) for run in range(6)] == [2] * 6  # the student's, the teacher's


def test_a_compile_failure_is_one_line_naming_the_switch(dckd_settings):
    import torch._dynamo

    def broken(gm, example_inputs):  # noqa: ANN001
        raise RuntimeError("no kernel for this op")

    if "dckd_broken" not in torch._dynamo.list_backends(exclude_tags=()):
        torch._dynamo.register_backend(broken, name="dckd_broken")
    settings = dckd_settings("scratch", overrides=("runtime.compile=[student]", "runtime.compile_backend=dckd_broken"))
    cause = r"failed: backend='dckd_broken' raised: RuntimeError: no kernel for this op; drop"
    with pytest.raises(SwitchError, match=r"^runtime\.compile=\['student'\]: torch\.compile \(dckd_broken\) " + cause):
        _terms(settings)

    def unloadable(gm, example_inputs):  # noqa: ANN001
        raise ImportError("/tmp/torchinductor_x/c7/kernel.main.so: file too short")

    if "dckd_unloadable" not in torch._dynamo.list_backends(exclude_tags=()):
        torch._dynamo.register_backend(unloadable, name="dckd_unloadable")
    overrides = ("runtime.compile=[student]", "runtime.compile_backend=dckd_unloadable")
    damaged = dckd_settings("scratch", overrides=overrides)
    with pytest.raises(SwitchError, match=r"file too short; its kernel cache may be damaged: delete .+ and run again"):
        _terms(damaged)
    unknown = dckd_settings("scratch", overrides=("runtime.compile=[student]", "runtime.compile_backend=nope"))
    with pytest.raises(SwitchError, match="runtime.compile_backend=nope: unknown"):
        _terms(unknown)


def test_kept_host_memory_changes_no_value(dckd_settings):
    returned = _terms(dckd_settings("dckd-star", overrides=("runtime.keep_host_memory=false",)), torch.float32)
    kept = _terms(dckd_settings("dckd-star", overrides=("runtime.keep_host_memory=true",)), torch.float32)
    assert kept == returned  # bitwise: only where the blocks come from changes


@pytest.mark.parametrize(
    ("override", "fix"),
    [
        ("runtime.mixed_precision=bf16", "runtime.mixed_precision=no"),
        ("runtime.frozen_bf16=true", "runtime.frozen_bf16=false"),
    ],
)
def test_bf16_on_a_cpu_without_bf16_instructions_stops_before_the_run(dckd_settings, monkeypatch, override, fix):
    monkeypatch.setattr(switches, "cpu_has_bf16", lambda: False)
    with pytest.raises(
        SwitchError, match=rf"^{re.escape(override)}: this CPU has no bfloat16 .+; set {re.escape(fix)} "
    ):
        build_run(dckd_settings("dckd", overrides=(override,)))
    monkeypatch.setattr(switches, "cpu_has_bf16", lambda: True)
    assert build_run(dckd_settings("dckd", overrides=(override,))).settings.runtime is not None  # where it has them


def test_bf16_support_is_what_torch_reports_for_this_cpu():
    assert switches.cpu_has_bf16() == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_only_the_fixed_weight_networks_are_compiled_frozen(dckd_settings, monkeypatch):
    """Freezing folds weights into the compiled graph: right for the teacher and the encoder,
    wrong for the student and the history model, whose weights change during the run."""
    asked: dict[int, dict] = {}

    def recording(network, **kwargs):  # noqa: ANN001, ANN202
        asked[id(network)] = kwargs
        return network

    monkeypatch.setattr(torch, "compile", recording)
    everything = "runtime.compile=[student, teacher, encoder, history]"
    run = build_run(dckd_settings("dckd", overrides=(everything,)))
    res = run.method.resources
    names = {id(run.student): "student", id(res.teacher): "teacher", id(res.encoder.network): "encoder"}
    names[id(res.history.runner)] = "history"
    Stepper(run)
    frozen = {names[k]: kw.get("options", {}).get("freezing", False) for k, kw in asked.items()}
    assert frozen == {"student": False, "teacher": True, "encoder": True, "history": False}
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    off = dckd_settings("dckd", overrides=(everything, "runtime.compile_freezing=false"))
    eager = dckd_settings("dckd", overrides=(everything, "runtime.compile_backend=eager"))
    default = dckd_settings("dckd", overrides=(everything,))
    assert not switches.freezing("encoder", off, cpu) and not switches.freezing("encoder", eager, cpu)
    assert switches.freezing("teacher", default, cpu) and not switches.freezing("teacher", default, cuda)
    mode = dckd_settings("dckd", overrides=(everything, "runtime.compile_mode=reduce-overhead"))
    assert switches.compiled(res.encoder.network, "encoder", mode, cpu) is res.encoder.network
    assert asked[id(res.encoder.network)]["options"] == {"triton.cudagraphs": True, "freezing": True}
