"""A training step's forward and backward as one CUDA graph, replayed for every batch.

A step of these networks is about a hundred kernels of a few microseconds each: launched
one by one from Python the GPU mostly waits for the CPU, and one graph for forward, loss
and backward together is what removes that wait (docs/performance.md, "GPU"). The
optimizer step and the learning-rate
schedule stay outside the graph, as eager code: OneCycle changes the momentum as well as
the rate every step, and a graph would freeze both at their captured values.

The first `warmup` steps of each batch shape run eagerly (they are real training steps:
lazy initialisation, cuDNN's choices and torch.compile's compilation happen there, not
inside the capture); the next one is captured, then replayed. The gradients of a graph
live in its memory: each replay overwrites them, which is what zeroing and then
accumulating one backward would give.
"""

from __future__ import annotations

from typing import Callable

import torch

from tinycnn.errors import TinycnnError

ForwardBackward = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]


class GraphedStep:
    """Call with (x, y) as `forward_backward(x, y)` would be called after zeroing the
    gradients; returns its outputs (detached tensors, valid until the next call)."""

    def __init__(self, forward_backward: ForwardBackward, params: list[torch.nn.Parameter], warmup: int = 2):
        self.forward_backward = forward_backward
        self.params = list(params)
        self.warmup = warmup
        self._inputs: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # shape key -> static x, y
        self._eager_calls: dict[tuple, int] = {}
        self._graphs: dict[tuple, tuple] = {}  # shape key -> (graph, outputs, gradients)
        self._grads_of: tuple | None = None  # whose gradients the parameters hold

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        key = (tuple(x.shape), x.stride(), tuple(y.shape), x.dtype)
        if key not in self._inputs:
            # The warm-up steps run on the very tensors the graph will read: torch.compile
            # guards on its inputs' layout, and warmed up on other tensors (slices of the
            # epoch) it recompiled inside the capture, which then failed (seen on an H100).
            self._inputs[key] = (x.clone(), y.clone())
        static_x, static_y = self._inputs[key]
        static_x.copy_(x)
        static_y.copy_(y)
        entry = self._graphs.get(key)
        if entry is None:
            calls = self._eager_calls.get(key, 0)
            if calls < self.warmup:
                self._eager_calls[key] = calls + 1
                return self._eager(static_x, static_y)
            entry = self._capture(key, static_x, static_y)
        graph, outputs, grads = entry
        graph.replay()
        if self._grads_of != key:  # an eager step or another graph took the .grad attributes
            for p, g in zip(self.params, grads):
                p.grad = g
            self._grads_of = key
        return outputs

    def _eager(self, x, y):
        for p in self.params:
            p.grad = None
        self._grads_of = None
        return self.forward_backward(x, y)

    def _capture(self, key, static_x, static_y):
        for p in self.params:  # the captured backward must allocate its own gradients
            p.grad = None
        torch.cuda.synchronize(static_x.device)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = self.forward_backward(static_x, static_y)
        except Exception as exc:  # an operation that cannot be captured, e.g. one that waits for the host
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise TinycnnError(
                f"could not capture the training step as a CUDA graph ({type(exc).__name__}: {first}); "
                "train with --no-cuda-graphs"
            ) from exc
        entry = (graph, outputs, [p.grad for p in self.params])
        self._graphs[key] = entry
        self._grads_of = key
        return entry


def graphs_apply(config, device: torch.device) -> bool:
    """Whether a run of this configuration replays its steps as CUDA graphs."""
    return device.type == "cuda" and config.cuda_graphs
