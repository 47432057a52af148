"""Keeping freed host memory in the process from one training step to the next (glibc).

An eager step on the CPU allocates its activations and gradients afresh and frees them at
its end: tens of MiB a step for these networks at batch 128. glibc gives large blocks back
to the kernel (a block above its mmap threshold is unmapped when freed, and free memory at
the top of the heap is trimmed once it passes the trim threshold), so the next step maps the
same memory again and pays a page fault, and the kernel's zeroing, for every 4 KiB page it
touches: thousands of faults a step (`tinycnn bench` reports them per round). With both
thresholds raised the memory stays mapped, and the peak resident set is what the step needs
anyway. A compiled step reuses its buffers and has no such faults either way
(docs/benchmarks.md, "Freed memory kept mapped").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import torch

# mallopt's parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# Blocks above this are still mapped on their own: a whole dataset, not a step's activation
# (128 x 16 x 28 x 28 float32 is 6.4 MiB; batch 1,024 would be 51 MiB).
MMAP_THRESHOLD = 64 * 2**20
# Free memory at the top of the heap is kept up to this much.
TRIM_THRESHOLD = 1024 * 2**20


def keep_freed_memory(device: torch.device | str = "cpu") -> bool:
    """Raise glibc's mmap and trim thresholds for this whole process when a training loop
    runs on the CPU (Trainer, StackedTrainer, lr-find, lr-sweep call it at their start).
    True where they were set; False on other devices (activations live in device memory)
    and where the C library is not glibc (nothing changes there). Setting them turns off
    glibc's own adjustment of the mmap threshold, which is why both are set."""
    if torch.device(device).type != "cpu":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success, 0 on error.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
