"""Where a run trains: the device, its name as run.json records it, and torch's thread count."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from tinycnn.errors import TinycnnError

# torch's own choice of intra-op threads (the physical cores), before anything changes it.
TORCH_DEFAULT_THREADS = torch.get_num_threads()


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TinycnnError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


def use_deterministic_algorithms() -> None:
    """--deterministic: torch's deterministic kernels (an error where one has none)."""
    torch.use_deterministic_algorithms(True, warn_only=False)
    torch.backends.cudnn.benchmark = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    except OSError:
        pass
    return platform.processor() or "cpu"
