"""The network a run kept, as it is deployed: evaluation mode, BatchNorm folded into the
convolutions, the weight average where the run kept one, and MNIST's normalisation inside,
so that it takes pixels in [0, 1] (MNIST's bytes / 255) and returns the logits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tinycnn.config import TrainConfig, config_from_dict
from tinycnn.data.loader import NORMALIZATION
from tinycnn.errors import TinycnnError


class PixelsToLogits(nn.Module):
    """`net` behind MNIST's normalisation: pixels in [0, 1] in, logits out."""

    def __init__(self, net: nn.Module, mean: float, std: float):
        super().__init__()
        self.net, self.mean, self.std = net, mean, std

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net((pixels - self.mean) / self.std)


@dataclass
class Deployable:
    network: PixelsToLogits  # in eval mode, on the CPU
    config: TrainConfig
    source: Path  # the checkpoint it was read from
    params: int = 0  # the trained network's, before BatchNorm was folded


def load_deployable(target: str | Path, model: str | None = None) -> Deployable:
    """A run directory (its last.pt) or a checkpoint, as the network to deploy; `model` names
    the file of a network of the user's where the recorded one has changed."""
    from tinycnn.engine.checkpoint import load_checkpoint, load_weights
    from tinycnn.engine.provenance import network_builder
    from tinycnn.speed.inference import folded_copy

    target = Path(target)
    checkpoint = target / "last.pt" if target.is_dir() else target
    state = load_checkpoint(checkpoint)
    run_dir = checkpoint.parent
    if (run_dir / "config.toml").exists():
        config, build = network_builder(run_dir, model)
    else:
        from tinycnn.engine.provenance import model_to_build
        from tinycnn.models.build import build_model

        config = config_from_dict(state["config"], where=str(checkpoint))
        config = config if model is None else _with_model(config, model_to_build(run_dir, None, config.model, model))

        def build():
            return build_model(config)

    network = build()
    load_weights(network, state, checkpoint, config.model)
    if config.dataset not in NORMALIZATION:
        raise TinycnnError(f"{checkpoint}: no normalisation known for dataset {config.dataset!r}")
    mean, std = NORMALIZATION[config.dataset]
    params = sum(p.numel() for p in network.parameters())
    return Deployable(PixelsToLogits(folded_copy(network.eval()), mean, std).eval(), config, checkpoint, params)


def _with_model(config: TrainConfig, model: str) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(config, model=model)
