"""The network a run's configuration names, built fresh."""

from __future__ import annotations

from torch import nn

from tinycnn.config import TrainConfig
from tinycnn.models.registry import create_model


def build_model(config: TrainConfig) -> nn.Module:
    """config.model from the registry, with config.dropout where the recipe sets one."""
    overrides = {} if config.dropout is None else {"dropout": config.dropout}
    return create_model(config.model, **overrides)
