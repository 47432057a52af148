"""An exponential moving average of a model's weights, the network a run evaluates and keeps
when its configuration sets `ema` (the decay).

After every optimizer step, each parameter and each floating-point buffer (BatchNorm's
running statistics) of the copy moves towards the trained model's:

    average <- decay_n * average + (1 - decay_n) * weights,  decay_n = min(decay, (1 + n) / (10 + n))

where n counts the updates. The warm-up term (the one of TensorFlow's ExponentialMovingAverage
and timm's ModelEmaV2) keeps the first epochs' average from being dominated by the random
initialisation: it averages over about the last n/9 steps until that reaches the decay's own
horizon, 1 / (1 - decay) steps. Integer buffers (BatchNorm's batch counter) are copied.

The average never feeds back into training: a run with and without it trains the same
weights, step for step, and only what is evaluated and kept differs.
"""

from __future__ import annotations

import copy

import torch


def warmed_decay(decay: float, updates: int) -> float:
    """The decay of update number `updates` (1 for the first)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    """The running average of `model`'s weights, held in a copy of it (`self.model`, in
    eval mode, never trained)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._averaged, self._copied = ([], []), ([], [])  # (the model's tensors, the copy's)
        for src, dst in zip(_tensors(model), _tensors(self.model)):
            sources, targets = self._averaged if src.is_floating_point() else self._copied
            sources.append(src)
            targets.append(dst)

    @torch.no_grad()
    def update(self) -> None:
        """Move the average one step towards the model's current weights."""
        self.updates += 1
        # One kernel each for all tensors (a GPU step is short enough for launches to count).
        sources, targets = self._averaged
        torch._foreach_lerp_(targets, sources, 1.0 - warmed_decay(self.decay, self.updates))
        sources, targets = self._copied
        if sources:
            torch._foreach_copy_(targets, sources)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]


def _tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer, in a fixed order."""
    return [*model.parameters(), *model.buffers()]
