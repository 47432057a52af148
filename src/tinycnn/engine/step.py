"""One training step: forward, loss and backward, the way the device runs it best.

On a GPU the step is replayed as one CUDA graph (speed/cuda_graphs.py); elsewhere it runs op
by op, through torch.compile's kernels when the run compiles. The optimizer step and the
learning-rate schedule stay outside, in the epoch loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext

import torch

from tinycnn.config import AUTO, TrainConfig
from tinycnn.errors import TinycnnError
from tinycnn.speed.cuda_graphs import GraphedStep, graphs_apply


def compile_model(model: torch.nn.Module, device: torch.device, inductor: dict | None = None):
    """torch.compile: fused C++ kernels on the CPU, Triton kernels on CUDA (inside the step's
    own CUDA graph, so without torch.compile's graphs).

    On the CPU the dropout masks' random numbers come from torch's generator, as in eager
    mode (fallback_random), not from inductor's per-element code: a compiled run draws the
    same masks as an eager one. `inductor`: CPU inductor options that replace or add to that
    (the bench's levers)."""
    # Every nn.Sequential shares one forward, whose compiled code dynamo caches per process up
    # to a limit and then runs eagerly: a process that trains one network after another (a
    # search's worker, seeds in turn, a notebook) would silently stop compiling. A new run
    # needs none of the code compiled for earlier ones.
    torch._dynamo.reset()
    if device.type == "cuda":
        return torch.compile(model)
    # A CUDA build of torch on a machine without CUDA warns so when inductor builds CPU kernels:
    # true, and nothing to do with a CPU run
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return torch.compile(model, options={"fallback_random": True, **(inductor or {})})


def autocast(device: torch.device, enabled: bool, cache: bool = True):
    """bf16 autocast, or nothing. cache=False inside a CUDA graph capture, whose casts of the
    weights must be redone at every replay, not kept from the capture."""
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache) if enabled else nullcontext()


class TrainStep:
    """Forward, loss and backward of one training step, the gradients zeroed before: replayed
    as one CUDA graph on a GPU (unless --no-cuda-graphs), else run directly. Called with
    (x, y), it returns (loss, logits), detached; valid until the next call.

    `loss_fn(logits, y)` is the loss to report, a scalar or one per seed (their sum is what
    is differentiated)."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig, device: torch.device,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        if AUTO in (config.compile, config.amp):  # a run decides these once and records them (speed/auto_settings.py)
            raise TinycnnError('TrainStep needs compile and amp decided: pass the config through resolve_auto first')
        self.model = compile_model(model, device) if config.compile else model
        self.params = list(model.parameters())
        self.device, self.amp, self.loss_fn = device, config.amp, loss_fn
        self.graphed = GraphedStep(self._forward_backward, self.params) if graphs_apply(config, device) else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graphed is not None:
            return self.graphed(x, y)
        for p in self.params:
            p.grad = None
        return self._forward_backward(x, y)

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # GraphedStep captures this; autocast's cache must be off inside a capture.
        with autocast(self.device, self.amp, cache=self.graphed is None):
            logits = self.model(x)
        loss = self.loss_fn(logits, y)
        (loss if loss.dim() == 0 else loss.sum()).backward()
        return loss.detach(), logits.detach()
