"""Two training processes (gloo DDP on the CPU, as `torchrun --nproc_per_node 2` starts them)
follow the one-process run at the same global batch, log once and save once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from dckd_cli.engine.run_folder import RunFolder

ARGS = [
    "distill", "--preset", "demo", "--method", "scratch", "--iters", "8", "-q",
    "--set", "student.size=tiny", "--set", "scale=2", "--set", "data.patch_size=16",
    "--set", "runtime.log_every=1", "--set", "runtime.val_every=100", "--set", "runtime.save_every=4",
    "--set", "optim.scheduler=constant",
]  # fmt: skip


def test_two_processes_match_one_at_the_same_global_batch(tmp_path: Path):
    one, two = tmp_path / "one", tmp_path / "two"
    env = {"PATH": "", "OMP_NUM_THREADS": "1", "DCKD_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "dckd_cli", *ARGS]
    subprocess.run([*cmd, "--set", "data.batch_size=4", "--output", str(one)], check=True, env=env, timeout=300)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
    subprocess.run(
        [*launcher, "-m", "dckd_cli", *ARGS, "--set", "data.batch_size=2", "--output", str(two)],
        check=True, env=env, timeout=300, capture_output=True,
    )  # fmt: skip
    a = load_file(str(RunFolder(one).weights("last", "student")))
    b = load_file(str(RunFolder(two).weights("last", "student")))
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst  # gloo sums in another order: float rounding only (7e-8 seen)
    records = [json.loads(line) for line in RunFolder(two).metrics.read_text().splitlines()]
    assert [r["iter"] for r in records] == list(range(1, 9))  # logged once
    assert sorted(p.name for p in RunFolder(two).checkpoints.iterdir()) == [".prev-last", "best", "last"]
    assert torch.load(RunFolder(two).checkpoint() / "state.pt", weights_only=True)["iter"] == 8
