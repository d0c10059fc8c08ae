"""Host memory policy on the CPU (``runtime.keep_host_memory``): keep freed memory for reuse.

A training step on the CPU allocates and frees gigabytes of activations. glibc's malloc gives
every large block its own ``mmap`` and returns it to the system when it is freed, so the next
step takes a page fault (and the kernel zeroes a page) for every 4 KB again: 2.9 million
faults in one DCKD step at the paper setting, which took 0.82x the time with the memory kept
(docs/performance.md). Keeping it means large blocks come from the heap and the heap is never
trimmed: peak resident memory rose by about 15 %. Values are computed the same either way
(only where the blocks come from changes). glibc only; elsewhere nothing changes.
The policy is process-wide, like torch's backend flags.
"""

from __future__ import annotations

import ctypes
import logging
import sys

import torch

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h) and glibc's documented defaults for the "off" state
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 128 * 1024, 65536

_kept = False  # whether this process changed glibc's policy


def glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (the only one whose mallopt this tunes)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def wanted(keep: bool | None, device: torch.device) -> bool:
    """``runtime.keep_host_memory``; empty: on when the run computes on the CPU (on CUDA the
    host allocates little per step, and the GPU has its own caching allocator)."""
    return device.type == "cpu" if keep is None else keep


def apply_host_memory(keep: bool | None, device: torch.device) -> bool:
    """Set this process's policy; True when freed memory is now kept. ``False`` restores glibc's
    defaults only where this process had changed them."""
    global _kept
    libc = glibc()
    if libc is None:
        return False
    if wanted(keep, device):
        # -1 as size_t: a heap top of any size stays mapped; no block gets its own mmap
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, -1) == 1
        _kept = _kept or ok
        if not ok:
            log.debug("mallopt refused the keep-host-memory policy; glibc's own stays")
        return ok
    if _kept:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_MMAP_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
        _kept = False
    return False
