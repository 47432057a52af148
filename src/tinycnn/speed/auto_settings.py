"""`compile = "auto"` and `amp = "auto"`: the settings that train fastest on this machine.

A recipe may leave these two to the machine (the default recipe does, and tiny-5k with it).
They are decided once, when a run is created; the run's config.toml records the decision, so
that a resume, here or elsewhere, continues with the same arithmetic.

The rules follow whole runs of the default recipe timed on 2-core CPUs with and without
native bf16 (docs/performance.md):
- amp (bf16 autocast): on a CPU that multiplies bf16 natively (AVX-512 BF16 or AMX). bf16
  left the recipes' validation accuracy where fp32 has it (docs/models.md). Not on a CPU
  that would emulate it, and not on a GPU, where these networks' steps are chains of small
  kernels and bf16 did not make them faster.
- compile (torch.compile): on the CPU, in bf16 or fp32, for a run of at least
  COMPILE_MIN_STEPS training steps, when a C++ compiler is there. Not on a GPU, where a
  step is already replayed as one CUDA graph and a cold compile took longer than a whole
  15-epoch run's training.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Callable

from tinycnn.config import AUTO, TrainConfig

if TYPE_CHECKING:
    import torch

# Four epochs of MNIST at batch 128: enough for what a compiled epoch saves to pay for a
# warm compile many times over, and a whole 15-epoch run for a machine's first, cold one.
COMPILE_MIN_STEPS = 1_850
MNIST_TRAIN_IMAGES = 60_000  # Fashion-MNIST has as many


def resolve_auto(config: TrainConfig, log: Callable[[str], None] | None = None) -> TrainConfig:
    """`config` with "auto" replaced by True or False for this machine (unchanged otherwise);
    each decision and its reason told to `log`."""
    decided = describe_auto(config)
    for key, (value, why) in decided.items():
        if log is not None:
            log(f"{key} = {str(value).lower()} (auto: {why})")
    return dataclasses.replace(config, **{key: value for key, (value, _) in decided.items()}) if decided else config


def describe_auto(config: TrainConfig) -> dict[str, tuple[bool, str]]:
    """{key: (decision, why)} for each of compile and amp that the config leaves to the machine."""
    from tinycnn.device import select_device

    if AUTO not in (config.compile, config.amp):
        return {}
    device = select_device(config.device)
    decided = {}
    if config.amp == AUTO:
        decided["amp"] = _decide_amp(device)
    if config.compile == AUTO:
        amp = decided["amp"][0] if "amp" in decided else config.amp
        decided["compile"] = _decide_compile(config, device, amp)
    return decided


def training_steps(config: TrainConfig) -> int:
    """How many optimizer steps the run will take (drop_last is never used)."""
    images = min(config.subset or MNIST_TRAIN_IMAGES, MNIST_TRAIN_IMAGES - config.val_size)
    return config.epochs * math.ceil(images / config.batch_size)


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 products in hardware, not emulated."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def cpp_compiler() -> str | None:
    """The C++ compiler inductor would use on the CPU, or None if there is none."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return get_cpp_compiler()
    except Exception:  # inductor raises its own error types when no compiler is found
        return None


def _decide_amp(device: torch.device) -> tuple[bool, str]:
    if device.type != "cpu":
        return False, "not on a GPU, where bf16 did not speed these steps up"
    if cpu_has_native_bf16():
        return True, "this CPU multiplies bf16 natively"
    return False, "this CPU has no native bf16 (AVX-512 BF16 or AMX)"


def _decide_compile(config: TrainConfig, device: torch.device, amp: bool) -> tuple[bool, str]:
    if device.type != "cpu":
        return False, "not on a GPU, where each step is already one CUDA graph"
    steps = training_steps(config)
    if steps < COMPILE_MIN_STEPS:
        return False, f"{steps:,} training steps, fewer than the {COMPILE_MIN_STEPS:,} that win back compiling"
    compiler = cpp_compiler()
    if compiler is None:
        return False, "no C++ compiler found (inductor needs g++ or clang++)"
    return True, f"{steps:,} training steps in {'bf16' if amp else 'fp32'}, compiled with {compiler}"
