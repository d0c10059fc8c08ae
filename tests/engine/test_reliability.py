"""Bad inputs found before the run folder exists; threads; logs a person can follow."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from skimage import data as skdata
from typer.testing import CliRunner

from dckd_cli.cli.app import app
from dckd_cli.data.folders import DatasetError
from dckd_cli.data.images import write_image
from dckd_cli.engine.build import build_accelerator
from dckd_cli.engine.trainer import Trainer, train
from dckd_cli.report.progress import LineSink
from dckd_cli.settings.presets import SettingsError, resolve_settings

runner = CliRunner()


def _photos(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True)
    image = skdata.astronaut()
    for i in range(count):
        write_image(folder / f"img{i}.png", np.ascontiguousarray(image[i * 40 : i * 40 + 96, :96]))
    return folder


def test_a_corrupt_validation_image_fails_before_the_run_folder(tmp_path: Path, tiny_settings):
    val = _photos(tmp_path / "val")
    (val / "img1.png").write_bytes((val / "img1.png").read_bytes()[:200])  # truncated
    with pytest.raises(Exception, match=r"img1\.png") as caught:
        train(tiny_settings("scratch", **{"data.val": str(val)}), tmp_path / "run")
    assert "Traceback" not in str(caught.value) and not (tmp_path / "run").exists()


def test_a_mismatched_validation_pair_is_named(tmp_path: Path, tiny_settings):
    val = _photos(tmp_path / "val")
    (val / "LR_bicubic" / "X2").mkdir(parents=True)
    write_image(val / "LR_bicubic" / "X2" / "img0x2.png", np.zeros((10, 10, 3), np.uint8))
    (val / "HR").mkdir()
    for p in val.glob("img*.png"):
        p.rename(val / "HR" / p.name)
    with pytest.raises(Exception, match=r"img0"):
        train(tiny_settings("scratch", **{"data.val": str(val)}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_corrupt_training_image_is_named_or_left_out(tmp_path: Path, tiny_settings):
    photos = _photos(tmp_path / "train", 4)
    (photos / "img2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    with pytest.raises(DatasetError, match=r"img2\.png.*data\.skip_bad_images=true"):
        train(tiny_settings("scratch", **{"data.train": [str(photos)]}), tmp_path / "a")
    assert not (tmp_path / "a").exists()
    result = train(
        tiny_settings("scratch", iters=2, **{"data.train": [str(photos)], "data.skip_bad_images": True}), tmp_path / "b"
    )
    assert result.iterations == 2


def test_threads_setting_sizes_torch_pool(tiny_settings):
    before = torch.get_num_threads()
    try:
        build_accelerator(tiny_settings("scratch", **{"runtime.threads": 1}), None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_settings_refuse_endless_tiles_and_empty_lists():
    with pytest.raises(SettingsError, match="tile_overlap 16 must be smaller than tile 16"):
        resolve_settings(None, {"runtime.tile": 16})
    result = runner.invoke(app, ["evaluate", "--model", "bicubic", "--scale", "2", "--datasets", ","])
    assert result.exit_code == 1 and "data.test" in result.output


def test_plain_log_lines_show_elapsed_eta_and_slow_rates():
    out = io.StringIO()
    sink = LineSink(Console(file=out, width=200), "dckd")
    sink.start(100, 0)
    sink.step(1, {"iter": 1, "loss": 0.5, "it_per_s": 0.25})
    line = out.getvalue().splitlines()[-1]
    assert "dckd 1/100" in line and "4.0 s/it" in line and "elapsed 0:00:00" in line and "eta " in line


def test_evaluate_run_scores_the_final_model_and_says_so(tmp_path: Path, tiny_settings):
    train(tiny_settings("scratch", iters=6), tmp_path / "run")
    records = {}
    for weights in ("last", "best", "student"):
        out = tmp_path / f"{weights}.json"
        args = ["evaluate", "--run", str(tmp_path / "run"), "--weights", weights, "--json", str(out), "-q"]
        assert runner.invoke(app, args).exit_code == 0
        (records[weights],) = json.loads(out.read_text())
    assert records["last"]["model"] == "run (last)" and records["student"]["model"] == "run (student)"
    assert records["last"]["psnr"] != records["student"]["psnr"]  # EMA and online weights differ


def test_tensorboard_gets_every_term_lr_validation_and_images(tmp_path: Path, tiny_settings):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_settings("logits", iters=6, **{"runtime.log_with": "tensorboard"}), tmp_path / "run")
    main = tmp_path / "run" / "logs" / "dckd"  # (the hyperparameters go to a folder inside it)
    acc = EventAccumulator(str(main), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"rec", "kd", "loss", "lr", "it_per_s", "val_psnr"} <= scalars
    assert [e.step for e in acc.Scalars("rec")] == [1, 2, 4, 6]  # log_every 2, and the first step
    assert [e.step for e in acc.Scalars("val_psnr")] == [6]
    assert len(acc.Tags()["images"]) == 3  # the saved validation restorations


def test_a_missing_tracker_package_is_one_line_before_the_run_folder(tmp_path: Path, tiny_settings, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(Exception, match=r"pip install 'dckd\[wandb\]'"):
        train(tiny_settings("scratch", **{"runtime.log_with": "wandb"}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_half_written_log_line_is_dropped_on_resume(tmp_path: Path):
    from dckd_cli.engine.runlog import RunLog

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iter": 1, "rec": 0.5}\n{"iter": 2, "rec": 0.4}\n{"iter": 3, "re')
    RunLog(path).truncate_after(2)
    assert [json.loads(line)["iter"] for line in path.read_text().splitlines()] == [1, 2]


def test_a_damaged_teacher_cache_entry_is_a_miss(tmp_path: Path):
    from dckd_cli.models.teacher_cache import CachedTeacher
    from dckd_cli.models.zoo import build_model

    teacher = build_model("rcan", "tiny", 2).eval()
    cached = CachedTeacher(teacher, tmp_path / "cache")
    x = torch.rand(1, 3, 8, 8)
    first = cached(x)
    cached.path(x).write_bytes(b"damaged")
    again = cached(x)
    assert torch.equal(first, again) and cached.misses == 2 and cached.hits == 0
    assert torch.equal(cached(x), first) and cached.hits == 1  # rewritten whole


@pytest.mark.parametrize(
    "args,message",
    [(["--patch", "30"], "--patch 30"), (["--batch", "0"], "--batch 0"), (["--iters", "0"], "--iters 0")],
)
def test_encoder_fit_refuses_bad_sizes_before_writing(tmp_path: Path, args, message):
    out = tmp_path / "enc.safetensors"
    result = runner.invoke(app, ["encoder", "fit", "--output", str(out), *args])
    assert result.exit_code == 1 and message in result.output and not out.exists()


def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one(tmp_path: Path, tiny_settings):
    from dckd_cli.engine.checkpoint import load_checkpoint
    from dckd_cli.engine.run_folder import RunFolder

    run = tmp_path / "run"
    train(tiny_settings("logits", iters=6), run)  # saves at 3 and 6
    folder = RunFolder(run)
    folder.weights("last", "student").write_bytes(b"damaged")
    assert load_checkpoint(run).state["iter"] == 3  # the copy before
    Trainer.of(tiny_settings("logits", iters=6), run).run(resume=True)
    assert load_checkpoint(run).state["iter"] == 6
    # A kill between the two renames of a save: no `last`, only its previous copy.
    folder.checkpoint("last").rename(folder.checkpoints / "elsewhere")
    assert folder.has_checkpoint() and load_checkpoint(run).state["iter"] == 3


def test_every_checkpoint_damaged_is_one_line(tmp_path: Path, tiny_settings):
    from dckd_cli.engine.checkpoint import load_checkpoint
    from dckd_cli.engine.run_folder import RunFolder, RunFolderError

    run = tmp_path / "run"
    train(tiny_settings("logits", iters=6), run)
    for name in ("last", ".prev-last", "best", ".prev-best"):
        damaged = RunFolder(run).checkpoints / name / "model.safetensors"
        if damaged.is_file():
            damaged.write_bytes(b"x")
    with pytest.raises(RunFolderError, match="every 'last' checkpoint is damaged"):
        load_checkpoint(run)


def _poison_kd(monkeypatch: pytest.MonkeyPatch, at_call: int, value: float) -> None:
    """The ``kd`` term becomes ``value`` at the ``at_call``-th step."""
    from dckd_cli.methods.method import Method

    original, calls = Method.loss_terms, []

    def poisoned(self, lq, gt, out):  # noqa: ANN001
        terms = original(self, lq, gt, out)
        calls.append(1)
        if len(calls) == at_call:
            terms["kd"] = terms["kd"] * value
        return terms

    monkeypatch.setattr(Method, "loss_terms", poisoned)


def test_a_non_finite_loss_stops_the_run_naming_the_term(tmp_path: Path, tiny_settings, monkeypatch):
    from dckd_cli.engine.trainer import NonFiniteLoss

    _poison_kd(monkeypatch, at_call=5, value=float("nan"))
    message = r"loss term 'kd' became nan after 4 iterations \(its inputs are finite\).*optim\.lr.*"
    message += r"--resume \(the last checkpoint, at iteration 3, is intact\)$"
    with pytest.raises(NonFiniteLoss, match=message):
        train(tiny_settings("logits", iters=6), tmp_path / "run")
    from dckd_cli.engine.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "run").state["iter"] == 3  # the checkpoint before is intact


def test_a_teacher_whose_output_overflows_is_named_and_the_same_command_starts_again(
    tmp_path: Path, tiny_settings, teacher_file: Path
):
    """Finite weights large enough that the teacher's output is not finite: the message blames
    the teacher, mentions no checkpoint (none exists), and the run folder, which holds nothing
    worth keeping, is started again by the same command once the teacher is fixed."""
    from safetensors.torch import load_file, save_file

    from dckd_cli.engine.run_folder import RunFolder, RunFolderError
    from dckd_cli.engine.trainer import NonFiniteLoss

    good = load_file(str(teacher_file))
    save_file({k: v * 1e30 if v.ndim == 4 else v for k, v in good.items()}, str(teacher_file))
    run = tmp_path / "run"
    message = r"became (nan|inf) after 0 iterations \(the teacher's output is not finite\); the run stopped: check "
    message += r"the teacher \(.*teacher.safetensors\) with dckd evaluate, then run the same command again "
    message += r"\(no checkpoint was written yet\)$"
    with pytest.raises(NonFiniteLoss, match=message):
        train(tiny_settings("logits", iters=3), run)
    assert RunFolder(run).never_saved()
    save_file(good, str(teacher_file))
    result = train(tiny_settings("logits", iters=3), run)  # no --force: nothing was lost
    assert result.iterations == 3 and RunFolder(run).has_checkpoint()
    with pytest.raises(RunFolderError, match="already exists"):  # a run with a checkpoint is kept
        train(tiny_settings("logits", iters=3), run)


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_zero(tmp_path: Path, tiny_settings, monkeypatch):
    from safetensors.torch import load_file

    from dckd_cli.engine.run_folder import RunFolder
    from dckd_cli.methods.method import Method

    train(tiny_settings("logits", iters=4), tmp_path / "whole")
    working = Method.loss_terms

    def dies(self, lq, gt, out):  # noqa: ANN001
        raise KeyboardInterrupt  # as a kill before the first save would leave it

    monkeypatch.setattr(Method, "loss_terms", dies)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_settings("logits", iters=4), tmp_path / "part")
    monkeypatch.setattr(Method, "loss_terms", working)
    train(tiny_settings("logits", iters=4), tmp_path / "part", resume=True)
    a, b = (load_file(str(RunFolder(tmp_path / n).weights("last", "student"))) for n in ("whole", "part"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_folder_with_other_files_is_not_started_again_without_force(tmp_path: Path, tiny_settings):
    from dckd_cli.engine.run_folder import RunFolderError

    run = tmp_path / "run"
    run.mkdir()
    (run / "settings.yaml").write_text("task: sr\n")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="already exists"):
        train(tiny_settings("logits", iters=3), run)
    assert (run / "notes.txt").read_text() == "mine"


def test_a_signal_stops_at_a_step_boundary_and_resume_is_bitwise(tmp_path: Path, tiny_settings):
    import os
    import signal

    from safetensors.torch import load_file

    from dckd_cli.engine.run_folder import RunFolder
    from dckd_cli.engine.stop import Stopped

    class KillAt:
        def start(self, total: int, done: int) -> None:
            pass

        def step(self, iteration: int, record) -> None:  # noqa: ANN001
            if iteration == 4:
                os.kill(os.getpid(), signal.SIGTERM)

    train(tiny_settings("logits", iters=8), tmp_path / "whole")
    with pytest.raises(Stopped, match=r"SIGTERM after iteration 4 of 8; saved"):
        train(tiny_settings("logits", iters=8), tmp_path / "part", sink=KillAt())
    Trainer.of(tiny_settings("logits", iters=8), tmp_path / "part").run(resume=True)
    a, b = (load_file(str(RunFolder(tmp_path / n).weights("last", "student"))) for n in ("whole", "part"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_force_keeps_the_old_run_until_the_new_one_has_a_checkpoint(tmp_path: Path, tiny_settings, monkeypatch):
    from dckd_cli.engine.run_folder import RunFolder
    from dckd_cli.methods.method import Method

    run = tmp_path / "run"
    train(tiny_settings("scratch", iters=3), run)
    stamp = (run / "settings.yaml").read_text()

    def broken(self, lq, gt, out):  # noqa: ANN001
        raise RuntimeError("the new run dies at its first step")

    working = Method.loss_terms
    monkeypatch.setattr(Method, "loss_terms", broken)
    with pytest.raises(RuntimeError):
        train(tiny_settings("logits", iters=3), run, force=True)
    kept = RunFolder(run).replaced
    assert (kept / "settings.yaml").read_text() == stamp and (kept / "checkpoints" / "last").is_dir()
    monkeypatch.setattr(Method, "loss_terms", working)  # (undo() would also drop the test's own cache)
    train(tiny_settings("logits", iters=3), run, force=True)  # a second --force keeps that same copy...
    assert not kept.exists()  # ...until the new run's first checkpoint
    assert "logits" in (run / "settings.yaml").read_text()


def test_non_finite_skip_drops_that_step_and_finishes(tmp_path: Path, tiny_settings, monkeypatch):
    from safetensors.torch import load_file

    _poison_kd(monkeypatch, at_call=5, value=float("inf"))
    result = train(tiny_settings("logits", iters=6, **{"optim.non_finite": "skip"}), tmp_path / "run")
    assert result.iterations == 6
    student = load_file(str(tmp_path / "run" / "checkpoints" / "last" / "student.safetensors"))
    assert all(torch.isfinite(v).all() for v in student.values())
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("skipped_steps") for r in records if "skipped_steps" in r] == [1]


def test_paired_training_sets_of_different_sizes_are_found_before_the_run(tmp_path: Path, tiny_settings):
    pairs = tmp_path / "pairs"
    (pairs / "input").mkdir(parents=True)
    (pairs / "target").mkdir()
    image = skdata.astronaut()
    for i in range(3):
        write_image(pairs / "input" / f"p{i}.png", np.ascontiguousarray(image[:64, :64]))
        write_image(pairs / "target" / f"p{i}.png", np.ascontiguousarray(image[:64, : 64 if i != 1 else 60]))
    flags = {
        "task": "deblur",
        "scale": 1,
        "teacher.arch": "nafnet",
        "student.arch": "nafnet",
        "data.train": [str(pairs)],
    }
    settings = resolve_settings("demo", {**flags, "data.patch_size": 16, "optim.iters": 1, "method.name": "scratch"})
    with pytest.raises(DatasetError, match=r"p1\.png: input 64x64 differs from its target 60x64"):
        train(settings, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_evaluate_run_refuses_flags_it_would_ignore(tmp_path: Path):
    result = runner.invoke(app, ["evaluate", "--run", str(tmp_path), "--scale", "2", "--checkpoint", "x.pth"])
    assert result.exit_code == 1 and "drop --checkpoint, --scale" in result.output


def test_a_step_out_of_memory_is_one_line_naming_the_memory_settings(tmp_path: Path, tiny_settings, monkeypatch):
    """The allocation failure of a DCKD step stops the run with the switches that make a step
    smaller (those not on yet) and how to continue; the run then resumes with one of them."""
    from dckd_cli.engine.step import StepOutOfMemory
    from dckd_cli.engine.trainer import Trainer
    from dckd_cli.methods.method import Method
    from dckd_cli.settings.resumable import with_changes

    original, calls = Method.loss_terms, []

    def short_of_memory(self, lq, gt, out):  # noqa: ANN001
        calls.append(1)
        if len(calls) == 5 and not self.resources.encoder.recompute:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, lq, gt, out)

    monkeypatch.setattr(Method, "loss_terms", short_of_memory)
    message = r"^the training step ran out of cpu memory at data.batch_size=4, data.patch_size=12 after 4 iterations; "
    message += r"the run stopped: dckd distill --output \S+run --resume --set method.encoder.recompute=true "
    message += r"--set method.encoder.chunk=4 continues "
    message += r"it \(the last checkpoint, at iteration 3, is intact\); a new run can also use data.batch_size=2 "
    message += r"with optim.grad_accum=2$"
    settings = tiny_settings("dckd", iters=6)
    with pytest.raises(StepOutOfMemory, match=message):
        train(settings, tmp_path / "run")
    from dckd_cli.engine.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "run").state["iter"] == 3
    switched = with_changes(settings, {"method.encoder.recompute": True})
    result = Trainer.of(switched, tmp_path / "run").run(resume=True)
    assert result.iterations == 6


def test_a_first_step_out_of_memory_says_to_run_again(tmp_path: Path, tiny_settings, monkeypatch):
    from dckd_cli.engine.step import StepOutOfMemory
    from dckd_cli.methods.method import Method

    def short_of_memory(self, lq, gt, out):  # noqa: ANN001
        raise MemoryError  # a failed CPU allocation

    monkeypatch.setattr(Method, "loss_terms", short_of_memory)
    message = r"after 0 iterations; the run stopped \(no checkpoint was written yet\): run the same command again "
    message += r"with --set method.encoder.chunk=4, or data.batch_size=2 with optim.grad_accum=2$"
    settings = tiny_settings("dckd", iters=2, **{"method.encoder.recompute": True})  # on: not offered again
    with pytest.raises(StepOutOfMemory, match=message):
        train(settings, tmp_path / "run")


def test_other_runtime_errors_of_a_step_are_not_called_memory(tmp_path: Path, tiny_settings, monkeypatch):
    from dckd_cli.methods.method import Method

    def broken(self, lq, gt, out):  # noqa: ANN001
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(Method, "loss_terms", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        train(tiny_settings("logits", iters=2), tmp_path / "run")
