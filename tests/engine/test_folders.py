"""Two commands on one folder, and ``--force`` on folders dckd did not make."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dckd_cli.engine.trainer import train
from dckd_cli.errors import DckdError
from dckd_cli.folders import FolderInUse, FolderLock, refuse_overlap


def test_a_second_command_on_a_folder_in_use_is_refused_naming_the_process(tmp_path: Path, tiny_settings):
    run = tmp_path / "run"
    with FolderLock(run, "dckd distill"):  # another command holds it
        for kwargs in ({}, {"resume": True}, {"force": True}):
            with pytest.raises(FolderInUse, match=rf"{run} is in use by process {os.getpid()} on .*\(dckd distill\)"):
                train(tiny_settings("scratch", iters=2), run, **kwargs)
    assert not run.exists()  # refused before anything was made
    assert train(tiny_settings("scratch", iters=2), run).iterations == 2  # free again


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path: Path, tiny_settings):
    run = tmp_path / "run"
    code = f"from dckd_cli.folders import FolderLock; lock = FolderLock({str(run)!r}).__enter__(); "
    code += "print('held', flush=True); import time; time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(FolderInUse, match=f"process {holder.pid}"):
        train(tiny_settings("scratch", iters=2), run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    time.sleep(0.1)
    assert train(tiny_settings("scratch", iters=2), run).iterations == 2


def test_only_the_first_process_of_a_distributed_run_locks(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with FolderLock(tmp_path / "run"), FolderLock(tmp_path / "run"):
        pass  # rank 1 takes no lock, so it cannot collide with rank 0's


def test_force_replaces_only_what_dckd_made(tmp_path: Path, tiny_settings):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    with pytest.raises(DckdError, match=r"holds files dckd did not make.*--force replaces only"):
        train(tiny_settings("scratch", iters=2), mine, force=True)
    assert (mine / "notes.txt").read_text() == "x" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    run = tmp_path / "run"
    train(tiny_settings("scratch", iters=2), run)
    assert train(tiny_settings("scratch", iters=2), run, force=True).iterations == 2  # a dckd run: replaced


def test_an_output_may_not_overlap_what_a_run_reads(tmp_path: Path, tiny_settings):
    import numpy as np
    from skimage import data as skdata

    from dckd_cli.data.images import write_image

    photos = tmp_path / "photos"
    for i in range(2):
        write_image(photos / f"{i}.png", np.ascontiguousarray(skdata.astronaut()[:64, i : i + 64]))
    with pytest.raises(DckdError, match=r"--output .* overlaps data\.train"):
        train(tiny_settings("scratch", iters=2, **{"data.train": [str(photos)]}), photos / "run")
    assert sorted(p.name for p in photos.iterdir()) == ["0.png", "1.png"]
    refuse_overlap(tmp_path / "data" / "runs" / "a", {}, {"data.root": tmp_path / "data"})  # a run inside the root
    with pytest.raises(DckdError, match="overlaps data.root"):
        refuse_overlap(tmp_path, {}, {"data.root": tmp_path / "data"})  # a folder holding the data


def test_export_refuses_to_write_over_its_source(tmp_path: Path, tiny_settings):
    from dckd_cli.pipelines.export import export_student

    run = tmp_path / "run"
    train(tiny_settings("scratch", iters=2), run)
    for output in (run, run / "exported"):
        with pytest.raises(DckdError, match="overlaps the source"):
            export_student(run, ["safetensors"], output, force=True)
    assert (run / "settings.yaml").is_file()


def test_ablate_force_and_a_second_ablate_on_a_folder_in_use_are_refused(tmp_path: Path):
    from dckd_cli.pipelines.ablate import AblationSpec, plan_ablation, run_ablation
    from dckd_cli.pipelines.ablation_grid import Cell

    spec = AblationSpec(preset="demo", overrides=[], method="scratch", iters=1, warm_iters=0, baseline=None)
    cells = [Cell("a", {}, {"run": "a"})]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    with pytest.raises(DckdError, match="holds files dckd did not make"):
        plan_ablation(mine, spec, cells, [0], force=True)
    plan = plan_ablation(tmp_path / "grid", spec, cells, [0])
    with FolderLock(tmp_path / "grid", "dckd ablate"), pytest.raises(FolderInUse, match=r"\(dckd ablate\)"):
        run_ablation(plan, make_sink=lambda label: None, say=lambda text: None, fresh=True)
    assert (mine / "notes.txt").is_file() and not (tmp_path / "grid").exists()
