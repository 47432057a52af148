"""The network as evaluation runs it: a copy in eval mode, each BatchNorm that follows a
convolution folded into that convolution's weights and bias, and on the CPU in channels_last.

In eval mode a BatchNorm is a fixed per-channel scale and shift (its running statistics),
so folding it changes only float rounding and removes one pass over every activation.
channels_last makes oneDNN's convolutions faster on the CPU; its precision problem is
training-mode BatchNorm's batch statistics, which evaluation does not compute. What the two
give: docs/performance.md.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch
from torch import fx, nn
from torch.fx.experimental.optimization import fuse


class ChannelsLastInput(nn.Module):
    """`net` fed its input in channels_last, so that every activation stays in it."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.train(net.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last))


def folded_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode with each BatchNorm that follows a convolution folded
    into it; a model torch.fx cannot trace (control flow on tensor values) is copied unfolded."""
    net = copy.deepcopy(model).eval()
    try:
        traced = fx.symbolic_trace(net)
    except fx.proxy.TraceError:
        return net
    return fuse(traced, inplace=True, no_trace=True)


def inference_copy(model: nn.Module, sample: torch.Tensor) -> nn.Module:
    """A copy of `model` to evaluate inputs like `sample` (a batch, on the model's device)
    with; the model itself is left as it is.

    Models that torch.fx cannot trace (control flow on tensor values) are copied unfolded;
    models that cannot run in channels_last (a .view of a convolution's output) stay in the
    default layout."""
    net = folded_copy(model)
    if sample.device.type == "cpu" and sample.dim() == 4:
        net = ChannelsLastInput(net.to(memory_format=torch.channels_last))
        try:
            with torch.no_grad(), quiet_copies():
                net(sample[:1])
        except RuntimeError:  # view size is not compatible with input tensor's size and stride
            return net.net.to(memory_format=torch.contiguous_format)
    return net


@contextlib.contextmanager
def quiet_copies():
    """A course-style forward's log_softmax without `dim` warns once per call site, and each
    evaluation's traced copy is a new call site: training has said it once already."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Implicit dimension choice for log_softmax", category=UserWarning)
        yield
