"""The host-memory policy: freed blocks kept for reuse stop the page faults, on glibc."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from dckd_cli.engine.host_memory import glibc, wanted

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
PAGES = 16 * 2**20 * 4 // 4096  # a 64 MB block of float32 values: 16,384 pages of 4 KB

# In a fresh process (glibc's own policy, or the kept one): the minor page faults of eight
# rounds of a step-sized block allocated, written and freed, after 16 rounds of warm-up (the
# kept heap grows for up to nine rounds, as memalign's split blocks coalesce).
CHURN = """
import resource, sys, torch
from dckd_cli.engine.host_memory import apply_host_memory
if sys.argv[1] == "keep":
    assert apply_host_memory(None, torch.device("cpu"))
def churn(rounds):
    for _ in range(rounds):
        block = torch.empty(16 * 2**20)
        block.fill_(1.0)
        del block
churn(16)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn(16)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(policy: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHURN, policy], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(glibc() is None, reason="the policy tunes glibc's malloc")
def test_kept_memory_takes_no_page_faults_where_returned_memory_takes_one_per_page():
    returned, kept = _faults("glibc"), _faults("keep")
    assert returned >= 0.9 * 8 * PAGES  # every round faults every page in again
    assert kept < returned / 100


def test_the_default_is_on_for_the_cpu_only_and_a_setting_wins():
    assert wanted(None, CPU) and not wanted(None, CUDA)
    assert wanted(True, CUDA) and not wanted(False, CPU)
