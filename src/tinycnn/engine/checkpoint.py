"""Checkpoints: written atomically, loaded with weights_only=True so that a file can never run code."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from tinycnn.atomic import atomic_write_bytes
from tinycnn.errors import TinycnnError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location="cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise TinycnnError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated zip, a pickle with code in it, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinycnnError(f"{path}: not a loadable tinycnn checkpoint ({first[:200]})") from None


def trained_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The model weights a checkpoint's run evaluates and keeps: the weight average where
    the run kept one (its configuration's `ema`), else the trained weights themselves."""
    average = state.get("average")
    return average["model"] if average else state["model"]


def restore_training(state: dict[str, Any], model, optimizer, scheduler, average, device: torch.device) -> None:
    """Weights, optimizer, schedule, weight average and torch's generators from a resume
    point (a Trainer's last.pt or a stacked run's stacked.pt)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if average is not None:
        average.load_state_dict(state["average"])
    torch.set_rng_state(state["rng_cpu"].cpu())
    if "rng_cuda" in state:
        torch.cuda.set_rng_state(state["rng_cuda"].cpu(), device)
