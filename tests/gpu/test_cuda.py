"""On a CUDA device: DCKD trains through Accelerate, the ablation reports CUDA memory, a
resumed run matches an uninterrupted one, and the trained student exports with parity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dckd_cli.engine.run_folder import RunFolder
from dckd_cli.engine.trainer import Trainer, train
from dckd_cli.pipelines.ablate import AblationSpec, plan_ablation, run_ablation
from dckd_cli.pipelines.ablation_grid import expand, parse_axis
from dckd_cli.pipelines.export import export_student
from dckd_cli.settings.presets import resolve_settings

pytestmark = pytest.mark.gpu


@pytest.fixture
def overrides(tiny_run_overrides: list[str]) -> list[str]:
    return [*tiny_run_overrides, "data.patch_size=16", "data.batch_size=4", "runtime.save_every=3"]


def test_ablation_on_cuda_reports_gpu_memory_and_exports(tmp_path: Path, overrides):
    spec = AblationSpec("demo", overrides, "dckd", 6, 0, "logits")
    cells = expand([parse_axis("negatives", "2,4")], "logits")
    plan = plan_ablation(tmp_path / "abl", spec, cells, [0])
    run_ablation(plan, make_sink=lambda label: None, say=print)
    for run in plan.runs:
        scores = json.loads(RunFolder(run.folder).scores.read_text())
        assert 0 < scores["peak_memory_mb"] < 4096 and scores["seconds_per_iter"] > 0, scores
    record = export_student(plan.runs[0].folder, ["safetensors", "onnx", "torchscript"], tmp_path / "export")
    assert all(a["max_abs_error"] < 1e-4 for a in record["artefacts"].values())


def test_resume_on_cuda_matches_an_uninterrupted_run(tmp_path: Path, overrides):
    def settings(iters: int):
        return resolve_settings("demo", {"method.name": "dckd", "optim.iters": iters}, overrides)

    train(settings(6), tmp_path / "whole")
    train(settings(6), tmp_path / "twin")
    train(settings(3), tmp_path / "part")
    Trainer.of(settings(6), tmp_path / "part").run(resume=True)

    def weights(name: str) -> dict[str, torch.Tensor]:
        return load_file(str(RunFolder(tmp_path / name).weights("last", "student")))

    def gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        return max(float((a[k] - b[k]).abs().max()) for k in a)

    whole = weights("whole")
    noise, resumed = gap(whole, weights("twin")), gap(whole, weights("part"))
    # Bitwise on the CPU. On a GPU two uninterrupted runs already differ (non-deterministic
    # kernels); a resumed run must be no further from them than that.
    print(f"uninterrupted twin: {noise:.2e}, resumed: {resumed:.2e}")
    assert resumed <= 4 * noise + 1e-6, (resumed, noise)


def test_deterministic_kernels_make_gpu_resume_bitwise(tmp_path: Path, overrides):
    def settings(iters: int):
        flags = {"method.name": "dckd", "optim.iters": iters, "runtime.deterministic": True}
        return resolve_settings("demo", flags, overrides)

    train(settings(6), tmp_path / "whole")
    train(settings(3), tmp_path / "part")
    Trainer.of(settings(6), tmp_path / "part").run(resume=True)
    a = load_file(str(RunFolder(tmp_path / "whole").weights("last", "student")))
    b = load_file(str(RunFolder(tmp_path / "part").weights("last", "student")))
    assert all(torch.equal(a[k], b[k]) for k in a)


def _step_memory(settings) -> tuple[float, float]:  # noqa: ANN001
    """One DCKD step's peak above what lived before it, as CUDA's allocator saw it and as
    ``tensor_peak`` counts it (the figure the CPU benchmark reports for a GPU), in MB."""
    from dckd_cli.engine.build import build_run
    from dckd_cli.engine.memory import tensor_peak
    from dckd_cli.engine.step import Stepper, synthetic_batches

    run = build_run(settings)
    stepper = Stepper(run)
    lq, gt = next(synthetic_batches(run))
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with tensor_peak() as counted:
        _, loss = stepper.forward(lq, gt)
        loss.backward()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20, counted.mb


def test_tensor_peak_stands_for_the_cuda_peak_and_the_memory_switches_lower_it(overrides):
    def settings(*extra: str):
        flags = {"method.name": "dckd", "data.batch_size": 8, "data.patch_size": 32}
        return resolve_settings("demo", flags, [*overrides, *extra])

    cuda_plain, counted_plain = _step_memory(settings())
    cuda_small, counted_small = _step_memory(settings("method.encoder.recompute=true", "method.encoder.chunk=8"))
    print(f"CUDA peak / tensors' peak MB: plain {cuda_plain:.0f} / {counted_plain:.0f}, ")
    print(f"recompute + chunk {cuda_small:.0f} / {counted_small:.0f}")
    # the allocator adds its rounding and the convolutions' workspaces; the tensors are most of it
    assert 0.7 * cuda_plain < counted_plain < 1.3 * cuda_plain
    assert cuda_small < 0.8 * cuda_plain and counted_small < 0.8 * counted_plain


def test_the_dry_runs_estimate_matches_the_cuda_peak(overrides):
    from dckd_cli.pipelines.distill import dry_run

    settings = resolve_settings("demo", {"method.name": "dckd", "data.batch_size": 8, "data.patch_size": 32}, overrides)
    report = dry_run(settings)  # on CUDA: its peak is the allocator's, its estimate the count's
    print(f"dry run on {report.device}: CUDA peak {report.peak_memory_mb:.0f} MB, estimate {report.need_mb:.0f} MB")
    assert 0.7 * report.peak_memory_mb < report.need_mb < 1.3 * report.peak_memory_mb
