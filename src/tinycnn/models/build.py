"""The network a run's configuration names, built fresh: a zoo name, or a network of the
user's own from its file (`path/to/file.py:Name`) or module (`package.module:Name`)."""

from __future__ import annotations

from torch import nn

from tinycnn.config import TrainConfig
from tinycnn.models import source
from tinycnn.models.registry import create_model


def build_model(config: TrainConfig) -> nn.Module:
    """config.model from the registry or its file, with config.dropout where the recipe sets
    one (a network of the user's gets it where its class or function takes `dropout`)."""
    if source.is_spec(config.model):
        return source.build(source.parse_spec(config.model), config.dropout, config.model_args)
    overrides = {} if config.dropout is None else {"dropout": config.dropout}
    return create_model(config.model, **overrides, **config.model_args)


def check_model(config: TrainConfig) -> None:
    """One line now for a network that cannot be built later: an unknown zoo name, a missing
    file, a file that does not import, a name not in it, a factory that fails or takes other
    arguments, an output that is not (N, C) logits."""
    build_model(config)
