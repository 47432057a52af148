"""The optimizer and learning-rate schedule a configuration asks for."""

from __future__ import annotations

import torch

from tinycnn.config import TrainConfig


def build_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = model.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, betas=(config.momentum or 0.9, 0.999), weight_decay=config.weight_decay)


def build_scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    """(scheduler or None, stepped per batch?)."""
    s = config.scheduler
    if s == "none":
        return None, False
    if s == "onecycle":
        return (
            torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=config.max_lr,
                epochs=config.epochs,
                steps_per_epoch=steps_per_epoch,
                pct_start=config.pct_start,
                div_factor=config.div_factor,
                final_div_factor=config.final_div_factor,
            ),
            True,
        )
    if s == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma), False
    if s == "exp":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.gamma), False
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs), False
